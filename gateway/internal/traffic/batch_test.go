package traffic_test

import (
	"context"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulwarkgw/bulwark/gateway/internal/testenv"
	"github.com/bulwarkgw/bulwark/gateway/internal/traffic"
)

// pipelines counts the round trips a client makes.
type pipelines struct{ n atomic.Int64 }

func (p *pipelines) DialHook(next redis.DialHook) redis.DialHook { return next }
func (p *pipelines) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error { p.n.Add(1); return next(ctx, cmd) }
}
func (p *pipelines) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error { p.n.Add(1); return next(ctx, cmds) }
}

var _ redis.Hook = (*pipelines)(nil)

// TestConcurrentRequestsShareRoundTrips: 400 requests from 400 clients at
// once are each counted exactly, in fewer round trips than requests.
func TestConcurrentRequestsShareRoundTrips(t *testing.T) {
	t.Parallel()
	rdb, prefix := testenv.Redis(t)
	trips := &pipelines{}
	rdb.AddHook(trips)
	s, err := traffic.New(rdb, prefix)
	require.NoError(t, err)
	ctx := context.Background()
	now := time.Unix(1_800_000_900, 0)
	const clients = 400
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range clients {
		wg.Go(func() {
			<-start
			ip := netip.AddrFrom4([4]byte{10, 9, byte(i >> 8), byte(i)})
			for j := range 3 {
				o, err := s.Observe(ctx, ip, now.Add(time.Duration(j)*time.Millisecond), root)
				if assert.NoError(t, err) {
					assert.Equal(t, int64(j+1), o.Count1s)
				}
			}
		})
	}
	close(start)
	wg.Wait()
	assert.Less(t, trips.n.Load(), int64(3*clients), "concurrent requests are batched")
	t.Logf("%d requests in %d round trips", 3*clients, trips.n.Load())
}
