package events_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
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
	var logs bytes.Buffer
	sink, err := events.NewSink(coll, rdb, prefix, events.Options{QueueSize: 2, BatchSize: 1, FlushInterval: time.Second, StreamMaxLen: 100}, slog.New(slog.NewJSONHandler(&logs, nil)))
	require.NoError(t, err)
	// Not running: the queue fills, and the rest is counted, not waited for.
	for range 5 {
		sink.Publish(wire.Event{ID: events.NewID(time.Now())})
	}
	assert.Equal(t, int64(3), sink.Dropped())
	assert.Equal(t, int64(3), sink.StreamDropped())
	// The first drop is logged at once; the next ones within 10 s are not.
	assert.Equal(t, 1, strings.Count(logs.String(), `"msg":"events dropped: the queue is full"`), logs.String())
	assert.Contains(t, logs.String(), `"dropped_total":1`)
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
	assert.Empty(t, spoolFiles(t, dir), "the spool is emptied once written")
}

// MongoDB that accepts connections but never answers: every writer hangs
// on its batch. A burst far larger than the queue is spilled to the spool
// instead of being dropped.
func TestSpoolTakesWhatTheWritersCannot(t *testing.T) {
	t.Parallel()
	rdb, prefix := testenv.Redis(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close() // held open, never answered
		}
	}()
	silent, err := mongo.Connect(options.Client().ApplyURI("mongodb://" + ln.Addr().String() + "/").SetServerSelectionTimeout(3 * time.Second))
	require.NoError(t, err)
	dir := t.TempDir()
	sink, err := events.NewSink(silent.Database("x").Collection("events"), rdb, prefix, events.Options{QueueSize: 64, BatchSize: 8,
		FlushInterval: 10 * time.Millisecond, StreamMaxLen: 1000, Writers: 2, SpoolDir: dir}, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- sink.Run(ctx) }()
	for i := range 200 {
		sink.Publish(wire.Event{ID: fmt.Sprintf("ev-%03d", i), Type: wire.EventBan, IP: "203.0.113.9"})
		if i%4 == 3 {
			time.Sleep(time.Millisecond) // about 4000 a second
		}
	}
	require.Eventually(t, func() bool { return sink.Spooled() >= 150 }, 2*time.Second, 5*time.Millisecond, "spilled while the writers hang")
	assert.Zero(t, sink.Written())
	cancel()
	require.NoError(t, <-done)
	assert.Zero(t, sink.Dropped())
	assert.Equal(t, int64(200), sink.Spooled(), "at shutdown the rest joins them")
}

// After a long outage the spool holds a large backlog. Replaying it must
// not stop the sink from taking new events: they are written (or spooled)
// meanwhile, none is dropped, and the backlog lands too. The backlog here is
// the single spool file of earlier versions, which is replayed first.
func TestSpoolReplayDoesNotStopNewEvents(t *testing.T) {
	t.Parallel()
	coll := testenv.Mongo(t).Collection("events")
	rdb, prefix := testenv.Redis(t)
	dir := t.TempDir()
	const backlog, fresh = 3000, 300
	now := time.Now().UTC().Truncate(time.Millisecond)
	var lines []byte
	for i := range backlog {
		b, err := json.Marshal(wire.Event{ID: fmt.Sprintf("old-%04d", i), TS: now.Add(time.Duration(i) * time.Millisecond), Type: wire.EventBan, IP: "203.0.113.9",
			Reasons: []wire.Reason{{Feature: "burst", Value: 40, Contribution: 0.9}}})
		require.NoError(t, err)
		lines = append(append(lines, b...), '\n')
	}
	require.NoError(t, os.WriteFile(filepath.Join(dir, "events.jsonl"), lines, 0o600))

	// A queue of 16: a writer loop that stopped to replay would overflow it
	// within milliseconds.
	sink, err := events.NewSink(coll, rdb, prefix, events.Options{QueueSize: 16, BatchSize: 50, FlushInterval: 10 * time.Millisecond,
		StreamMaxLen: 10000, SpoolDir: dir}, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- sink.Run(ctx) }()
	for i := range fresh {
		sink.Publish(wire.Event{ID: fmt.Sprintf("new-%04d", i), TS: now.Add(time.Hour + time.Duration(i)*time.Millisecond), Type: wire.EventBan, IP: "203.0.113.10"})
		time.Sleep(time.Millisecond)
	}
	require.Eventually(t, func() bool { return sink.Written() >= backlog+fresh }, 60*time.Second, 50*time.Millisecond)
	cancel()
	require.NoError(t, <-done)
	assert.Zero(t, sink.Dropped(), "no event is dropped while the backlog is replayed")
	n, err := coll.CountDocuments(context.Background(), bson.D{})
	require.NoError(t, err)
	assert.Equal(t, int64(backlog+fresh), n, "every event once")
	assert.Empty(t, spoolFiles(t, dir))
}

func spoolFiles(t *testing.T, dir string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.jsonl"))
	require.NoError(t, err)
	return files
}
