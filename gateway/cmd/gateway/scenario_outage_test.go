package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// redisServer runs a private redis-server on a fixed port so the test can
// stop it and start it again.
type redisServer struct {
	t    *testing.T
	port string
	cmd  *exec.Cmd
}

func (r *redisServer) start() {
	r.cmd = exec.Command("redis-server", "--port", r.port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", r.t.TempDir())
	require.NoError(r.t, r.cmd.Start())
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:" + r.port})
	defer rdb.Close()
	require.Eventually(r.t, func() bool { return rdb.Ping(context.Background()).Err() == nil }, 10*time.Second, 20*time.Millisecond)
}

func (r *redisServer) stop() {
	_ = r.cmd.Process.Kill()
	_ = r.cmd.Wait()
}

// Redis goes away and comes back: fail-open keeps serving and keeps
// enforcing the rate limit with the instance's local limiter, and the
// gateway returns to Redis by itself.
func TestRedisOutageDegradesAndRecovers(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("redis-server"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("redis-server not on PATH: make test installs it")
		}
		t.Skip("redis-server not on PATH: make test installs it")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := fmt.Sprint(ln.Addr().(*net.TCPAddr).Port)
	ln.Close()
	rs := &redisServer{t: t, port: port}
	rs.start()
	t.Cleanup(rs.stop)

	cfg := strings.Replace(proxyConfig, "rate_limit: {requests_per_minute: 5, window: 3s}", "rate_limit: {requests_per_minute: 5, window: 60s}", 1)
	s := startStack(t, cfg, "BULWARK_REDIS_URL", "redis://127.0.0.1:"+port+"/0")
	c := s.from("127.0.0.87")
	require.Equal(t, http.StatusOK, c.get("/api/x").Code)

	rs.stop()
	for i := range 5 {
		assert.Equal(t, http.StatusOK, c.get("/api/x").Code, "Redis down, request %d: fail open forwards", i+1)
	}
	assert.Equal(t, http.StatusTooManyRequests, c.get("/api/x").Code, "the local limiter still enforces the limit")
	assert.Equal(t, http.StatusOK, s.from("127.0.0.88").get("/api/x").Code, "per client")

	rs.start()
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:" + port})
	defer rdb.Close()
	assert.Eventually(t, func() bool {
		if c2 := s.from("127.0.0.89").get("/api/x"); c2.Code != http.StatusOK {
			return false
		}
		n, err := rdb.Exists(context.Background(), s.prefix+"rl:ip:{127.0.0.89}").Result()
		return err == nil && n == 1
	}, 10*time.Second, 100*time.Millisecond, "limits are back in Redis without a restart")
}
