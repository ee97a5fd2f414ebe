//go:build unix

package events_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/bulwarkgw/bulwark/gateway/internal/events"
	"github.com/bulwarkgw/bulwark/gateway/internal/testenv"
	"github.com/bulwarkgw/bulwark/shared/wire"
)

// BenchmarkPipeline measures the sink end to end into the real MongoDB wire
// server and Redis: it publishes b.N distinct events (a full ban event each,
// with geo and reasons, so none is folded) as fast as the pipeline takes
// them, keeping at most half the queue in flight so that a pipeline that
// keeps up drops nothing, and stops the clock when MongoDB holds them all.
// It reports events/s, what was dropped, and the CPU this process (the
// sink, the driver, the publishing loop) spent per event: the server's own
// cost is not in it.
func BenchmarkPipeline(b *testing.B) {
	coll := testenv.Mongo(b).Collection("events")
	rdb, prefix := testenv.Redis(b)
	ctx := context.Background()
	if err := events.EnsureIndexes(ctx, coll, 48*time.Hour); err != nil && !errors.Is(err, events.ErrNoTTL) {
		b.Fatal(err)
	}
	// The gateway's defaults (gateway/internal/config).
	opt := events.Options{QueueSize: 10000, BatchSize: 200, FlushInterval: 200 * time.Millisecond, StreamMaxLen: 10000, AggregateWindow: time.Second}
	sink, err := events.NewSink(coll, rdb, prefix, opt, slog.New(slog.DiscardHandler))
	require.NoError(b, err)
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- sink.Run(runCtx) }()

	geo := &wire.Geo{Country: "GB", City: "London", Lat: 51.5, Lon: -0.12, ASN: 64500, Org: "Example Hosting"}
	reasons := []wire.Reason{{Feature: "burst", Value: 40, Contribution: 0.5}, {Feature: "rate", Value: 12, Contribution: 0.3}, {Feature: "user_agent", Value: 1, Contribution: 0.15}}
	base := time.Now().UTC()
	var last string
	cpu0 := cpuTime()
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
	b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(b.N), "client-µs/event")
	cancel()
	require.NoError(b, <-done)
	if sink.Dropped() == 0 {
		// Counting is slow on FerretDB: check that the last event landed.
		require.NoError(b, coll.FindOne(ctx, bson.D{{Key: "_id", Value: last}}).Err())
	}
}

// cpuTime is the CPU this process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkPublishFolded is what Publish costs the request path while 1000
// clients hammer the gateway: every event but a client's first is folded
// (no server is needed: nothing is written).
func BenchmarkPublishFolded(b *testing.B) {
	mc, err := mongo.Connect(options.Client().ApplyURI("mongodb://127.0.0.1:1/"))
	require.NoError(b, err)
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	sink, err := events.NewSink(mc.Database("x").Collection("events"), rdb, "bench:", events.Options{QueueSize: 10000, BatchSize: 200,
		FlushInterval: time.Second, StreamMaxLen: 10000, AggregateWindow: time.Hour}, slog.New(slog.DiscardHandler))
	require.NoError(b, err)
	ips := make([]string, 1000)
	for i := range ips {
		ips[i] = fmt.Sprintf("203.0.%d.%d", i/256, i%256)
	}
	var next atomic.Int64
	now := time.Now().UTC()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := next.Add(1)
			sink.Publish(wire.Event{ID: "x", TS: now, Type: wire.EventThrottle, IP: ips[i%int64(len(ips))], Route: "/api", Path: "/api/products", Status: 429, Score: 0.6})
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(sink.Folded())/float64(b.N), "folded/op")
}
