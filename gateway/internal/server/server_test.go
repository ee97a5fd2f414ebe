package server_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulwarkgw/bulwark/gateway/internal/bans"
	"github.com/bulwarkgw/bulwark/gateway/internal/config"
	"github.com/bulwarkgw/bulwark/gateway/internal/server"
	"github.com/bulwarkgw/bulwark/gateway/internal/stats"
	"github.com/bulwarkgw/bulwark/gateway/internal/testenv"
	"github.com/bulwarkgw/bulwark/gateway/internal/traffic"
	"github.com/bulwarkgw/bulwark/shared/wire"
)

// scoreFunc is a test double for the scorer: a plain function.
type scoreFunc func(wire.ScoreRequest) (wire.ScoreResponse, error)

func (f scoreFunc) Score(_ context.Context, r wire.ScoreRequest) (wire.ScoreResponse, error) {
	return f(r)
}

// byBurst scores 1.0 from the 5th request in a second, 0.6 at the 4th.
func byBurst(r wire.ScoreRequest) (wire.ScoreResponse, error) {
	s := 0.0
	switch {
	case r.Count1s >= 5:
		s = 1
	case r.Count1s == 4:
		s = 0.6
	}
	return wire.ScoreResponse{Score: s, Reasons: []wire.Reason{{Feature: "burst", Value: float64(r.Count1s), Contribution: s}}}, nil
}

type recorder struct {
	mu     sync.Mutex
	events []wire.Event
}

func (r *recorder) Publish(ev wire.Event) {
	r.mu.Lock()
	r.events = append(r.events, ev)
	r.mu.Unlock()
}
func (r *recorder) all() []wire.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]wire.Event(nil), r.events...)
}

type nopStats struct{}

func (nopStats) Request(time.Time, stats.Decision) {}
func (nopStats) Ban(time.Time)                     {}

type fixture struct {
	h        http.Handler
	events   *recorder
	hits     func() int
	lastXFF  func() string
	redis    redis.UniversalClient
	prefix   string
	upstream *url.URL
}

// newGateway is the whole chain in front of upstream, on a real traffic
// store and ban store under prefix, with the given scorer; mutate may
// adjust the config first.
func newGateway(t *testing.T, upstream string, mutate func(*config.Config), scorer server.Scorer, rdb redis.UniversalClient, prefix string) (*server.Gateway, *recorder) {
	t.Helper()
	cfg, err := config.Parse([]byte("routes: [{path: /, upstream: "+upstream+"}]\ntrusted_proxies: [127.0.0.2]\nban_ttl: 1m\n"), func(string) string { return "" })
	require.NoError(t, err)
	cfg.Redis.Prefix = prefix
	if mutate != nil {
		mutate(cfg)
	}
	store, err := traffic.New(rdb, prefix)
	require.NoError(t, err)
	banStore, err := bans.New(rdb, prefix)
	require.NoError(t, err)
	rec := &recorder{}
	g, err := server.New(cfg, server.Deps{Traffic: store, Bans: banStore, Scorer: scorer, Events: rec, Stats: nopStats{}, Log: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	return g, rec
}

func newFixture(t *testing.T, mutate func(*config.Config), scorer server.Scorer, rdb redis.UniversalClient, prefix string) *fixture {
	t.Helper()
	var mu sync.Mutex
	hits, xff := 0, ""
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		hits++
		xff = r.Header.Get("X-Forwarded-For")
		mu.Unlock()
		_, _ = io.WriteString(w, "upstream:"+r.Header.Get("X-Request-ID"))
	}))
	t.Cleanup(up.Close)
	u, _ := url.Parse(up.URL)
	e, rec := newGateway(t, up.URL, mutate, scorer, rdb, prefix)
	return &fixture{h: e, events: rec, redis: rdb, prefix: prefix, upstream: u,
		hits:    func() int { mu.Lock(); defer mu.Unlock(); return hits },
		lastXFF: func() string { mu.Lock(); defer mu.Unlock(); return xff },
	}
}

func (f *fixture) get(peer, path string, hdr ...string) *httptest.ResponseRecorder {
	r := httptest.NewRequest("GET", path, nil)
	r.RemoteAddr = peer
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Set(hdr[i], hdr[i+1])
	}
	w := httptest.NewRecorder()
	f.h.ServeHTTP(w, r)
	return w
}

func TestBlockBanAndThrottle(t *testing.T) {
	t.Parallel()
	rdb, prefix := testenv.Redis(t)
	f := newFixture(t, nil, scoreFunc(byBurst), rdb, prefix)
	peer := "127.0.0.9:4000"

	for i := range 3 {
		w := f.get(peer, "/shop")
		require.Equal(t, http.StatusOK, w.Code, "request %d", i+1)
		assert.NotEmpty(t, w.Header().Get("X-Request-ID"))
		assert.Equal(t, "upstream:"+w.Header().Get("X-Request-ID"), w.Body.String(), "the request id reaches the upstream")
	}
	w := f.get(peer, "/shop")
	assert.Equal(t, http.StatusTooManyRequests, w.Code)
	assert.Equal(t, "1", w.Header().Get("Retry-After"))
	assert.JSONEq(t, `{"error":"Too many requests, slow down","request_id":"`+w.Header().Get("X-Request-ID")+`"}`, w.Body.String())

	w = f.get(peer, "/shop")
	assert.Equal(t, http.StatusForbidden, w.Code)
	assert.Contains(t, w.Body.String(), "Suspicious behavior detected. Connection dropped.")
	assert.Equal(t, 3, f.hits())

	// The ban now stops the client before scoring; health is never protected.
	w = f.get(peer, "/shop")
	assert.Equal(t, http.StatusForbidden, w.Code)
	assert.Contains(t, w.Body.String(), "Client banned")
	retry := w.Header().Get("Retry-After")
	assert.NotEmpty(t, retry)
	assert.Equal(t, http.StatusOK, f.get(peer, "/healthz").Code)
	assert.Equal(t, 3, f.hits())

	// Another client is unaffected.
	assert.Equal(t, http.StatusOK, f.get("127.0.0.10:1", "/shop").Code)

	evs := f.events.all()
	require.Len(t, evs, 2)
	assert.Equal(t, wire.EventThrottle, evs[0].Type)
	ban := evs[1]
	assert.Equal(t, wire.EventBan, ban.Type)
	assert.Equal(t, "127.0.0.9", ban.IP)
	assert.Equal(t, 1.0, ban.Score)
	assert.Equal(t, http.StatusForbidden, ban.Status)
	assert.Equal(t, "/shop", ban.Path)
	require.NotEmpty(t, ban.Reasons)
	assert.Equal(t, "burst", ban.Reasons[0].Feature)
	assert.NotEmpty(t, ban.ID)
	assert.NotEmpty(t, ban.RequestID)
}

func TestSpoofedForwardedForIsCountedUnderThePeer(t *testing.T) {
	t.Parallel()
	rdb, prefix := testenv.Redis(t)
	var seen []string
	var mu sync.Mutex
	scorer := scoreFunc(func(r wire.ScoreRequest) (wire.ScoreResponse, error) {
		mu.Lock()
		seen = append(seen, r.IP)
		mu.Unlock()
		return byBurst(r)
	})
	f := newFixture(t, nil, scorer, rdb, prefix)

	// An untrusted peer rotating X-Forwarded-For is still one client.
	codes := []int{}
	for i := range 5 {
		codes = append(codes, f.get("127.0.0.7:1", "/", "X-Forwarded-For", "198.51.100."+string(rune('1'+i))).Code)
	}
	assert.Equal(t, []int{200, 200, 200, 429, 403}, codes)
	assert.Equal(t, []string{"127.0.0.7", "127.0.0.7", "127.0.0.7", "127.0.0.7", "127.0.0.7"}, seen)
	assert.Equal(t, "127.0.0.7", f.lastXFF(), "the upstream sees the peer, not the spoofed header")

	// The trusted proxy's X-Forwarded-For is believed.
	assert.Equal(t, http.StatusOK, f.get("127.0.0.2:1", "/", "X-Forwarded-For", "203.0.113.50").Code)
	assert.Equal(t, "203.0.113.50", seen[len(seen)-1])
	assert.Equal(t, "203.0.113.50, 127.0.0.2", f.lastXFF(), "the trusted chain, with the proxy appended")
}

func TestShadowModeRecordsButPasses(t *testing.T) {
	t.Parallel()
	rdb, prefix := testenv.Redis(t)
	always := scoreFunc(func(wire.ScoreRequest) (wire.ScoreResponse, error) { return wire.ScoreResponse{Score: 0.99}, nil })
	f := newFixture(t, func(c *config.Config) { c.Shadow = true }, always, rdb, prefix)
	for range 3 {
		assert.Equal(t, http.StatusOK, f.get("127.0.0.11:1", "/").Code)
	}
	evs := f.events.all()
	require.Len(t, evs, 3)
	for _, ev := range evs {
		assert.Equal(t, wire.EventShadowBlock, ev.Type)
		assert.True(t, ev.Shadow)
	}
	n, err := rdb.Exists(context.Background(), prefix+"{127.0.0.11}:ban").Result()
	require.NoError(t, err)
	assert.Zero(t, n, "shadow mode never bans")
}

func TestScorerDown(t *testing.T) {
	t.Parallel()
	rdb, prefix := testenv.Redis(t)
	down := scoreFunc(func(wire.ScoreRequest) (wire.ScoreResponse, error) {
		return wire.ScoreResponse{}, errors.New("connection refused")
	})

	open := newFixture(t, nil, down, rdb, prefix+"open:")
	assert.Equal(t, http.StatusOK, open.get("127.0.0.12:1", "/").Code)

	closed := newFixture(t, func(c *config.Config) { c.Scorer.FailMode = config.FailClosed }, down, rdb, prefix+"closed:")
	w := closed.get("127.0.0.12:1", "/")
	assert.Equal(t, http.StatusServiceUnavailable, w.Code)
	assert.Zero(t, closed.hits())
}

func TestRedisDown(t *testing.T) {
	t.Parallel()
	// A Redis client pointed at a port where nothing listens.
	ln := httptest.NewServer(http.NotFoundHandler())
	addr := ln.Listener.Addr().String()
	ln.Close()
	dead := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: 100 * time.Millisecond})
	t.Cleanup(func() { dead.Close() })

	open := newFixture(t, nil, scoreFunc(byBurst), dead, "bw:")
	for range 6 {
		assert.Equal(t, http.StatusOK, open.get("127.0.0.13:1", "/").Code, "fail open forwards")
	}
	closed := newFixture(t, func(c *config.Config) { c.Redis.FailMode = config.FailClosed }, scoreFunc(byBurst), dead, "bw:")
	assert.Equal(t, http.StatusServiceUnavailable, closed.get("127.0.0.13:1", "/").Code)
	assert.Zero(t, closed.hits())
}

func TestUnknownRouteIs404(t *testing.T) {
	t.Parallel()
	rdb, prefix := testenv.Redis(t)
	f := newFixture(t, nil, scoreFunc(byBurst), rdb, prefix)
	_ = netip.Addr{}
	w := f.get("127.0.0.14:1", "/anything/at/all?x=1")
	assert.Equal(t, http.StatusOK, w.Code, "the catch-all route takes every path")
}

func TestRequestIDsAreUniqueAndValid(t *testing.T) {
	seen := map[string]bool{}
	for range 10000 {
		id := server.NewRequestID()
		require.True(t, server.ValidID(id), id)
		require.False(t, seen[id], "duplicate %s", id)
		seen[id] = true
	}
}
