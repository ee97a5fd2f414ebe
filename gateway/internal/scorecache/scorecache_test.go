package scorecache_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulwarkgw/bulwark/gateway/internal/scorecache"
	"github.com/bulwarkgw/bulwark/shared/wire"
)

// counting is a Scorer double that scores Count1s/100 and counts calls.
type counting struct {
	mu    sync.Mutex
	calls int
	err   error
}

func (c *counting) Score(_ context.Context, r wire.ScoreRequest) (wire.ScoreResponse, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls++
	if c.err != nil {
		return wire.ScoreResponse{}, c.err
	}
	return wire.ScoreResponse{Score: float64(r.Count1s) / 100}, nil
}

func (c *counting) n() int { c.mu.Lock(); defer c.mu.Unlock(); return c.calls }

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func TestCacheReusesUntilCountsMoveOrTTL(t *testing.T) {
	inner := &counting{}
	clk := &clock{t: time.Unix(1_800_000_000, 0)}
	c, err := scorecache.New(inner, time.Second, 0.2, clk.now)
	require.NoError(t, err)
	ctx := context.Background()
	req := wire.ScoreRequest{IP: "203.0.113.1", Count1s: 50, Count10s: 200, Count60s: 400, UserAgent: "ua"}

	r, err := c.Score(ctx, req)
	require.NoError(t, err)
	assert.Equal(t, 0.5, r.Score)

	// A busy client whose counts hold steady is scored once per TTL.
	for i := range 20 {
		clk.t = clk.t.Add(10 * time.Millisecond)
		req.Count60s = 400 + int64(i) // within 20 %
		_, err = c.Score(ctx, req)
		require.NoError(t, err)
	}
	assert.Equal(t, 1, inner.n())

	// A count that moves by more than the tolerance is scored at once.
	req.Count1s = 61
	r, err = c.Score(ctx, req)
	require.NoError(t, err)
	assert.Equal(t, 0.61, r.Score)
	assert.Equal(t, 2, inner.n())

	// So is a new auth failure, from none, and a change of user agent.
	req.AuthFailures = 1
	_, _ = c.Score(ctx, req)
	req.UserAgent = "other"
	_, _ = c.Score(ctx, req)
	assert.Equal(t, 4, inner.n())

	// So is the first probe, and a page's assets piling up.
	req.Probe, req.Probes = true, 1
	_, _ = c.Score(ctx, req)
	req.Probe = false
	_, _ = c.Score(ctx, req)
	req.Asset, req.Assets10s = true, 150
	_, _ = c.Score(ctx, req)
	assert.Equal(t, 7, inner.n())

	// And everything once the TTL has passed.
	clk.t = clk.t.Add(time.Second)
	_, _ = c.Score(ctx, req)
	assert.Equal(t, 8, inner.n())

	// Clients are cached apart.
	other := req
	other.IP = "203.0.113.2"
	_, _ = c.Score(ctx, other)
	assert.Equal(t, 9, inner.n())
	assert.Equal(t, 2, c.Len())
}

func TestCacheDoesNotKeepErrors(t *testing.T) {
	inner := &counting{err: errors.New("down")}
	c, err := scorecache.New(inner, time.Minute, 0.2, nil)
	require.NoError(t, err)
	req := wire.ScoreRequest{IP: "203.0.113.1"}
	for range 3 {
		_, err := c.Score(context.Background(), req)
		require.Error(t, err)
	}
	assert.Equal(t, 3, inner.n())
	assert.Zero(t, c.Len())
}

func TestCacheDisabled(t *testing.T) {
	inner := &counting{}
	c, err := scorecache.New(inner, 0, 0.2, nil)
	require.NoError(t, err)
	for range 3 {
		_, _ = c.Score(context.Background(), wire.ScoreRequest{IP: "203.0.113.1"})
	}
	assert.Equal(t, 3, inner.n())
}

func TestCacheIsBounded(t *testing.T) {
	inner := &counting{}
	c, err := scorecache.New(inner, time.Minute, 0.2, nil)
	require.NoError(t, err)
	for i := range 100_000 {
		_, _ = c.Score(context.Background(), wire.ScoreRequest{IP: fmt.Sprintf("10.%d.%d.%d", i>>16, (i>>8)&255, i&255)})
	}
	assert.LessOrEqual(t, c.Len(), 64*1024)
}

func TestNewRejectsBadArguments(t *testing.T) {
	_, err := scorecache.New(nil, time.Second, 0.2, nil)
	assert.Error(t, err)
	_, err = scorecache.New(&counting{}, -time.Second, 0.2, nil)
	assert.Error(t, err)
	_, err = scorecache.New(&counting{}, time.Second, 2, nil)
	assert.Error(t, err)
}

// TestAllowVerdictOutlivesAScorerFailure: a verified crawler stays verified
// while the scorer is down, for the same user agent only.
func TestAllowVerdictOutlivesAScorerFailure(t *testing.T) {
	calls := 0
	var fail bool
	inner := scoreFn(func(r wire.ScoreRequest) (wire.ScoreResponse, error) {
		calls++
		if fail {
			return wire.ScoreResponse{}, errors.New("timeout")
		}
		return wire.ScoreResponse{Score: 0, Level: "allow", Allow: "googlebot"}, nil
	})
	clk := &clock{t: time.Unix(1_800_000_000, 0)}
	c, err := scorecache.New(inner, time.Second, 0.2, clk.now)
	require.NoError(t, err)
	req := wire.ScoreRequest{IP: "66.249.66.1", Count1s: 1, UserAgent: "Googlebot/2.1"}
	_, err = c.Score(context.Background(), req)
	require.NoError(t, err)

	fail = true
	clk.t = clk.t.Add(5 * time.Minute)
	req.Count1s = 9
	r, err := c.Score(context.Background(), req)
	require.NoError(t, err)
	assert.Equal(t, "googlebot", r.Allow)
	assert.Equal(t, 2, calls, "the scorer was asked first")

	req.UserAgent = "curl/8"
	_, err = c.Score(context.Background(), req)
	assert.Error(t, err, "another user agent is not the verified crawler")

	req.UserAgent = "Googlebot/2.1"
	clk.t = clk.t.Add(scorecache.AllowGrace)
	_, err = c.Score(context.Background(), req)
	assert.Error(t, err, "not forever")
}

type scoreFn func(wire.ScoreRequest) (wire.ScoreResponse, error)

func (f scoreFn) Score(_ context.Context, r wire.ScoreRequest) (wire.ScoreResponse, error) {
	return f(r)
}

// Principals behind one address are cached apart, and apart from the
// address's anonymous clients.
func TestCacheKeepsPrincipalsApart(t *testing.T) {
	next := &counting{}
	clk := &clock{t: time.Unix(1000, 0)}
	c, err := scorecache.New(next, time.Second, 0.2, clk.now)
	require.NoError(t, err)
	ctx := context.Background()
	anon := wire.ScoreRequest{IP: "192.0.2.1", Count1s: 90}
	a := wire.ScoreRequest{IP: "192.0.2.1", Count1s: 1, Principal: "key:000000000001"}
	b := wire.ScoreRequest{IP: "192.0.2.1", Count1s: 2, Principal: "key:000000000002"}
	for _, r := range []wire.ScoreRequest{anon, a, b} {
		_, err := c.Score(ctx, r)
		require.NoError(t, err)
	}
	assert.Equal(t, 3, next.n(), "three clients, three scores")
	got, err := c.Score(ctx, a)
	require.NoError(t, err)
	assert.Equal(t, 0.01, got.Score, "a's own score, not the address's")
	assert.Equal(t, 3, next.n(), "a's cached")
	a.IP = "198.51.100.7" // the principal moved: scored again
	_, err = c.Score(ctx, a)
	require.NoError(t, err)
	assert.Equal(t, 4, next.n())
}
