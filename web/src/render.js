// DOM rendering. Every piece of server data goes into the page through textContent
// or setAttribute, never innerHTML, so nothing the gateway reports (paths, user
// agents, reasons) can inject markup.

import {
  EVENT_TYPES,
  blockedStats,
  formatCount,
  formatMoney,
  formatReasons,
  formatScore,
  formatTime,
  isHighScore,
} from './frames.js';

/** Create an element with optional class and text. */
function el(doc, tag, cls, text) {
  const e = doc.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined && text !== null) e.textContent = String(text);
  return e;
}

/** The badge shows "connecting", "connected" or "reconnecting" (also as data-state). */
export function renderConnState(badge, detail, state, info = {}) {
  badge.textContent = state;
  badge.dataset.state = state;
  if (!detail) return;
  if (state === 'reconnecting' && Number.isFinite(info.delayMs)) {
    detail.textContent = `retry in ${Math.round(info.delayMs / 1000)} s`;
  } else {
    detail.textContent = '';
  }
}

/** Counter cards (elements looked up by id; missing ones are skipped). */
export function renderTotals(doc, totals, costSaved) {
  const t = totals ?? {};
  const set = (id, text) => {
    const e = doc.getElementById(id);
    if (e) e.textContent = text;
  };
  set('total-requests', formatCount(t.requests));
  set('total-allowed', formatCount(t.allowed));
  set('total-throttled', formatCount(t.throttled));
  set('total-blocked', formatCount(t.blocked));
  set('total-bans', formatCount(t.bans));
  set('cost-saved', formatMoney(costSaved));
}

/** The chart container's data attributes, so a test can read the loaded series. */
export function renderChartAttrs(container, series) {
  const { sum, last } = blockedStats(series);
  container.dataset.blockedLast = String(last);
  container.dataset.blockedSum = String(sum);
  container.dataset.points = String(Array.isArray(series) ? series.length : 0);
  const lastTs = series && series.length ? series[series.length - 1].ts : '';
  container.dataset.lastTs = String(lastTs);
}

function scoreCell(doc, score) {
  const td = el(doc, 'td', 'num score', formatScore(score));
  if (isHighScore(score)) td.classList.add('high');
  return td;
}

/** Top offenders table body. */
export function renderOffenders(tbody, offenders, emptyNote) {
  const doc = tbody.ownerDocument;
  const rows = (offenders ?? []).map((o) => {
    const tr = el(doc, 'tr');
    tr.dataset.ip = o.ip;
    tr.append(
      el(doc, 'td', 'ip mono', o.ip),
      el(doc, 'td', 'country', o.country || '—'),
      el(doc, 'td', 'num', formatCount(o.blocks)),
      scoreCell(doc, o.score),
    );
    return tr;
  });
  tbody.replaceChildren(...rows);
  if (emptyNote) emptyNote.hidden = rows.length > 0;
}

/** The CSS class for an event type badge; unknown types share one class. */
export function typeClass(type) {
  return EVENT_TYPES.includes(type) ? `type-${type}` : 'type-other';
}

/** One live-feed row for a normalised event. */
export function eventRow(doc, e) {
  const tr = el(doc, 'tr');
  tr.dataset.eventId = e.id;
  tr.dataset.type = e.type;
  tr.dataset.ip = e.ip;

  const time = el(doc, 'td', 'time mono', formatTime(e.ts));
  if (e.ts) time.title = e.ts;

  const typeTd = el(doc, 'td', 'type');
  typeTd.append(el(doc, 'span', `badge ${typeClass(e.type)}`, e.type.replace(/_/g, ' ')));

  const country = el(doc, 'td', 'country', e.geo.country || '—');
  if (e.geo.city) country.title = e.geo.city;

  const req = el(doc, 'td', 'req mono');
  if (e.method || e.path) {
    req.append(el(doc, 'span', 'method', e.method), doc.createTextNode(' '), el(doc, 'span', 'path', e.path));
    req.title = [e.method, e.path, e.status ? `→ ${e.status}` : '', e.user_agent].filter(Boolean).join(' ');
  } else {
    req.textContent = '—';
  }

  const reasons = el(doc, 'td', 'reasons', formatReasons(e.reasons, 3));
  const all = formatReasons(e.reasons, Infinity);
  if (all) reasons.title = all;

  tr.append(time, typeTd, el(doc, 'td', 'ip mono', e.ip || '—'), country, req, scoreCell(doc, e.score), reasons);
  return tr;
}

/**
 * Render the feed (newest first) into tbody, reusing rows by event id so that
 * existing rows don't flicker; rows added after the first render get class "new".
 * `cache` is a Map kept by the caller between calls.
 */
export function renderFeed(tbody, events, cache, emptyNote) {
  const doc = tbody.ownerDocument;
  const firstRender = cache.size === 0 && tbody.children.length === 0;
  const keep = new Set();
  const rows = [];
  for (const e of events) {
    const sig = JSON.stringify(e);
    let entry = cache.get(e.id);
    if (!entry || entry.sig !== sig) {
      const tr = eventRow(doc, e);
      if (!entry && !firstRender) tr.classList.add('new');
      entry = { sig, tr };
      cache.set(e.id, entry);
    }
    keep.add(e.id);
    rows.push(entry.tr);
  }
  for (const id of [...cache.keys()]) if (!keep.has(id)) cache.delete(id);
  // Move as few nodes as possible: new events are prepended and the rest stay
  // where they are, so their "new" highlight animation doesn't restart.
  let ref = tbody.firstChild;
  for (const tr of rows) {
    if (tr === ref) {
      ref = ref.nextSibling;
      continue;
    }
    tbody.insertBefore(tr, ref);
  }
  while (ref) {
    const next = ref.nextSibling;
    tbody.removeChild(ref);
    ref = next;
  }
  if (emptyNote) emptyNote.hidden = rows.length > 0;
}
