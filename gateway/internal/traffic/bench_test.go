package traffic_test

import (
	"context"
	"io/fs"
	"net/netip"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/bulwarkgw/bulwark/gateway/internal/testenv"
	"github.com/bulwarkgw/bulwark/gateway/internal/traffic"
	"github.com/bulwarkgw/bulwark/shared/wire"
)

// info reads one numeric field of a Redis INFO section; on a cluster, its
// sum over the masters.
func info(b *testing.B, rdb redis.UniversalClient, section, field string) float64 {
	b.Helper()
	if cc, ok := rdb.(*redis.ClusterClient); ok {
		var mu sync.Mutex
		sum := 0.0
		err := cc.ForEachMaster(context.Background(), func(ctx context.Context, node *redis.Client) error {
			v := info(b, node, section, field)
			mu.Lock()
			sum += v
			mu.Unlock()
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
		return sum
	}
	s, err := rdb.Info(context.Background(), section).Result()
	if err != nil {
		b.Fatal(err)
	}
	for _, l := range strings.Split(s, "\r\n") {
		if v, ok := strings.CutPrefix(l, field+":"); ok {
			f, _ := strconv.ParseFloat(v, 64)
			return f
		}
	}
	b.Fatalf("INFO %s has no %s", section, field)
	return 0
}

// BenchmarkObserve is the traffic store as make bench's legit load uses
// it: 32 concurrent requests from 50,000 distinct clients, each client
// coming back every few seconds of (simulated) time, through the batcher.
// It reports what the budget per request counts in Redis: its CPU
// (used_cpu_sys + used_cpu_user over the requests), the round trips, and
// the memory each tracked client costs (used_memory over the clients,
// Redis's table growth included). Other clients of the server count too:
// run it on a private one (make bench does).
func BenchmarkObserve(b *testing.B) {
	rdb, prefix := testenv.Redis(b)
	trips := &pipelines{}
	rdb.AddHook(trips)
	benchObserve(b, rdb, prefix, trips)
}

// BenchmarkObserveCluster is BenchmarkObserve on a private 3-master
// 3-replica Redis Cluster: the same requests, each batch split into one
// pipeline per master (round-trips/op counts those), the CPU and memory
// summed over the masters.
func BenchmarkObserveCluster(b *testing.B) {
	rdb := testenv.StartRedisCluster(b).Client()
	trips := &pipelines{}
	rdb.OnNewNode(func(node *redis.Client) { node.AddHook(trips) })
	benchObserve(b, rdb, "bench:", trips)
}

func benchObserve(b *testing.B, rdb redis.UniversalClient, prefix string, trips *pipelines) {
	s, err := traffic.New(rdb, prefix)
	if err != nil {
		b.Fatal(err)
	}
	const clients, workers = 50_000, 32
	ip := func(i int) netip.Addr { return netip.AddrFrom4([4]byte{10, 200 + byte(i>>16), byte(i >> 8), byte(i)}) }
	b.Cleanup(func() { // faster than testenv's key-by-key cleanup
		for from := 0; from < clients; from += 1000 {
			_, _ = rdb.Pipelined(context.Background(), func(p redis.Pipeliner) error {
				for i := from; i < min(from+1000, clients); i++ {
					p.Unlink(context.Background(), wire.ClientKey(prefix, ip(i)))
				}
				return nil
			})
		}
	})
	ctx := context.Background()
	t0 := time.Now()
	mem0 := info(b, rdb, "memory", "used_memory")
	cpu0 := info(b, rdb, "cpu", "used_cpu_sys") + info(b, rdb, "cpu", "used_cpu_user")
	trips.n.Store(0)
	var next atomic.Int64
	b.ResetTimer()
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= int64(b.N) {
					return
				}
				// 4,000 requests per simulated second: a client every 12.5 s.
				now := t0.Add(time.Duration(i) * 250 * time.Microsecond)
				if _, err := s.Observe(ctx, ip(int(i%clients)), now, root); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	cpu := info(b, rdb, "cpu", "used_cpu_sys") + info(b, rdb, "cpu", "used_cpu_user") - cpu0
	b.ReportMetric(cpu*1e6/float64(b.N), "redis-µs/op")
	b.ReportMetric(float64(trips.n.Load())/float64(b.N), "round-trips/op")
	if tracked := min(b.N, clients); tracked == clients {
		b.ReportMetric((info(b, rdb, "memory", "used_memory")-mem0)/float64(tracked), "redis-B/client")
	}
}

// BenchmarkObserveAOF is what the recommended deployment's append-only
// file (appendonly yes, appendfsync everysec) costs: the bytes it grows
// per request (every request rewrites its client's state), on a private
// redis-server with automatic rewrites off, 50,000 clients.
func BenchmarkObserveAOF(b *testing.B) {
	srv := testenv.StartRedisServer(b, "--appendonly", "yes", "--appendfsync", "everysec", "--auto-aof-rewrite-percentage", "0")
	rdb := srv.Client()
	s, err := traffic.New(rdb, "bench:")
	if err != nil {
		b.Fatal(err)
	}
	aof := func() int64 {
		var n int64
		_ = filepath.WalkDir(filepath.Join(srv.Dir, "appendonlydir"), func(_ string, d fs.DirEntry, _ error) error {
			if fi, err := d.Info(); err == nil && !d.IsDir() {
				n += fi.Size()
			}
			return nil
		})
		return n
	}
	ctx := context.Background()
	t0 := time.Now()
	ip := func(i int) netip.Addr { return netip.AddrFrom4([4]byte{10, 200 + byte(i>>16), byte(i >> 8), byte(i)}) }
	size0 := aof()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if _, err := s.Observe(ctx, ip(i%50_000), t0.Add(time.Duration(i)*250*time.Microsecond), root); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	// Redis writes the file before it answers (everysec only delays the
	// fsync), so its size is up to date.
	b.ReportMetric(float64(aof()-size0)/float64(b.N), "aof-B/op")
}

// BenchmarkAnswer is what the outcome step's extra round trip costs for an
// HTML answer (RecordPage) or an extensionless asset (CountAsAsset): 32
// concurrent calls through the batcher on 1,000 clients observed first,
// with the Redis CPU each costs (as BenchmarkObserve: run it on a private
// server).
func BenchmarkAnswer(b *testing.B) {
	rdb, prefix := testenv.Redis(b)
	s, err := traffic.New(rdb, prefix)
	if err != nil {
		b.Fatal(err)
	}
	const clients, workers = 1000, 32
	ip := func(i int) netip.Addr { return netip.AddrFrom4([4]byte{10, 210, byte(i >> 8), byte(i)}) }
	ctx := context.Background()
	t0 := time.Now()
	for i := range clients {
		if _, err := s.Observe(ctx, ip(i), t0, root); err != nil {
			b.Fatal(err)
		}
	}
	for _, what := range []string{"page", "asset"} {
		b.Run(what, func(b *testing.B) {
			cpu0 := info(b, rdb, "cpu", "used_cpu_sys") + info(b, rdb, "cpu", "used_cpu_user")
			var next atomic.Int64
			b.ResetTimer()
			var wg sync.WaitGroup
			for range workers {
				wg.Go(func() {
					for {
						i := next.Add(1) - 1
						if i >= int64(b.N) {
							return
						}
						var err error
						if what == "page" {
							err = s.RecordPage(ctx, ip(int(i%clients)), t0)
						} else {
							err = s.CountAsAsset(ctx, ip(int(i%clients)), t0)
						}
						if err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			b.StopTimer()
			cpu := info(b, rdb, "cpu", "used_cpu_sys") + info(b, rdb, "cpu", "used_cpu_user") - cpu0
			b.ReportMetric(cpu*1e6/float64(b.N), "redis-µs/op")
		})
	}
}
