// Package hub fans messages out to websocket clients. Broadcast never blocks:
// each client has a small buffer and a client that falls behind is dropped,
// so one slow browser cannot stall the others. A message is encoded once by
// the caller and the same bytes go to every client. Each client's writer
// pings, sets write deadlines, and closes cleanly when the hub is closed.
package hub

import (
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// Timing of the websocket conversation.
const (
	writeWait  = 5 * time.Second
	pongWait   = 60 * time.Second
	pingPeriod = pongWait * 9 / 10
	sendBuffer = 16
)

// Hub is a set of clients.
type Hub struct {
	log *slog.Logger

	mu      sync.Mutex
	clients map[*client]struct{}
	closed  bool
	dropped int64
}

type client struct {
	conn *websocket.Conn
	send chan []byte
}

// New returns an empty hub.
func New(log *slog.Logger) *Hub {
	return &Hub{log: log, clients: map[*client]struct{}{}}
}

// ErrClosed is returned by Join after Close.
var ErrClosed = errors.New("hub: closed")

// Join adds conn and sends first as its first message. It starts the
// client's reader and writer and returns at once; the hub owns conn from now
// on.
func (h *Hub) Join(conn *websocket.Conn, first []byte) error {
	c := &client{conn: conn, send: make(chan []byte, sendBuffer)}
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		_ = conn.Close()
		return ErrClosed
	}
	if first != nil {
		c.send <- first // the buffer is empty: never blocks
	}
	h.clients[c] = struct{}{}
	h.mu.Unlock()
	go h.write(c)
	go h.read(c)
	return nil
}

// Broadcast queues msg for every client and drops those whose buffer is full.
func (h *Hub) Broadcast(msg []byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for c := range h.clients {
		select {
		case c.send <- msg:
		default:
			h.drop(c)
		}
	}
}

// Len is the number of connected clients.
func (h *Hub) Len() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.clients)
}

// Dropped is the number of clients dropped for being too slow.
func (h *Hub) Dropped() int64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.dropped
}

// drop removes c; its writer sees the closed channel and hangs up. The
// caller holds h.mu.
func (h *Hub) drop(c *client) {
	if _, ok := h.clients[c]; !ok {
		return
	}
	delete(h.clients, c)
	close(c.send)
	h.dropped++
	h.log.Info("websocket client dropped", "remote", c.conn.RemoteAddr().String())
}

// leave removes a client that went away by itself.
func (h *Hub) leave(c *client) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.clients[c]; ok {
		delete(h.clients, c)
		close(c.send)
	}
}

// Close hangs up on every client and refuses new ones.
func (h *Hub) Close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	for c := range h.clients {
		delete(h.clients, c)
		close(c.send)
	}
}

func (h *Hub) write(c *client) {
	ping := time.NewTicker(pingPeriod)
	defer func() {
		ping.Stop()
		_ = c.conn.Close()
	}()
	for {
		select {
		case msg, ok := <-c.send:
			_ = c.conn.SetWriteDeadline(time.Now().Add(writeWait))
			if !ok {
				_ = c.conn.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseGoingAway, ""))
				return
			}
			if err := c.conn.WriteMessage(websocket.TextMessage, msg); err != nil {
				h.leave(c)
				return
			}
		case <-ping.C:
			_ = c.conn.SetWriteDeadline(time.Now().Add(writeWait))
			if err := c.conn.WriteMessage(websocket.PingMessage, nil); err != nil {
				h.leave(c)
				return
			}
		}
	}
}

// read discards what the browser sends and notices when it goes away.
func (h *Hub) read(c *client) {
	c.conn.SetReadLimit(1024)
	_ = c.conn.SetReadDeadline(time.Now().Add(pongWait))
	c.conn.SetPongHandler(func(string) error { return c.conn.SetReadDeadline(time.Now().Add(pongWait)) })
	for {
		if _, _, err := c.conn.ReadMessage(); err != nil {
			h.leave(c)
			_ = c.conn.Close()
			return
		}
	}
}
