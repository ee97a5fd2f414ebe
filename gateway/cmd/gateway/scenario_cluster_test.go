package main

// Issue 14: several gateways on one Redis Cluster (3 masters, 3 replicas,
// started by the test) share one ban list and one rate limit, whatever
// gateway a client hits.

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulwarkgw/bulwark/gateway/internal/testenv"
	"github.com/bulwarkgw/bulwark/shared/redisconn"
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
	return startGateways(t, n, cfg, c.URL(), c.Client())
}

// startGateways starts n gateways on the Redis at url (with env added)
// sharing one key prefix; each stack's rdb is rdb, a client of that Redis.
func startGateways(t *testing.T, n int, cfg, url string, rdb redis.UniversalClient, env ...string) []*stack {
	t.Helper()
	prefix := testenv.Namespace(t) + ":"
	var gws []*stack
	for i := range n {
		s := startStack(t, cfg, append([]string{"BULWARK_REDIS_URL", url, "BULWARK_REDIS_PREFIX", prefix,
			"BULWARK_GATEWAY_ID", fmt.Sprintf("gw-%d", i+1)}, env...)...)
		s.rdb, s.prefix = rdb, prefix // the deployment's, not the shared test Redis
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

// The master holding a client's keys is killed under traffic: the gateways
// fail open while its slots have no master, the cluster promotes the
// replica (cluster-node-timeout 2s), and the gateways use it by themselves:
// a ban written through one gateway is enforced by all again. The test logs
// how long each step took and how the clients were answered meanwhile.
func TestClusterMasterKilledFailsOver(t *testing.T) {
	t.Parallel()
	c := testenv.StartRedisCluster(t)
	cfg := `
routes:
  - {path: /api/, upstream: "{{U1}}"}
scorer: {enabled: false}
admin: {username: admin, password: s3cret}
rate_limit: {requests_per_minute: 1000000, window: 60s}
`
	gws := startGateways(t, 3, cfg, c.URL(), c.Client(), "BULWARK_REDIS_TIMEOUT", "500ms")
	prefix := gws[0].prefix
	const ip = "127.0.0.97"
	for i, gw := range gws {
		require.Equal(t, http.StatusOK, gw.from(ip).get("/api/x").Code, "gw-%d before", i+1)
	}
	victim := c.MasterOf("{" + ip + "}")

	// Load: clients whose keys lie on every master keep calling every
	// gateway from before the kill until the end.
	var (
		mu      sync.Mutex
		codes   = map[int]int{} // client responses by status; 0: no response
		slowest time.Duration
	)
	get := func(c *client) int {
		start := time.Now()
		code := c.get("/api/x").Code
		d := time.Since(start)
		mu.Lock()
		defer mu.Unlock()
		codes[code]++
		slowest = max(slowest, d)
		return code
	}
	stopLoad := make(chan struct{})
	var load sync.WaitGroup
	for i, gw := range gws {
		load.Add(1)
		go func() {
			defer load.Done()
			for n := 0; ; n++ {
				select {
				case <-stopLoad:
					return
				default:
				}
				get(gw.from(fmt.Sprintf("127.0.1.%d", 10+(i*7+n)%20)))
				time.Sleep(5 * time.Millisecond)
			}
		}()
	}
	time.Sleep(500 * time.Millisecond)

	// A client opened as the dashboard opens it (shared/redisconn, its
	// timeouts) writes to the dead master's slots until it can again.
	dopt, err := redisconn.Options(c.URL())
	require.NoError(t, err)
	dopt.DialTimeout, dopt.ReadTimeout, dopt.WriteTimeout = time.Second, 3*time.Second, time.Second
	dash := redisconn.New(dopt)
	t.Cleanup(func() { _ = dash.Close() })
	require.NoError(t, dash.Set(t.Context(), prefix+"{"+ip+"}:dash", "before", 0).Err())

	victim.Kill()
	killed := time.Now()
	var dashBack time.Duration // kill to the dashboard client's first write
	dashDone := make(chan struct{})
	go func() {
		defer close(dashDone)
		for time.Since(killed) < 60*time.Second {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			err := dash.Set(ctx, prefix+"{"+ip+"}:dash", "after", 0).Err()
			cancel()
			if err == nil {
				dashBack = time.Since(killed)
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	}()
	var promoted time.Duration // kill to promotion, as a surviving node sees it
	var nodes string
	promotedCh := make(chan struct{})
	go func() {
		defer close(promotedCh)
		for time.Since(killed) < 60*time.Second {
			ok, n := c.Promoted(victim)
			if ok {
				promoted, nodes = time.Since(killed), n
				return
			}
			nodes = n
			time.Sleep(100 * time.Millisecond)
		}
	}()

	// The client whose keys were on the dead master, through every
	// gateway, until a ban written through gw-1 is enforced by all three.
	banCodes := map[int]int{}
	var banBody string
	var banned, recovered time.Duration
	deadline := killed.Add(60 * time.Second)
	for time.Now().Before(deadline) {
		for _, gw := range gws {
			get(gw.from(ip))
		}
		if banned == 0 {
			r := gws[0].adminPost("/v1/admin/bans", `{"ip":"`+ip+`","ttl":"1h","reason":"after failover"}`)
			banCodes[r.Code]++
			banBody = r.Body
			if r.Code == http.StatusCreated {
				banned = time.Since(killed)
			}
		} else {
			all := true
			for _, gw := range gws {
				all = all && get(gw.from(ip)) == http.StatusForbidden
			}
			if all {
				recovered = time.Since(killed)
				break
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	close(stopLoad)
	load.Wait()
	<-promotedCh
	<-dashDone
	t.Logf("master %s killed: replica promoted after %v; ban written through gw-1 after %v (admin answers %v, last %q); enforced by all three after %v",
		victim.Addr(), promoted.Round(10*time.Millisecond), banned.Round(10*time.Millisecond), banCodes, banBody, recovered.Round(10*time.Millisecond))
	for code, n := range banCodes {
		assert.Contains(t, []int{http.StatusCreated, http.StatusServiceUnavailable}, code,
			"the admin API answered %d × %d: while Redis cannot take the ban it says so (503), never a 500", n, code)
	}
	t.Logf("a client opened as the dashboard opens Redis wrote to the dead master's slots again after %v", dashBack.Round(10*time.Millisecond))
	t.Logf("client responses from 500ms before the kill to recovery: %v (slowest %v)", codes, slowest.Round(time.Millisecond))
	if promoted == 0 || recovered == 0 || recovered > 30*time.Second {
		t.Logf("CLUSTER NODES from a survivor:\n%s", nodes)
		for i, gw := range gws {
			t.Logf("gw-%d redis log:\n%s", i+1, redisLines(gw.out.String()))
		}
	}
	require.NotZero(t, promoted, "the cluster promoted no replica within 60s")
	require.NotZero(t, recovered, "no ban written through gw-1 was enforced by all gateways within 60s of the kill")
	assert.Less(t, recovered, 30*time.Second, "the gateways follow the failover by themselves")
	require.NotZero(t, dashBack, "the dashboard's client could not write within 60s of the kill")
	assert.Less(t, dashBack, 30*time.Second, "the dashboard's client follows the failover by itself")
	for i, gw := range gws {
		assert.Equal(t, http.StatusForbidden, gw.from(ip).get("/api/x").Code, "gw-%d enforces the ban after failover", i+1)
	}
	for code, n := range codes {
		assert.Contains(t, []int{http.StatusOK, http.StatusForbidden}, code, "%d responses of %d: fail open, never an error", n, code)
	}
}

// redisLines are the lines of a gateway's log that tell about Redis.
func redisLines(log string) string {
	var b strings.Builder
	for _, l := range strings.Split(log, "\n") {
		if strings.Contains(strings.ToLower(l), "redis") {
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}
