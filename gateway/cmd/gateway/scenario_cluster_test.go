package main

// Issue 14: several gateways on one Redis Cluster (3 masters, 3 replicas,
// started by the test) share one ban list and one rate limit, whatever
// gateway a client hits.

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulwarkgw/bulwark/gateway/internal/testenv"
)

const clusterConfig = `
routes:
  - {path: /api/, upstream: "{{U1}}"}
scorer: {enabled: false}
admin: {username: admin, password: s3cret}
rate_limit: {requests_per_minute: 5, window: 60s}
`

// startCluster starts a private Redis Cluster and n gateways on it with one
// key prefix, as n replicas of one deployment behind a load balancer.
func startCluster(t *testing.T, n int, cfg string) []*stack {
	t.Helper()
	c := testenv.StartRedisCluster(t)
	prefix := testenv.Namespace(t) + ":"
	rdb := c.Client()
	var gws []*stack
	for i := range n {
		s := startStack(t, cfg, "BULWARK_REDIS_URL", c.URL(), "BULWARK_REDIS_PREFIX", prefix,
			"BULWARK_GATEWAY_ID", fmt.Sprintf("gw-%d", i+1))
		s.rdb, s.prefix = rdb, prefix // the cluster's, not the shared test Redis
		gws = append(gws, s)
	}
	return gws
}

func TestClusterThreeGatewaysOneRateLimit(t *testing.T) {
	t.Parallel()
	gws := startCluster(t, 3, clusterConfig)
	// Round robin over the gateways: the five allowed requests count down
	// one budget, and the sixth is refused by whichever gateway gets it.
	for i := range 5 {
		r := gws[i%3].from("127.0.0.90").get("/api/x")
		require.Equal(t, http.StatusOK, r.Code, "request %d on gw-%d: %s", i+1, i%3+1, r.Body)
		assert.Equal(t, strconv.Itoa(4-i), r.Header.Get("RateLimit-Remaining"), "request %d on gw-%d", i+1, i%3+1)
	}
	for i, gw := range gws {
		r := gw.from("127.0.0.90").get("/api/x")
		assert.Equal(t, http.StatusTooManyRequests, r.Code, "gw-%d: the budget spent on the others", i+1)
	}
	assert.Equal(t, http.StatusOK, gws[2].from("127.0.0.91").get("/api/x").Code, "another client has its own budget")
	keys, err := testenv.Keys(t.Context(), gws[0].rdb, gws[0].prefix+"rl:*")
	require.NoError(t, err)
	assert.NotEmpty(t, keys, "the budget lives in the cluster")
}

func TestClusterThreeGatewaysOneBanList(t *testing.T) {
	t.Parallel()
	gws := startCluster(t, 3, clusterConfig)
	for i, ip := range []string{"127.0.0.92", "127.0.0.93", "127.0.0.94"} {
		r := gws[i].adminPost("/v1/admin/bans", `{"ip":"`+ip+`","ttl":"1h","reason":"from gw-`+strconv.Itoa(i+1)+`"}`)
		require.Equal(t, http.StatusCreated, r.Code, r.Body)
	}
	want := map[string]string{"127.0.0.92": "from gw-1", "127.0.0.93": "from gw-2", "127.0.0.94": "from gw-3"}
	for i, gw := range gws {
		assert.Equal(t, want, gw.bansListed(t), "gw-%d lists every gateway's bans", i+1)
		for ip := range want {
			assert.Equal(t, http.StatusForbidden, gw.from(ip).get("/api/x").Code, "gw-%d enforces the ban on %s", i+1, ip)
		}
	}
	// Lifted on one gateway, lifted everywhere.
	require.Equal(t, http.StatusOK, gws[1].adminDelete("/v1/admin/bans/127.0.0.92").Code)
	for i, gw := range gws {
		assert.Equal(t, http.StatusOK, gw.from("127.0.0.92").get("/api/x").Code, "gw-%d", i+1)
		assert.NotContains(t, gw.bansListed(t), "127.0.0.92", "gw-%d", i+1)
	}
	n, err := gws[0].rdb.Exists(t.Context(), gws[0].prefix+"{127.0.0.93}:ban").Result()
	require.NoError(t, err)
	assert.EqualValues(t, 1, n, "the ban lives in the cluster")
}

// A login's consecutive failures are counted once across the gateways:
// one failure through each of three gateways locks the login on all of
// them, the lock refuses even the right password without calling the
// backend, and it stays on the login, not on the addresses.
func TestClusterThreeGatewaysOneLoginLock(t *testing.T) {
	t.Parallel()
	cfg := strings.Replace(loginConfig, "login: {rate: 2, interval: 1s}\n  password: {rate: 3, interval: 1s}\n  ip: {rate: 4, interval: 1s}", "login: {rate: 0}\n  password: {rate: 0}\n  ip: {rate: 0}", 1)
	cfg = strings.Replace(cfg, "block: 2s", "block: 1h", 1)
	gws := startCluster(t, 3, cfg)
	for _, gw := range gws {
		twoUsers(gw.u1)
	}
	for i, gw := range gws {
		r := gw.from("127.0.0."+strconv.Itoa(31+i)).postJSON("/auth", `{"username":"u","password":"wrong"}`)
		require.Equal(t, http.StatusUnauthorized, r.Code, "failure %d, through gw-%d", i+1, i+1)
	}
	for i, gw := range gws {
		before := gw.u1.count("/auth")
		r := gw.from("127.0.0.35").postJSON("/auth", `{"username":"u","password":"right"}`)
		assert.Contains(t, []int{http.StatusForbidden, http.StatusTooManyRequests}, r.Code, "gw-%d: locked even with the right password: %s", i+1, r.Body)
		assert.Equal(t, before, gw.u1.count("/auth"), "gw-%d did not call the backend", i+1)
		assert.Equal(t, http.StatusOK, gw.from("127.0.0.35").postJSON("/auth", `{"username":"other","password":"pw"}`).Code,
			"gw-%d: the lock is on the login, not on the address", i+1)
	}
}

// twoUsers makes u's /auth accept u/right and other/pw.
func twoUsers(u *upstream) {
	u.handle(func(w http.ResponseWriter, r *http.Request, body []byte) bool {
		if r.URL.Path != "/auth" {
			return false
		}
		w.Header().Set("Content-Type", "application/json")
		switch string(body) {
		case `{"username":"u","password":"right"}`, `{"username":"other","password":"pw"}`:
			fmt.Fprint(w, `{"success":"ok","role":"user"}`)
		default:
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprint(w, `{"success":false}`)
		}
		return true
	})
}
