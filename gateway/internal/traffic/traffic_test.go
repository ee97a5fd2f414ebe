package traffic_test

import (
	"context"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulwarkgw/bulwark/gateway/internal/bans"
	"github.com/bulwarkgw/bulwark/gateway/internal/testenv"
	"github.com/bulwarkgw/bulwark/gateway/internal/traffic"
)

// root is a plain request to "/".
var root = traffic.Describe("/", nil, time.Minute)

// counts keeps only the sliding-window counts of an observation.
func counts(o traffic.Observation) [3]int64 { return [3]int64{o.Count1s, o.Count10s, o.Count60s} }

func newStore(t *testing.T) *traffic.Store {
	rdb, prefix := testenv.Redis(t)
	s, err := traffic.New(rdb, prefix)
	require.NoError(t, err)
	return s
}

func TestObserveSlidingWindows(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	ip := netip.MustParseAddr("203.0.113.7")
	t0 := time.Unix(1_800_000_000, 0)

	// 10 requests in the first second.
	var o traffic.Observation
	var err error
	for i := range 10 {
		o, err = s.Observe(ctx, ip, t0.Add(time.Duration(i)*50*time.Millisecond), root)
		require.NoError(t, err)
	}
	assert.Equal(t, [3]int64{10, 10, 10}, counts(o))

	// Half a second into the next second, half of the previous second still
	// counts toward the 1 s window.
	o, err = s.Observe(ctx, ip, t0.Add(1500*time.Millisecond), root)
	require.NoError(t, err)
	assert.Equal(t, int64(6), o.Count1s) // 1 + 10*0.5
	assert.Equal(t, int64(11), o.Count10s)

	// 30 s later the burst is gone from the 1 s and 10 s windows only.
	o, err = s.Observe(ctx, ip, t0.Add(31*time.Second), root)
	require.NoError(t, err)
	assert.Equal(t, [3]int64{1, 1, 12}, counts(o))

	// After more than a minute everything has aged out.
	o, err = s.Observe(ctx, ip, t0.Add(95*time.Second), root)
	require.NoError(t, err)
	assert.Equal(t, [3]int64{1, 1, 1}, counts(o))
}

func TestObserveIsAtomicUnderConcurrency(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	ip := netip.MustParseAddr("2001:db8::5")
	now := time.Unix(1_800_000_100, 0)
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			_, err := s.Observe(ctx, ip, now, root)
			assert.NoError(t, err)
		})
	}
	wg.Wait()
	o, err := s.Observe(ctx, ip, now, root)
	require.NoError(t, err)
	assert.Equal(t, int64(51), o.Count1s)
}

// Bans are made by package bans; the traffic store only honours them.
func TestBanStopsCounting(t *testing.T) {
	t.Parallel()
	rdb, prefix := testenv.Redis(t)
	s, err := traffic.New(rdb, prefix)
	require.NoError(t, err)
	b, err := bans.New(rdb, prefix)
	require.NoError(t, err)
	ctx := context.Background()
	ip := netip.MustParseAddr("198.51.100.1")
	other := netip.MustParseAddr("198.51.100.2")
	now := time.Now()

	require.NoError(t, b.Ban(ctx, ip, time.Minute, "test", now))
	o, err := s.Observe(ctx, ip, now, root)
	require.NoError(t, err)
	assert.True(t, o.Banned)
	assert.InDelta(t, time.Minute.Seconds(), o.BanTTL.Seconds(), 2)

	o, err = s.Observe(ctx, other, now, root)
	require.NoError(t, err)
	assert.False(t, o.Banned, "a ban is per client")

	lifted, err := b.Unban(ctx, ip)
	require.NoError(t, err)
	assert.True(t, lifted)
	o, err = s.Observe(ctx, ip, now, root)
	require.NoError(t, err)
	assert.False(t, o.Banned)
	assert.Equal(t, int64(1), o.Count1s, "requests refused by the ban were not counted")

	lifted, err = b.Unban(ctx, ip)
	require.NoError(t, err)
	assert.False(t, lifted)
}
