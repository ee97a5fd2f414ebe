package ratelimit_test

import (
	"context"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulwarkgw/bulwark/gateway/internal/ratelimit"
	"github.com/bulwarkgw/bulwark/gateway/internal/testenv"
)

func newLimiter(t *testing.T) (*ratelimit.Limiter, redis.UniversalClient, string) {
	t.Helper()
	rdb, prefix := testenv.Redis(t)
	l, err := ratelimit.New(rdb, prefix)
	require.NoError(t, err)
	return l, rdb, prefix
}

func TestNewRejectsBadArguments(t *testing.T) {
	t.Parallel()
	_, err := ratelimit.New(nil, "p:")
	assert.Error(t, err)
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	t.Cleanup(func() { _ = rdb.Close() })
	_, err = ratelimit.New(rdb, "")
	assert.Error(t, err)
}

// TestSlidingLogS16 replays seed 001 scenario S16: 5 requests per 60 s.
func TestSlidingLogS16(t *testing.T) {
	t.Parallel()
	l, _, _ := newLimiter(t)
	ctx := context.Background()
	t0 := time.Unix(1_800_000_000, 0)
	const key = "ip:{203.0.113.7}"
	steps := []struct {
		at   time.Duration
		want ratelimit.Result
	}{
		{0, ratelimit.Result{Allowed: true, Limit: 5, Remaining: 4, Reset: 60 * time.Second}},
		{1 * time.Second, ratelimit.Result{Allowed: true, Limit: 5, Remaining: 3, Reset: 59 * time.Second}},
		{2 * time.Second, ratelimit.Result{Allowed: true, Limit: 5, Remaining: 2, Reset: 58 * time.Second}},
		{3 * time.Second, ratelimit.Result{Allowed: true, Limit: 5, Remaining: 1, Reset: 57 * time.Second}},
		{4 * time.Second, ratelimit.Result{Allowed: true, Limit: 5, Remaining: 0, Reset: 56 * time.Second}},
		// The 6th is denied, and so are retries; they are not recorded.
		{10 * time.Second, ratelimit.Result{Limit: 5, Reset: 50 * time.Second, RetryAfter: 50 * time.Second}},
		{30 * time.Second, ratelimit.Result{Limit: 5, Reset: 30 * time.Second, RetryAfter: 30 * time.Second}},
		{59*time.Second + 999*time.Millisecond, ratelimit.Result{Limit: 5, Reset: time.Millisecond, RetryAfter: time.Millisecond}},
		// 60 s after the first request its slot is free again.
		{60 * time.Second, ratelimit.Result{Allowed: true, Limit: 5, Remaining: 0, Reset: time.Second}},
		{60*time.Second + 500*time.Millisecond, ratelimit.Result{Limit: 5, Reset: 500 * time.Millisecond, RetryAfter: 500 * time.Millisecond}},
		{61 * time.Second, ratelimit.Result{Allowed: true, Limit: 5, Remaining: 0, Reset: time.Second}},
		// Long after, the whole window is free.
		{200 * time.Second, ratelimit.Result{Allowed: true, Limit: 5, Remaining: 4, Reset: 60 * time.Second}},
	}
	for _, s := range steps {
		got, err := l.Allow(ctx, key, 5, time.Minute, t0.Add(s.at))
		require.NoError(t, err)
		assert.Equal(t, s.want, got, "at +%v", s.at)
	}
}

func TestAllowRejectsBadArguments(t *testing.T) {
	t.Parallel()
	l, _, _ := newLimiter(t)
	ctx := context.Background()
	now := time.Unix(1_800_000_000, 0)
	tests := []struct {
		name   string
		limit  int64
		window time.Duration
	}{
		{"zero limit", 0, time.Second},
		{"negative limit", -1, time.Second},
		{"zero window", 1, 0},
		{"sub-millisecond window", 1, time.Microsecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := l.Allow(ctx, "k", tt.limit, tt.window, now)
			assert.ErrorIs(t, err, ratelimit.ErrInvalid)
		})
	}
	_, err := l.Count(ctx, "k", 0, now)
	assert.ErrorIs(t, err, ratelimit.ErrInvalid)
}

func TestAllowIsAtomicUnderConcurrency(t *testing.T) {
	t.Parallel()
	l, rdb, prefix := newLimiter(t)
	ctx := context.Background()
	now := time.Unix(1_800_000_000, 0)
	var allowed atomic.Int64
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			r, err := l.Allow(ctx, "ip:{198.51.100.1}", 10, time.Minute, now) // same instant: members must still differ
			if assert.NoError(t, err) && r.Allowed {
				allowed.Add(1)
			}
		})
	}
	wg.Wait()
	assert.Equal(t, int64(10), allowed.Load())
	n, err := rdb.ZCard(ctx, prefix+"rl:ip:{198.51.100.1}").Result()
	require.NoError(t, err)
	assert.Equal(t, int64(10), n, "memory is bounded by the limit")
}

func TestLoweredLimitKeepsMemoryBounded(t *testing.T) {
	t.Parallel()
	l, rdb, prefix := newLimiter(t)
	ctx := context.Background()
	t0 := time.Unix(1_800_000_000, 0)
	for i := range 10 {
		r, err := l.Allow(ctx, "k", 10, time.Minute, t0.Add(time.Duration(i)*time.Second))
		require.NoError(t, err)
		require.True(t, r.Allowed)
	}
	// Limit lowered to 3: 10 in the window, so denied until the 8th oldest
	// (at +7 s) leaves, i.e. +67 s.
	r, err := l.Allow(ctx, "k", 3, time.Minute, t0.Add(20*time.Second))
	require.NoError(t, err)
	assert.False(t, r.Allowed)
	assert.Equal(t, 47*time.Second, r.RetryAfter)
	n, err := rdb.ZCard(ctx, prefix+"rl:k").Result()
	require.NoError(t, err)
	assert.Equal(t, int64(3), n)

	r, err = l.Allow(ctx, "k", 3, time.Minute, t0.Add(67*time.Second))
	require.NoError(t, err)
	assert.True(t, r.Allowed)
}

func TestKeyExpiresWithItsNewestEntry(t *testing.T) {
	t.Parallel()
	l, rdb, prefix := newLimiter(t)
	ctx := context.Background()
	now := time.Now()
	_, err := l.Allow(ctx, "k", 3, 10*time.Second, now.Add(-4*time.Second))
	require.NoError(t, err)
	_, err = l.Allow(ctx, "k", 3, 10*time.Second, now)
	require.NoError(t, err)
	ttl, err := rdb.PTTL(ctx, prefix+"rl:k").Result()
	require.NoError(t, err)
	assert.InDelta(t, (10 * time.Second).Seconds(), ttl.Seconds(), 1)
}

func TestCountAndClear(t *testing.T) {
	t.Parallel()
	l, _, _ := newLimiter(t)
	ctx := context.Background()
	t0 := time.Unix(1_800_000_000, 0)
	for i := range 4 {
		_, err := l.Allow(ctx, "ip:{192.0.2.1}", 3, 10*time.Second, t0.Add(time.Duration(i)*time.Second))
		require.NoError(t, err)
	}
	tests := []struct {
		name   string
		key    string
		window time.Duration
		at     time.Duration
		want   int64
	}{
		{"denied requests are not counted", "ip:{192.0.2.1}", 10 * time.Second, 3 * time.Second, 3},
		{"shorter window", "ip:{192.0.2.1}", 1500 * time.Millisecond, 2 * time.Second, 2},
		{"window edge is exclusive", "ip:{192.0.2.1}", 10 * time.Second, 10 * time.Second, 2},
		{"all aged out", "ip:{192.0.2.1}", 10 * time.Second, time.Minute, 0},
		{"unknown key", "ip:{192.0.2.2}", 10 * time.Second, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, err := l.Count(ctx, tt.key, tt.window, t0.Add(tt.at))
			require.NoError(t, err)
			assert.Equal(t, tt.want, n)
		})
	}

	had, err := l.Clear(ctx, "ip:{192.0.2.1}")
	require.NoError(t, err)
	assert.True(t, had)
	r, err := l.Allow(ctx, "ip:{192.0.2.1}", 3, 10*time.Second, t0.Add(3*time.Second))
	require.NoError(t, err)
	assert.Equal(t, int64(2), r.Remaining, "cleared")
	_, err = l.Clear(ctx, "ip:{192.0.2.1}")
	require.NoError(t, err)
	had, err = l.Clear(ctx, "ip:{192.0.2.1}")
	require.NoError(t, err)
	assert.False(t, had)
}

func TestHeaders(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		r    ratelimit.Result
		want http.Header
	}{
		{
			"allowed",
			ratelimit.Result{Allowed: true, Limit: 5, Remaining: 3, Reset: 59*time.Second + time.Millisecond},
			http.Header{"Ratelimit-Limit": {"5"}, "Ratelimit-Remaining": {"3"}, "Ratelimit-Reset": {"60"}},
		},
		{
			"allowed, empty window",
			ratelimit.Result{Allowed: true, Limit: 5, Remaining: 5},
			http.Header{"Ratelimit-Limit": {"5"}, "Ratelimit-Remaining": {"5"}, "Ratelimit-Reset": {"0"}},
		},
		{
			"denied, whole seconds",
			ratelimit.Result{Limit: 5, Reset: 50 * time.Second, RetryAfter: 50 * time.Second},
			http.Header{"Ratelimit-Limit": {"5"}, "Ratelimit-Remaining": {"0"}, "Ratelimit-Reset": {"50"}, "Retry-After": {"50"}},
		},
		{
			"denied, sub-second rounds up to 1",
			ratelimit.Result{Limit: 5, Reset: time.Millisecond, RetryAfter: time.Millisecond},
			http.Header{"Ratelimit-Limit": {"5"}, "Ratelimit-Remaining": {"0"}, "Ratelimit-Reset": {"1"}, "Retry-After": {"1"}},
		},
		{
			"denied, never below 1",
			ratelimit.Result{Limit: 1, Remaining: -2},
			http.Header{"Ratelimit-Limit": {"1"}, "Ratelimit-Remaining": {"0"}, "Ratelimit-Reset": {"0"}, "Retry-After": {"1"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{"Retry-After": {"stale"}}
			ratelimit.Headers(h, tt.r)
			assert.Equal(t, tt.want, h)
		})
	}
}

// Queue puts the check in a caller's pipeline: one round trip for several
// limits, with the same answers as Allow.
func TestQueueInOnePipeline(t *testing.T) {
	t.Parallel()
	l, rdb, _ := newLimiter(t)
	ctx := context.Background()
	now := time.Unix(1_800_000_000, 0)
	for i := range 3 {
		pipe := rdb.Pipeline()
		a := l.Queue(ctx, pipe, "ip:{q1}", 2, time.Minute, now.Add(time.Duration(i)*time.Millisecond))
		b := l.Queue(ctx, pipe, "route:x:{q1}", 5, time.Minute, now.Add(time.Duration(i)*time.Millisecond))
		_, _ = pipe.Exec(ctx)
		ra, err := a(ctx)
		require.NoError(t, err)
		rb, err := b(ctx)
		require.NoError(t, err)
		assert.Equal(t, i < 2, ra.Allowed, "request %d against the limit of 2", i+1)
		assert.True(t, rb.Allowed)
		assert.Equal(t, int64(5-(i+1)), rb.Remaining)
	}
	bad := l.Queue(ctx, rdb.Pipeline(), "k", 0, time.Minute, now)
	_, err := bad(ctx)
	assert.ErrorIs(t, err, ratelimit.ErrInvalid)
}
