package main

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/bulwarkgw/bulwark/gateway/internal/testenv"
	"github.com/bulwarkgw/bulwark/shared/wire"
)

// One client hammering the gateway makes a bounded number of events (one
// per aggregation window, plus the first), and no refused request is lost:
// the request counters count each, and the events' counts add up to them.
func TestHammeringClientMakesBoundedEvents(t *testing.T) {
	t.Parallel()
	const window = 200 * time.Millisecond
	s := startStack(t, `
routes:
  - {path: /svc/, upstream: "{{U3}}"}
scorer: {enabled: false}
rate_limit: {requests_per_minute: 5, window: 60s}
events: {aggregate_window: 200ms, flush_interval: 10ms}
`)
	c := s.from("127.0.0.95")
	start := time.Now()
	refused := 0
	for range 300 {
		if c.get("/svc/x").Code == http.StatusTooManyRequests {
			refused++
		}
	}
	took := time.Since(start)
	require.Equal(t, 295, refused)

	require.Eventually(t, func() bool {
		n, err := s.rdb.HGet(context.Background(), wire.StatsTotalKey(s.prefix), wire.StatThrottled).Int()
		return err == nil && n == refused
	}, 5*time.Second, 50*time.Millisecond, "the request counters count every refusal")

	mc, err := mongo.Connect(options.Client().ApplyURI(testenv.MongoURI(t)))
	require.NoError(t, err)
	t.Cleanup(func() { _ = mc.Disconnect(context.Background()) })
	coll := mc.Database(s.env["BULWARK_MONGO_DB"]).Collection("events")
	var evs []wire.Event
	require.Eventually(t, func() bool {
		cur, err := coll.Find(context.Background(), bson.D{{Key: "ip", Value: "127.0.0.95"}})
		if err != nil {
			return false
		}
		evs = nil
		if cur.All(context.Background(), &evs) != nil {
			return false
		}
		n := 0
		for _, ev := range evs {
			n += max(ev.Count, 1)
		}
		return n == refused
	}, 10*time.Second, 100*time.Millisecond, "the events' counts add up to the refusals")
	for _, ev := range evs {
		assert.Equal(t, wire.EventThrottle, ev.Type)
	}
	bound := 2 + int(took/window)
	assert.LessOrEqual(t, len(evs), bound, "%d refusals in %s: at most one event per window and the first", refused, took)
	t.Logf("%d refusals in %s: %d events", refused, took.Round(time.Millisecond), len(evs))
}
