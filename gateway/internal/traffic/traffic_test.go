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
	"github.com/bulwarkgw/bulwark/shared/wire"
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

	// The 1 s window slides in 25 ms steps: at 1.25 s it covers
	// [0.25 s, 1.25 s], so the requests at 0.25–0.45 s count and 0–0.2 s
	// no longer do.
	o, err = s.Observe(ctx, ip, t0.Add(1250*time.Millisecond), root)
	require.NoError(t, err)
	assert.Equal(t, int64(6), o.Count1s) // 5 + this one
	assert.Equal(t, int64(11), o.Count10s)

	// 30 s later the burst is gone from the 1 s and 10 s windows only.
	o, err = s.Observe(ctx, ip, t0.Add(31*time.Second), root)
	require.NoError(t, err)
	assert.Equal(t, [3]int64{1, 1, 12}, counts(o))

	// More than a minute after the last request (and clear of the 10 s
	// bucket it sits in) everything has aged out.
	o, err = s.Observe(ctx, ip, t0.Add(101*time.Second), root)
	require.NoError(t, err)
	assert.Equal(t, [3]int64{1, 1, 1}, counts(o))
}

// TestBurstReadsWithinOne is the windows' precision: a burst of n requests
// spread over less than a second reads n ± 1 in the 1 s window however it
// falls across second boundaries.
func TestBurstReadsWithinOne(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	for i, offset := range []time.Duration{0, 130 * time.Millisecond, 470 * time.Millisecond, 999 * time.Millisecond} {
		ip := netip.AddrFrom4([4]byte{198, 51, 100, byte(i + 1)})
		start := time.Unix(1_800_000_500, 0).Add(offset)
		var o traffic.Observation
		for j := range 33 {
			var err error
			o, err = s.Observe(ctx, ip, start.Add(time.Duration(j)*28*time.Millisecond), root) // 33 in 0.9 s
			require.NoError(t, err)
		}
		assert.InDelta(t, 33, o.Count1s, 1, "offset %v", offset)
	}
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
	assert.Equal(t, int64(51), o.Count60s, "none lost")
	assert.Equal(t, int64(51), o.Visits)
	assert.Equal(t, int64(51), o.Count1s, "51 in one 25 ms bucket: spilled into the older ones")
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

// TestStateIsTheWireRecord checks the one key a client costs against the
// layout the dashboard decodes (shared/wire.ClientState), and that the
// gaps kept stop at MaxGaps.
func TestStateIsTheWireRecord(t *testing.T) {
	t.Parallel()
	rdb, prefix := testenv.Redis(t)
	s, err := traffic.New(rdb, prefix)
	require.NoError(t, err)
	ctx := context.Background()
	ip := netip.MustParseAddr("192.0.2.77")
	t0 := time.Unix(1_800_000_700, 0)
	var o traffic.Observation
	for i := range 20 {
		o, err = s.Observe(ctx, ip, t0.Add(time.Duration(i)*300*time.Millisecond), root)
		require.NoError(t, err)
	}
	assert.Equal(t, wire.MaxGaps, o.Intervals)

	keys, err := testenv.Keys(ctx, rdb, prefix+"*")
	require.NoError(t, err)
	assert.Equal(t, []string{wire.ClientKey(prefix, netip.MustParseAddr("192.0.2.77"))}, keys, "one key per client")
	raw, err := rdb.Get(ctx, keys[0]).Bytes()
	require.NoError(t, err)
	st, err := wire.DecodeClientState(raw)
	require.NoError(t, err)
	assert.Equal(t, t0.Add(19*300*time.Millisecond).UnixMilli(), st.LastMs())
	assert.Equal(t, uint8(wire.MaxGaps), st.Gaps)
	assert.Equal(t, wire.GapCode(300), st.GapCodes[0])
	pts := st.Requests10s(t0.Add(6 * time.Second).UnixMilli())
	var sum int64
	for _, p := range pts {
		sum += p.Requests
	}
	assert.Equal(t, int64(20), sum)
	ttl, err := rdb.PTTL(ctx, keys[0]).Result()
	require.NoError(t, err)
	assert.InDelta(t, 62*time.Second, ttl, float64(time.Second))
}

// TestClockAheadDoesNotPileUp: a gateway whose clock runs an hour ahead
// writes one request; the others, on time, must not count every later
// request into that future bucket (a client would read 41 in 1 s after 40
// requests at one every 2 s, and be banned).
func TestClockAheadDoesNotPileUp(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	ip := netip.MustParseAddr("192.0.2.150")
	t0 := time.Unix(1_800_001_000, 0)
	_, err := s.Observe(ctx, ip, t0.Add(time.Hour), root)
	require.NoError(t, err)
	var o traffic.Observation
	for i := range 40 {
		o, err = s.Observe(ctx, ip, t0.Add(time.Duration(i)*2*time.Second), root)
		require.NoError(t, err)
		require.LessOrEqual(t, o.Count1s, int64(2), "request %d", i)
	}
	assert.LessOrEqual(t, o.Count10s, int64(6))
	// Upstream answers recorded by the on-time gateways count too.
	require.NoError(t, s.RecordResponse(ctx, ip, t0.Add(80*time.Second), 404))
	o, err = s.Observe(ctx, ip, t0.Add(81*time.Second), root)
	require.NoError(t, err)
	assert.Equal(t, int64(1), o.Errors4xx)
}
