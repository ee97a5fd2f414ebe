package main

// Group B of SEEDS.md section 8: reverse proxy, admin and audit (seed 001),
// S11, S12 and S16–S25.

import (
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const proxyConfig = `
routes:
  - {path: /api/, upstream: "{{U1}}"}
  - {path: /api/v2/, upstream: "{{U2}}"}
  - {path: /svc, upstream: "{{U3}}"}
  - {path: /slow/, upstream: "{{U1}}", timeout: 1s}
  - {path: /closed/, upstream: "http://127.0.0.1:1"}
trusted_proxies: [127.0.0.2/32]
scorer: {enabled: false}
admin: {username: admin, password: s3cret}
rate_limit: {requests_per_minute: 5, window: 3s}
max_body_size: 1024
cors: {allow_origins: ["https://app.example"], allow_credentials: true}
audit: {requests: true}
`

const basic = "Basic YWRtaW46czNjcmV0" // admin:s3cret

func (s *stack) adminGet(path string) reply {
	return s.adminFrom("127.0.0.1").get(path, "Authorization", basic)
}

func (s *stack) adminPost(path, body string) reply {
	return s.adminFrom("127.0.0.1").postJSON(path, body, "Authorization", basic)
}

func TestS11LongestPrefixRouting(t *testing.T) {
	t.Parallel()
	s := startStack(t, proxyConfig)
	c := s.from("127.0.0.80")
	require.Equal(t, http.StatusOK, c.get("/api/v2/users").Code)
	assert.Equal(t, "/api/v2/users", s.u2.requests()[0].URI, "no prefix stripping")
	require.Equal(t, http.StatusOK, c.get("/api/users").Code)
	assert.Equal(t, "/api/users", s.u1.requests()[0].URI)
	for _, p := range []string{"/apix", "/api", "/svcx"} {
		r := c.get(p)
		assert.Equal(t, http.StatusNotFound, r.Code, p)
		assert.JSONEq(t, `{"error":"No matching route found"}`, stripRequestID(t, r.Body), p)
	}
	require.Equal(t, http.StatusOK, c.get("/svc/a").Code)
	assert.Equal(t, "/svc/a", s.u3.requests()[0].URI)
	// The path is normalised before matching (SECURITY.md, "The gateway's edge"): a
	// dot segment, encoded or not, is refused rather than resolved, so a
	// backend that resolves it differently is never asked.
	r := c.get("/api/..%2fsvc/x")
	require.Equal(t, http.StatusBadRequest, r.Code)
	assert.Len(t, s.u3.requests(), 1, "U3 saw only /svc/a")
	assert.Equal(t, 1, s.u1.count("/"), "U1 saw only /api/users")
	r = c.get("/api//v2//users")
	assert.Equal(t, http.StatusOK, r.Code)
	assert.Equal(t, "/api/v2/users", s.u2.requests()[len(s.u2.requests())-1].URI)
}

func TestS12UpstreamFailureModes(t *testing.T) {
	t.Parallel()
	s := startStack(t, proxyConfig)
	c := s.from("127.0.0.81")
	r := c.get("/closed/x")
	assert.Equal(t, http.StatusBadGateway, r.Code)
	assert.JSONEq(t, `{"error":"Bad Gateway"}`, stripRequestID(t, r.Body))
	assert.NotContains(t, r.Body, "127.0.0.1:1")
	assert.NotContains(t, r.Body, "refused")

	s.u1.handle(func(w http.ResponseWriter, r *http.Request, _ []byte) bool {
		if !strings.HasPrefix(r.URL.Path, "/slow/") {
			return false
		}
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
		return true
	})
	start := time.Now()
	r = c.get("/slow/x")
	assert.Equal(t, http.StatusGatewayTimeout, r.Code)
	assert.Less(t, time.Since(start), 3*time.Second, "cut at the 1 s route timeout, long before the upstream's 5 s")
}

// S16 (with a 3 s window instead of 60 s) and S17.
func TestS16RateLimitFromStartAndS17Admin(t *testing.T) {
	t.Parallel()
	s := startStack(t, proxyConfig)
	c := s.from("127.0.0.6")
	first := time.Now()
	for i := range 5 {
		r := c.get("/api/x")
		require.Equal(t, http.StatusOK, r.Code, "request %d", i+1)
		assert.Equal(t, "5", r.Header.Get("RateLimit-Limit"))
		assert.Equal(t, strconv.Itoa(4-i), r.Header.Get("RateLimit-Remaining"))
	}
	r := c.get("/api/x")
	if time.Since(first) < 3*time.Second { // else a loaded machine let the window slide
		assert.Equal(t, http.StatusTooManyRequests, r.Code, "the configured limit applies from start")
		assert.JSONEq(t, `{"error":"Rate limit exceeded"}`, stripRequestID(t, r.Body))
		retry, err := strconv.Atoi(r.Header.Get("Retry-After"))
		require.NoError(t, err)
		assert.GreaterOrEqual(t, retry, 1)
	}
	assert.Equal(t, http.StatusOK, s.from("127.0.0.7").get("/api/x").Code, "another client is unaffected")

	// S17: stats, clear, stats again.
	st := s.adminGet("/admin/ratelimit/stats/127.0.0.6")
	require.Equal(t, http.StatusOK, st.Code, st.Body)
	if time.Since(first) < 3*time.Second {
		assert.JSONEq(t, `{"ip":"127.0.0.6","requests_in_window":5,"limit":5,"remaining":0}`, st.Body)
	}
	cl := s.adminPost("/admin/ratelimit/clear/127.0.0.6", "")
	require.Equal(t, http.StatusOK, cl.Code, cl.Body)
	assert.JSONEq(t, `{"status":"success","message":"Rate limit cleared for 127.0.0.6"}`, cl.Body)
	windowStart := time.Now() // the window now starts with this request
	assert.Equal(t, http.StatusOK, c.get("/api/x").Code)
	st = s.adminGet("/admin/ratelimit/stats/127.0.0.6")
	assert.Contains(t, st.Body, `"requests_in_window":1`)

	// Refused requests were not counted: once the window has passed since
	// the first request, requests pass again. The rest come at least 0.5 s
	// later, so they (and the refused one, were it counted) are still in
	// the window when the first has left it, however slow the machine was
	// to send the first (up to 0.3 s).
	time.Sleep(time.Until(windowStart.Add(500 * time.Millisecond)))
	for range 4 {
		c.get("/api/x")
	}
	require.Equal(t, http.StatusTooManyRequests, c.get("/api/x").Code)
	time.Sleep(time.Until(windowStart.Add(3300 * time.Millisecond)))
	assert.Equal(t, http.StatusOK, c.get("/api/x").Code)

	require.Eventually(t, func() bool {
		return strings.Contains(s.adminGet("/audit/logs?event_type=admin_action").Body, `"action":"rate_limit_clear"`)
	}, 5*time.Second, 50*time.Millisecond)
}

func TestS18HealthIsNeverLimited(t *testing.T) {
	t.Parallel()
	s := startStack(t, proxyConfig)
	c := s.from("127.0.0.8")
	for range 6 {
		c.get("/api/x")
	}
	require.Equal(t, http.StatusTooManyRequests, c.get("/api/x").Code)
	r := c.get("/health")
	assert.Equal(t, http.StatusOK, r.Code)
	assert.JSONEq(t, `{"status":"healthy","service":"bulwark"}`, r.Body)
	assert.Equal(t, http.StatusOK, c.get("/healthz").Code)
	time.Sleep(300 * time.Millisecond) // let the audit batch land
	assert.NotContains(t, s.adminGet("/audit/logs?client_ip=127.0.0.8&limit=1000").Body, `"/health"`)
}

func TestS19TimingHeaders(t *testing.T) {
	t.Parallel()
	s := startStack(t, proxyConfig)
	s.u1.handle(func(w http.ResponseWriter, r *http.Request, _ []byte) bool {
		w.WriteHeader(http.StatusNotFound)
		return true
	})
	for _, p := range []string{"/api/ok", "/api/missing"} {
		r := s.from("127.0.0.9").get(p)
		assert.Equal(t, "Bulwark", r.Header.Get("X-Proxy-By"), p)
		assert.Regexp(t, `^[0-9]+\.[0-9]{2}ms$`, r.Header.Get("X-Process-Time"), p)
		assert.Len(t, r.Header.Values("Date"), 1, "one Date")
	}
}

func TestS20HotReloadAndS21AtomicFailure(t *testing.T) {
	t.Parallel()
	s := startStack(t, proxyConfig)
	cfg := strings.Replace(proxyConfig, "rate_limit: {requests_per_minute: 5, window: 3s}", "rate_limit: {requests_per_minute: 7}", 1)
	cfg = strings.Replace(cfg, "routes:\n", "routes:\n  - {path: /new/, upstream: \"{{U3}}\"}\n", 1)
	s.write(cfg)
	r := s.adminPost("/admin/reload", "")
	require.Equal(t, http.StatusOK, r.Code, r.Body)
	assert.JSONEq(t, `{"status":"success","message":"Configuration reloaded successfully","routes_count":6,"rate_limit":7}`, r.Body)
	require.Equal(t, http.StatusOK, s.from("127.0.0.82").get("/new/x").Code)
	assert.Equal(t, "/new/x", s.u3.requests()[0].URI)
	assert.Contains(t, s.adminGet("/admin/routes").Body, fmt.Sprintf(`{"path":"/new/","target":%q}`, s.u3.URL()))
	st := s.adminGet("/admin/status").json(t)
	rl, _ := st["rate_limit"].(map[string]any)
	assert.EqualValues(t, 7, rl["requests_per_minute"])
	assert.EqualValues(t, 60, rl["window_size"])
	require.Eventually(t, func() bool {
		return strings.Contains(s.adminGet("/audit/logs?event_type=admin_action").Body, `"details":"Reloaded 6 routes"`)
	}, 5*time.Second, 50*time.Millisecond)

	// S21: a bad file is refused and changes nothing.
	for _, bad := range []string{
		strings.Replace(cfg, `{path: /new/, upstream: "{{U3}}"}`, `{path: /new/}`, 1),
		strings.Replace(cfg, `{path: /new/, upstream: "{{U3}}"}`, `{path: new/, upstream: "{{U3}}"}`, 1),
		strings.Replace(cfg, `{path: /new/, upstream: "{{U3}}"}`, `{path: /new/, upstream: "ftp://x"}`, 1),
	} {
		s.write(bad)
		r = s.adminPost("/admin/reload", "")
		assert.GreaterOrEqual(t, r.Code, 400, bad)
		assert.Contains(t, r.Body, "routes[0]", "the error names the key")
		assert.Equal(t, http.StatusOK, s.from("127.0.0.82").get("/api/users").Code, "the old config still serves")
		assert.Contains(t, s.adminGet("/admin/routes").Body, `"/new/"`)
	}
	require.Eventually(t, func() bool {
		return strings.Contains(s.adminGet("/audit/logs?event_type=admin_action").Body, `"action":"config_reload_failed"`)
	}, 5*time.Second, 50*time.Millisecond)
}

func TestS22AdminProtection(t *testing.T) {
	t.Parallel()
	s := startStack(t, proxyConfig)
	anon := s.adminFrom("127.0.0.1")
	for _, p := range []struct{ method, path string }{{"GET", "/admin/config"}, {"POST", "/admin/reload"}, {"GET", "/audit/logs"}} {
		r := anon.do(p.method, p.path, nil)
		assert.Equal(t, http.StatusUnauthorized, r.Code, p.path)
		assert.NotEmpty(t, r.Header.Get("WWW-Authenticate"), p.path)
	}
	assert.Equal(t, http.StatusOK, s.adminGet("/admin/config").Code)
	cfg := s.adminGet("/admin/config").Body
	assert.NotContains(t, cfg, "s3cret", "secrets are redacted")

	bad := s.adminFrom("127.0.0.30")
	for range 5 {
		assert.Equal(t, http.StatusUnauthorized, bad.get("/admin/config", "Authorization", "Basic YWRtaW46d3Jvbmc=").Code)
	}
	assert.Equal(t, http.StatusTooManyRequests, bad.get("/admin/config", "Authorization", basic).Code, "locked out even with the right password")
	assert.Equal(t, http.StatusOK, s.adminGet("/admin/config").Code, "another client is not")
}

var isoTime = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d`)

func TestS23AuditContentAndQueries(t *testing.T) {
	t.Parallel()
	s := startStack(t, proxyConfig)
	require.Equal(t, http.StatusOK, s.from("127.0.0.31").get("/api/users", "User-Agent", "acc/1").Code)
	var rows []map[string]any
	require.Eventually(t, func() bool {
		r := s.adminGet("/audit/logs?client_ip=127.0.0.31&limit=1")
		rows = nil
		return r.Code == 200 && jsonInto(r.Body, &rows) == nil && len(rows) == 1
	}, 5*time.Second, 50*time.Millisecond)
	row := rows[0]
	assert.Len(t, row, 11)
	assert.IsType(t, float64(0), row["id"])
	assert.Regexp(t, isoTime, row["timestamp"])
	assert.Equal(t, "request", row["event_type"])
	assert.Equal(t, "127.0.0.31", row["client_ip"])
	assert.Equal(t, "GET", row["method"])
	assert.Equal(t, "/api/users", row["path"])
	assert.EqualValues(t, 200, row["status_code"])
	assert.Greater(t, row["duration_ms"], 0.0)
	assert.Nil(t, row["action"])
	assert.Nil(t, row["details"])
	assert.Equal(t, "acc/1", row["user_agent"])

	c := s.from("127.0.0.32")
	c.get("/nowhere") // 404
	for range 6 {
		c.get("/api/x")
	} // the 6th is 429
	s.adminPost("/admin/ratelimit/clear/127.0.0.32", "")
	require.Eventually(t, func() bool {
		b := s.adminGet("/audit/logs?client_ip=127.0.0.32&limit=100").Body
		return strings.Contains(b, `"status_code":404`) && strings.Contains(b, `"status_code":429`)
	}, 5*time.Second, 50*time.Millisecond, "refusals are audited with their real status")

	var admin []map[string]any
	require.NoError(t, jsonInto(s.adminGet("/audit/logs?event_type=admin_action").Body, &admin))
	require.NotEmpty(t, admin)
	for _, a := range admin {
		assert.Equal(t, "admin_action", a["event_type"])
	}
	// Page only once the asynchronous writer has caught up, so rows do not
	// shift between the two pages.
	prev := ""
	require.Eventually(t, func() bool {
		cur := s.adminGet("/audit/stats").Body
		same := cur == prev
		prev = cur
		return same
	}, 5*time.Second, 300*time.Millisecond)
	var p1, p2 []map[string]any
	require.NoError(t, jsonInto(s.adminGet("/audit/logs?limit=2&offset=0").Body, &p1))
	require.NoError(t, jsonInto(s.adminGet("/audit/logs?limit=2&offset=2").Body, &p2))
	require.Len(t, p1, 2)
	require.Len(t, p2, 2)
	for _, a := range p1 {
		for _, b := range p2 {
			assert.NotEqual(t, a["id"], b["id"], "pages are disjoint")
		}
	}
	t0, err := time.Parse(time.RFC3339Nano, p1[0]["timestamp"].(string))
	require.NoError(t, err)
	t1, err := time.Parse(time.RFC3339Nano, p1[1]["timestamp"].(string))
	require.NoError(t, err)
	assert.False(t, t0.Before(t1), "newest first")
	for _, q := range []string{"limit=0", "limit=1001"} {
		assert.Equal(t, http.StatusBadRequest, s.adminGet("/audit/logs?"+q).Code, q)
	}
	st := s.adminGet("/audit/stats").json(t)
	stats := st["stats"].(map[string]any)
	assert.Equal(t, "success", st["status"])
	assert.Equal(t, stats["total_entries"], stats["request_count"].(float64)+stats["admin_action_count"].(float64))
}

func TestS24BodySizeLimit(t *testing.T) {
	t.Parallel()
	s := startStack(t, proxyConfig)
	c := s.from("127.0.0.83")
	big := strings.Repeat("x", 2048)
	r := c.do("POST", "/api/upload", strings.NewReader(big))
	assert.Equal(t, http.StatusRequestEntityTooLarge, r.Code)
	r = c.do("POST", "/api/upload", io.NopCloser(strings.NewReader(big))) // no length: sent chunked
	assert.Equal(t, http.StatusRequestEntityTooLarge, r.Code, "chunked too")
	assert.Zero(t, s.u1.count("/api/upload"), "U1 is not called")
	exact := strings.Repeat("y", 1024)
	r = c.do("POST", "/api/upload", io.NopCloser(strings.NewReader(exact)))
	require.Equal(t, http.StatusOK, r.Code)
	assert.Equal(t, exact, string(s.u1.requests()[0].Body), "forwarded intact")
}

func TestS25CORS(t *testing.T) {
	t.Parallel()
	s := startStack(t, proxyConfig)
	c := s.from("127.0.0.84")
	r := c.do("OPTIONS", "/api/x", nil, "Origin", "https://app.example", "Access-Control-Request-Method", "POST")
	assert.Contains(t, []int{200, 204}, r.Code)
	assert.Equal(t, "https://app.example", r.Header.Get("Access-Control-Allow-Origin"))
	assert.Equal(t, "true", r.Header.Get("Access-Control-Allow-Credentials"))
	r = c.do("OPTIONS", "/api/x", nil, "Origin", "https://evil.example", "Access-Control-Request-Method", "POST")
	assert.Empty(t, r.Header.Get("Access-Control-Allow-Origin"))
	r = c.get("/api/x", "Origin", "https://evil.example")
	assert.Empty(t, r.Header.Get("Access-Control-Allow-Origin"))
}

func jsonInto(s string, v any) error { return jsonUnmarshal([]byte(s), v) }

// IPv6 clients are limited by their /64: rotating addresses inside one
// prefix does not escape the limit. The addresses arrive through the
// trusted proxy's X-Forwarded-For.
func TestIPv6ClientsAreLimitedByTheirSlash64(t *testing.T) {
	t.Parallel()
	s := startStack(t, proxyConfig)
	proxy := s.from("127.0.0.2")
	for i := range 5 {
		r := proxy.get("/api/x", "X-Forwarded-For", fmt.Sprintf("2001:db8:1:2::%x", i+1))
		require.Equal(t, http.StatusOK, r.Code, "address %d", i+1)
	}
	assert.Equal(t, http.StatusTooManyRequests, proxy.get("/api/x", "X-Forwarded-For", "2001:db8:1:2::ffff").Code, "same /64")
	assert.Equal(t, http.StatusOK, proxy.get("/api/x", "X-Forwarded-For", "2001:db8:1:3::1").Code, "another /64")
	assert.Equal(t, "2001:db8:1:3::1, 127.0.0.2", s.u1.requests()[len(s.u1.requests())-1].XFF, "the upstream sees the client, then the proxy")
}

func TestOversizedHeadersAreRefused(t *testing.T) {
	t.Parallel()
	s := startStack(t, proxyConfig+"max_header_bytes: 2048\n")
	r := s.from("127.0.0.86").get("/api/x", "X-Big", strings.Repeat("a", 8192))
	assert.Equal(t, http.StatusRequestHeaderFieldsTooLarge, r.Code)
	assert.Zero(t, s.u1.count("/api/x"))
}
