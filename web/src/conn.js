// A websocket that reconnects with exponential backoff (1 s, 2 s, 4 s, … max 15 s).
// The WebSocket constructor and timers are injectable so conn.test.js can drive it.

import { backoffDelay } from './frames.js';

/**
 * Connect to `url` and keep reconnecting.
 * Callbacks:
 *   onState(state, info)   state is "connecting" | "connected" | "reconnecting";
 *                          info.delayMs is the wait before the next attempt when reconnecting
 *   onMessage(data, first) data is the message payload; first is true for the first
 *                          message after each successful (re)connect
 * Returns { close() } to stop for good.
 */
export function connect(url, { onState = () => {}, onMessage = () => {} } = {}, deps = {}) {
  const WS = deps.WebSocket ?? globalThis.WebSocket;
  const setT = deps.setTimeout ?? globalThis.setTimeout.bind(globalThis);
  const clearT = deps.clearTimeout ?? globalThis.clearTimeout.bind(globalThis);

  let attempt = 0; // consecutive failures since the last successful open
  let ws = null;
  let timer = null;
  let stopped = false;

  function retry() {
    if (stopped || timer !== null) return;
    const delayMs = backoffDelay(attempt);
    attempt++;
    onState('reconnecting', { delayMs });
    timer = setT(() => {
      timer = null;
      open();
    }, delayMs);
  }

  function open() {
    if (stopped) return;
    let sock;
    try {
      sock = new WS(url);
    } catch {
      retry();
      return;
    }
    ws = sock;
    let first = true;
    let failed = false;
    const fail = () => {
      if (failed || ws !== sock) return;
      failed = true;
      ws = null;
      try {
        sock.close();
      } catch {
        /* already closed */
      }
      retry();
    };
    sock.onopen = () => {
      if (ws !== sock) return;
      attempt = 0;
      onState('connected', {});
    };
    sock.onmessage = (ev) => {
      if (ws !== sock) return;
      const isFirst = first;
      first = false;
      onMessage(ev.data, isFirst);
    };
    sock.onerror = fail;
    sock.onclose = fail;
  }

  onState('connecting', {});
  open();

  return {
    close() {
      stopped = true;
      if (timer !== null) clearT(timer);
      timer = null;
      const s = ws;
      ws = null;
      if (s) s.close();
    },
  };
}
