package redistest_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/bulwarkgw/bulwark/shared/redistest"
)

// TestStartRedisSentinel: a failover client finds the master through the
// sentinels; after the master is killed the sentinels promote the replica,
// which has the data written before, and the same client writes to it.
func TestStartRedisSentinel(t *testing.T) {
	s := redistest.StartRedisSentinel(t)
	old := s.Master()
	require.Same(t, s.Servers[0], old)
	rdb := s.Client()
	ctx := context.Background()
	require.NoError(t, rdb.Set(ctx, "k", "before", 0).Err())
	require.NoError(t, rdb.Do(ctx, "WAIT", 1, 5000).Err(), "replicated")

	old.Kill()
	killed := time.Now()
	promoted := s.WaitFailover(old, 30*time.Second)
	t.Logf("master %s killed; the sentinels report %s as master after %v", old.Addr(), promoted.Addr(), time.Since(killed).Round(10*time.Millisecond))
	require.Same(t, s.Servers[1], promoted)
	require.Eventually(t, func() bool { return rdb.Set(ctx, "k2", "after", 0).Err() == nil }, 10*time.Second, 50*time.Millisecond)
	v, err := rdb.Get(ctx, "k").Result()
	require.NoError(t, err)
	require.Equal(t, "before", v)
	n, err := promoted.Client().Exists(ctx, "k2").Result()
	require.NoError(t, err)
	require.EqualValues(t, 1, n, "written to the new master")
}
