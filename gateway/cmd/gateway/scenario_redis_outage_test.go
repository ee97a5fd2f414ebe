package main

// Redis outages (issue 12, items 6, 7 and 9), on a private redis-server the
// tests stop, kill, freeze and restart.

import (
	"context"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulwarkgw/bulwark/gateway/internal/testenv"
	"github.com/bulwarkgw/bulwark/shared/wire"
)

// outageConfig has the scorer down, so scores come from the gateway's
// fallback rules (the default profile): a 50 rps client with an HTTP
// library's user agent crosses the block threshold within a second (0.7
// here: at 27 requests in a second, so that a loaded test machine that
// sends them late still gets there), a browser every few hundred ms never
// reaches the throttle threshold.
const outageConfig = `
routes:
  - {path: /svc/, upstream: "{{U3}}"}
scorer: {url: "http://127.0.0.1:1", timeout: 200ms, fail_mode: open}
thresholds: {block: 0.7, throttle: 0.6}
redis: {fail_mode: MODE}
admin: {username: admin, password: s3cret}
`

// startOutageStack runs a gateway on srv with the given fail mode and Redis
// timeout.
func startOutageStack(t *testing.T, srv *testenv.RedisServer, mode, timeout string) *stack {
	return startStack(t, strings.Replace(outageConfig, "MODE", mode, 1),
		"BULWARK_REDIS_URL", srv.URL(), "BULWARK_REDIS_TIMEOUT", timeout)
}

// startUnscoredStack is startOutageStack without scoring: only the
// breaker's behaviour shows.
func startUnscoredStack(t *testing.T, srv *testenv.RedisServer, mode, timeout string) *stack {
	cfg := strings.NewReplacer("MODE", mode, `scorer: {url: "http://127.0.0.1:1", timeout: 200ms, fail_mode: open}`, "scorer: {enabled: false}").Replace(outageConfig)
	return startStack(t, cfg, "BULWARK_REDIS_URL", srv.URL(), "BULWARK_REDIS_TIMEOUT", timeout)
}

// Item 7: with Redis frozen (SIGSTOP: connections accepted, nothing
// answered) the first request waits for redis.timeout and opens the
// breaker; every later one is answered without waiting for Redis at all
// (its calls are refused by the breaker), until Redis answers a probe.
func TestRedisFreezeCostsOneTimeout(t *testing.T) {
	t.Parallel()
	srv := testenv.StartRedisServer(t)
	s := startUnscoredStack(t, srv, "open", "500ms")
	c := s.from("127.0.0.110")
	require.Equal(t, http.StatusOK, c.get("/svc/a").Code)
	require.Zero(t, s.metric(t, "bulwark_gateway_redis_circuit_open"))

	srv.Freeze()
	for i := range 20 {
		assert.Equal(t, http.StatusOK, c.get("/svc/a").Code, "fail open forwards, request %d", i)
	}
	assert.Equal(t, 1.0, s.metric(t, "bulwark_gateway_redis_circuit_open"))
	assert.Equal(t, 1.0, s.metric(t, "bulwark_gateway_redis_circuit_opens_total"), "one opening for the whole freeze")
	// Each of the 19 requests after the first asked Redis at least once
	// (its traffic state) and was refused at once.
	assert.GreaterOrEqual(t, s.metric(t, "bulwark_gateway_redis_circuit_rejected_total"), 19.0)
	// The log is written by a goroutine of its own, every 100 ms.
	logged := func(msg string) int { return strings.Count(s.out.String(), `"msg":"`+msg) }
	require.Eventually(t, func() bool { return logged("request") >= 21 }, 5*time.Second, 20*time.Millisecond)
	assert.Equal(t, 1, logged("redis circuit open"), "logged once")
	assert.Equal(t, 1, logged("traffic store unavailable"), "the timeout is a warning, the refusals after it are not")

	srv.Thaw()
	require.Eventually(t, func() bool { return s.metric(t, "bulwark_gateway_redis_circuit_open") == 0 }, 10*time.Second, 50*time.Millisecond)
	assert.Eventually(t, func() bool { return logged("redis circuit closed") == 1 }, 5*time.Second, 20*time.Millisecond)
	rejected := s.metric(t, "bulwark_gateway_redis_circuit_rejected_total")
	assert.Equal(t, http.StatusOK, c.get("/svc/a").Code)
	assert.Equal(t, rejected, s.metric(t, "bulwark_gateway_redis_circuit_rejected_total"), "back on Redis")
}

// Item 7: fail_mode closed answers 503 at once while Redis is down and
// serves again as soon as a probe finds it back, without a restart.
func TestRedisFailClosedRecovers(t *testing.T) {
	t.Parallel()
	srv := testenv.StartRedisServer(t)
	s := startUnscoredStack(t, srv, "closed", "500ms")
	c := s.from("127.0.0.111")
	require.Equal(t, http.StatusOK, c.get("/svc/a").Code)

	srv.Kill()
	for range 5 {
		r := c.get("/svc/a")
		assert.Equal(t, http.StatusServiceUnavailable, r.Code)
		assert.JSONEq(t, `{"error":"Service temporarily unavailable"}`, stripRequestID(t, r.Body))
	}
	assert.Equal(t, 1.0, s.metric(t, "bulwark_gateway_redis_circuit_open"))
	srv.Start()
	require.Eventually(t, func() bool { return c.get("/svc/a").Code == http.StatusOK }, 10*time.Second, 50*time.Millisecond)
	assert.Zero(t, s.metric(t, "bulwark_gateway_redis_circuit_open"))
}

// shot is one request of an attack: its status, when it was sent and
// when its answer came.
type shot struct {
	code       int
	sent, done time.Time
}

// attack sends n requests from ip at rate per second, each on its own
// connection without waiting for the one before, in the order sent.
func (s *stack) attack(ip string, n int, rate float64) []shot {
	c := s.from(ip)
	shots := make([]shot, n)
	tick := time.NewTicker(time.Duration(float64(time.Second) / rate))
	defer tick.Stop()
	var wg sync.WaitGroup
	for i := range n {
		if i > 0 {
			<-tick.C
		}
		shots[i].sent = time.Now()
		wg.Go(func() {
			defer func() { shots[i].done = time.Now() }()
			req, err := http.NewRequest(http.MethodGet, c.base+"/svc/items", nil)
			if err != nil {
				return
			}
			resp, err := c.hc.Do(req)
			if err != nil {
				return
			}
			resp.Body.Close()
			shots[i].code = resp.StatusCode
		})
	}
	wg.Wait()
	return shots
}

func codes(shots []shot) []int {
	out := make([]int, len(shots))
	for i, s := range shots {
		out[i] = s.code
	}
	return out
}

// Item 6: with Redis down or frozen and fail_mode open, the gateway keeps
// counting and scoring in memory: a single attacker at 50 rps is blocked
// within a second (among its first 50 requests) and stays banned, a client
// at a human pace passes, a client banned before the outage stays banned,
// and once Redis is back the new ban is there, written by the gateway, for
// every replica to see.
func TestRedisOutageStillProtects(t *testing.T) {
	t.Parallel()
	for _, fault := range []string{"killed", "frozen"} {
		t.Run(fault, func(t *testing.T) {
			t.Parallel()
			srv := testenv.StartRedisServer(t)
			// The default redis.timeout: a frozen Redis holds the first
			// requests that long before they are counted in memory.
			s := startOutageStack(t, srv, "open", "100ms")
			attacker, human, banned := "127.0.0.120", "127.0.0.121", "127.0.0.124"
			if fault == "frozen" {
				attacker, human, banned = "127.0.0.122", "127.0.0.123", "127.0.0.125"
			}
			require.Equal(t, http.StatusOK, s.from(human).get("/svc/home", "User-Agent", browser).Code)
			require.Equal(t, http.StatusCreated, s.adminPost("/v1/admin/bans", `{"ip":"`+banned+`","ttl":"1h"}`).Code)
			require.Equal(t, http.StatusForbidden, s.from(banned).get("/svc/home", "User-Agent", browser).Code)

			if fault == "killed" {
				srv.Kill()
			} else {
				srv.Freeze()
			}
			humanCodes := make(chan int, 5)
			go func() {
				defer close(humanCodes)
				for range 5 {
					humanCodes <- s.from(human).get("/svc/home", "User-Agent", browser).Code
					time.Sleep(400 * time.Millisecond)
				}
			}()
			shots := s.attack(attacker, 100, 50)
			first := slices.IndexFunc(shots, func(s shot) bool { return s.code == http.StatusForbidden })
			require.GreaterOrEqual(t, first, 0, "never blocked: %v", codes(shots))
			// 50 in one second is a webhook sender's burst, no abuse by
			// itself (the default profile's burst ramp starts at 40);
			// sustained, it is blocked in its second second.
			assert.Less(t, first, 100, "blocked within two seconds: %v", codes(shots))
			for i, sh := range shots {
				// Requests already past the ban check when the ban was made
				// may still pass; every one sent after the client had its
				// 403 is refused.
				if sh.sent.After(shots[first].done) {
					assert.Equal(t, http.StatusForbidden, sh.code, "request %d, sent after the block: %v", i, codes(shots))
				}
			}
			for code := range humanCodes {
				assert.Equal(t, http.StatusOK, code, "a client at a human pace passes")
			}
			assert.Equal(t, 1.0, s.metric(t, "bulwark_gateway_redis_circuit_open"))
			assert.Equal(t, 1.0, s.metric(t, "bulwark_gateway_fallback_bans"))
			assert.Equal(t, http.StatusForbidden, s.from(banned).get("/svc/home", "User-Agent", browser).Code,
				"banned in Redis before the outage: still banned during it")
			r := s.from(attacker).get("/svc/items")
			assert.Equal(t, http.StatusForbidden, r.Code, "the local ban holds")
			assert.NotEmpty(t, r.Header.Get("Retry-After"))

			if fault == "killed" {
				srv.Start() // empty: no append-only file in this test
			} else {
				srv.Thaw()
			}
			rdb := srv.Client()
			banKey := wire.BanKey(s.prefix, netip.MustParseAddr(attacker))
			require.Eventually(t, func() bool {
				return rdb.Exists(context.Background(), banKey).Val() == 1
			}, 10*time.Second, 50*time.Millisecond, "the gateway writes its ban to Redis once it is back")
			ttl := rdb.PTTL(context.Background(), banKey).Val()
			assert.Greater(t, ttl, 9*time.Minute, "with its time left (ban_ttl 10m)")
			assert.Contains(t, rdb.Get(context.Background(), banKey).Val(), "score")
			assert.Zero(t, s.metric(t, "bulwark_gateway_fallback_bans"), "held by Redis now")
			assert.Equal(t, http.StatusForbidden, s.from(attacker).get("/svc/items").Code, "banned through Redis")
			assert.Equal(t, http.StatusOK, s.from(human).get("/svc/home", "User-Agent", browser).Code)
			assert.Less(t, s.u3.count("/svc/items"), 100, "the upstream saw less than two seconds of the attack")
		})
	}
}

const browser = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"

// persistConfig locks a login for 10 minutes after 3 failures.
const persistConfig = `
routes:
  - {path: /api/, upstream: "{{U1}}"}
  - {path: /app/, upstream: "{{U1}}", auth: api_key}
scorer: {enabled: false}
admin: {username: admin, password: s3cret}
api_key:
  auth_upstream: "{{U1}}"
  invalid_threshold: 1000
login_protection:
  login: {rate: 0}
  password: {rate: 0}
  ip: {rate: 0}
  failures: 3
  failure_window: 1m
  block: 10m
`

// Item 9: with Redis run as docker-compose.yml runs it (an append-only
// file, fsynced every second), a ban, a login lock and an API key made
// through the gateway all hold after Redis is restarted (SIGTERM, then
// started again on the same port and directory).
func TestBansAndLocksSurviveRedisRestart(t *testing.T) {
	t.Parallel()
	srv := testenv.StartRedisServer(t, "--appendonly", "yes", "--appendfsync", "everysec")
	s := startStack(t, persistConfig, "BULWARK_REDIS_URL", srv.URL(), "BULWARK_REDIS_TIMEOUT", "500ms")
	banned := "127.0.0.131"
	require.Equal(t, http.StatusCreated, s.adminPost("/v1/admin/bans", `{"ip":"`+banned+`","ttl":"1h","reason":"scraping"}`).Code)
	require.Equal(t, http.StatusForbidden, s.from(banned).get("/api/x").Code)

	loginAs(s.u1, "u", "right", "user")
	for i, ip := range []string{"127.0.0.132", "127.0.0.133", "127.0.0.134"} {
		require.Equal(t, http.StatusUnauthorized, s.from(ip).postJSON("/auth", `{"username":"u","password":"wrong"}`).Code, "failure %d", i+1)
	}
	locked := func() bool {
		before := s.u1.count("/auth")
		r := s.from("127.0.0.135").postJSON("/auth", `{"username":"u","password":"right"}`)
		return r.Code == http.StatusForbidden && s.u1.count("/auth") == before
	}
	require.True(t, locked(), "locked even with the right password")
	loginAs(s.u1, "other", "pw", "user")
	r := s.from("127.0.0.136").postJSON("/auth", `{"username":"other","password":"pw"}`)
	require.Equal(t, http.StatusOK, r.Code, r.Body)
	key, _ := r.json(t)["API_KEY"].(string)
	require.NotEmpty(t, key)

	srv.Stop()
	srv.Start()
	rdb := srv.Client()
	n, err := rdb.Exists(context.Background(), wire.BanKey(s.prefix, netip.MustParseAddr(banned))).Result()
	require.NoError(t, err)
	assert.EqualValues(t, 1, n, "the ban is in the restarted Redis")
	// Through the gateway, once it is back on Redis (not on what it
	// remembers of the ban).
	require.Eventually(t, func() bool {
		return s.from("127.0.0.137").get("/api/x").Code == http.StatusOK && s.metric(t, "bulwark_gateway_redis_circuit_open") == 0
	}, 10*time.Second, 50*time.Millisecond)
	assert.Equal(t, http.StatusForbidden, s.from(banned).get("/api/x").Code, "the ban holds")
	assert.True(t, locked(), "the login lock holds")
	assert.Equal(t, http.StatusOK, s.from("127.0.0.136").get("/app/x", "X-API-Key", key).Code, "the key still works")
	assert.Equal(t, http.StatusOK, s.from("127.0.0.138").get("/api/x").Code, "others pass")
}
