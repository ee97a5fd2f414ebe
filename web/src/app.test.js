// @vitest-environment happy-dom
// Drives the whole page (index.html + app.js) with a fake websocket and fake fetch.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { startApp } from './app.js';
import { fakeWebSocketClass } from './testutil.js';
import html from '../index.html?raw';

function loadPage() {
  const body = html.slice(html.indexOf('<body>') + 6, html.indexOf('</body>')).replace(/<script[\s\S]*?<\/script>/g, '');
  document.body.innerHTML = body; // our own static markup, not data
}

const event = (id, ts, extra = {}) => ({
  id,
  ts,
  type: 'block',
  ip: '203.0.113.9',
  geo: { country: 'DE', city: 'Berlin', lat: 52.5, lon: 13.4 },
  method: 'GET',
  path: '/api/products',
  route: '/',
  status: 403,
  score: 0.93,
  reasons: [{ feature: 'burst', value: 42, contribution: 0.7 }],
  user_agent: 'curl/8',
  ...extra,
});

const point = (ts, allowed, blocked, throttled = 0) => ({ ts, requests: allowed + blocked + throttled, allowed, throttled, blocked });

describe('dashboard page', () => {
  let app, FakeWebSocket, sockets, chartUpdates, fetchCalls;

  beforeEach(() => {
    vi.useFakeTimers();
    loadPage();
    ({ FakeWebSocket, sockets } = fakeWebSocketClass());
    chartUpdates = [];
    fetchCalls = [];
  });
  afterEach(() => {
    app?.stop();
    vi.useRealTimers();
  });

  // routes: { url: body | (init) => [status, body] }; api/events answers apiEvents.
  const start = (apiEvents = [], routes = {}, extra = {}) => {
    app = startApp(document, {
      href: 'https://gw.example.test/',
      WebSocket: FakeWebSocket,
      setTimeout,
      clearTimeout,
      fetch: async (url, init = {}) => {
        fetchCalls.push(url);
        const r = url === 'api/events?limit=50' ? { events: apiEvents } : routes[url];
        const [status, body] = typeof r === 'function' ? r(init) : r === undefined ? [404, { error: 'not found' }] : [200, r];
        return { ok: status < 300, status, json: async () => body };
      },
      createChart: () => ({ update: (series, ts) => chartUpdates.push([series.length, ts]), destroy() {} }),
      ...extra,
    });
  };
  const $ = (sel) => document.querySelector(sel);
  const feedIds = () => [...document.querySelectorAll('#event-feed tr[data-event-id]')].map((r) => r.dataset.eventId);

  it('connects to the relative ws URL and shows the connection state', async () => {
    start();
    expect(sockets[0].url).toBe('wss://gw.example.test/ws');
    expect($('#conn-state').textContent).toBe('connecting');
    sockets[0].serverOpen();
    expect($('#conn-state').textContent).toBe('connected');
    sockets[0].serverFail();
    expect($('#conn-state').textContent).toBe('reconnecting');
    expect($('#conn-state').dataset.state).toBe('reconnecting');
    expect($('#conn-detail').textContent).toBe('retry in 1 s');
    vi.advanceTimersByTime(1000);
    expect(sockets).toHaveLength(2);
  });

  it('pre-fills the feed from api/events and de-duplicates frame events', async () => {
    start([event('e2', '2026-11-23T18:00:02Z'), event('e1', '2026-11-23T18:00:01Z', { type: 'throttle', score: 0.4 })]);
    expect(fetchCalls).toEqual(['api/events?limit=50', 'api/config', 'api/stats?top=6']);
    await vi.waitFor(() => expect(feedIds()).toEqual(['e2', 'e1']));
    expect($('#event-feed-empty').hidden).toBe(true);

    sockets[0].serverOpen();
    sockets[0].serverSend({ ts: 1763900000, series: [], events: [event('e2', '2026-11-23T18:00:02Z'), event('e3', '2026-11-23T18:00:03Z', { type: 'ban', ip: '198.51.100.7' })] });
    expect(feedIds()).toEqual(['e3', 'e2', 'e1']);
    const row = $('#event-feed tr[data-event-id="e3"]');
    expect(row.dataset.type).toBe('ban');
    expect(row.dataset.ip).toBe('198.51.100.7');
    expect($('#event-feed tr[data-event-id="e1"] .score').classList.contains('high')).toBe(false);
  });

  it('renders totals, chart attributes and top offenders from frames', () => {
    start();
    sockets[0].serverOpen();
    sockets[0].serverSend({
      ts: 1000,
      totals: { requests: 150, allowed: 120, throttled: 10, blocked: 20, bans: 3 },
      series: [point(998, 40, 5), point(999, 40, 7), point(1000, 40, 8)],
      events: [],
      top_offenders: [{ ip: '203.0.113.9', country: 'DE', blocks: 12, score: 0.93 }],
      cost_saved: 5.4,
    });
    expect($('#total-requests').textContent).toBe('150');
    expect($('#total-allowed').textContent).toBe('120');
    expect($('#total-blocked').textContent).toBe('20');
    expect($('#total-bans').textContent).toBe('3');
    expect($('#cost-saved').textContent).toBe('$5.40');
    expect($('#rate-chart').dataset.blockedSum).toBe('20');
    expect($('#rate-chart').dataset.blockedLast).toBe('8');
    expect($('#top-offenders tr[data-ip="203.0.113.9"]')).not.toBeNull();
    expect($('#top-offenders-empty').hidden).toBe(true);
    expect($('#last-update').textContent).toMatch(/^updated \d\d:\d\d:\d\d$/);

    // a later frame: replace ts 1000, add 1001
    sockets[0].serverSend({ ts: 1001, series: [point(1000, 40, 10), point(1001, 40, 1)], events: [] });
    expect($('#rate-chart').dataset.blockedSum).toBe('23');
    expect($('#rate-chart').dataset.blockedLast).toBe('1');
    expect(chartUpdates.at(-1)).toEqual([4, 1001]);
    // fields absent from the later frame are kept
    expect($('#total-requests').textContent).toBe('150');
  });

  it('ignores malformed frames', () => {
    start();
    sockets[0].serverOpen();
    sockets[0].serverSend('not json');
    sockets[0].serverSend('[]');
    expect($('#total-requests').textContent).toBe('—');
    expect($('#conn-state').textContent).toBe('connected');
  });

  it('caps the feed at 200 rows', () => {
    start();
    sockets[0].serverOpen();
    const events = [];
    for (let i = 0; i < 230; i++) events.push(event(`e${i}`, new Date(Date.UTC(2026, 10, 23, 18) + i * 1000).toISOString()));
    sockets[0].serverSend({ ts: 1, series: [], events });
    const ids = feedIds();
    expect(ids).toHaveLength(200);
    expect(ids[0]).toBe('e229');
    expect(ids.at(-1)).toBe('e30');
  });

  it('says so when api/events fails, and still runs', async () => {
    app = startApp(document, {
      href: 'http://127.0.0.1:8080/',
      WebSocket: FakeWebSocket,
      setTimeout,
      clearTimeout,
      fetch: async () => ({ ok: false, status: 503, json: async () => ({}) }),
    });
    await vi.waitFor(() => expect($('#event-feed-note').textContent).toContain('HTTP 503'));
    expect(sockets[0].url).toBe('ws://127.0.0.1:8080/ws');
  });

  it('renders the histogram, the map origins and the bans of each frame', () => {
    const origins = [];
    start([], {}, { createMap: () => ({ update: (o) => origins.push(o) }) });
    sockets[0].serverOpen();
    sockets[0].serverSend({
      ts: 5,
      series: [],
      events: [],
      score_histogram: [0, 0, 0, 0, 0, 2, 0, 0, 0, 8],
      origins: [{ country: 'GB', lat: 51.5, lon: -0.1, events: 10, blocks: 8 }],
      bans: [{ ip: '81.2.69.142', ttl_seconds: 598, country: 'GB', reason: 'score 0.93' }],
      cost_per_request: 0.45,
    });
    expect($('#score-histogram').dataset.total).toBe('10');
    expect($('#score-histogram [data-bucket="9"]').dataset.count).toBe('8');
    expect($('#score-histogram [data-bucket="9"] .hbar-fill').style.height).toBe('100.0%');
    expect(origins.at(-1)).toEqual([{ country: 'GB', lat: 51.5, lon: -0.1, events: 10, blocks: 8 }]);
    const ban = $('#bans tr[data-ip="81.2.69.142"]');
    expect(ban.querySelector('.ttl').textContent).toBe('9m 58s');
    expect(ban.querySelector('[data-unban]')).toBeNull(); // read-only
    expect($('#cost-note').textContent).toBe('blocked × $0.45');
  });

  it('opens the detail view of a clicked IP with its reasons and events', async () => {
    start([], {
      'api/ip/81.2.69.142': {
        ip: '81.2.69.142',
        banned: true,
        ban_ttl_seconds: 590,
        geo: { country: 'GB', city: 'London', lat: 51.51, lon: -0.09 },
        requests: [{ ts: 1, requests: 30 }],
        latest: { id: 'b', ts: '2026-11-23T18:00:02Z', type: 'ban', score: 0.93, reasons: [{ feature: 'burst', value: 31, contribution: 0.85 }] },
        by_type: [{ key: 'ban', n: 1 }],
        events: [event('b', '2026-11-23T18:00:02Z', { type: 'ban', ip: '81.2.69.142' })],
      },
    });
    sockets[0].serverOpen();
    sockets[0].serverSend({ ts: 1, series: [], events: [event('b', '2026-11-23T18:00:02Z', { ip: '81.2.69.142' })] });
    $('#event-feed tr[data-event-id="b"] [data-detail]').click();
    const dialog = $('#detail');
    await vi.waitFor(() => expect(dialog.dataset.state).toBe('ready'));
    expect(dialog.dataset.ip).toBe('81.2.69.142');
    expect($('#detail-title').textContent).toBe('81.2.69.142');
    expect($('#detail-summary').textContent).toContain('London, GB');
    expect($('#detail-summary').textContent).toContain('banned, 9m 50s left');
    expect($('#detail-reasons tr[data-feature="burst"]').textContent).toContain('0.85');
    expect($('#detail-events tr[data-event-id="b"]')).not.toBeNull();
    expect($('#detail-requests').dataset.sum).toBe('30');
    $('#detail-close').click();
    expect(dialog.dataset.state).toBe('closed');
  });

  it('shows what it has when half of the detail is unavailable', async () => {
    start([], { 'api/ip/192.0.2.1': { ip: '192.0.2.1', banned: true, ban_ttl_seconds: 60, events: [], unavailable: ['event history'] } });
    app.openDetail('192.0.2.1');
    await vi.waitFor(() => expect($('#detail').dataset.state).toBe('ready'));
    expect($('#detail-status').textContent).toBe('Partial answer: event history unavailable.');
    expect($('#detail-summary').dataset.banned).toBe('true');
  });

  it('says so when the detail cannot be loaded', async () => {
    start([], { 'api/ip/192.0.2.1': () => [503, { error: 'event history unavailable' }] });
    app.openDetail('192.0.2.1');
    await vi.waitFor(() => expect($('#detail').dataset.state).toBe('error'));
    expect($('#detail-status').textContent).toContain('event history unavailable');
  });

  it('unbans with the token the operator types, only in admin mode', async () => {
    const posts = [];
    let asked = 0;
    start(
      [],
      {
        'api/config': { admin: true },
        'api/bans/81.2.69.142/unban': (init) => {
          posts.push(init);
          return init.headers.Authorization === 'Bearer right-token-0123456' ? [200, { unbanned: '81.2.69.142' }] : [401, { error: 'admin token required' }];
        },
      },
      { prompt: () => (asked++ === 0 ? 'wrong' : 'right-token-0123456') },
    );
    await vi.waitFor(() => expect($('#mode').textContent).toBe('admin'));
    sockets[0].serverOpen();
    sockets[0].serverSend({ ts: 1, series: [], events: [], bans: [{ ip: '81.2.69.142', ttl_seconds: 300 }] });
    $('#bans [data-unban="81.2.69.142"]').click();
    await vi.waitFor(() => expect($('#bans-note').textContent).toContain('admin token required'));
    expect($('#bans tr[data-ip="81.2.69.142"]')).not.toBeNull();
    $('#bans [data-unban="81.2.69.142"]').click();
    await vi.waitFor(() => expect($('#bans-note').textContent).toBe('81.2.69.142 unbanned'));
    expect($('#bans tr[data-ip="81.2.69.142"]')).toBeNull();
    expect(posts.map((p) => p.method)).toEqual(['POST', 'POST']);
    expect(asked).toBe(2);
  });

  it('shows an IPv6 ban as its /64, opens it and lifts it from any address of it', async () => {
    const v6 = '2001:db8:1:2::/64';
    const routes = {
      'api/config': { admin: true },
      [`api/ip/${encodeURIComponent(v6)}`]: { ip: v6, client: v6, banned: true, ban_ttl_seconds: 300, events: [] },
      'api/ip/2001%3Adb8%3A1%3A2%3A%3A77': { ip: '2001:db8:1:2::77', client: v6, banned: true, ban_ttl_seconds: 300, events: [] },
      'api/bans/2001%3Adb8%3A1%3A2%3A%3A77/unban': () => [200, { unbanned: v6 }],
    };
    start([], routes, { prompt: () => 'right-token-0123456' });
    await vi.waitFor(() => expect($('#mode').textContent).toBe('admin'));
    sockets[0].serverOpen();
    sockets[0].serverSend({ ts: 1, series: [], events: [], bans: [{ ip: v6, ttl_seconds: 300 }] });
    expect($(`#bans tr[data-ip="${v6}"]`).textContent).toContain(v6);

    $(`#bans tr[data-ip="${v6}"] [data-detail]`).click();
    await vi.waitFor(() => expect($('#detail').dataset.state).toBe('ready'));
    expect(fetchCalls).toContain('api/ip/2001%3Adb8%3A1%3A2%3A%3A%2F64');
    expect($('#detail-summary').textContent).not.toContain('counted and banned as one');

    // The detail of one address says which client it belongs to; its unban lifts the /64's ban.
    app.openDetail('2001:db8:1:2::77');
    await vi.waitFor(() => expect($('#detail').dataset.ip).toBe('2001:db8:1:2::77'));
    await vi.waitFor(() => expect($('#detail').dataset.state).toBe('ready'));
    expect($('#detail-summary').dataset.client).toBe(v6);
    expect($('#detail-summary').textContent).toContain(`${v6} (counted and banned as one)`);
    $('#detail-actions [data-unban]').click();
    await vi.waitFor(() => expect($('#bans-note').textContent).toBe(`${v6} unbanned`));
    expect($(`#bans tr[data-ip="${v6}"]`)).toBeNull();
  });

  it('switches between dark and light themes', () => {
    start();
    const root = document.documentElement;
    root.dataset.theme = 'dark';
    $('#theme-toggle').click();
    expect(root.dataset.theme).toBe('light');
    $('#theme-toggle').click();
    expect(root.dataset.theme).toBe('dark');
  });

  it('shows the last 24 hours from api/stats and re-reads it every 10 s', async () => {
    let n = 0;
    start([], {
      'api/stats?top=6': () => {
        n++;
        return [
          200,
          {
            total: 10 * n,
            by_type: [{ key: 'ban', n }],
            by_country: [{ key: 'GB', n: 9 }],
            top_ips: [{ ip: '81.2.69.142', country: 'GB', n: 9 }],
          },
        ];
      },
    });
    await vi.waitFor(() => expect($('#hist-total').textContent).toBe('10'));
    expect($('#hist-countries tr').dataset.country).toBe('GB');
    expect($('#hist-top-ips tr[data-ip="81.2.69.142"] [data-detail]')).not.toBeNull();
    await vi.advanceTimersByTimeAsync(10_000);
    await vi.waitFor(() => expect($('#hist-total').textContent).toBe('20'));
    app.stop();
    await vi.advanceTimersByTimeAsync(30_000);
    expect(n).toBe(2); // stopped: no more reads
  });

  it('says so when the history is unavailable', async () => {
    start([], { 'api/stats?top=6': () => [503, { error: 'event history unavailable' }] });
    await vi.waitFor(() => expect($('#hist-note').hidden).toBe(false));
    expect($('#hist-note').textContent).toContain('event history unavailable');
  });

  it('searches the history with the form and follows the cursor to older events', async () => {
    start([], {
      'api/events?type=ban&country=GB&limit=50': { events: [event('s2', '2026-11-23T18:00:02Z', { type: 'ban' })], next: 'CUR' },
      'api/events?type=ban&country=GB&limit=50&cursor=CUR': { events: [event('s1', '2026-11-23T18:00:01Z', { type: 'ban' })] },
      'api/events?ip=nope&limit=50': () => [400, { error: 'ip: must be an IP address' }],
    });
    const form = $('#search-form');
    form.elements.type.value = 'ban';
    form.elements.country.value = 'GB';
    form.requestSubmit();
    await vi.waitFor(() => expect(form.dataset.state).toBe('ready'));
    const ids = () => [...document.querySelectorAll('#search-results tr')].map((r) => r.dataset.eventId);
    expect(ids()).toEqual(['s2']);
    expect($('#search-more').hidden).toBe(false);
    expect($('#search-status').textContent).toBe('1 event, more older');
    $('#search-more').click();
    await vi.waitFor(() => expect(ids()).toEqual(['s2', 's1']));
    expect($('#search-more').hidden).toBe(true);

    form.elements.type.value = '';
    form.elements.country.value = '';
    form.elements.ip.value = 'nope';
    form.requestSubmit();
    await vi.waitFor(() => expect(form.dataset.state).toBe('error'));
    expect($('#search-status').textContent).toBe('Search failed: ip: must be an IP address');
    expect(ids()).toEqual([]);
  });

  it('shows a connection without frames as stale, and recovers with the next frame', () => {
    start();
    sockets[0].serverOpen();
    sockets[0].serverSend({ ts: 1, series: [], events: [] });
    vi.advanceTimersByTime(4000);
    expect($('#conn-state').dataset.state).toBe('connected');
    vi.advanceTimersByTime(3000);
    expect($('#conn-state').dataset.state).toBe('stale');
    expect($('#conn-detail').textContent).toBe('no data from the server');
    sockets[0].serverSend({ ts: 8, series: [], events: [] });
    expect($('#conn-state').dataset.state).toBe('connected');
    expect($('#conn-detail').textContent).toBe('');
    sockets[0].serverFail();
    vi.advanceTimersByTime(10_000);
    expect($('#conn-state').dataset.state).not.toBe('stale'); // reconnecting is not stale
  });
});
