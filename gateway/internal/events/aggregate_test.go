package events

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulwarkgw/bulwark/shared/wire"
)

func throttle(ip string, ts time.Time, path string) wire.Event {
	return wire.Event{ID: NewID(ts), TS: ts, Type: wire.EventThrottle, IP: ip, Route: "/api", Path: path, Status: 429, Score: 0.6}
}

func TestAggregatorFoldsRepeatsIntoOneEventPerWindow(t *testing.T) {
	a := newAggregator(time.Second, 100)
	t0 := time.Unix(1_800_000_000, 0).UTC()
	ms := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Millisecond) }

	assert.False(t, a.fold(throttle("203.0.113.7", ms(0), "/api/a"), ms(0)), "the first goes out at once")
	for i := 1; i <= 37; i++ {
		assert.True(t, a.fold(throttle("203.0.113.7", ms(10*i), fmt.Sprintf("/api/%d", i)), ms(10*i)))
	}
	assert.Empty(t, a.due(ms(999)), "the window is still open")

	out := a.due(ms(1000))
	require.Len(t, out, 1)
	assert.Equal(t, 37, out[0].Count)
	assert.Equal(t, ms(10), out[0].FirstTS, "the first repeat")
	assert.Equal(t, ms(370), out[0].TS, "the newest repeat")
	assert.Equal(t, "/api/37", out[0].Path, "the newest repeat's details")

	// The key stays watched: a steady client makes one event per window.
	assert.True(t, a.fold(throttle("203.0.113.7", ms(1500), "/api/x"), ms(1500)))
	assert.True(t, a.fold(throttle("203.0.113.7", ms(1600), "/api/y"), ms(1600)))
	assert.Empty(t, a.due(ms(1999)))
	out = a.due(ms(2000))
	require.Len(t, out, 1)
	assert.Equal(t, 2, out[0].Count)

	// One repeat leaves as it came, without a count.
	assert.True(t, a.fold(throttle("203.0.113.7", ms(2100), "/api/z"), ms(2100)))
	out = a.due(ms(3000))
	require.Len(t, out, 1)
	assert.Zero(t, out[0].Count)
	assert.True(t, out[0].FirstTS.IsZero())

	// A quiet window forgets the key: the next event goes out at once.
	assert.Empty(t, a.due(ms(4000)))
	assert.Empty(t, a.open)
	assert.False(t, a.fold(throttle("203.0.113.7", ms(4100), "/api/a"), ms(4100)))
}

func TestAggregatorKeys(t *testing.T) {
	t0 := time.Unix(1_800_000_000, 0).UTC()
	base := throttle("203.0.113.7", t0, "/api/a")
	tests := []struct {
		name  string
		other func(wire.Event) wire.Event
		folds bool
	}{
		{"same client, type, route and status", func(e wire.Event) wire.Event { e.Path, e.Score = "/api/b", 0.7; return e }, true},
		{"IPv4-mapped is the same client", func(e wire.Event) wire.Event { e.IP = "::ffff:203.0.113.7"; return e }, true},
		{"another client", func(e wire.Event) wire.Event { e.IP = "203.0.113.8"; return e }, false},
		{"another type", func(e wire.Event) wire.Event { e.Type = wire.EventBlock; return e }, false},
		{"another route", func(e wire.Event) wire.Event { e.Route = "/"; return e }, false},
		{"another status", func(e wire.Event) wire.Event { e.Status = 403; return e }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := newAggregator(time.Second, 100)
			require.False(t, a.fold(base, t0))
			assert.Equal(t, tt.folds, a.fold(tt.other(base), t0))
		})
	}

	t.Run("an IPv6 client by its /64", func(t *testing.T) {
		a := newAggregator(time.Second, 100)
		require.False(t, a.fold(throttle("2001:db8:1:2::1", t0, "/"), t0))
		assert.True(t, a.fold(throttle("2001:db8:1:2:ffff::9", t0, "/"), t0))
		assert.False(t, a.fold(throttle("2001:db8:1:3::1", t0, "/"), t0))
	})
}

func TestAggregatorKeepsStateChangesAndAuditEvents(t *testing.T) {
	t0 := time.Unix(1_800_000_000, 0).UTC()
	for _, typ := range []wire.EventType{wire.EventBan, wire.EventUnban, wire.EventKeyIssued, wire.EventAdmin, "some_future_type"} {
		a := newAggregator(time.Second, 100)
		for range 3 {
			assert.False(t, a.fold(wire.Event{Type: typ, IP: "203.0.113.7", TS: t0}, t0), "%s is never folded", typ)
		}
		assert.Empty(t, a.all())
	}
	for _, typ := range []wire.EventType{wire.EventBlock, wire.EventThrottle, wire.EventDenyList, wire.EventAuthFailure,
		wire.EventBruteforceBlock, wire.EventKeyInvalid, wire.EventShadowBlock} {
		a := newAggregator(time.Second, 100)
		require.False(t, a.fold(wire.Event{Type: typ, IP: "203.0.113.7", TS: t0}, t0))
		assert.True(t, a.fold(wire.Event{Type: typ, IP: "203.0.113.7", TS: t0}, t0), "repeats of %s are folded", typ)
	}
}

// With every key slot taken, events of new keys are sent as they are: the
// table's memory is bounded and nothing is dropped.
func TestAggregatorBoundedKeys(t *testing.T) {
	a := newAggregator(time.Second, 2)
	t0 := time.Unix(1_800_000_000, 0).UTC()
	for _, ip := range []string{"203.0.113.1", "203.0.113.2"} {
		require.False(t, a.fold(throttle(ip, t0, "/"), t0))
		require.True(t, a.fold(throttle(ip, t0, "/"), t0))
	}
	for range 3 {
		assert.False(t, a.fold(throttle("203.0.113.3", t0, "/"), t0), "no slot: sent, not folded")
	}
	assert.Len(t, a.open, 2)
	assert.Len(t, a.all(), 2, "shutdown flushes every window")
	assert.Empty(t, a.open)
}
