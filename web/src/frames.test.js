import { describe, expect, it } from 'vitest';
import {
  SCORE_BUCKETS,
  formatDuration,
  histogramBars,
  markerRadius,
  normalizeBans,
  normalizeClient,
  normalizeHistogram,
  normalizeOrigins,
  normalizeStats,
  searchURL,
  stackedChartData,
  applyFrame,
  backoffDelay,
  blockedStats,
  eventsFromAPI,
  formatCount,
  formatMoney,
  formatReasons,
  formatScore,
  formatTime,
  initialState,
  isHighScore,
  mergeEvents,
  mergeSeries,
  parseFrame,
  toChartData,
  wsURL,
} from './frames.js';

const pt = (ts, blocked = 0, allowed = 0, throttled = 0) => ({
  ts,
  requests: allowed + blocked + throttled,
  allowed,
  throttled,
  blocked,
});

const ev = (id, ts, extra = {}) => ({ id, ts, type: 'block', ip: '203.0.113.9', ...extra });

describe('mergeSeries', () => {
  it('returns [] for empty or missing inputs', () => {
    expect(mergeSeries([], [])).toEqual([]);
    expect(mergeSeries(undefined, null)).toEqual([]);
    expect(mergeSeries([], [{ requests: 3 }, null, 'x'])).toEqual([]);
  });

  it('appends newer points and keeps ts ascending', () => {
    const a = [pt(100, 1), pt(101, 2)];
    const out = mergeSeries(a, [pt(102, 3)], 300);
    expect(out.map((p) => p.ts)).toEqual([100, 101, 102]);
    expect(out.map((p) => p.blocked)).toEqual([1, 2, 3]);
  });

  it('sorts out-of-order points from either input', () => {
    const out = mergeSeries([pt(105, 5), pt(101, 1)], [pt(103, 3), pt(102, 2), pt(104, 4)], 300);
    expect(out.map((p) => p.ts)).toEqual([101, 102, 103, 104, 105]);
    expect(out.map((p) => p.blocked)).toEqual([1, 2, 3, 4, 5]);
  });

  it('replaces a point with the same ts by the incoming one', () => {
    const out = mergeSeries([pt(100, 1), pt(101, 1)], [pt(101, 9, 4)], 300);
    expect(out).toHaveLength(2);
    expect(out[1]).toEqual({ ts: 101, requests: 13, allowed: 4, throttled: 0, blocked: 9 });
  });

  it('lets the later of two duplicate incoming points win', () => {
    const out = mergeSeries([], [pt(100, 1), pt(100, 7)], 300);
    expect(out).toEqual([pt(100, 7)]);
  });

  it('keeps only the last maxSeconds seconds, measured from the newest point', () => {
    const pts = [];
    for (let ts = 1000; ts <= 1400; ts++) pts.push(pt(ts, 1));
    const out = mergeSeries([], pts, 300);
    expect(out).toHaveLength(300);
    expect(out[0].ts).toBe(1101);
    expect(out[out.length - 1].ts).toBe(1400);
  });

  it('drops old points when a newer frame arrives', () => {
    const first = mergeSeries([], [pt(100, 1), pt(200, 1), pt(399, 1)], 300);
    expect(first.map((p) => p.ts)).toEqual([100, 200, 399]);
    const next = mergeSeries(first, [pt(401, 1)], 300);
    expect(next.map((p) => p.ts)).toEqual([200, 399, 401]);
  });

  it('measures the window from `now` when it is newer than every point', () => {
    const out = mergeSeries([pt(100), pt(200)], [], 300, 450);
    expect(out.map((p) => p.ts)).toEqual([200]);
    // an older `now` does not shrink the window
    expect(mergeSeries([pt(100), pt(200)], [], 300, 50).map((p) => p.ts)).toEqual([100, 200]);
  });

  it('coerces fields to numbers and drops points without a valid ts', () => {
    const out = mergeSeries([], [{ ts: '100', blocked: '4', allowed: null }, { ts: 'x', blocked: 1 }, { blocked: 2 }], 300);
    expect(out).toEqual([{ ts: 100, requests: 0, allowed: 0, throttled: 0, blocked: 4 }]);
  });

  it('does not modify its inputs', () => {
    const a = [pt(102), pt(100)];
    const b = [pt(101)];
    const aCopy = structuredClone(a);
    const bCopy = structuredClone(b);
    mergeSeries(a, b, 300);
    expect(a).toEqual(aCopy);
    expect(b).toEqual(bCopy);
  });
});

describe('toChartData', () => {
  it('returns four empty columns for an empty series', () => {
    expect(toChartData([])).toEqual([[], [], [], []]);
    expect(toChartData(undefined)).toEqual([[], [], [], []]);
  });

  it('returns [xs, allowed, blocked, throttled] columns', () => {
    const data = toChartData([pt(100, 1, 10, 2), pt(101, 3, 20, 0)]);
    expect(data).toEqual([
      [100, 101],
      [10, 20],
      [1, 3],
      [2, 0],
    ]);
  });

  it('sorts unsorted input and keeps one point per ts', () => {
    const data = toChartData([pt(102, 2), pt(100, 0), pt(101, 1), pt(101, 5)]);
    expect(data[0]).toEqual([100, 101, 102]);
    expect(data[2]).toEqual([0, 5, 2]);
    // all columns have the same length, as uPlot requires
    expect(new Set(data.map((c) => c.length))).toEqual(new Set([3]));
  });
});

describe('blockedStats', () => {
  it('sums blocked and reports the last value', () => {
    expect(blockedStats([pt(1, 2), pt(2, 3), pt(3, 4)])).toEqual({ sum: 9, last: 4 });
  });
  it('is zero for an empty series', () => {
    expect(blockedStats([])).toEqual({ sum: 0, last: 0 });
    expect(blockedStats(null)).toEqual({ sum: 0, last: 0 });
  });
});

describe('formatReasons', () => {
  const reasons = [
    { feature: 'ua', value: 1, contribution: 0.1 },
    { feature: 'burst', value: 42, contribution: 0.7 },
    { feature: 'geo', value: 1, contribution: 0.15 },
    { feature: 'path_entropy', value: 3.2, contribution: 0.05 },
  ];

  it('lists the top n by contribution with 2 decimals', () => {
    expect(formatReasons(reasons, 2)).toBe('burst (0.70), geo (0.15)');
    expect(formatReasons(reasons, 3)).toBe('burst (0.70), geo (0.15), ua (0.10)');
  });

  it('returns all reasons when n exceeds their number', () => {
    expect(formatReasons(reasons, 10).split(', ')).toHaveLength(4);
  });

  it('handles empty, missing and malformed reasons', () => {
    expect(formatReasons([], 3)).toBe('');
    expect(formatReasons(undefined, 3)).toBe('');
    expect(formatReasons([null, { value: 1 }, { feature: 'x' }], 3)).toBe('');
    expect(formatReasons(reasons, 0)).toBe('');
  });

  it('leaves out features that contributed nothing', () => {
    const rs = [
      { feature: 'burst', value: 26, contribution: 0.8 },
      { feature: 'geo', value: 0, contribution: 0 },
      { feature: 'rate', value: 2.6, contribution: 0 },
    ];
    expect(formatReasons(rs, 3)).toBe('burst (0.80)');
  });

  it('keeps the server order for equal contributions', () => {
    expect(formatReasons([{ feature: 'a', contribution: 0.5 }, { feature: 'b', contribution: 0.5 }], 2)).toBe(
      'a (0.50), b (0.50)',
    );
  });
});

describe('number formatting', () => {
  it('formats money as USD', () => {
    expect(formatMoney(5.4)).toBe('$5.40');
    expect(formatMoney(1234567.891)).toBe('$1,234,567.89');
    expect(formatMoney(0)).toBe('$0.00');
    expect(formatMoney('2.5')).toBe('$2.50');
  });

  it('shows a dash for money that is not a number', () => {
    expect(formatMoney(undefined)).toBe('—');
    expect(formatMoney(NaN)).toBe('—');
    expect(formatMoney('abc')).toBe('—');
  });

  it('formats counts with separators', () => {
    expect(formatCount(1234567)).toBe('1,234,567');
    expect(formatCount(0)).toBe('0');
    expect(formatCount(undefined)).toBe('—');
  });

  it('formats scores with 2 decimals and flags ≥ 0.8', () => {
    expect(formatScore(0.934)).toBe('0.93');
    expect(formatScore(0)).toBe('0.00');
    expect(formatScore(null)).toBe('—');
    expect(isHighScore(0.8)).toBe(true);
    expect(isHighScore(0.93)).toBe(true);
    expect(isHighScore(0.79)).toBe(false);
    expect(isHighScore(null)).toBe(false);
    expect(isHighScore(undefined)).toBe(false);
  });

  it('formats event times as HH:MM:SS', () => {
    expect(formatTime('2026-11-23T18:00:05Z', 'UTC')).toBe('18:00:05');
    expect(formatTime('not a time', 'UTC')).toBe('');
  });
});

describe('mergeEvents', () => {
  it('orders events newest first', () => {
    const out = mergeEvents([], [ev('a', '2026-11-23T18:00:01Z'), ev('b', '2026-11-23T18:00:03Z'), ev('c', '2026-11-23T18:00:02Z')]);
    expect(out.map((e) => e.id)).toEqual(['b', 'c', 'a']);
  });

  it('puts new frame events above the existing feed', () => {
    const feed = mergeEvents([], [ev('a', '2026-11-23T18:00:01Z')]);
    const out = mergeEvents(feed, [ev('b', '2026-11-23T18:00:02Z'), ev('c', '2026-11-23T18:00:03Z')]);
    expect(out.map((e) => e.id)).toEqual(['c', 'b', 'a']);
  });

  it('de-duplicates events present both in api/events and in a frame', () => {
    const api = {
      events: [ev('e3', '2026-11-23T18:00:03Z'), ev('e2', '2026-11-23T18:00:02Z'), ev('e1', '2026-11-23T18:00:01Z')],
    };
    let feed = mergeEvents([], eventsFromAPI(api));
    expect(feed.map((e) => e.id)).toEqual(['e3', 'e2', 'e1']);
    feed = mergeEvents(feed, [ev('e2', '2026-11-23T18:00:02Z'), ev('e3', '2026-11-23T18:00:03Z'), ev('e4', '2026-11-23T18:00:04Z')]);
    expect(feed.map((e) => e.id)).toEqual(['e4', 'e3', 'e2', 'e1']);
  });

  it('de-duplicates whichever arrives first (frame before api/events)', () => {
    let feed = mergeEvents([], [ev('e2', '2026-11-23T18:00:02Z'), ev('e3', '2026-11-23T18:00:03Z')]);
    feed = mergeEvents(feed, eventsFromAPI({ events: [ev('e2', '2026-11-23T18:00:02Z'), ev('e1', '2026-11-23T18:00:01Z')] }));
    expect(feed.map((e) => e.id)).toEqual(['e3', 'e2', 'e1']);
  });

  it('replaces a duplicate with the incoming copy', () => {
    const feed = mergeEvents([], [ev('a', '2026-11-23T18:00:01Z', { score: 0.5 })]);
    const out = mergeEvents(feed, [ev('a', '2026-11-23T18:00:01Z', { score: 0.9 })]);
    expect(out).toHaveLength(1);
    expect(out[0].score).toBe(0.9);
  });

  it('caps the feed, dropping the oldest', () => {
    const many = [];
    for (let i = 0; i < 250; i++) many.push(ev(`e${i}`, new Date(Date.UTC(2026, 10, 23, 18, 0, 0) + i * 1000).toISOString()));
    const out = mergeEvents([], many, 200);
    expect(out).toHaveLength(200);
    expect(out[0].id).toBe('e249');
    expect(out[199].id).toBe('e50');
  });

  it('puts later arrivals first when timestamps are equal', () => {
    const t = '2026-11-23T18:00:00Z';
    const feed = mergeEvents([], [ev('a', t), ev('b', t)]);
    expect(feed.map((e) => e.id)).toEqual(['b', 'a']);
    const out = mergeEvents(feed, [ev('c', t)]);
    expect(out.map((e) => e.id)).toEqual(['c', 'b', 'a']);
  });

  it('sorts events with an invalid ts last and skips non-objects', () => {
    const out = mergeEvents([], [ev('bad', 'garbage'), null, 7, ev('ok', '2026-11-23T18:00:00Z')]);
    expect(out.map((e) => e.id)).toEqual(['ok', 'bad']);
  });

  it('gives events without an id a stable one so they de-duplicate', () => {
    const e = { ts: '2026-11-23T18:00:00Z', type: 'ban', ip: '198.51.100.7' };
    const out = mergeEvents(mergeEvents([], [e]), [{ ...e }]);
    expect(out).toHaveLength(1);
    expect(out[0].id).not.toBe('');
  });

  it('normalises geo, score and reasons', () => {
    const [e] = mergeEvents([], [{ id: 'x', ts: '2026-11-23T18:00:00Z', type: 'key_issued', geo: null, score: 'n/a' }]);
    expect(e.geo).toEqual({ country: '', city: '' });
    expect(e.score).toBeNull();
    expect(e.reasons).toEqual([]);
  });
});

describe('parseFrame and applyFrame', () => {
  const frame1 = {
    ts: 400,
    totals: { requests: 10, allowed: 7, throttled: 1, blocked: 2, bans: 1 },
    series: [pt(398, 1, 3), pt(399, 0, 2), pt(400, 1, 2)],
    events: [ev('a', '2026-11-23T18:00:01Z')],
    top_offenders: [{ ip: '203.0.113.9', country: 'DE', blocks: 12, score: 0.93 }],
    cost_saved: 5.4,
  };

  it('returns null for invalid JSON or non-objects', () => {
    expect(parseFrame('{nope')).toBeNull();
    expect(parseFrame('[1,2]')).toBeNull();
    expect(parseFrame('null')).toBeNull();
    expect(parseFrame('42')).toBeNull();
  });

  it('parses a JSON frame', () => {
    const f = parseFrame(JSON.stringify(frame1));
    expect(f.ts).toBe(400);
    expect(f.totals).toEqual({ requests: 10, allowed: 7, throttled: 1, blocked: 2, bans: 1 });
    expect(f.top_offenders).toEqual([{ ip: '203.0.113.9', country: 'DE', blocks: 12, score: 0.93, reasons: [] }]);
    expect(f.cost_saved).toBe(5.4);
  });

  it('leaves absent fields undefined so the state keeps them', () => {
    const f = parseFrame('{"ts": 401}');
    expect(f.totals).toBeUndefined();
    expect(f.top_offenders).toBeUndefined();
    expect(f.cost_saved).toBeUndefined();
    expect(f.series).toEqual([]);
    expect(f.events).toEqual([]);
  });

  it('applies a first frame, then merges later frames', () => {
    let s = applyFrame(initialState(), parseFrame(frame1), true);
    expect(s.series.map((p) => p.ts)).toEqual([398, 399, 400]);
    expect(s.costSaved).toBe(5.4);
    expect(s.events.map((e) => e.id)).toEqual(['a']);

    s = applyFrame(s, parseFrame({ ts: 401, series: [pt(400, 5), pt(401, 2)], events: [ev('b', '2026-11-23T18:00:02Z')] }), false);
    expect(s.series.map((p) => [p.ts, p.blocked])).toEqual([
      [398, 1],
      [399, 0],
      [400, 5],
      [401, 2],
    ]);
    expect(s.totals.requests).toBe(10); // kept: the frame had no totals
    expect(s.offenders).toHaveLength(1);
    expect(s.events.map((e) => e.id)).toEqual(['b', 'a']);
  });

  it('replaces the series on the first frame after a reconnect', () => {
    let s = applyFrame(initialState(), parseFrame(frame1), true);
    s = applyFrame(s, parseFrame({ ts: 500, series: [pt(499, 4), pt(500, 4)] }), true);
    expect(s.series.map((p) => p.ts)).toEqual([499, 500]);
    // events survive a reconnect
    expect(s.events.map((e) => e.id)).toEqual(['a']);
  });

  it('trims the series to the 300 s before the frame ts', () => {
    let s = applyFrame(initialState(), parseFrame(frame1), true);
    s = applyFrame(s, parseFrame({ ts: 699, series: [pt(699, 1)] }), false);
    expect(s.series.map((p) => p.ts)).toEqual([400, 699]);
  });
});

describe('backoffDelay', () => {
  it('doubles from 1 s up to 15 s', () => {
    expect([0, 1, 2, 3, 4, 5, 6, 50].map((a) => backoffDelay(a))).toEqual([
      1000, 2000, 4000, 8000, 15000, 15000, 15000, 15000,
    ]);
  });
});

describe('wsURL', () => {
  it('uses ws: for http: and wss: for https:, on the same host', () => {
    expect(wsURL('http://127.0.0.1:8080/')).toBe('ws://127.0.0.1:8080/ws');
    expect(wsURL('https://gw.example.test/')).toBe('wss://gw.example.test/ws');
  });
  it('resolves relative to the page and drops query and hash', () => {
    expect(wsURL('https://gw.example.test/ui/?x=1#top')).toBe('wss://gw.example.test/ui/ws');
    expect(wsURL('http://h/index.html')).toBe('ws://h/ws');
  });
});

describe('panel shaping', () => {
  it('normalises the score histogram to ten non-negative buckets', () => {
    expect(normalizeHistogram([1, '2', -3, null, 4.7])).toEqual([1, 2, 0, 0, 4, 0, 0, 0, 0, 0]);
    expect(normalizeHistogram(undefined)).toHaveLength(SCORE_BUCKETS);
  });

  it('turns counts into bars scaled to the tallest, marking the danger buckets', () => {
    const bars = histogramBars([0, 0, 0, 0, 0, 2, 0, 0, 1, 4]);
    expect(bars.map((b) => b.frac)).toEqual([0, 0, 0, 0, 0, 0.5, 0, 0, 0.25, 1]);
    expect(bars[9].label).toBe('0.9–1.0');
    expect(bars.filter((b) => b.high).map((b) => b.bucket)).toEqual([8, 9]);
    expect(histogramBars([]).every((b) => b.frac === 0)).toBe(true);
  });

  it('keeps origins with a country and valid coordinates, busiest first', () => {
    const o = normalizeOrigins([
      { country: 'FR', lat: 48.8, lon: 2.3, events: 2 },
      { country: 'GB', lat: '51.5', lon: -0.1, events: 9, blocks: 3 },
      { country: '', lat: 1, lon: 1, events: 100 },
      { country: 'XX', lat: 95, lon: 0, events: 100 },
      { country: 'YY', lon: 0, events: 100 },
      null,
    ]);
    expect(o.map((x) => x.country)).toEqual(['GB', 'FR']);
    expect(o[0]).toEqual({ country: 'GB', lat: 51.5, lon: -0.1, events: 9, blocks: 3 });
    expect(normalizeOrigins('nope')).toEqual([]);
  });

  it('sizes markers by area between the minimum and maximum radius', () => {
    expect(markerRadius(0, 10)).toBe(0);
    expect(markerRadius(10, 10)).toBe(18);
    expect(markerRadius(1, 1e9)).toBeGreaterThanOrEqual(3);
    expect(markerRadius(25, 100)).toBeCloseTo(3 + 15 * 0.5);
    expect(markerRadius(50, 10)).toBe(18); // never above the peak's size
  });

  it('normalises bans and drops expired ones', () => {
    expect(
      normalizeBans([
        { ip: '1.2.3.4', ttl_seconds: 600, reason: 'score 0.93', country: 'GB', score: 0.93 },
        { ip: '5.6.7.8', ttl_seconds: -1 },
        { ip: '9.9.9.9', ttl_seconds: 0 },
        { ttl_seconds: 5 },
      ]),
    ).toEqual([
      { ip: '1.2.3.4', ttl: 600, reason: 'score 0.93', country: 'GB', score: 0.93 },
      { ip: '5.6.7.8', ttl: -1, reason: '', country: '', score: null },
    ]);
  });

  it('formats time left', () => {
    expect(formatDuration(42)).toBe('42s');
    expect(formatDuration(545)).toBe('9m 05s');
    expect(formatDuration(3720)).toBe('1h 02m');
    expect(formatDuration(-1)).toBe('∞');
    expect(formatDuration('x')).toBe('—');
  });

  it('stacks the chart series: allowed, then throttled, then blocked on top', () => {
    const { data, raw } = stackedChartData([
      { ts: 2, allowed: 5, throttled: 1, blocked: 3 },
      { ts: 1, allowed: 2, throttled: 0, blocked: 0 },
    ]);
    expect(data).toEqual([
      [1, 2],
      [2, 9],
      [2, 6],
      [2, 5],
    ]);
    expect(raw).toEqual({ allowed: [2, 5], throttled: [0, 1], blocked: [0, 3] });
  });

  it('carries histogram, origins, bans and cost per request through frames', () => {
    const f = parseFrame({
      ts: 10,
      score_histogram: [0, 0, 0, 0, 0, 0, 0, 0, 0, 3],
      origins: [{ country: 'GB', lat: 51.5, lon: -0.1, events: 3 }],
      bans: [{ ip: '81.2.69.142', ttl_seconds: 590 }],
      cost_per_request: 0.45,
    });
    const s = applyFrame(initialState(), f, true);
    expect(s.histogram[9]).toBe(3);
    expect(s.origins[0].country).toBe('GB');
    expect(s.bans[0].ip).toBe('81.2.69.142');
    expect(s.costPerRequest).toBe(0.45);
    // A frame without bans means there are none now.
    const s2 = applyFrame(s, parseFrame({ ts: 11 }), false);
    expect(s2.bans).toEqual([]);
    expect(s2.costPerRequest).toBe(0.45);
  });

  it('shapes the client detail: reasons largest first, events newest first', () => {
    const c = normalizeClient({
      ip: '81.2.69.142',
      banned: true,
      ban_ttl_seconds: 590,
      ban_reason: 'score 0.93',
      geo: { country: 'GB', city: 'London', lat: 51.5, lon: -0.1 },
      latest: {
        id: 'b',
        ts: '2026-11-23T12:00:01Z',
        type: 'ban',
        score: 0.93,
        reasons: [
          { feature: 'rate', value: 30, contribution: 0.1 },
          { feature: 'burst', value: 40, contribution: 0.8 },
          { value: 1 },
        ],
      },
      requests: [{ ts: 1, requests: 4 }, { ts: 'x' }],
      by_type: [{ key: 'ban', n: 1 }, { key: null, n: 2 }],
      events: [
        { id: 'b', ts: '2026-11-23T12:00:01Z', type: 'ban' },
        { id: 'a', ts: '2026-11-23T12:00:00Z', type: 'throttle' },
      ],
    });
    expect(c.reasons.map((r) => r.feature)).toEqual(['burst', 'rate']);
    expect(c.geo.city).toBe('London');
    expect(c.banned).toBe(true);
    expect(c.banTTL).toBe(590);
    expect(c.requests).toHaveLength(1);
    expect(c.byType).toEqual([
      { type: 'ban', n: 1 },
      { type: 'unknown', n: 2 },
    ]);
    expect(c.events.map((e) => e.id)).toEqual(['b', 'a']);
    expect(c.unavailable).toEqual([]);
    expect(normalizeClient(null).events).toEqual([]);
    expect(normalizeClient({ unavailable: ['event history', 3, ''] }).unavailable).toEqual(['event history', '3']);
  });
});

describe('history stats', () => {
  it('shapes GET api/stats, most first, unknown countries named', () => {
    expect(
      normalizeStats({
        total: 6,
        by_type: [{ key: 'ban', n: 2 }, { key: 'throttle', n: 4 }],
        by_country: [{ key: '', n: 1 }, { key: 'GB', n: 5 }],
        top_ips: [{ ip: '81.2.69.142', country: 'GB', n: 5 }, { n: 3 }, { ip: '192.0.2.1', n: 1 }],
      }),
    ).toEqual({
      total: 6,
      byType: [
        { key: 'throttle', n: 4 },
        { key: 'ban', n: 2 },
      ],
      byCountry: [
        { key: 'GB', n: 5 },
        { key: 'unknown', n: 1 },
      ],
      topIPs: [
        { ip: '81.2.69.142', country: 'GB', n: 5 },
        { ip: '192.0.2.1', country: '', n: 1 },
      ],
    });
    expect(normalizeStats(null)).toEqual({ total: 0, byType: [], byCountry: [], topIPs: [] });
  });
});

describe('history search', () => {
  it('sends only the filters that are set, with the page size and cursor', () => {
    expect(searchURL({ type: 'ban', ip: ' 81.2.69.142 ', country: '', min_score: '0.8' })).toBe(
      'api/events?type=ban&ip=81.2.69.142&min_score=0.8&limit=50',
    );
    expect(searchURL({}, 20, 'abc_-')).toBe('api/events?limit=20&cursor=abc_-');
    expect(searchURL({ route: '/api/x&y' })).toBe('api/events?route=%2Fapi%2Fx%26y&limit=50');
  });

  it('sends datetime-local times as RFC 3339 UTC and passes other forms through', () => {
    const local = '2026-11-23T12:30';
    expect(searchURL({ from: local })).toBe(`api/events?from=${encodeURIComponent(new Date(local).toISOString())}&limit=50`);
    expect(searchURL({ to: '1795435200' })).toBe('api/events?to=1795435200&limit=50');
  });
});
