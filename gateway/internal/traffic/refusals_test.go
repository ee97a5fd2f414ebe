package traffic_test

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulwarkgw/bulwark/gateway/internal/testenv"
	"github.com/bulwarkgw/bulwark/gateway/internal/traffic"
	"github.com/bulwarkgw/bulwark/shared/wire"
)

// refuser is the Redis store or the in-memory one, seen alike: requests,
// upstream answers and the gateway's refusals.
type refuser struct {
	observe  observer
	response func(ip netip.Addr, at time.Time, status int)
	refuse   func(ip netip.Addr, at time.Time)
}

func refusers(t *testing.T) map[string]refuser {
	s := newStore(t)
	m, err := traffic.NewMemory(1000)
	require.NoError(t, err)
	ctx := context.Background()
	return map[string]refuser{
		"redis": {
			observe: func(ip netip.Addr, at time.Time, req traffic.Request) traffic.Observation {
				o, err := s.Observe(ctx, ip, at, req)
				require.NoError(t, err)
				return o
			},
			response: func(ip netip.Addr, at time.Time, status int) {
				require.NoError(t, s.RecordResponse(ctx, ip, at, status))
			},
			refuse: func(ip netip.Addr, at time.Time) { require.NoError(t, s.RecordRefusal(ctx, ip, at)) },
		},
		"memory": {observe: m.Observe, response: m.RecordResponse, refuse: m.RecordRefusal},
	}
}

// A key guesser throttled for its errors keeps coming: its refused
// requests are counted in Refused60s and nowhere else: not as 4xx, not as
// auth failures, and not out of Count60s (they were requests), so the
// error ratio can leave them out of its denominator.
func TestRecordRefusalCountsOnlyRefusals(t *testing.T) {
	t.Parallel()
	for name, st := range refusers(t) {
		refused, plain := netip.MustParseAddr("198.51.123.1"), netip.MustParseAddr("198.51.123.2")
		t0 := time.Unix(1_800_000_000, 0)
		var last [2]traffic.Observation
		for i, ip := range []netip.Addr{refused, plain} {
			n := int64(0)
			for j := range 10 {
				at := t0.Add(time.Duration(j) * 500 * time.Millisecond)
				o := st.observe(ip, at, get("/api/keys/check"))
				assert.Equal(t, n, o.Refused60s, "%s: this request's refusal comes after it", name)
				if j < 4 {
					st.response(ip, at, []int{401, 404}[j%2]) // answered by the upstream
				} else if ip == refused {
					st.refuse(ip, at) // refused by the gateway
					n++
				}
			}
			last[i] = st.observe(ip, t0.Add(5*time.Second), get("/api/keys/check"))
		}
		got, want := last[0], last[1]
		assert.EqualValues(t, 6, got.Refused60s, name)
		assert.EqualValues(t, 4, got.Errors4xx, "%s: the upstream's answers only", name)
		assert.EqualValues(t, 2, got.AuthFailures, name)
		assert.EqualValues(t, 11, got.Count60s, "%s: the refused requests were requests", name)
		got.Refused60s = 0
		assert.Equal(t, want, got, "%s: everything else as if nothing had been refused", name)

		// No state, no count: a refusal alone creates nothing.
		none := netip.MustParseAddr("198.51.123.3")
		st.refuse(none, t0)
		o := st.observe(none, t0.Add(time.Second), root)
		assert.Zero(t, o.Refused60s, name)
		assert.Equal(t, [3]int64{1, 1, 1}, counts(o), name)
	}
}

// Refused60s is windowed as Errors4xx (20 s buckets, the oldest weighted
// by the part of it still inside the minute): the two read alike whenever
// refusals and 4xx answers came at the same times, and both age out a
// minute after (the last 20 s bucket fading between 60 and 80 s).
func TestRefusalsAgeOutAsErrors(t *testing.T) {
	t.Parallel()
	for name, st := range refusers(t) {
		ip := netip.MustParseAddr("198.51.124.1")
		t0 := time.Unix(1_800_000_000, 0) // a 20 s bucket starts here
		for _, d := range []time.Duration{0, 0, 3 * time.Second, 25 * time.Second, 41 * time.Second} {
			st.observe(ip, t0.Add(d), root)
			st.response(ip, t0.Add(d), 404)
			st.refuse(ip, t0.Add(d))
		}
		for _, c := range []struct {
			at   time.Duration
			want int64
		}{
			{50 * time.Second, 5},
			{59 * time.Second, 5},
			{70 * time.Second, 4},  // 25 s, 41 s, and half of 0–20 s's 3 (3.5)
			{79 * time.Second, 2},  // a twentieth of 0–20 s left (2.15)
			{85 * time.Second, 2},  // 41 s, and three quarters of 20–40 s's
			{100 * time.Second, 1}, // 41 s only
			{110 * time.Second, 1}, // half of it (0.5)
			{115 * time.Second, 0}, // a quarter of it
			{120 * time.Second, 0}, // gone
		} {
			o := st.observe(ip, t0.Add(c.at), root)
			assert.Equal(t, o.Errors4xx, o.Refused60s, "%s at %v: windowed as Errors4xx", name, c.at)
			assert.Equal(t, c.want, o.Refused60s, "%s at %v", name, c.at)
		}
	}
}

// A refusal leaves a state it cannot read (an older gateway's) alone.
func TestRefusalLeavesAnOlderStateAlone(t *testing.T) {
	t.Parallel()
	rdb, prefix := testenv.Redis(t)
	s, err := traffic.New(rdb, prefix)
	require.NoError(t, err)
	ctx := context.Background()
	ip := netip.MustParseAddr("198.51.125.1")
	old := make([]byte, 133)
	old[0] = wire.ClientStateVersion - 1
	for i := 5; i < len(old); i++ {
		old[i] = 9
	}
	key := wire.ClientKey(prefix, ip)
	require.NoError(t, rdb.Set(ctx, key, old, time.Minute).Err())
	require.NoError(t, s.RecordRefusal(ctx, ip, time.Unix(1_800_000_000, 0)))
	raw, err := rdb.Get(ctx, key).Bytes()
	require.NoError(t, err)
	assert.Equal(t, old, raw)
	o, err := s.Observe(ctx, ip, time.Unix(1_800_000_000, 0), root)
	require.NoError(t, err)
	assert.Zero(t, o.Refused60s)
	assert.Equal(t, [3]int64{1, 1, 1}, counts(o))

	// A refusal of a client without a state writes no key.
	gone := netip.MustParseAddr("198.51.125.2")
	require.NoError(t, s.RecordRefusal(ctx, gone, time.Unix(1_800_000_000, 0)))
	n, err := rdb.Exists(ctx, wire.ClientKey(prefix, gone)).Result()
	require.NoError(t, err)
	assert.Zero(t, n)
}
