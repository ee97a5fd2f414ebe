package server_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulwarkgw/bulwark/gateway/internal/config"
	"github.com/bulwarkgw/bulwark/gateway/internal/redisbreaker"
	"github.com/bulwarkgw/bulwark/gateway/internal/server"
	"github.com/bulwarkgw/bulwark/gateway/internal/traffic"
	"github.com/bulwarkgw/bulwark/shared/wire"
)

// redisDown is a traffic store and a ban store behind an open breaker.
type redisDown struct{}

func (redisDown) Observe(context.Context, netip.Addr, time.Time, traffic.Request) (traffic.Observation, error) {
	return traffic.Observation{}, redisbreaker.ErrOpen
}

func (redisDown) RecordResponse(context.Context, netip.Addr, time.Time, int) error {
	return redisbreaker.ErrOpen
}

func (redisDown) Ban(context.Context, netip.Addr, time.Duration, string, time.Time) error {
	return redisbreaker.ErrOpen
}

func (redisDown) Left(context.Context, netip.Addr) (time.Duration, error) {
	return 0, redisbreaker.ErrOpen
}

// With Redis unreachable the chain runs on the in-memory store: upstream
// 4xx answers are counted there (the gateway's own refusals are not), the
// score sees them, and the ban it makes is held and enforced locally.
func TestFallbackCountsScoresAndBans(t *testing.T) {
	t.Parallel()
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNotFound)
	}))
	t.Cleanup(up.Close)
	cfg, err := config.Parse([]byte("routes: [{path: /, upstream: "+up.URL+"}]\nban_ttl: 1m\n"), func(string) string { return "" })
	require.NoError(t, err)
	mem, err := traffic.NewMemory(100)
	require.NoError(t, err)
	var seen []wire.ScoreRequest
	// 0.6 (throttle) for the 4th request, after 3 4xx; 1.0 (block) from
	// the 4th 4xx: the 429 must not count as one.
	scorer := scoreFunc(func(r wire.ScoreRequest) (wire.ScoreResponse, error) {
		seen = append(seen, r)
		switch {
		case r.Errors4xx >= 4:
			return wire.ScoreResponse{Score: 1}, nil
		case r.Errors4xx == 3 && r.Count60s == 4:
			return wire.ScoreResponse{Score: 0.6}, nil
		}
		return wire.ScoreResponse{}, nil
	})
	now := time.Unix(1_800_000_000, 0)
	g, err := server.New(cfg, server.Deps{Traffic: redisDown{}, Bans: redisDown{}, Fallback: mem, Scorer: scorer,
		Events: &recorder{}, Stats: nopStats{}, Log: slog.New(slog.DiscardHandler),
		Now: func() time.Time { now = now.Add(100 * time.Millisecond); return now }})
	require.NoError(t, err)
	get := func() int {
		req := httptest.NewRequest(http.MethodGet, "/x", nil)
		req.RemoteAddr = "192.0.2.9:1234"
		w := httptest.NewRecorder()
		g.ServeHTTP(w, req)
		_, _ = io.Copy(io.Discard, w.Body)
		return w.Code
	}
	var got []int
	for range 7 {
		got = append(got, get())
	}
	assert.Equal(t, []int{404, 404, 404, 429, 404, 403, 403}, got)
	require.Len(t, seen, 6, "the banned client is not scored again")
	for i, r := range seen {
		assert.EqualValues(t, i+1, r.Count60s, "counted in memory, request %d", i)
	}
	assert.EqualValues(t, 3, seen[4].Errors4xx, "three 404s before the fifth; the 429 is the gateway's")
	assert.EqualValues(t, 4, seen[5].Errors4xx, "the fifth's 404 is the client's")
	left, banned := mem.Banned(netip.MustParseAddr("192.0.2.9"), now)
	assert.True(t, banned, "held for Redis")
	assert.Greater(t, left, 50*time.Second)
}
