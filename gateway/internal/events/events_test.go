package events_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/bulwarkgw/bulwark/gateway/internal/events"
	"github.com/bulwarkgw/bulwark/gateway/internal/testenv"
	"github.com/bulwarkgw/bulwark/shared/wire"
)

func TestEnsureIndexesAndRetention(t *testing.T) {
	t.Parallel()
	coll := testenv.Mongo(t).Collection("events")
	ctx := context.Background()
	err := events.EnsureIndexes(ctx, coll, 48*time.Hour)
	if err != nil {
		require.ErrorIs(t, err, events.ErrNoTTL)
	}
	ttlSupported := err == nil
	err2 := events.EnsureIndexes(ctx, coll, 48*time.Hour)
	assert.Equal(t, err, err2, "idempotent at every start")

	cur, err := coll.Indexes().List(ctx)
	require.NoError(t, err)
	var specs []bson.M
	require.NoError(t, cur.All(ctx, &specs))
	names := []string{}
	var ttl any
	for _, s := range specs {
		names = append(names, s["name"].(string))
		if s["name"] == "ts" {
			ttl = s["expireAfterSeconds"]
		}
	}
	sort.Strings(names)
	assert.Equal(t, []string{"_id_", "ip_ts", "ts", "type_ts"}, names)
	if ttlSupported {
		assert.EqualValues(t, 48*3600, ttl)
	} else {
		t.Log("server has no TTL indexes: retention is enforced by Sweep")
	}

	// Sweep removes exactly what is older than the retention.
	now := time.Now().UTC()
	_, err = coll.InsertMany(ctx, []wire.Event{
		{ID: "old", TS: now.Add(-49 * time.Hour), Type: wire.EventBan},
		{ID: "new", TS: now.Add(-47 * time.Hour), Type: wire.EventBan},
	})
	require.NoError(t, err)
	n, err := events.Sweep(ctx, coll, 48*time.Hour, now)
	require.NoError(t, err)
	assert.Equal(t, int64(1), n)
	left, err := coll.CountDocuments(ctx, bson.D{{Key: "_id", Value: "new"}})
	require.NoError(t, err)
	assert.Equal(t, int64(1), left)
}

func TestSinkWritesMongoAndStream(t *testing.T) {
	t.Parallel()
	coll := testenv.Mongo(t).Collection("events")
	rdb, prefix := testenv.Redis(t)
	sink, err := events.NewSink(coll, rdb, prefix, events.Options{QueueSize: 100, BatchSize: 3, FlushInterval: 20 * time.Millisecond, StreamMaxLen: 1000}, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sink.Run(ctx) }()

	now := time.Now().UTC().Truncate(time.Millisecond)
	var sent []wire.Event
	for i := range 7 {
		ev := wire.Event{ID: events.NewID(now), TS: now.Add(time.Duration(i) * time.Millisecond), Type: wire.EventBan, IP: "203.0.113.1", Score: 0.9,
			Reasons: []wire.Reason{{Feature: "burst", Value: 30, Contribution: 0.9}}}
		sent = append(sent, ev)
		sink.Publish(ev)
	}
	sink.Publish(sent[0]) // a duplicate (a retried batch) never creates a second document

	require.Eventually(t, func() bool {
		n, err := coll.CountDocuments(context.Background(), bson.D{})
		return err == nil && n == 7 && sink.Written() >= 7
	}, 10*time.Second, 20*time.Millisecond)

	var got wire.Event
	require.NoError(t, coll.FindOne(context.Background(), bson.D{{Key: "_id", Value: sent[3].ID}}).Decode(&got))
	assert.Equal(t, sent[3].TS, got.TS.UTC())
	assert.Equal(t, sent[3].Reasons, got.Reasons)

	require.Eventually(t, func() bool {
		n, err := rdb.XLen(context.Background(), wire.StreamKey(prefix)).Result()
		return err == nil && n == 8
	}, 5*time.Second, 20*time.Millisecond)
	msgs, err := rdb.XRange(context.Background(), wire.StreamKey(prefix), "-", "+").Result()
	require.NoError(t, err)
	var first wire.Event
	require.NoError(t, json.Unmarshal([]byte(msgs[0].Values[wire.StreamField].(string)), &first))
	assert.Equal(t, sent[0].ID, first.ID)

	cancel()
	require.NoError(t, <-done)
	assert.Zero(t, sink.Dropped())
}

// A hammering client: its first throttle is written at once, the repeats
// as one event with a count when the window closes, and bans are never
// folded. What the window holds at shutdown is written too.
func TestSinkFoldsRepeats(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name   string
		window time.Duration
	}{{"window closes", 100 * time.Millisecond}, {"shutdown", time.Hour}} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			coll := testenv.Mongo(t).Collection("events")
			rdb, prefix := testenv.Redis(t)
			sink, err := events.NewSink(coll, rdb, prefix, events.Options{QueueSize: 100, BatchSize: 10, FlushInterval: 10 * time.Millisecond,
				StreamMaxLen: 1000, AggregateWindow: tt.window}, slog.New(slog.DiscardHandler))
			require.NoError(t, err)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			done := make(chan error, 1)
			go func() { done <- sink.Run(ctx) }()

			now := time.Now().UTC().Truncate(time.Millisecond)
			ev := func(i int, typ wire.EventType) wire.Event {
				ts := now.Add(time.Duration(i) * time.Millisecond)
				return wire.Event{ID: events.NewID(ts), TS: ts, Type: typ, IP: "203.0.113.7", Route: "/api", Path: fmt.Sprintf("/api/%d", i), Status: 429}
			}
			first := ev(0, wire.EventThrottle)
			sink.Publish(first)
			var lastRepeat wire.Event
			for i := 1; i <= 50; i++ {
				lastRepeat = ev(i, wire.EventThrottle)
				sink.Publish(lastRepeat)
			}
			for i := range 3 {
				sink.Publish(ev(100+i, wire.EventBan))
			}
			assert.Equal(t, int64(50), sink.Folded(), "every repeat waits in the window")

			stopped := false
			if tt.window == time.Hour {
				require.Eventually(t, func() bool { return sink.Written() == 4 }, 10*time.Second, 10*time.Millisecond, "the first throttle and the bans go at once")
				cancel()
				require.NoError(t, <-done)
				stopped = true
			}
			require.Eventually(t, func() bool { return sink.Written() == 5 }, 10*time.Second, 10*time.Millisecond)

			var got []bson.M
			cur, err := coll.Find(context.Background(), bson.D{{Key: "type", Value: "throttle"}}, options.Find().SetSort(bson.D{{Key: "ts", Value: 1}}))
			require.NoError(t, err)
			require.NoError(t, cur.All(context.Background(), &got))
			require.Len(t, got, 2)
			assert.Equal(t, first.ID, got[0]["_id"])
			assert.NotContains(t, got[0], "count", "one request: no count")
			assert.NotContains(t, got[0], "first_ts")
			assert.Equal(t, lastRepeat.ID, got[1]["_id"], "the newest repeat carries the count")
			assert.EqualValues(t, 50, got[1]["count"])
			assert.Equal(t, "/api/50", got[1]["path"])
			var folded wire.Event
			require.NoError(t, coll.FindOne(context.Background(), bson.D{{Key: "_id", Value: lastRepeat.ID}}).Decode(&folded))
			assert.Equal(t, now.Add(time.Millisecond), folded.FirstTS.UTC())
			bans, err := coll.CountDocuments(context.Background(), bson.D{{Key: "type", Value: "ban"}})
			require.NoError(t, err)
			assert.Equal(t, int64(3), bans, "bans are never folded")

			// The live stream carries the same five events.
			require.Eventually(t, func() bool {
				n, err := rdb.XLen(context.Background(), wire.StreamKey(prefix)).Result()
				return err == nil && n == 5
			}, 5*time.Second, 10*time.Millisecond)
			if !stopped {
				cancel()
				require.NoError(t, <-done)
			}
			assert.Zero(t, sink.Dropped())
		})
	}
}

func TestPublishNeverBlocks(t *testing.T) {
	t.Parallel()
	coll := testenv.Mongo(t).Collection("events")
	rdb, prefix := testenv.Redis(t)
	sink, err := events.NewSink(coll, rdb, prefix, events.Options{QueueSize: 2, BatchSize: 1, FlushInterval: time.Second, StreamMaxLen: 100}, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	// Not running: the queue fills, and the rest is counted, not waited for.
	for range 5 {
		sink.Publish(wire.Event{ID: events.NewID(time.Now())})
	}
	assert.Equal(t, int64(3), sink.Dropped())
}

func TestNewIDIsUniqueAndOrdered(t *testing.T) {
	t0 := time.Unix(1_800_000_000, 0)
	a, b := events.NewID(t0), events.NewID(t0)
	assert.NotEqual(t, a, b)
	assert.Less(t, events.NewID(t0), events.NewID(t0.Add(time.Hour)))
}

// MongoDB away: events go to the spool instead of growing memory; the next
// sink on the same spool (after a restart, or once MongoDB is back) writes
// them all, oldest first, exactly once.
func TestSpoolKeepsEventsThroughAnOutage(t *testing.T) {
	t.Parallel()
	rdb, prefix := testenv.Redis(t)
	dir := t.TempDir()
	// A queue of 16: while MongoDB is away, at most 16 events wait in
	// memory; the rest go to disk.
	opt := events.Options{QueueSize: 16, BatchSize: 4, FlushInterval: 10 * time.Millisecond, StreamMaxLen: 1000, SpoolDir: dir}

	deadClient, err := mongo.Connect(options.Client().ApplyURI("mongodb://127.0.0.1:1/").SetServerSelectionTimeout(50 * time.Millisecond))
	require.NoError(t, err)
	down, err := events.NewSink(deadClient.Database("x").Collection("events"), rdb, prefix, opt, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- down.Run(ctx) }()
	now := time.Now().UTC().Truncate(time.Millisecond)
	var ids []string
	for i := range 40 {
		id := fmt.Sprintf("ev-%02d", i)
		ids = append(ids, id)
		down.Publish(wire.Event{ID: id, TS: now.Add(time.Duration(i) * time.Millisecond), Type: wire.EventBan, IP: "203.0.113.9"})
		time.Sleep(10 * time.Millisecond) // each failed insert blocks the loop for the 50 ms server selection
	}
	require.Eventually(t, func() bool { return down.Spooled() >= 24 }, 10*time.Second, 10*time.Millisecond)
	cancel()
	require.NoError(t, <-done)
	assert.Zero(t, down.Dropped(), "nothing is lost while MongoDB is away")
	assert.Equal(t, int64(40), down.Spooled(), "everything waited on disk")

	coll := testenv.Mongo(t).Collection("events")
	up, err := events.NewSink(coll, rdb, prefix, opt, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	ctx2, cancel2 := context.WithCancel(context.Background())
	done2 := make(chan error, 1)
	go func() { done2 <- up.Run(ctx2) }()
	up.Publish(wire.Event{ID: "ev-40", TS: now.Add(time.Second), Type: wire.EventBan, IP: "203.0.113.9"})
	require.Eventually(t, func() bool {
		n, err := coll.CountDocuments(context.Background(), bson.D{})
		return err == nil && n == 41
	}, 10*time.Second, 20*time.Millisecond)
	cancel2()
	require.NoError(t, <-done2)

	cur, err := coll.Find(context.Background(), bson.D{}, options.Find().SetSort(bson.D{{Key: "ts", Value: 1}}))
	require.NoError(t, err)
	var got []wire.Event
	require.NoError(t, cur.All(context.Background(), &got))
	gotIDs := []string{}
	for _, ev := range got {
		gotIDs = append(gotIDs, ev.ID)
	}
	assert.Equal(t, append(ids, "ev-40"), gotIDs, "every event, once, in order")
	_, err = os.Stat(filepath.Join(dir, "events.jsonl"))
	assert.True(t, os.IsNotExist(err), "the spool is emptied once written")
}

// BenchmarkPipeline measures the sink end to end into the real MongoDB wire
// server and Redis: it publishes b.N distinct events (a full ban event each,
// with geo and reasons, so none is aggregated) as fast as the pipeline takes
// them, keeping at most half the queue in flight so that a pipeline that
// keeps up drops nothing, and stops the clock when MongoDB holds them all.
// It reports events/s and what was dropped.
func BenchmarkPipeline(b *testing.B) {
	coll := testenv.Mongo(b).Collection("events")
	rdb, prefix := testenv.Redis(b)
	ctx := context.Background()
	if err := events.EnsureIndexes(ctx, coll, 48*time.Hour); err != nil && !errors.Is(err, events.ErrNoTTL) {
		b.Fatal(err)
	}
	// The gateway's defaults (gateway/internal/config).
	opt := events.Options{QueueSize: 10000, BatchSize: 200, FlushInterval: 200 * time.Millisecond, StreamMaxLen: 10000}
	sink, err := events.NewSink(coll, rdb, prefix, opt, slog.New(slog.DiscardHandler))
	require.NoError(b, err)
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- sink.Run(runCtx) }()

	geo := &wire.Geo{Country: "GB", City: "London", Lat: 51.5, Lon: -0.12, ASN: 64500, Org: "Example Hosting"}
	reasons := []wire.Reason{{Feature: "burst", Value: 40, Contribution: 0.5}, {Feature: "rate", Value: 12, Contribution: 0.3}, {Feature: "user_agent", Value: 1, Contribution: 0.15}}
	base := time.Now().UTC()
	var last string
	b.ResetTimer()
	start := time.Now()
	for i := range b.N {
		for int64(i)-sink.Written() > int64(opt.QueueSize/2) {
			time.Sleep(100 * time.Microsecond)
		}
		now := base.Add(time.Duration(i) * time.Microsecond)
		last = events.NewID(now)
		sink.Publish(wire.Event{ID: last, TS: now, Type: wire.EventBan,
			IP: fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255), Geo: geo, Method: "GET", Host: "shop.example",
			Path: "/api/products/42", Route: "/api", Status: 403, Score: 0.93, Reasons: reasons,
			UserAgent: "python-requests/2.31", Gateway: "gw-1", RequestID: "req-0123456789"})
	}
	for sink.Written() < int64(b.N) && sink.Dropped() == 0 {
		time.Sleep(100 * time.Microsecond)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "events/s")
	b.ReportMetric(float64(sink.Dropped()), "dropped")
	cancel()
	require.NoError(b, <-done)
	if sink.Dropped() == 0 {
		// Counting is slow on FerretDB: check that the last event landed.
		require.NoError(b, coll.FindOne(ctx, bson.D{{Key: "_id", Value: last}}).Err())
	}
}
