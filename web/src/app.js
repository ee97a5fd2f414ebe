// Wiring: fetch recent events, connect the websocket, apply frames, render.
// Everything from outside (document, WebSocket, fetch, chart) is injectable so
// app.test.js can drive the whole page with fake frames.

import { connect } from './conn.js';
import { applyFrame, eventsFromAPI, initialState, mergeEvents, parseFrame, wsURL } from './frames.js';
import { renderChartAttrs, renderConnState, renderFeed, renderOffenders, renderTotals } from './render.js';

/**
 * Start the dashboard in `doc`.
 * deps: { href, WebSocket, fetch, setTimeout, clearTimeout, createChart(container) }
 * Returns { state(), stop() }.
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

  const chart = deps.createChart ? deps.createChart(chartEl) : null;
  const rowCache = new Map();
  let state = initialState();

  function renderEvents() {
    renderFeed(feedBody, state.events, rowCache, feedEmpty);
  }

  function render() {
    renderTotals(doc, state.totals, state.costSaved);
    renderChartAttrs(chartEl, state.series);
    if (chart) chart.update(state.series, state.ts);
    renderOffenders(offendersBody, state.offenders, offendersEmpty);
    renderEvents();
    if (lastUpdate && Number.isFinite(state.ts)) {
      const d = new Date(state.ts * 1000);
      lastUpdate.textContent = `updated ${d.toLocaleTimeString('en-GB', { hour12: false })}`;
      lastUpdate.dateTime = d.toISOString();
    }
  }

  render();

  // Pre-fill the feed with the most recent events.
  const fetchFn = deps.fetch ?? globalThis.fetch?.bind(globalThis);
  if (fetchFn) {
    new Promise((resolve) => resolve(fetchFn('api/events?limit=50', { headers: { Accept: 'application/json' } })))
      .then((res) => {
        if (!res.ok) throw new Error(`HTTP ${res.status}`);
        return res.json();
      })
      .then((body) => {
        state = { ...state, events: mergeEvents(state.events, eventsFromAPI(body)) };
        renderEvents();
        if (feedNote) feedNote.textContent = '';
      })
      .catch((err) => {
        if (feedNote) feedNote.textContent = `Recent events unavailable (${err.message ?? err})`;
      });
  }

  const conn = connect(
    wsURL(href),
    {
      onState: (s, info) => renderConnState(badge, detail, s, info),
      onMessage: (data, first) => {
        const frame = parseFrame(data);
        if (!frame) return;
        state = applyFrame(state, frame, first);
        render();
      },
    },
    { WebSocket: deps.WebSocket, setTimeout: deps.setTimeout, clearTimeout: deps.clearTimeout },
  );

  return {
    state: () => state,
    stop() {
      conn.close();
      if (chart && chart.destroy) chart.destroy();
    },
  };
}
