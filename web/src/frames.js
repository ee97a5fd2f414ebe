// Pure data shaping for the dashboard: no DOM, no network, no globals.
// Everything here is unit-tested in frames.test.js.

/** How much history the chart keeps, in seconds. */
export const WINDOW_SECONDS = 300;
/** How many rows the live event feed keeps. */
export const FEED_CAP = 200;
/** Scores at or above this are shown as dangerous (red). */
export const HIGH_SCORE = 0.8;

/** Event types the gateway emits; anything else is shown with a generic badge. */
export const EVENT_TYPES = Object.freeze([
  'block',
  'throttle',
  'ban',
  'unban',
  'deny_list',
  'auth_failure',
  'bruteforce_block',
  'key_issued',
  'key_invalid',
  'shadow_block',
  'admin',
]);

const SERIES_FIELDS = ['requests', 'allowed', 'throttled', 'blocked'];
const TOTAL_FIELDS = ['requests', 'allowed', 'throttled', 'blocked', 'bans'];

/** A finite number from x, or fallback (non-numbers, NaN, ±Infinity → fallback). */
export function num(x, fallback = 0) {
  if (typeof x === 'number') return Number.isFinite(x) ? x : fallback;
  if (typeof x === 'string' && x.trim() !== '') {
    const n = Number(x);
    return Number.isFinite(n) ? n : fallback;
  }
  return fallback;
}

function str(x) {
  if (typeof x === 'string') return x;
  if (typeof x === 'number' && Number.isFinite(x)) return String(x);
  return '';
}

/** One series point with numeric fields, or null when it has no usable ts. */
export function normalizePoint(p) {
  if (!p || typeof p !== 'object') return null;
  const ts = num(p.ts, NaN);
  if (!Number.isFinite(ts)) return null;
  const out = { ts: Math.floor(ts) };
  for (const f of SERIES_FIELDS) out[f] = Math.max(0, num(p[f]));
  return out;
}

/**
 * Merge incoming series points into existing ones.
 * - points are keyed by ts; an incoming point replaces an existing one with the same ts
 *   (and a later duplicate within `incoming` wins over an earlier one);
 * - the result is sorted by ts ascending, whatever order the inputs were in;
 * - only the last `maxSeconds` seconds are kept, measured back from the newest point
 *   (or from `now`, when given and newer): a point survives when ts > newest - maxSeconds.
 * Neither input array is modified.
 */
export function mergeSeries(existing, incoming, maxSeconds = WINDOW_SECONDS, now = undefined) {
  const byTs = new Map();
  for (const list of [existing, incoming]) {
    if (!Array.isArray(list)) continue;
    for (const raw of list) {
      const p = normalizePoint(raw);
      if (p) byTs.set(p.ts, p);
    }
  }
  if (byTs.size === 0) return [];
  const points = [...byTs.values()].sort((a, b) => a.ts - b.ts);
  let newest = points[points.length - 1].ts;
  const n = num(now, NaN);
  if (Number.isFinite(n) && n > newest) newest = Math.floor(n);
  const cutoff = newest - num(maxSeconds, WINDOW_SECONDS);
  return points.filter((p) => p.ts > cutoff);
}

/**
 * uPlot's column data: [xs, allowed, blocked, throttled], xs in unix seconds ascending.
 * Invalid points are dropped; unsorted input is sorted (uPlot requires ascending x);
 * for a duplicate ts the later point wins.
 */
export function toChartData(series) {
  const pts = mergeSeries([], series, Infinity);
  return [
    pts.map((p) => p.ts),
    pts.map((p) => p.allowed),
    pts.map((p) => p.blocked),
    pts.map((p) => p.throttled),
  ];
}

/** Sum and last value of `blocked` over a series (for data attributes and tests). */
export function blockedStats(series) {
  const pts = Array.isArray(series) ? series : [];
  let sum = 0;
  for (const p of pts) sum += num(p && p.blocked);
  const last = pts.length ? num(pts[pts.length - 1] && pts[pts.length - 1].blocked) : 0;
  return { sum, last };
}

/**
 * Top reasons as "feature (contribution)", the largest contributions first,
 * contribution with 2 decimals, joined by ", ". Reasons without a feature are skipped.
 */
export function formatReasons(reasons, n = 3) {
  if (!Array.isArray(reasons) || n <= 0) return '';
  return reasons
    .filter((r) => r && typeof r === 'object' && str(r.feature) !== '')
    .map((r, i) => ({ feature: str(r.feature), c: num(r.contribution), i }))
    .filter((r) => r.c > 0) // a feature that added nothing is not a reason
    .sort((a, b) => b.c - a.c || a.i - b.i)
    .slice(0, n)
    .map((r) => `${r.feature} (${r.c.toFixed(2)})`)
    .join(', ');
}

const money = new Intl.NumberFormat('en-US', { style: 'currency', currency: 'USD' });
const integer = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });

/** USD currency, e.g. 1234.5 → "$1,234.50"; anything not a finite number → "—". */
export function formatMoney(x) {
  const v = num(x, NaN);
  return Number.isFinite(v) ? money.format(v) : '—';
}

/** A counter, e.g. 1234567 → "1,234,567"; anything not a finite number → "—". */
export function formatCount(x) {
  const v = num(x, NaN);
  return Number.isFinite(v) ? integer.format(v) : '—';
}

/** A score with 2 decimals, or "—" when there is none. */
export function formatScore(x) {
  if (x === null || x === undefined || x === '') return '—';
  const v = num(x, NaN);
  return Number.isFinite(v) ? v.toFixed(2) : '—';
}

/** Whether a score is at or above the danger threshold (0.8). */
export function isHighScore(x) {
  if (x === null || x === undefined || x === '') return false;
  const v = num(x, NaN);
  return Number.isFinite(v) && v >= HIGH_SCORE;
}

/** Event time as HH:MM:SS in the given time zone (local by default); "" when unparseable. */
export function formatTime(ts, timeZone = undefined) {
  const ms = eventTime(ts);
  if (!Number.isFinite(ms)) return '';
  return new Date(ms).toLocaleTimeString('en-GB', { hour12: false, timeZone });
}

/** Milliseconds since the epoch from an RFC 3339 string or unix seconds; NaN when invalid. */
export function eventTime(ts) {
  if (typeof ts === 'number') return Number.isFinite(ts) ? ts * 1000 : NaN;
  if (typeof ts === 'string' && ts !== '') return Date.parse(ts);
  return NaN;
}

/**
 * An event with the fields the feed uses, or null when it is not an object.
 * An event without an id gets a deterministic one so that it still de-duplicates.
 */
export function normalizeEvent(e) {
  if (!e || typeof e !== 'object' || Array.isArray(e)) return null;
  const geo = e.geo && typeof e.geo === 'object' ? e.geo : {};
  const out = {
    id: str(e.id),
    ts: str(e.ts),
    type: str(e.type) || 'unknown',
    ip: str(e.ip),
    geo: {
      country: str(geo.country),
      city: str(geo.city),
    },
    method: str(e.method),
    path: str(e.path),
    route: str(e.route),
    status: num(e.status, 0),
    score: e.score === null || e.score === undefined ? null : num(e.score, NaN),
    reasons: Array.isArray(e.reasons) ? e.reasons : [],
    user_agent: str(e.user_agent),
    // A folded event stands for `count` requests since first_ts (one without).
    count: Math.max(1, Math.trunc(num(e.count, 1))),
    first_ts: str(e.first_ts),
  };
  if (Number.isNaN(out.score)) out.score = null;
  if (!out.id) out.id = `${out.ts}|${out.type}|${out.ip}|${out.method}|${out.path}`;
  return out;
}

/**
 * Merge incoming events into the feed.
 * - `existing` is the feed as shown (newest first); `incoming` is in arrival order
 *   (oldest first, as frames carry them);
 * - events are de-duplicated by id: an event already in the feed is replaced by the
 *   incoming copy, in place of the old one;
 * - the result is newest first by ts; for equal ts, later arrivals come first;
 *   events with an unparseable ts sort last;
 * - at most `cap` events are kept (the oldest are dropped).
 * Neither input array is modified.
 */
export function mergeEvents(existing, incoming, cap = FEED_CAP) {
  const byId = new Map();
  // seq: higher = arrived later. Existing feed is newest-first, so its first item
  // is the latest of the old arrivals.
  let seq = 0;
  const old = Array.isArray(existing) ? existing : [];
  for (let i = old.length - 1; i >= 0; i--) {
    const e = normalizeEvent(old[i]);
    if (e) byId.set(e.id, { e, seq: seq++ });
  }
  for (const raw of Array.isArray(incoming) ? incoming : []) {
    const e = normalizeEvent(raw);
    if (!e) continue;
    byId.delete(e.id);
    byId.set(e.id, { e, seq: seq++ });
  }
  const key = (x) => {
    const t = eventTime(x.e.ts);
    return Number.isFinite(t) ? t : -Infinity;
  };
  return [...byId.values()]
    .sort((a, b) => key(b) - key(a) || b.seq - a.seq)
    .slice(0, Math.max(0, cap))
    .map((x) => x.e);
}

/** The `events` of a GET api/events answer ({"events":[...]}, newest first), oldest first. */
export function eventsFromAPI(body) {
  const list = body && Array.isArray(body.events) ? body.events : [];
  return list.slice().reverse();
}

/** Offenders with numeric fields, in the order the server sent them. */
export function normalizeOffenders(list) {
  if (!Array.isArray(list)) return [];
  return list
    .filter((o) => o && typeof o === 'object' && str(o.ip) !== '')
    .map((o) => ({
      ip: str(o.ip),
      country: str(o.country),
      blocks: Math.max(0, num(o.blocks)),
      score: o.score === null || o.score === undefined ? null : num(o.score, NaN),
      reasons: Array.isArray(o.reasons) ? o.reasons : [],
    }))
    .map((o) => (Number.isNaN(o.score) ? { ...o, score: null } : o));
}

/**
 * A stats frame from a websocket message (string or parsed object), normalised;
 * null when it is not JSON or not an object. Fields absent from the frame are
 * undefined in the result so the caller can keep what it had.
 */
export function parseFrame(data) {
  let obj = data;
  if (typeof data === 'string') {
    try {
      obj = JSON.parse(data);
    } catch {
      return null;
    }
  }
  if (!obj || typeof obj !== 'object' || Array.isArray(obj)) return null;
  const frame = {
    ts: num(obj.ts, NaN),
    totals: undefined,
    series: Array.isArray(obj.series) ? obj.series : [],
    events: Array.isArray(obj.events) ? obj.events : [],
    top_offenders: undefined,
    cost_saved: undefined,
    cost_per_request: undefined,
    histogram: undefined,
    origins: undefined,
    bans: undefined,
  };
  if (!Number.isFinite(frame.ts)) frame.ts = undefined;
  if (obj.totals && typeof obj.totals === 'object') {
    frame.totals = {};
    for (const f of TOTAL_FIELDS) frame.totals[f] = num(obj.totals[f]);
  }
  if (Array.isArray(obj.top_offenders)) frame.top_offenders = normalizeOffenders(obj.top_offenders);
  if (obj.cost_saved !== undefined && obj.cost_saved !== null) {
    const c = num(obj.cost_saved, NaN);
    if (Number.isFinite(c)) frame.cost_saved = c;
  }
  const cpr = num(obj.cost_per_request, NaN);
  if (Number.isFinite(cpr) && cpr >= 0) frame.cost_per_request = cpr;
  // A frame always carries the histogram, origins and bans of its moment;
  // the server leaves empty ones out.
  frame.histogram = normalizeHistogram(obj.score_histogram);
  frame.origins = normalizeOrigins(obj.origins);
  frame.bans = normalizeBans(obj.bans);
  return frame;
}

/** Number of score buckets over [0, 1]. */
export const SCORE_BUCKETS = 10;

/** The score histogram as exactly SCORE_BUCKETS non-negative counts (missing → 0). */
export function normalizeHistogram(h) {
  const src = Array.isArray(h) ? h : [];
  return Array.from({ length: SCORE_BUCKETS }, (_, i) => Math.max(0, Math.floor(num(src[i]))));
}

/**
 * Bars for the histogram: one per bucket with its label ("0.0–0.1"), count, and
 * height as a fraction of the tallest bar (0 when all are empty).
 */
export function histogramBars(counts) {
  const h = normalizeHistogram(counts);
  const peak = Math.max(0, ...h);
  return h.map((n, i) => ({
    bucket: i,
    label: `${(i / SCORE_BUCKETS).toFixed(1)}–${((i + 1) / SCORE_BUCKETS).toFixed(1)}`,
    count: n,
    frac: peak > 0 ? n / peak : 0,
    high: i / SCORE_BUCKETS >= HIGH_SCORE - 1e-9,
  }));
}

/** Origins with a country and finite coordinates in range, most events first. */
export function normalizeOrigins(list) {
  if (!Array.isArray(list)) return [];
  return list
    .filter((o) => o && typeof o === 'object' && str(o.country) !== '')
    .map((o) => ({
      country: str(o.country),
      lat: num(o.lat, NaN),
      lon: num(o.lon, NaN),
      events: Math.max(0, num(o.events)),
      blocks: Math.max(0, num(o.blocks)),
    }))
    .filter((o) => Math.abs(o.lat) <= 90 && Math.abs(o.lon) <= 180)
    .sort((a, b) => b.events - a.events || a.country.localeCompare(b.country));
}

/**
 * Marker radius in px for `events` out of the busiest origin's `peak`: the
 * area grows with the volume, from minR (any events at all) to maxR (the peak).
 */
export function markerRadius(events, peak, minR = 3, maxR = 18) {
  const e = Math.max(0, num(events));
  const p = Math.max(e, num(peak));
  if (e <= 0 || p <= 0) return 0;
  return minR + (maxR - minR) * Math.sqrt(e / p);
}

/** Active bans: ip, time left in seconds (-1: no expiry), reason, country, score. */
export function normalizeBans(list) {
  if (!Array.isArray(list)) return [];
  return list
    .filter((b) => b && typeof b === 'object' && str(b.ip) !== '')
    .map((b) => ({
      ip: str(b.ip),
      ttl: Math.floor(num(b.ttl_seconds, -1)),
      reason: str(b.reason),
      country: str(b.country),
      score: b.score === null || b.score === undefined ? null : num(b.score, NaN),
    }))
    .map((b) => (Number.isNaN(b.score) ? { ...b, score: null } : b))
    .filter((b) => b.ttl !== 0);
}

/** A duration in seconds as "1h 02m", "9m 05s", "42s"; "∞" for a negative one (no expiry). */
export function formatDuration(seconds) {
  const s = Math.floor(num(seconds, NaN));
  if (!Number.isFinite(s)) return '—';
  if (s < 0) return '∞';
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = s % 60;
  const pad = (n) => String(n).padStart(2, '0');
  if (h > 0) return `${h}h ${pad(m)}m`;
  if (m > 0) return `${m}m ${pad(sec)}s`;
  return `${sec}s`;
}

/**
 * Stacked chart columns: [xs, allowed+throttled+blocked, allowed+throttled, allowed],
 * drawn in that order so each fill covers the band of the series below it, and the
 * raw per-series values [allowed, throttled, blocked] for the legend.
 */
export function stackedChartData(series) {
  const [xs, allowed, blocked, throttled] = toChartData(series);
  const at = allowed.map((a, i) => a + throttled[i]);
  const all = at.map((v, i) => v + blocked[i]);
  return { data: [xs, all, at, allowed], raw: { allowed, throttled, blocked } };
}

/**
 * What GET api/ip/{ip} says, shaped for the detail view: geo, ban, the latest
 * score's reasons (largest contribution first, all of them), requests per 10 s,
 * counts by type and events (newest first, normalised).
 */
export function normalizeClient(body) {
  const b = body && typeof body === 'object' ? body : {};
  const geo = b.geo && typeof b.geo === 'object' ? b.geo : {};
  const latest = b.latest && typeof b.latest === 'object' ? normalizeEvent(b.latest) : null;
  const reasons = latest
    ? latest.reasons
        .filter((r) => r && typeof r === 'object' && str(r.feature) !== '')
        .map((r) => ({ feature: str(r.feature), value: num(r.value), contribution: num(r.contribution) }))
        .sort((x, y) => y.contribution - x.contribution)
    : [];
  return {
    ip: str(b.ip),
    // The client the gateways count and ban: the address, or an IPv6 address's /64.
    client: str(b.client) || str(b.ip),
    geo: {
      country: str(geo.country),
      city: str(geo.city),
      lat: num(geo.lat, NaN),
      lon: num(geo.lon, NaN),
      asn: num(geo.asn, 0),
      org: str(geo.org),
    },
    banned: b.banned === true,
    banTTL: Math.floor(num(b.ban_ttl_seconds, 0)),
    banReason: str(b.ban_reason),
    latest,
    reasons,
    requests: (Array.isArray(b.requests) ? b.requests : []).map(normalizePoint).filter(Boolean),
    byType: (Array.isArray(b.by_type) ? b.by_type : [])
      .filter((c) => c && typeof c === 'object')
      .map((c) => ({ type: str(c.key) || 'unknown', n: Math.max(0, num(c.n)) })),
    events: mergeEvents([], (Array.isArray(b.events) ? b.events : []).slice().reverse(), Infinity),
    unavailable: (Array.isArray(b.unavailable) ? b.unavailable : []).map(str).filter(Boolean),
  };
}

/**
 * Apply a parsed frame to the dashboard state and return the new state.
 * `first` is true for the first frame after a (re)connect: its series is the
 * server's full history and replaces ours; later frames merge into it.
 */
export function applyFrame(state, frame, first, maxSeconds = WINDOW_SECONDS, cap = FEED_CAP) {
  const base = first ? [] : state.series;
  return {
    ...state,
    ts: frame.ts ?? state.ts,
    totals: frame.totals ?? state.totals,
    series: mergeSeries(base, frame.series, maxSeconds, frame.ts),
    events: frame.events.length ? mergeEvents(state.events, frame.events, cap) : state.events,
    offenders: frame.top_offenders ?? state.offenders,
    costSaved: frame.cost_saved ?? state.costSaved,
    costPerRequest: frame.cost_per_request ?? state.costPerRequest,
    histogram: frame.histogram ?? state.histogram,
    origins: frame.origins ?? state.origins,
    bans: frame.bans ?? state.bans,
  };
}

/** The empty dashboard state. */
export function initialState() {
  return {
    ts: undefined,
    totals: undefined,
    series: [],
    events: [],
    offenders: [],
    costSaved: undefined,
    costPerRequest: undefined,
    histogram: normalizeHistogram([]),
    origins: [],
    bans: [],
  };
}

/** Reconnect delay in ms for the n-th consecutive failed attempt (0-based): 1 s, 2 s, 4 s, … max 15 s. */
export function backoffDelay(attempt, baseMs = 1000, maxMs = 15000) {
  const a = Math.max(0, Math.floor(num(attempt)));
  return Math.min(maxMs, baseMs * 2 ** Math.min(a, 30));
}

/**
 * The websocket URL for a page location: same host, ws: for http: and wss: for https:,
 * path "ws" resolved against the page (so a dashboard under /ui/ talks to /ui/ws).
 */
export function wsURL(href) {
  const u = new URL('ws', href);
  u.protocol = u.protocol === 'https:' ? 'wss:' : 'ws:';
  u.hash = '';
  u.search = '';
  return u.toString();
}

/**
 * What GET api/stats says, for the history panel: totals by type, by country
 * (events without a country as "unknown") and the top IPs, each most first.
 */
export function normalizeStats(body) {
  const b = body && typeof body === 'object' ? body : {};
  const counts = (list) =>
    (Array.isArray(list) ? list : [])
      .filter((c) => c && typeof c === 'object')
      .map((c) => ({ key: str(c.key) || 'unknown', n: Math.max(0, num(c.n)) }))
      .sort((x, y) => y.n - x.n);
  return {
    total: Math.max(0, num(b.total)),
    byType: counts(b.by_type),
    byCountry: counts(b.by_country),
    topIPs: (Array.isArray(b.top_ips) ? b.top_ips : [])
      .filter((t) => t && typeof t === 'object' && str(t.ip) !== '')
      .map((t) => ({ ip: str(t.ip), country: str(t.country), n: Math.max(0, num(t.n)) }))
      .sort((x, y) => y.n - x.n),
  };
}

/** The filters the history search sends, in the API's names. */
export const SEARCH_FIELDS = Object.freeze(['type', 'ip', 'country', 'route', 'min_score', 'from', 'to']);

/**
 * The GET api/events URL for the history search: the non-empty filters (trimmed;
 * datetime-local values "YYYY-MM-DDTHH:MM" are taken as local time and sent as
 * RFC 3339 UTC), the page size, and the cursor of the page to continue after.
 */
export function searchURL(filters, limit = 50, cursor = '') {
  const q = new URLSearchParams();
  for (const f of SEARCH_FIELDS) {
    let v = str(filters?.[f]).trim();
    if (v === '') continue;
    if ((f === 'from' || f === 'to') && /^\d{4}-\d\d-\d\dT\d\d:\d\d(:\d\d)?$/.test(v)) {
      const d = new Date(v); // no zone: local time
      if (!Number.isNaN(d.getTime())) v = d.toISOString();
    }
    q.set(f, v);
  }
  q.set('limit', String(limit));
  if (cursor) q.set('cursor', cursor);
  return `api/events?${q.toString()}`;
}
