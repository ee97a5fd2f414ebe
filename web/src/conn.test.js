import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { connect } from './conn.js';
import { fakeWebSocketClass } from './testutil.js';

describe('connect', () => {
  let FakeWebSocket, sockets, states, messages, conn;

  beforeEach(() => {
    vi.useFakeTimers();
    ({ FakeWebSocket, sockets } = fakeWebSocketClass());
    states = [];
    messages = [];
  });
  afterEach(() => {
    conn?.close();
    vi.useRealTimers();
  });

  const start = () => {
    conn = connect(
      'ws://h/ws',
      {
        onState: (s, info) => states.push([s, info.delayMs]),
        onMessage: (data, first) => messages.push([JSON.parse(data), first]),
      },
      { WebSocket: FakeWebSocket, setTimeout, clearTimeout },
    );
  };

  it('connects, reports state and flags the first message after each connect', () => {
    start();
    expect(sockets).toHaveLength(1);
    expect(sockets[0].url).toBe('ws://h/ws');
    expect(states).toEqual([['connecting', undefined]]);
    sockets[0].serverOpen();
    expect(states.at(-1)).toEqual(['connected', undefined]);
    sockets[0].serverSend({ n: 1 });
    sockets[0].serverSend({ n: 2 });
    expect(messages).toEqual([
      [{ n: 1 }, true],
      [{ n: 2 }, false],
    ]);
  });

  it('reconnects with exponential backoff capped at 15 s', () => {
    start();
    const delays = [];
    for (let i = 0; i < 7; i++) {
      sockets.at(-1).serverFail();
      const [state, delay] = states.at(-1);
      expect(state).toBe('reconnecting');
      delays.push(delay);
      // nothing happens before the delay has passed
      vi.advanceTimersByTime(delay - 1);
      expect(sockets).toHaveLength(i + 1);
      vi.advanceTimersByTime(1);
      expect(sockets).toHaveLength(i + 2);
    }
    expect(delays).toEqual([1000, 2000, 4000, 8000, 15000, 15000, 15000]);
  });

  it('resets the backoff after a successful connect', () => {
    start();
    sockets[0].serverFail();
    vi.advanceTimersByTime(1000);
    sockets[1].serverFail();
    vi.advanceTimersByTime(2000);
    sockets[2].serverOpen();
    sockets[2].serverSend({ n: 1 });
    sockets[2].serverFail();
    expect(states.at(-1)).toEqual(['reconnecting', 1000]);
    vi.advanceTimersByTime(1000);
    sockets[3].serverOpen();
    sockets[3].serverSend({ n: 2 });
    // the first message on the new connection is flagged again
    expect(messages).toEqual([
      [{ n: 1 }, true],
      [{ n: 2 }, true],
    ]);
  });

  it('schedules one retry when both error and close fire', () => {
    start();
    sockets[0].serverFail(); // fires onerror then onclose
    expect(states.filter(([s]) => s === 'reconnecting')).toHaveLength(1);
    vi.advanceTimersByTime(60_000);
    expect(sockets).toHaveLength(2);
  });

  it('retries when the WebSocket constructor throws', () => {
    let calls = 0;
    class Throwing {
      constructor() {
        calls++;
        throw new Error('bad url');
      }
    }
    conn = connect('ws://h/ws', { onState: (s, i) => states.push([s, i.delayMs]) }, { WebSocket: Throwing, setTimeout, clearTimeout });
    expect(states.at(-1)).toEqual(['reconnecting', 1000]);
    vi.advanceTimersByTime(1000);
    expect(calls).toBe(2);
    expect(states.at(-1)).toEqual(['reconnecting', 2000]);
  });

  it('stops for good on close()', () => {
    start();
    sockets[0].serverFail();
    conn.close();
    vi.advanceTimersByTime(60_000);
    expect(sockets).toHaveLength(1);
  });
});
