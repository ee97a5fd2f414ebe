package main

// Redis outages (issue 12, items 6, 7 and 9), on a private redis-server the
// tests stop, kill, freeze and restart.

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulwarkgw/bulwark/gateway/internal/testenv"
)

// outageConfig has the scorer down, so scores come from the gateway's
// fallback rules (the default profile): a 50 rps client crosses the block
// threshold within a second, one request every few seconds never does.
const outageConfig = `
routes:
  - {path: /svc/, upstream: "{{U3}}"}
scorer: {url: "http://127.0.0.1:1", timeout: 200ms, fail_mode: open}
redis: {fail_mode: MODE}
admin: {username: admin, password: s3cret}
`

// startOutageStack runs a gateway on srv with the given fail mode and Redis
// timeout.
func startOutageStack(t *testing.T, srv *testenv.RedisServer, mode, timeout string) *stack {
	return startStack(t, strings.Replace(outageConfig, "MODE", mode, 1),
		"BULWARK_REDIS_URL", srv.URL(), "BULWARK_REDIS_TIMEOUT", timeout)
}

// metric reads one sample of the gateway's metrics ("name" or
// `name{label="x"}`), 0 when absent.
func (s *stack) metric(name string) float64 {
	for _, l := range strings.Split(s.adminGet("/metrics").Body, "\n") {
		if v, ok := strings.CutPrefix(l, name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			require.NoError(s.t, err, l)
			return f
		}
	}
	return 0
}

// Item 7: with Redis frozen (SIGSTOP: connections accepted, nothing
// answered) the first request waits for redis.timeout and opens the
// breaker; every later one is answered without waiting for Redis at all
// (its calls are refused by the breaker), until Redis answers a probe.
func TestRedisFreezeCostsOneTimeout(t *testing.T) {
	t.Parallel()
	srv := testenv.StartRedisServer(t)
	s := startOutageStack(t, srv, "open", "500ms")
	c := s.from("127.0.0.110")
	require.Equal(t, http.StatusOK, c.get("/svc/a").Code)
	require.Zero(t, s.metric("bulwark_gateway_redis_circuit_open"))

	srv.Freeze()
	for i := range 20 {
		assert.Equal(t, http.StatusOK, c.get("/svc/a").Code, "fail open forwards, request %d", i)
	}
	assert.Equal(t, 1.0, s.metric("bulwark_gateway_redis_circuit_open"))
	assert.Equal(t, 1.0, s.metric("bulwark_gateway_redis_circuit_opens_total"), "one opening for the whole freeze")
	// Each of the 19 requests after the first asked Redis at least once
	// (its traffic state) and was refused at once.
	assert.GreaterOrEqual(t, s.metric("bulwark_gateway_redis_circuit_rejected_total"), 19.0)
	assert.Equal(t, 1, strings.Count(s.out.String(), `"msg":"redis circuit open`), "logged once")
	assert.Equal(t, 1, strings.Count(s.out.String(), `"msg":"traffic store unavailable"`), "the timeout is a warning, the refusals after it are not")

	srv.Thaw()
	require.Eventually(t, func() bool { return s.metric("bulwark_gateway_redis_circuit_open") == 0 }, 10*time.Second, 50*time.Millisecond)
	assert.Contains(t, s.out.String(), `"msg":"redis circuit closed"`)
	rejected := s.metric("bulwark_gateway_redis_circuit_rejected_total")
	assert.Equal(t, http.StatusOK, c.get("/svc/a").Code)
	assert.Equal(t, rejected, s.metric("bulwark_gateway_redis_circuit_rejected_total"), "back on Redis")
}

// Item 7: fail_mode closed answers 503 at once while Redis is down and
// serves again as soon as a probe finds it back, without a restart.
func TestRedisFailClosedRecovers(t *testing.T) {
	t.Parallel()
	srv := testenv.StartRedisServer(t)
	s := startOutageStack(t, srv, "closed", "500ms")
	c := s.from("127.0.0.111")
	require.Equal(t, http.StatusOK, c.get("/svc/a").Code)

	srv.Kill()
	for range 5 {
		r := c.get("/svc/a")
		assert.Equal(t, http.StatusServiceUnavailable, r.Code)
		assert.JSONEq(t, `{"error":"Service temporarily unavailable"}`, stripRequestID(t, r.Body))
	}
	assert.Equal(t, 1.0, s.metric("bulwark_gateway_redis_circuit_open"))
	srv.Start()
	require.Eventually(t, func() bool { return c.get("/svc/a").Code == http.StatusOK }, 10*time.Second, 50*time.Millisecond)
	assert.Zero(t, s.metric("bulwark_gateway_redis_circuit_open"))
}
