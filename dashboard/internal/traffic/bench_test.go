package traffic_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/bulwarkgw/bulwark/dashboard/internal/testenv"
)

// redisMicros reads the Redis CPU time (µs) all commands have taken so far,
// from INFO commandstats. Other clients of the server count too: run the
// benchmark alone.
func redisMicros(b *testing.B, rdb redis.UniversalClient) float64 {
	b.Helper()
	info, err := rdb.Info(context.Background(), "commandstats").Result()
	if err != nil {
		b.Fatal(err)
	}
	var total float64
	for _, line := range strings.Split(info, "\r\n") {
		_, stats, ok := strings.Cut(line, ":")
		if !ok || !strings.HasPrefix(line, "cmdstat_") {
			continue
		}
		for _, kv := range strings.Split(stats, ",") {
			if v, ok := strings.CutPrefix(kv, "usec="); ok {
				n, _ := strconv.ParseFloat(v, 64)
				total += n
			}
		}
	}
	return total
}

// BenchmarkListBans lists 50 bans with and without 100,000 other clients
// tracked in Redis: the time and the Redis CPU per listing stay the same.
func BenchmarkListBans(b *testing.B) {
	for _, n := range []int{0, 100_000} {
		b.Run(fmt.Sprintf("clients=%d", n), func(b *testing.B) {
			rdb, prefix := testenv.Redis(b)
			now := time.Now()
			for i := range 50 {
				ban(b, rdb, prefix, fmt.Sprintf("203.0.113.%d", i+1), "score 0.9", time.Duration(i+1)*time.Minute, now)
			}
			clients(b, rdb, prefix, n)
			s := newStore(b, rdb, prefix)
			ctx := context.Background()
			rec := &recorder{}
			rdb.AddHook(rec)
			before := redisMicros(b, rdb)
			rec.take()
			b.ResetTimer()
			for b.Loop() {
				bans, err := s.List(ctx, now)
				if err != nil || len(bans) != 50 {
					b.Fatalf("listed %d bans: %v", len(bans), err)
				}
			}
			b.StopTimer()
			cmds := len(rec.take())
			b.ReportMetric(float64(cmds)/float64(b.N), "cmds/op")
			b.ReportMetric((redisMicros(b, rdb)-before)/float64(b.N), "redis-µs/op")
		})
	}
}
