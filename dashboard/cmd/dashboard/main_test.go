package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulwarkgw/bulwark/dashboard/internal/testenv"
	"github.com/bulwarkgw/bulwark/shared/wire"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestLoad(t *testing.T) {
	t.Parallel()
	s, err := load([]string{"dashboard"}, env(map[string]string{
		"BULWARK_DASHBOARD_ADMIN_TOKEN": "0123456789abcdef",
		"BULWARK_DASHBOARD_USER":        "ops", "BULWARK_DASHBOARD_PASSWORD": "pw",
		"BULWARK_DASHBOARD_ORIGINS": " https://ops.example , http://localhost:5173",
		"BULWARK_COST_PER_REQUEST":  "0.02",
	}))
	require.NoError(t, err)
	assert.Equal(t, []string{"https://ops.example", "http://localhost:5173"}, s.origins)
	assert.Equal(t, 0.02, s.cost)
	assert.Equal(t, ":8082", s.listen)

	for _, tc := range []struct {
		name string
		env  map[string]string
		want string
	}{
		{"short admin token", map[string]string{"BULWARK_DASHBOARD_ADMIN_TOKEN": "short"}, "BULWARK_DASHBOARD_ADMIN_TOKEN"},
		{"user without password", map[string]string{"BULWARK_DASHBOARD_USER": "ops"}, "BULWARK_DASHBOARD_PASSWORD"},
		{"origin with a path", map[string]string{"BULWARK_DASHBOARD_ORIGINS": "https://ops.example/x"}, "BULWARK_DASHBOARD_ORIGINS"},
		{"origin without a scheme", map[string]string{"BULWARK_DASHBOARD_ORIGINS": "ops.example"}, "BULWARK_DASHBOARD_ORIGINS"},
		{"negative cost", map[string]string{"BULWARK_COST_PER_REQUEST": "-1"}, "BULWARK_COST_PER_REQUEST"},
		{"redis url scheme", map[string]string{"BULWARK_REDIS_URL": "http://r:1"}, "BULWARK_REDIS_URL: scheme must be redis or rediss"},
		{"redis cluster with a database", map[string]string{"BULWARK_REDIS_URL": "redis://a:1/3?addr=b:2"}, "BULWARK_REDIS_URL: a cluster has only database 0"},
		{"redis cluster", map[string]string{"BULWARK_REDIS_URL": "redis://a:1?addr=b:2&addr=c:3"}, ""},
		{"redis sentinel", map[string]string{"BULWARK_REDIS_URL": "redis://s:26379?master_name=mymaster&addr=t:26379"}, ""},
		{"empty prefix", map[string]string{"BULWARK_REDIS_PREFIX": ""}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := load([]string{"dashboard"}, env(tc.env))
			if tc.want == "" {
				assert.NoError(t, err)
				return
			}
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncBuf) String() string              { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// TestRunServesAndStops starts the whole dashboard against the test servers
// and stops it by cancelling its context.
func TestRunServesAndStops(t *testing.T) {
	t.Parallel()
	redisURL, mongoURI := testenv.RedisURL(t), testenv.MongoURI(t)
	ns := testenv.Namespace(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	ln.Close()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := &syncBuf{}
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"dashboard", "-listen", addr}, env(map[string]string{
			"BULWARK_REDIS_URL": redisURL, "BULWARK_REDIS_PREFIX": ns + ":",
			"BULWARK_MONGO_URI": mongoURI, "BULWARK_MONGO_DB": ns,
		}), out)
	}()
	require.Eventually(t, func() bool {
		resp, err := http.Get("http://" + addr + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, 10*time.Second, 20*time.Millisecond, "not healthy:\n%s", out)

	resp, err := http.Post("http://"+addr+"/api/bans/203.0.113.1/unban", "application/json", nil)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusForbidden, resp.StatusCode, "read-only without an admin token")

	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(15 * time.Second):
		t.Fatal("run did not return after cancel")
	}
	assert.True(t, strings.Contains(out.String(), `"read_only":true`), out.String())
}

// TestRunListsBans starts the dashboard, finds a gateway's ban (its key and
// index entry) in the frame a browser gets, unbans it and sees it leave
// both Redis and the frames.
func TestRunListsBans(t *testing.T) {
	t.Parallel()
	rdb, prefix := testenv.Redis(t)
	mongoURI := testenv.MongoURI(t)
	ns := testenv.Namespace(t)
	ctx := context.Background()
	ip := "203.0.113.9"
	_, err := rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, wire.BanKey(prefix, netip.MustParseAddr(ip)), "score 0.95", 10*time.Minute)
		p.ZAdd(ctx, wire.BanIndexKey(prefix), redis.Z{Score: float64(time.Now().Add(10 * time.Minute).UnixMilli()), Member: ip})
		return nil
	})
	require.NoError(t, err)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	ln.Close()
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	out := &syncBuf{}
	done := make(chan error, 1)
	const token = "0123456789abcdef"
	go func() {
		done <- run(rctx, []string{"dashboard", "-listen", addr}, env(map[string]string{
			"BULWARK_REDIS_URL": testenv.RedisURL(t), "BULWARK_REDIS_PREFIX": prefix,
			"BULWARK_MONGO_URI": mongoURI, "BULWARK_MONGO_DB": ns,
			"BULWARK_DASHBOARD_ADMIN_TOKEN": token,
		}), out)
	}()
	// bans returns the bans in the frame a joining browser gets.
	bans := func() []wire.Ban {
		c, _, err := websocket.DefaultDialer.Dial("ws://"+addr+"/ws", nil)
		if err != nil {
			return nil
		}
		defer c.Close()
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		var f wire.StatsFrame
		if _, msg, err := c.ReadMessage(); err != nil || json.Unmarshal(msg, &f) != nil {
			return nil
		}
		return f.Bans
	}
	require.Eventually(t, func() bool {
		b := bans()
		return len(b) == 1 && b[0].IP == ip && b[0].Reason == "score 0.95"
	}, 10*time.Second, 50*time.Millisecond, "the ban is not listed:\n%s", out)

	req, err := http.NewRequest(http.MethodPost, "http://"+addr+"/api/bans/"+ip+"/unban", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	for _, k := range []string{wire.BanKey(prefix, netip.MustParseAddr(ip)), wire.BanIndexKey(prefix)} { // two slots on a cluster
		n, err := rdb.Exists(ctx, k).Result()
		require.NoError(t, err)
		assert.Zero(t, n, "the ban key and the index are gone: %s", k)
	}
	require.Eventually(t, func() bool { return len(bans()) == 0 }, 10*time.Second, 50*time.Millisecond)

	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(15 * time.Second):
		t.Fatal("run did not return after cancel")
	}
}
