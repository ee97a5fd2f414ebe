// Test helpers (imported only by *.test.js; not part of the bundle).

/** A fake WebSocket class whose instances the test opens, feeds and closes by hand. */
export function fakeWebSocketClass() {
  const sockets = [];
  class FakeWebSocket {
    constructor(url) {
      this.url = url;
      this.closed = false;
      this.onopen = null;
      this.onmessage = null;
      this.onerror = null;
      this.onclose = null;
      sockets.push(this);
    }
    close() {
      this.closed = true;
    }
    // test controls
    serverOpen() {
      this.onopen?.({});
    }
    serverSend(obj) {
      this.onmessage?.({ data: typeof obj === 'string' ? obj : JSON.stringify(obj) });
    }
    serverFail() {
      this.onerror?.({});
      this.onclose?.({ code: 1006 });
    }
  }
  return { FakeWebSocket, sockets };
}
