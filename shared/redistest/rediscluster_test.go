package redistest_test

import (
	"context"
	"strings"
	"testing"

	"github.com/bulwarkgw/bulwark/shared/redistest"
	"github.com/stretchr/testify/require"
)

// TestStartRedisCluster: three masters, three replicas, every slot served,
// keys of different slots written through one client, and a cross-slot
// MSET refused as a real cluster refuses it.
func TestStartRedisCluster(t *testing.T) {
	c := redistest.StartRedisCluster(t)
	rdb := c.Client()
	ctx := context.Background()
	nodes, err := rdb.ClusterNodes(ctx).Result()
	require.NoError(t, err)
	require.Equal(t, 3, strings.Count(nodes, "master"), nodes)
	require.Equal(t, 3, strings.Count(nodes, "slave"), nodes)
	for _, k := range []string{"a", "b", "c", "{x}1", "{x}2"} {
		require.NoError(t, rdb.Set(ctx, k, k, 0).Err())
	}
	require.NoError(t, rdb.Do(ctx, "MSET", "{x}1", "1", "{x}2", "2").Err(), "one slot")
	err = rdb.Do(ctx, "MSET", "a", "1", "b", "2").Err()
	require.ErrorContains(t, err, "CROSSSLOT")
}
