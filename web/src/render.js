// DOM rendering. Every piece of server data goes into the page through textContent
// or setAttribute, never innerHTML, so nothing the gateway reports (paths, user
// agents, reasons) can inject markup.

import {
  EVENT_TYPES,
  blockedStats,
  formatDuration,
  histogramBars,
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

/** The badge shows "connecting", "connected", "stale" or "reconnecting" (also as data-state). */
export function renderConnState(badge, detail, state, info = {}) {
  badge.textContent = state;
  badge.dataset.state = state;
  if (!detail) return;
  if (state === 'reconnecting' && Number.isFinite(info.delayMs)) {
    detail.textContent = `retry in ${Math.round(info.delayMs / 1000)} s`;
  } else if (state === 'stale') {
    detail.textContent = 'no data from the server';
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

/** An IP that opens the client's detail view when clicked (app.js listens for data-detail). */
function ipCell(doc, ip) {
  const td = el(doc, 'td', 'ip mono');
  if (!ip) {
    td.textContent = '—';
    return td;
  }
  const b = el(doc, 'button', 'link ip-link', ip);
  b.type = 'button';
  b.dataset.detail = ip;
  b.title = `Why was ${ip} blocked?`;
  td.append(b);
  return td;
}

/** Top offenders table body: IP, country, blocks, score and the top reasons. */
export function renderOffenders(tbody, offenders, emptyNote) {
  const doc = tbody.ownerDocument;
  const rows = (offenders ?? []).map((o) => {
    const tr = el(doc, 'tr');
    tr.dataset.ip = o.ip;
    const reasons = el(doc, 'td', 'reasons', formatReasons(o.reasons, 2) || '—');
    const all = formatReasons(o.reasons, Infinity);
    if (all) reasons.title = all;
    tr.append(
      ipCell(doc, o.ip),
      el(doc, 'td', 'country', o.country || '—'),
      el(doc, 'td', 'num', formatCount(o.blocks)),
      scoreCell(doc, o.score),
      reasons,
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

/** The columns of an event row (eventRow), for the tables' headers. */
export const EVENT_COLUMNS = Object.freeze(['Time', 'Type', 'IP', 'Country', 'Request', 'Score', 'Reasons']);

/** Fill every `thead[data-columns="events"]` in doc with the event columns. */
export function renderEventHeads(doc) {
  for (const thead of doc.querySelectorAll('thead[data-columns="events"]')) {
    const tr = el(doc, 'tr');
    for (const name of EVENT_COLUMNS) tr.append(el(doc, 'th', name === 'Score' ? 'num' : '', name));
    thead.replaceChildren(tr);
  }
}

/** One live-feed row for a normalised event, in EVENT_COLUMNS order. */
export function eventRow(doc, e) {
  const tr = el(doc, 'tr');
  tr.dataset.eventId = e.id;
  tr.dataset.type = e.type;
  tr.dataset.ip = e.ip;

  const time = el(doc, 'td', 'time mono', formatTime(e.ts));
  if (e.ts) time.title = e.ts;

  const typeTd = el(doc, 'td', 'type');
  typeTd.append(el(doc, 'span', `badge ${typeClass(e.type)}`, e.type.replace(/_/g, ' ')));
  if (e.count > 1) {
    const n = el(doc, 'span', 'count', `×${formatCount(e.count)}`);
    n.title = `${formatCount(e.count)} requests` + (e.first_ts ? ` since ${formatTime(e.first_ts)}` : '');
    typeTd.append(doc.createTextNode(' '), n);
  }

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

  tr.append(time, typeTd, ipCell(doc, e.ip), country, req, scoreCell(doc, e.score), reasons);
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

/**
 * The score histogram: one bar per bucket (`[data-bucket]`, `data-count`), its
 * height relative to the tallest. Bars are created once and then resized.
 */
export function renderHistogram(container, counts) {
  const doc = container.ownerDocument;
  const bars = histogramBars(counts);
  if (container.children.length !== bars.length) {
    container.replaceChildren(
      ...bars.map((b) => {
        const col = el(doc, 'div', b.high ? 'hbar high' : 'hbar');
        col.dataset.bucket = String(b.bucket);
        col.append(el(doc, 'span', 'hbar-n'), el(doc, 'div', 'hbar-fill'), el(doc, 'span', 'hbar-label', b.label.slice(0, 3)));
        return col;
      }),
    );
  }
  let total = 0;
  bars.forEach((b, i) => {
    const col = container.children[i];
    col.dataset.count = String(b.count);
    col.title = `score ${b.label}: ${formatCount(b.count)}`;
    col.querySelector('.hbar-n').textContent = b.count ? formatCount(b.count) : '';
    col.querySelector('.hbar-fill').style.height = `${(b.frac * 100).toFixed(1)}%`;
    total += b.count;
  });
  container.dataset.total = String(total);
}

/** Active bans with time left; an unban button on each when `admin`. */
export function renderBans(tbody, bans, admin, emptyNote) {
  const doc = tbody.ownerDocument;
  const rows = (bans ?? []).map((b) => {
    const tr = el(doc, 'tr');
    tr.dataset.ip = b.ip;
    const action = el(doc, 'td', 'action');
    if (admin) {
      const btn = el(doc, 'button', 'unban', 'Unban');
      btn.type = 'button';
      btn.dataset.unban = b.ip;
      action.append(btn);
    }
    const why = el(doc, 'td', 'reasons', b.reason || '—');
    tr.append(
      ipCell(doc, b.ip),
      el(doc, 'td', 'country', b.country || '—'),
      el(doc, 'td', 'num ttl mono', formatDuration(b.ttl)),
      why,
      action,
    );
    return tr;
  });
  tbody.replaceChildren(...rows);
  if (emptyNote) emptyNote.hidden = rows.length > 0;
}

function dl(doc, pairs) {
  const list = el(doc, 'dl', 'facts');
  for (const [k, v] of pairs) list.append(el(doc, 'dt', '', k), el(doc, 'dd', '', v));
  return list;
}

/**
 * Fill the detail view for a normalised client (frames.normalizeClient):
 * `parts` holds the elements #detail-title, #detail-summary, #detail-requests,
 * #detail-reasons (tbody), #detail-events (tbody), #detail-actions.
 */
export function renderDetail(parts, c, admin) {
  const doc = parts.summary.ownerDocument;
  parts.title.textContent = c.ip;
  const place = [c.geo.city, c.geo.country].filter(Boolean).join(', ') || 'unknown';
  const coords = Number.isFinite(c.geo.lat) && Number.isFinite(c.geo.lon) ? `${c.geo.lat.toFixed(2)}, ${c.geo.lon.toFixed(2)}` : '—';
  const network = c.geo.asn ? `AS${c.geo.asn} ${c.geo.org}`.trim() : c.geo.org || '—';
  const ban = c.banned ? `banned, ${formatDuration(c.banTTL)} left${c.banReason ? ` (${c.banReason})` : ''}` : 'not banned';
  const counts = c.byType.map((t) => `${t.type} ${formatCount(t.n)}`).join(' · ') || 'no events';
  const last = c.latest ? `${formatScore(c.latest.score)} (${c.latest.type}, ${formatTime(c.latest.ts)})` : '—';
  // An IPv6 address is counted, limited and banned with its whole /64.
  const client = c.client && c.client !== c.ip ? [['Client', `${c.client} (counted and banned as one)`]] : [];
  parts.summary.replaceChildren(
    dl(doc, [
      ['Location', place],
      ['Coordinates', coords],
      ['Network', network],
      ...client,
      ['Status', ban],
      ['Latest score', last],
      ['History', counts],
    ]),
  );
  parts.summary.dataset.country = c.geo.country;
  parts.summary.dataset.client = c.client || c.ip;
  parts.summary.dataset.banned = String(c.banned);

  // Requests per 10 s over the last minute (the gateways keep 10 s buckets).
  const peak = c.requests.reduce((m, p) => Math.max(m, p.requests), 0);
  parts.requests.replaceChildren(
    ...c.requests.map((p) => {
      const bar = el(doc, 'div', 'rbar');
      bar.style.height = `${peak ? ((p.requests / peak) * 100).toFixed(1) : 0}%`;
      bar.title = `${formatTime(p.ts)}: ${formatCount(p.requests)} requests`;
      return bar;
    }),
  );
  parts.requests.dataset.sum = String(c.requests.reduce((s, p) => s + p.requests, 0));

  parts.reasons.replaceChildren(
    ...c.reasons.map((r) => {
      const tr = el(doc, 'tr');
      tr.dataset.feature = r.feature;
      const meter = el(doc, 'td', 'contrib');
      const fill = el(doc, 'span', 'contrib-bar');
      fill.style.width = `${Math.max(0, Math.min(1, r.contribution)) * 100}%`;
      meter.append(fill, el(doc, 'span', 'contrib-n mono', r.contribution.toFixed(2)));
      tr.append(el(doc, 'td', 'feature', r.feature), el(doc, 'td', 'num mono', String(Number(r.value.toFixed(3)))), meter);
      return tr;
    }),
  );
  parts.reasonsEmpty.hidden = c.reasons.length > 0;

  parts.events.replaceChildren(
    ...c.events.map((e) => {
      const tr = el(doc, 'tr');
      tr.dataset.eventId = e.id;
      tr.dataset.type = e.type;
      const typeTd = el(doc, 'td', 'type');
      typeTd.append(el(doc, 'span', `badge ${typeClass(e.type)}`, e.type.replace(/_/g, ' ')));
  if (e.count > 1) {
    const n = el(doc, 'span', 'count', `×${formatCount(e.count)}`);
    n.title = `${formatCount(e.count)} requests` + (e.first_ts ? ` since ${formatTime(e.first_ts)}` : '');
    typeTd.append(doc.createTextNode(' '), n);
  }
      const when = el(doc, 'td', 'time mono', formatTime(e.ts));
      if (e.ts) when.title = e.ts;
      tr.append(
        when,
        typeTd,
        el(doc, 'td', 'req mono', [e.method, e.path].filter(Boolean).join(' ') || '—'),
        el(doc, 'td', 'num', e.status ? String(e.status) : '—'),
        scoreCell(doc, e.score),
        el(doc, 'td', 'reasons', formatReasons(e.reasons, 3)),
      );
      return tr;
    }),
  );
  parts.eventsEmpty.hidden = c.events.length > 0;

  parts.actions.replaceChildren();
  if (admin && c.banned) {
    const btn = el(doc, 'button', 'unban', 'Unban');
    btn.type = 'button';
    btn.dataset.unban = c.ip;
    parts.actions.append(btn);
  }
}

/** A ranked list of (label, n) as rows with a proportional bar; `cell` renders the label. */
function rankRows(doc, items, cell) {
  const peak = items.reduce((m, x) => Math.max(m, x.n), 0);
  return items.map((x) => {
    const tr = el(doc, 'tr');
    const bar = el(doc, 'td', 'rank');
    const fill = el(doc, 'span', 'rank-bar');
    fill.style.width = `${peak ? ((x.n / peak) * 100).toFixed(1) : 0}%`;
    bar.append(fill);
    tr.append(cell(x), el(doc, 'td', 'num', formatCount(x.n)), bar);
    return tr;
  });
}

/**
 * The history panel from normalised stats (frames.normalizeStats): `parts` holds
 * #hist-total, #hist-types, #hist-countries and #hist-top-ips (tbodies).
 */
export function renderHistory(parts, st) {
  const doc = parts.types.ownerDocument;
  parts.total.textContent = formatCount(st.total);
  parts.types.replaceChildren(
    ...rankRows(doc, st.byType.slice(0, 6), (x) => {
      const td = el(doc, 'td');
      td.append(el(doc, 'span', `badge ${typeClass(x.key)}`, x.key.replace(/_/g, ' ')));
      return td;
    }),
  );
  parts.countries.replaceChildren(
    ...rankRows(doc, st.byCountry.slice(0, 6), (x) => el(doc, 'td', 'country', x.key)),
  );
  for (const [i, tr] of [...parts.countries.children].entries()) tr.dataset.country = st.byCountry[i].key;
  parts.ips.replaceChildren(
    ...rankRows(doc, st.topIPs.slice(0, 6), (x) => {
      const td = ipCell(doc, x.ip);
      if (x.country) td.append(el(doc, 'span', 'muted small', ` ${x.country}`));
      return td;
    }),
  );
  for (const [i, tr] of [...parts.ips.children].entries()) tr.dataset.ip = st.topIPs[i].ip;
}
