package live_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulwarkgw/bulwark/dashboard/internal/live"
	"github.com/bulwarkgw/bulwark/dashboard/internal/testenv"
	"github.com/bulwarkgw/bulwark/shared/wire"
)

func publish(t *testing.T, rdb redis.UniversalClient, prefix string, ev wire.Event) {
	t.Helper()
	b, err := json.Marshal(ev)
	require.NoError(t, err)
	require.NoError(t, rdb.XAdd(context.Background(), &redis.XAddArgs{
		Stream: wire.StreamKey(prefix), Values: map[string]any{wire.StreamField: b},
	}).Err())
}

func TestAggregator(t *testing.T) {
	t.Parallel()
	rdb, prefix := testenv.Redis(t)
	ctx := context.Background()
	now := time.Now()
	sec := now.Unix()

	// Two gateways' counters for one second sum into one hash; totals too.
	require.NoError(t, rdb.HSet(ctx, wire.StatsKey(prefix, sec-3), wire.StatRequests, 30, wire.StatAllowed, 20,
		wire.StatThrottled, 4, wire.StatBlocked, 6).Err())
	require.NoError(t, rdb.HSet(ctx, wire.StatsTotalKey(prefix), wire.StatRequests, 1000, wire.StatBlocked, 200, wire.StatBans, 3).Err())

	london := &wire.Geo{Country: "GB", City: "London", Lat: 51.5, Lon: -0.12}
	paris := &wire.Geo{Country: "FR", City: "Paris", Lat: 48.86, Lon: 2.35}
	burst := []wire.Reason{{Feature: "rate", Contribution: 0.1}, {Feature: "burst", Contribution: 0.8}, {Feature: "ua", Contribution: 0}}
	publish(t, rdb, prefix, wire.Event{ID: "1", TS: now.Add(-2 * time.Second), Type: wire.EventThrottle, IP: "81.2.69.142", Geo: london, Score: 0.55})
	publish(t, rdb, prefix, wire.Event{ID: "2", TS: now.Add(-2 * time.Second), Type: wire.EventBan, IP: "81.2.69.142", Geo: london, Score: 0.93, Reasons: burst})
	publish(t, rdb, prefix, wire.Event{ID: "3", TS: now.Add(-1 * time.Second), Type: wire.EventBan, IP: "2.2.2.2", Geo: paris, Score: 1})
	publish(t, rdb, prefix, wire.Event{ID: "4", TS: now.Add(-1 * time.Second), Type: wire.EventUnban, IP: "2.2.2.2"})

	agg, err := live.New(rdb, live.Options{Prefix: prefix, CostPerRequest: 0.45}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	require.NoError(t, err)
	require.NoError(t, agg.Load(ctx, now))
	agg.SetBans([]wire.Ban{{IP: "81.2.69.142", TTLSeconds: 600, Reason: "score 0.93"}, {IP: "9.9.9.9", TTLSeconds: 1}}, now.Add(-2*time.Second))

	delta, full, err := agg.Tick(ctx, now)
	require.NoError(t, err)
	assert.Len(t, full.Series, live.History, "the whole window, zeros included")
	assert.Equal(t, wire.Point{TS: sec - 3, Requests: 30, Allowed: 20, Throttled: 4, Blocked: 6}, full.Series[live.History-4])
	assert.Len(t, delta.Series, 5)
	assert.Equal(t, wire.Totals{Requests: 1000, Blocked: 200, Bans: 3}, full.Totals)
	assert.InDelta(t, 90.0, full.CostSaved, 1e-9, "all-time blocked × cost")
	assert.Equal(t, 0.45, full.CostPerRequest)

	ids := func(evs []wire.Event) (out []string) {
		for _, e := range evs {
			out = append(out, e.ID)
		}
		return out
	}
	assert.Equal(t, []string{"1", "2", "3", "4"}, ids(full.Events), "a new browser gets the recent events")
	assert.Empty(t, delta.Events, "loaded events are not news")

	assert.Equal(t, []int64{0, 0, 0, 0, 0, 1, 0, 0, 0, 2}, full.ScoreHistogram, "0.55 → [0.5,0.6); 0.93 and 1 → the last bucket; unban unscored")
	require.Len(t, full.Origins, 2)
	assert.Equal(t, wire.Origin{Country: "GB", Lat: 51.5, Lon: -0.12, Events: 2, Blocks: 1}, full.Origins[0])
	assert.Equal(t, "FR", full.Origins[1].Country)

	require.Len(t, full.TopOffenders, 2)
	off := full.TopOffenders[1]
	if off.IP != "81.2.69.142" {
		off = full.TopOffenders[0]
	}
	assert.Equal(t, "GB", off.Country)
	assert.Equal(t, []wire.Reason{{Feature: "burst", Contribution: 0.8}, {Feature: "rate", Contribution: 0.1}}, off.Reasons,
		"largest first, zero contributions dropped")

	require.Len(t, full.Bans, 1, "a ban whose time ran out since the listing is gone")
	assert.Equal(t, wire.Ban{IP: "81.2.69.142", TTLSeconds: 598, Reason: "score 0.93", Country: "GB", Score: 0.93}, full.Bans[0])

	agg.DropBan("81.2.69.142")
	_, full, err = agg.Tick(ctx, now)
	require.NoError(t, err)
	assert.Empty(t, full.Bans, "a lifted ban leaves the frames at once")

	// Follow picks up where Load stopped.
	fctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- agg.Follow(fctx) }()
	publish(t, rdb, prefix, wire.Event{ID: "5", TS: now, Type: wire.EventBan, IP: "3.3.3.3", Score: 0.9})
	require.Eventually(t, func() bool {
		d, _, err := agg.Tick(ctx, now)
		return err == nil && len(d.Events) == 1 && d.Events[0].ID == "5"
	}, 5*time.Second, 20*time.Millisecond)
	cancel()
	require.NoError(t, <-done)
}

// A folded event weighs its count everywhere the panels count: origins,
// offenders and the score histogram.
func TestFoldedEventsCountTheirRequests(t *testing.T) {
	t.Parallel()
	rdb, prefix := testenv.Redis(t)
	ctx := context.Background()
	now := time.Now()
	london := &wire.Geo{Country: "GB", City: "London", Lat: 51.5, Lon: -0.12}
	publish(t, rdb, prefix, wire.Event{ID: "1", TS: now.Add(-2 * time.Second), Type: wire.EventDenyList, IP: "81.2.69.142", Geo: london, Score: 0.95})
	publish(t, rdb, prefix, wire.Event{ID: "2", TS: now.Add(-time.Second), Type: wire.EventDenyList, IP: "81.2.69.142", Geo: london, Score: 0.95,
		Count: 37, FirstTS: now.Add(-2 * time.Second)})
	publish(t, rdb, prefix, wire.Event{ID: "3", TS: now.Add(-time.Second), Type: wire.EventThrottle, IP: "81.2.69.143", Geo: london, Score: 0.55, Count: 2})

	agg, err := live.New(rdb, live.Options{Prefix: prefix}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	require.NoError(t, err)
	require.NoError(t, agg.Load(ctx, now))
	_, full, err := agg.Tick(ctx, now)
	require.NoError(t, err)

	require.Len(t, full.Events, 3)
	assert.Equal(t, 37, full.Events[1].Count, "the feed carries the count")
	require.Len(t, full.Origins, 1)
	assert.Equal(t, int64(40), full.Origins[0].Events)
	assert.Equal(t, int64(38), full.Origins[0].Blocks)
	require.Len(t, full.TopOffenders, 1)
	assert.Equal(t, int64(38), full.TopOffenders[0].Blocks)
	assert.Equal(t, []int64{0, 0, 0, 0, 0, 2, 0, 0, 0, 0}, full.ScoreHistogram, "deny-list refusals are not scored")
}

// TestIPv6OffendersAndBansAreSlash64s: an attacker rotating through its /64
// is one offender, and its ban (listed as the /64) gets its country and
// score from the events of any address in it.
func TestIPv6OffendersAndBansAreSlash64s(t *testing.T) {
	t.Parallel()
	rdb, prefix := testenv.Redis(t)
	ctx := context.Background()
	now := time.Now()
	de := &wire.Geo{Country: "DE"}
	publish(t, rdb, prefix, wire.Event{ID: "1", TS: now.Add(-2 * time.Second), Type: wire.EventBlock, IP: "2001:db8:1:2::1", Geo: de, Score: 0.9})
	publish(t, rdb, prefix, wire.Event{ID: "2", TS: now.Add(-2 * time.Second), Type: wire.EventBan, IP: "2001:db8:1:2::2", Geo: de, Score: 0.95})
	publish(t, rdb, prefix, wire.Event{ID: "3", TS: now.Add(-1 * time.Second), Type: wire.EventBlock, IP: "2001:db8:1:3::1", Score: 0.9})
	publish(t, rdb, prefix, wire.Event{ID: "4", TS: now.Add(-1 * time.Second), Type: wire.EventBlock, IP: "192.0.2.7", Score: 0.9})

	agg, err := live.New(rdb, live.Options{Prefix: prefix}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	require.NoError(t, err)
	require.NoError(t, agg.Load(ctx, now))
	agg.SetBans([]wire.Ban{{IP: "2001:db8:1:2::/64", TTLSeconds: 600, Reason: "score 0.95"}}, now)

	_, full, err := agg.Tick(ctx, now)
	require.NoError(t, err)
	blocks := map[string]int64{}
	for _, o := range full.TopOffenders {
		blocks[o.IP] = o.Blocks
	}
	assert.Equal(t, map[string]int64{"2001:db8:1:2::/64": 2, "2001:db8:1:3::/64": 1, "192.0.2.7": 1}, blocks)
	require.Len(t, full.Bans, 1)
	assert.Equal(t, wire.Ban{IP: "2001:db8:1:2::/64", TTLSeconds: 600, Reason: "score 0.95", Country: "DE", Score: 0.95}, full.Bans[0])
	assert.Equal(t, "2001:db8:1:2::1", full.Events[0].IP, "the feed keeps each request's own address")

	agg.DropBan("2001:db8:1:2::/64")
	_, full, err = agg.Tick(ctx, now)
	require.NoError(t, err)
	assert.Empty(t, full.Bans)
}
