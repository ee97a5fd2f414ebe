// @vitest-environment happy-dom
import { beforeEach, describe, expect, it } from 'vitest';
import { mergeEvents, normalizeEvent, normalizeOffenders } from './frames.js';
import {
  EVENT_COLUMNS,
  eventRow,
  renderChartAttrs,
  renderConnState,
  renderEventHeads,
  renderFeed,
  renderOffenders,
  renderTotals,
  typeClass,
} from './render.js';

const ev = (id, ts, extra = {}) => ({
  id,
  ts,
  type: 'block',
  ip: '203.0.113.9',
  geo: { country: 'DE', city: 'Berlin', lat: 52.5, lon: 13.4 },
  method: 'GET',
  path: '/api/products',
  status: 403,
  score: 0.93,
  reasons: [{ feature: 'burst', value: 42, contribution: 0.7 }],
  user_agent: 'curl/8',
  ...extra,
});

describe('render', () => {
  beforeEach(() => {
    document.body.replaceChildren();
  });

  it('never interprets event data as HTML', () => {
    const evil = '<img src=x onerror="window.__pwned=1"><b>bold</b>';
    const [e] = mergeEvents([], [
      ev('"><script>alert(1)</script>', '2026-11-23T18:00:00Z', {
        type: '<i>block</i>',
        ip: evil,
        path: evil,
        method: '<svg/onload=alert(1)>',
        geo: { country: '<u>DE</u>', city: evil },
        reasons: [{ feature: evil, contribution: 0.5 }],
        user_agent: evil,
      }),
    ]);
    const tr = eventRow(document, e);
    document.body.append(tr);
    expect(tr.querySelector('img, b, i, u, svg, script')).toBeNull();
    expect(tr.dataset.ip).toBe(evil);
    expect(tr.dataset.eventId).toBe('"><script>alert(1)</script>');
    expect(tr.querySelector('.path').textContent).toBe(evil);
    expect(tr.querySelector('.reasons').textContent).toBe(`${evil} (0.50)`);
    // an unknown type gets the generic badge class, not a class built from data
    expect(tr.querySelector('.badge').className).toBe('badge type-other');
    expect(window.__pwned).toBeUndefined();
  });

  it('renders a feed row with time, type, IP, country, request, score and reasons', () => {
    const [e] = mergeEvents([], [ev('e1', '2026-11-23T18:00:05Z', { type: 'bruteforce_block' })]);
    const tr = eventRow(document, e);
    const cells = [...tr.children].map((td) => td.textContent);
    expect(cells[1]).toBe('bruteforce block');
    expect(cells.slice(2)).toEqual(['203.0.113.9', 'DE', 'GET /api/products', '0.93', 'burst (0.70)']);
    expect(cells[0]).toMatch(/^\d\d:\d\d:05$/);
    expect(tr.dataset).toMatchObject({ eventId: 'e1', type: 'bruteforce_block', ip: '203.0.113.9' });
    expect(tr.querySelector('.score').classList.contains('high')).toBe(true);
    expect(tr.querySelector('.badge').classList.contains('type-bruteforce_block')).toBe(true);
  });

  it('shows how many requests a folded event stands for', () => {
    const evs = mergeEvents([], [
      ev('f', '2026-11-23T18:00:05Z', { type: 'throttle', count: 1234, first_ts: '2026-11-23T18:00:04Z' }),
      ev('s', '2026-11-23T18:00:06Z', { type: 'throttle', count: 1 }),
    ]);
    const row = (id) => eventRow(document, evs.find((e) => e.id === id));
    const n = row('f').querySelector('.type .count');
    expect(n.textContent).toBe('×1,234');
    expect(n.title).toMatch(/^1,234 requests since \d\d:\d\d:04$/);
    expect(row('s').querySelector('.count')).toBeNull();
    expect(eventRow(document, normalizeEvent({ id: 'x', type: 'ban', ip: '192.0.2.1' })).querySelector('.count')).toBeNull();
    expect(eventRow(document, normalizeEvent({ id: 'y', type: 'ban', count: 'lots' })).querySelector('.count')).toBeNull();
  });

  it('marks only scores ≥ 0.8 red and shows a dash without a score', () => {
    const [low] = mergeEvents([], [ev('l', '2026-11-23T18:00:00Z', { score: 0.79 })]);
    const [none] = mergeEvents([], [ev('n', '2026-11-23T18:00:00Z', { type: 'key_issued', score: undefined, reasons: [] })]);
    expect(eventRow(document, low).querySelector('.score').classList.contains('high')).toBe(false);
    const tr = eventRow(document, none);
    expect(tr.querySelector('.score').textContent).toBe('—');
    expect(typeClass('key_issued')).toBe('type-key_issued');
  });

  it('keeps feed rows by id, newest first, and highlights only new ones', () => {
    const tbody = document.createElement('tbody');
    const empty = document.createElement('p');
    const cache = new Map();
    let events = mergeEvents([], [ev('a', '2026-11-23T18:00:01Z'), ev('b', '2026-11-23T18:00:02Z')]);
    renderFeed(tbody, events, cache, empty);
    expect([...tbody.children].map((r) => r.dataset.eventId)).toEqual(['b', 'a']);
    expect(tbody.querySelectorAll('tr.new')).toHaveLength(0);
    expect(empty.hidden).toBe(true);
    const rowA = tbody.querySelector('tr[data-event-id="a"]');

    events = mergeEvents(events, [ev('c', '2026-11-23T18:00:03Z')], 2);
    renderFeed(tbody, events, cache, empty);
    expect([...tbody.children].map((r) => r.dataset.eventId)).toEqual(['c', 'b']);
    expect(tbody.querySelector('tr[data-event-id="c"]').classList.contains('new')).toBe(true);
    expect(rowA.isConnected).toBe(false);
    expect(cache.has('a')).toBe(false);

    renderFeed(tbody, [], cache, empty);
    expect(tbody.children).toHaveLength(0);
    expect(empty.hidden).toBe(false);
  });

  it('re-renders a row whose event changed', () => {
    const tbody = document.createElement('tbody');
    const cache = new Map();
    renderFeed(tbody, mergeEvents([], [ev('a', '2026-11-23T18:00:01Z', { score: 0.1 })]), cache);
    renderFeed(tbody, mergeEvents([], [ev('a', '2026-11-23T18:00:01Z', { score: 0.95 })]), cache);
    expect(tbody.querySelectorAll('tr')).toHaveLength(1);
    expect(tbody.querySelector('.score').textContent).toBe('0.95');
  });

  it('gives every event table the columns eventRow fills', () => {
    document.body.innerHTML = '<table><thead data-columns="events"></thead></table><table><thead data-columns="events"></thead></table>';
    renderEventHeads(document);
    const heads = [...document.querySelectorAll('thead')].map((h) => [...h.querySelectorAll('th')].map((th) => th.textContent));
    expect(heads).toEqual([EVENT_COLUMNS, EVENT_COLUMNS]);
    const row = eventRow(document, normalizeEvent({ id: 'x', type: 'ban', ip: '192.0.2.1' }));
    expect(row.children).toHaveLength(EVENT_COLUMNS.length);
  });

  it('renders top offenders', () => {
    const tbody = document.createElement('tbody');
    const empty = document.createElement('p');
    renderOffenders(
      tbody,
      normalizeOffenders([
        { ip: '203.0.113.9', country: 'DE', blocks: 1200, score: 0.93, reasons: [{ feature: 'burst', contribution: 0.8 }] },
        { ip: '198.51.100.1', blocks: 3, score: 0.5 },
      ]),
      empty,
    );
    const rows = [...tbody.querySelectorAll('tr[data-ip]')];
    expect(rows.map((r) => r.dataset.ip)).toEqual(['203.0.113.9', '198.51.100.1']);
    expect([...rows[0].children].map((c) => c.textContent)).toEqual(['203.0.113.9', 'DE', '1,200', '0.93', 'burst (0.80)']);
    expect(rows[0].querySelector('button[data-detail]').dataset.detail).toBe('203.0.113.9');
    expect(rows[1].children[1].textContent).toBe('—');
    expect(rows[0].querySelector('.high')).not.toBeNull();
    expect(rows[1].querySelector('.high')).toBeNull();
    expect(empty.hidden).toBe(true);
  });

  it('renders totals and cost', () => {
    document.body.innerHTML =
      '<b id="total-requests"></b><b id="total-allowed"></b><b id="total-blocked"></b><b id="total-bans"></b><b id="cost-saved"></b>';
    renderTotals(document, { requests: 12345, allowed: 12000, blocked: 300, bans: 4 }, 1234.5);
    const text = (id) => document.getElementById(id).textContent;
    expect(text('total-requests')).toBe('12,345');
    expect(text('total-allowed')).toBe('12,000');
    expect(text('total-blocked')).toBe('300');
    expect(text('total-bans')).toBe('4');
    expect(text('cost-saved')).toBe('$1,234.50');
    renderTotals(document, undefined, undefined);
    expect(text('total-requests')).toBe('—');
    expect(text('cost-saved')).toBe('—');
  });

  it('sets the chart data attributes', () => {
    const div = document.createElement('div');
    renderChartAttrs(div, [
      { ts: 1, blocked: 2 },
      { ts: 2, blocked: 5 },
    ]);
    expect(div.getAttribute('data-blocked-sum')).toBe('7');
    expect(div.getAttribute('data-blocked-last')).toBe('5');
    expect(div.getAttribute('data-points')).toBe('2');
    renderChartAttrs(div, []);
    expect(div.getAttribute('data-blocked-sum')).toBe('0');
    expect(div.getAttribute('data-blocked-last')).toBe('0');
  });

  it('shows the connection state', () => {
    const badge = document.createElement('span');
    const detail = document.createElement('span');
    renderConnState(badge, detail, 'reconnecting', { delayMs: 4000 });
    expect(badge.textContent).toBe('reconnecting');
    expect(badge.dataset.state).toBe('reconnecting');
    expect(detail.textContent).toBe('retry in 4 s');
    renderConnState(badge, detail, 'connected', {});
    expect(badge.textContent).toBe('connected');
    expect(detail.textContent).toBe('');
  });
});
