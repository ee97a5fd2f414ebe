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

  const start = (apiEvents = []) => {
    app = startApp(document, {
      href: 'https://gw.example.test/',
      WebSocket: FakeWebSocket,
      setTimeout,
      clearTimeout,
      fetch: async (url) => {
        fetchCalls.push(url);
        return { ok: true, status: 200, json: async () => ({ events: apiEvents }) };
      },
      createChart: () => ({ update: (series, ts) => chartUpdates.push([series.length, ts]), destroy() {} }),
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
    expect(fetchCalls).toEqual(['api/events?limit=50']);
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
});
