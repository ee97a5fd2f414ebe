// Wiring: fetch recent events and the dashboard's mode, connect the websocket,
// apply frames, render; open the detail view of a client, unban. Everything
// from outside (document, WebSocket, fetch, chart, map, storage) is injectable
// so app.test.js can drive the whole page with fake frames.

import { connect } from './conn.js';
import {
  applyFrame,
  eventsFromAPI,
  formatMoney,
  initialState,
  mergeEvents,
  normalizeClient,
  normalizeEvent,
  normalizeStats,
  parseFrame,
  searchURL,
  wsURL,
} from './frames.js';
import {
  eventRow,
  renderBans,
  renderChartAttrs,
  renderConnState,
  renderDetail,
  renderEventHeads,
  renderFeed,
  renderHistogram,
  renderHistory,
  renderOffenders,
  renderTotals,
} from './render.js';

/** A connection without frames for this long is shown as stale. */
export const STALE_AFTER_MS = 5000;

/** How often the history panel re-reads GET api/stats. */
export const HISTORY_REFRESH_MS = 10_000;

/**
 * Start the dashboard in `doc`.
 * deps: { href, WebSocket, fetch, setTimeout, clearTimeout, createChart(container),
 *         createMap(container), prompt(message) }
 * Returns { state(), openDetail(ip), stop() }.
 */
export function startApp(doc, deps = {}) {
  const href = deps.href ?? doc.location.href;
  const $ = (id) => doc.getElementById(id);

  const badge = $('conn-state');
  const detail = $('conn-detail');
  const chartEl = $('rate-chart');
  const feedBody = $('event-feed');
  const feedEmpty = $('event-feed-empty');
  const feedNote = $('event-feed-note');
  const offendersBody = $('top-offenders');
  const offendersEmpty = $('top-offenders-empty');
  const lastUpdate = $('last-update');
  const histEl = $('score-histogram');
  const bansBody = $('bans');
  const bansEmpty = $('bans-empty');
  const bansNote = $('bans-note');
  const costNote = $('cost-note');
  const mode = $('mode');
  const dialog = $('detail');
  const parts = {
    title: $('detail-title'),
    summary: $('detail-summary'),
    requests: $('detail-requests'),
    reasons: $('detail-reasons'),
    reasonsEmpty: $('detail-reasons-empty'),
    events: $('detail-events'),
    eventsEmpty: $('detail-events-empty'),
    actions: $('detail-actions'),
    status: $('detail-status'),
  };

  renderEventHeads(doc);
  let chart = deps.createChart ? deps.createChart(chartEl) : null;
  const map = deps.createMap ? deps.createMap($('origin-map')) : null;
  const rowCache = new Map();
  let state = initialState();
  let admin = false;
  let token = '';
  let detailIP = '';
  const fetchFn = deps.fetch ?? globalThis.fetch?.bind(globalThis);
  const setT = deps.setTimeout ?? globalThis.setTimeout.bind(globalThis);
  const clearT = deps.clearTimeout ?? globalThis.clearTimeout.bind(globalThis);
  const histParts = {
    total: $('hist-total'),
    types: $('hist-types'),
    countries: $('hist-countries'),
    ips: $('hist-top-ips'),
    note: $('hist-note'),
  };
  let histTimer = null;
  let stopped = false;
  const ask = deps.prompt ?? ((msg) => globalThis.prompt?.(msg) ?? '');

  const getJSON = (url, init = {}) =>
    new Promise((resolve) => resolve(fetchFn(url, { headers: { Accept: 'application/json' }, ...init }))).then(async (res) => {
      let body = null;
      try {
        body = await res.json();
      } catch {
        /* not JSON */
      }
      if (!res.ok) throw new Error(body?.error ?? `HTTP ${res.status}`);
      return body;
    });

  function renderEvents() {
    renderFeed(feedBody, state.events, rowCache, feedEmpty);
  }

  function render() {
    renderTotals(doc, state.totals, state.costSaved);
    if (costNote) costNote.textContent = state.costPerRequest !== undefined ? `blocked × ${formatMoney(state.costPerRequest)}` : '';
    renderChartAttrs(chartEl, state.series);
    if (chart) chart.update(state.series, state.ts);
    renderHistogram(histEl, state.histogram);
    if (map) map.update(state.origins);
    renderOffenders(offendersBody, state.offenders, offendersEmpty);
    renderBans(bansBody, state.bans, admin, bansEmpty);
    renderEvents();
    if (lastUpdate && Number.isFinite(state.ts)) {
      const d = new Date(state.ts * 1000);
      lastUpdate.textContent = `updated ${d.toLocaleTimeString('en-GB', { hour12: false })}`;
      lastUpdate.dateTime = d.toISOString();
    }
  }

  render();

  if (fetchFn) {
    // Pre-fill the feed with the most recent events.
    getJSON('api/events?limit=50')
      .then((body) => {
        state = { ...state, events: mergeEvents(state.events, eventsFromAPI(body)) };
        renderEvents();
        if (feedNote) feedNote.textContent = '';
      })
      .catch((err) => {
        if (feedNote) feedNote.textContent = `Recent events unavailable (${err.message ?? err})`;
      });
    // Whether unbanning is possible (the token itself never comes from the server).
    getJSON('api/config')
      .then((body) => {
        admin = body?.admin === true;
        if (mode) {
          mode.textContent = admin ? 'admin' : 'read-only';
          mode.dataset.admin = String(admin);
        }
        renderBans(bansBody, state.bans, admin, bansEmpty);
      })
      .catch(() => {});
  }

  // The history panel: the last 24 hours from MongoDB, every HISTORY_REFRESH_MS.
  function refreshHistory() {
    histTimer = null;
    if (!fetchFn || !histParts.types || stopped) return;
    getJSON('api/stats?top=6')
      .then((body) => {
        renderHistory(histParts, normalizeStats(body));
        histParts.note.hidden = true;
      })
      .catch((err) => {
        histParts.note.textContent = `History unavailable (${err.message ?? err})`;
        histParts.note.hidden = false;
      })
      .finally(() => {
        if (!stopped) histTimer = setT(refreshHistory, HISTORY_REFRESH_MS);
      });
  }
  refreshHistory();

  // The history search: filters → GET api/events, "Older events" follows the cursor.
  const searchForm = $('search-form');
  const searchBody = $('search-results');
  const searchStatus = $('search-status');
  const searchMore = $('search-more');
  let searchFilters = {};
  let searchNext = '';
  let searchShown = 0;
  async function search(more) {
    if (!fetchFn || !searchForm) return;
    if (!more) {
      searchFilters = Object.fromEntries(new doc.defaultView.FormData(searchForm).entries());
      searchNext = '';
      searchShown = 0;
      searchBody.replaceChildren();
    }
    searchStatus.textContent = 'Searching…';
    searchForm.dataset.state = 'loading';
    try {
      const body = await getJSON(searchURL(searchFilters, 50, more ? searchNext : ''));
      const rows = (Array.isArray(body?.events) ? body.events : []).map(normalizeEvent).filter(Boolean);
      searchBody.append(...rows.map((e) => eventRow(doc, e)));
      searchShown += rows.length;
      searchNext = typeof body?.next === 'string' ? body.next : '';
      searchMore.hidden = !searchNext;
      searchStatus.textContent = searchShown
        ? `${searchShown} event${searchShown === 1 ? '' : 's'}${searchNext ? ', more older' : ''}`
        : 'No events match.';
      searchForm.dataset.state = 'ready';
    } catch (err) {
      searchStatus.textContent = `Search failed: ${err.message ?? err}`;
      searchMore.hidden = true;
      searchForm.dataset.state = 'error';
    }
  }
  const onSearch = (ev) => {
    ev.preventDefault();
    search(false);
  };
  const onMore = () => search(true);
  if (searchForm) searchForm.addEventListener('submit', onSearch);
  if (searchMore) searchMore.addEventListener('click', onMore);

  async function openDetail(ip) {
    if (!ip || !dialog) return;
    detailIP = ip;
    dialog.dataset.ip = ip;
    dialog.dataset.state = 'loading';
    parts.title.textContent = ip;
    parts.status.textContent = 'Loading…';
    if (!dialog.open) {
      if (typeof dialog.showModal === 'function') dialog.showModal();
      else dialog.setAttribute('open', '');
    }
    try {
      const body = await getJSON(`api/ip/${encodeURIComponent(ip)}`);
      if (detailIP !== ip) return; // another client was opened meanwhile
      const client = normalizeClient(body);
      renderDetail(parts, client, admin);
      parts.status.textContent = client.unavailable.length ? `Partial answer: ${client.unavailable.join(' and ')} unavailable.` : '';
      dialog.dataset.state = 'ready';
    } catch (err) {
      if (detailIP !== ip) return;
      parts.status.textContent = `Could not load ${ip}: ${err.message ?? err}`;
      dialog.dataset.state = 'error';
    }
  }

  function closeDetail() {
    detailIP = '';
    if (!dialog) return;
    if (typeof dialog.close === 'function') dialog.close();
    else dialog.removeAttribute('open');
    dialog.dataset.state = 'closed';
  }

  async function unban(ip) {
    if (!admin || !fetchFn) return;
    if (!token) token = String(ask(`Admin token to unban ${ip}:`) ?? '').trim();
    if (!token) return;
    const note = (msg) => {
      if (bansNote) bansNote.textContent = msg;
    };
    try {
      const body = await getJSON(`api/bans/${encodeURIComponent(ip)}/unban`, {
        method: 'POST',
        headers: { Accept: 'application/json', Authorization: `Bearer ${token}` },
      });
      // The client whose ban was lifted: for an IPv6 address, its /64, as bans are listed.
      const client = typeof body?.unbanned === 'string' && body.unbanned ? body.unbanned : ip;
      state = { ...state, bans: state.bans.filter((b) => b.ip !== ip && b.ip !== client) };
      renderBans(bansBody, state.bans, admin, bansEmpty);
      note(`${client} unbanned`);
      if (detailIP === ip || detailIP === client) openDetail(detailIP);
    } catch (err) {
      if (/token/i.test(String(err.message))) token = ''; // ask again next time
      note(`Unban ${ip} failed: ${err.message ?? err}`);
    }
  }

  // One listener for every IP link and unban button, wherever it is rendered.
  const onClick = (ev) => {
    const t = ev.target instanceof doc.defaultView.Element ? ev.target : null;
    const un = t?.closest('[data-unban]');
    if (un) {
      unban(un.dataset.unban);
      return;
    }
    const link = t?.closest('[data-detail]');
    if (link) {
      openDetail(link.dataset.detail);
      return;
    }
    if (t && t.closest('#detail-close')) closeDetail();
  };
  doc.addEventListener('click', onClick);
  if (dialog) dialog.addEventListener('close', () => (dialog.dataset.state = 'closed'));

  // The theme toggle: the chart reads its colours from CSS, so it is rebuilt.
  const toggle = $('theme-toggle');
  const onToggle = () => {
    const root = doc.documentElement;
    const next = root.dataset.theme === 'light' ? 'dark' : 'light';
    root.dataset.theme = next;
    try {
      doc.defaultView.localStorage?.setItem('bulwark-theme', next);
    } catch {
      /* storage disabled */
    }
    if (chart && deps.createChart) {
      chart.destroy?.();
      chartEl.replaceChildren();
      chart = deps.createChart(chartEl);
      chart.update(state.series, state.ts);
    }
  };
  if (toggle) toggle.addEventListener('click', onToggle);

  // The server sends a frame every second. A connection that stays open but
  // carries no frames (the dashboard cannot read Redis) is shown as stale.
  const now = deps.now ?? (() => Date.now());
  let connState = 'connecting';
  let lastFrame = now();
  let staleTimer = null;
  const watchStale = () => {
    staleTimer = setT(watchStale, 1000);
    if (connState === 'connected' && now() - lastFrame > STALE_AFTER_MS) {
      connState = 'stale';
      renderConnState(badge, detail, 'stale', {});
    }
  };
  watchStale();

  const conn = connect(
    wsURL(href),
    {
      onState: (s, info) => {
        connState = s;
        if (s === 'connected') lastFrame = now();
        renderConnState(badge, detail, s, info);
      },
      onMessage: (data, first) => {
        const frame = parseFrame(data);
        if (!frame) return;
        lastFrame = now();
        if (connState === 'stale') {
          connState = 'connected';
          renderConnState(badge, detail, 'connected', {});
        }
        state = applyFrame(state, frame, first);
        render();
      },
    },
    { WebSocket: deps.WebSocket, setTimeout: deps.setTimeout, clearTimeout: deps.clearTimeout },
  );

  return {
    state: () => state,
    openDetail,
    stop() {
      stopped = true;
      if (staleTimer !== null) clearT(staleTimer);
      if (histTimer !== null) clearT(histTimer);
      conn.close();
      doc.removeEventListener('click', onClick);
      if (searchForm) searchForm.removeEventListener('submit', onSearch);
      if (searchMore) searchMore.removeEventListener('click', onMore);
      if (toggle) toggle.removeEventListener('click', onToggle);
      if (chart && chart.destroy) chart.destroy();
    },
  };
}
