package testenv

import (
	"testing"

	"github.com/bulwarkgw/bulwark/shared/redistest"
)

// Private Redis servers and clusters live in shared/redistest, so the
// whole-stack tests in deploy/e2e start them the same way; these names
// keep the gateway's tests as they were.
type (
	RedisServer   = redistest.RedisServer
	RedisCluster  = redistest.RedisCluster
	RedisSentinel = redistest.RedisSentinel
)

// StartRedisServer is redistest.StartRedisServer.
func StartRedisServer(t testing.TB, args ...string) *RedisServer {
	t.Helper()
	return redistest.StartRedisServer(t, args...)
}

// StartRedisCluster is redistest.StartRedisCluster.
func StartRedisCluster(t testing.TB) *RedisCluster {
	t.Helper()
	return redistest.StartRedisCluster(t)
}

// StartRedisSentinel is redistest.StartRedisSentinel.
func StartRedisSentinel(t testing.TB) *RedisSentinel {
	t.Helper()
	return redistest.StartRedisSentinel(t)
}
