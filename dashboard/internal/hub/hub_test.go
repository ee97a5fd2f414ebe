package hub_test

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulwarkgw/bulwark/dashboard/internal/hub"
)

func serve(t *testing.T, h *hub.Hub) string {
	up := websocket.Upgrader{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		_ = h.Join(conn, []byte("hello"))
	}))
	t.Cleanup(srv.Close)
	return "ws" + strings.TrimPrefix(srv.URL, "http")
}

func dial(t *testing.T, url string) *websocket.Conn {
	c, _, err := websocket.DefaultDialer.Dial(url, nil)
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	return c
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 5s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestBroadcastReachesEveryClient(t *testing.T) {
	h := hub.New(slog.New(slog.DiscardHandler))
	url := serve(t, h)
	a, b := dial(t, url), dial(t, url)
	waitFor(t, func() bool { return h.Len() == 2 })
	h.Broadcast([]byte("frame-1"))
	for _, c := range []*websocket.Conn{a, b} {
		_, first, err := c.ReadMessage()
		require.NoError(t, err)
		assert.Equal(t, "hello", string(first), "the join message comes first")
		_, msg, err := c.ReadMessage()
		require.NoError(t, err)
		assert.Equal(t, "frame-1", string(msg))
	}
}

func TestSlowClientIsDroppedOthersUnaffected(t *testing.T) {
	h := hub.New(slog.New(slog.DiscardHandler))
	url := serve(t, h)
	slow := dial(t, url) // never reads
	fast := dial(t, url)
	waitFor(t, func() bool { return h.Len() == 2 })

	// Big messages fill the slow client's socket buffers, then its queue.
	big := []byte(strings.Repeat("x", 256<<10))
	got := make(chan int, 1)
	go func() {
		n := 0
		for {
			if _, _, err := fast.ReadMessage(); err != nil {
				got <- n
				return
			}
			n++
		}
	}()

	for range 400 {
		h.Broadcast(big) // must never block: a blocking send would hang the test
	}
	waitFor(t, func() bool { return h.Dropped() >= 1 })
	_ = slow
	h.Close()
	n := <-got
	assert.Greater(t, n, 1, "the fast client kept receiving")
}

func TestCloseHangsUpAndRefusesNewClients(t *testing.T) {
	h := hub.New(slog.New(slog.DiscardHandler))
	url := serve(t, h)
	c := dial(t, url)
	waitFor(t, func() bool { return h.Len() == 1 })
	h.Close()
	_, _, err := c.ReadMessage() // "hello"
	require.NoError(t, err)
	_, _, err = c.ReadMessage()
	assert.True(t, websocket.IsCloseError(err, websocket.CloseGoingAway), "got %v", err)
	assert.Equal(t, 0, h.Len())

	c2, _, err := websocket.DefaultDialer.Dial(url, nil)
	if err == nil {
		_, _, err = c2.ReadMessage()
		assert.Error(t, err)
		c2.Close()
	}
}

func TestClientLeavingIsRemoved(t *testing.T) {
	h := hub.New(slog.New(slog.DiscardHandler))
	url := serve(t, h)
	c := dial(t, url)
	waitFor(t, func() bool { return h.Len() == 1 })
	c.Close()
	waitFor(t, func() bool { return h.Len() == 0 })
	assert.Zero(t, h.Dropped())
}
