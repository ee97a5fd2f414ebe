package main

// Protections must hold against the request variants backends treat as the
// same thing; these are the holes an independent review found, closed.

import (
	"bytes"
	"fmt"
	"mime/multipart"
	"net/http"
	"strings"
	"testing"

	"github.com/bulwarkgw/bulwark/gateway/internal/testenv"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const guardedConfig = `
routes:
  - {path: /, upstream: "{{U1}}"}
scorer: {enabled: false}
admin: {username: admin, password: s3cret}
api_key: {auth_upstream: "{{U1}}", invalid_threshold: 1000}
login_protection:
  routes: [{path: /api/login}]
  login: {rate: 0}
  password: {rate: 0}
  ip: {rate: 0}
  failures: 3
  failure_window: 10s
  block: 10s
`

// u1 answers /api/login like a backend: 200 for carol/right, 401 otherwise,
// and 502 when the password is "upstream-down".
func loginBackend(u *upstream) {
	u.handle(func(w http.ResponseWriter, r *http.Request, body []byte) bool {
		if !strings.EqualFold(strings.TrimSuffix(r.URL.Path, "/"), "/api/login") {
			return false
		}
		switch {
		case bytes.Contains(body, []byte("upstream-down")):
			w.WriteHeader(http.StatusBadGateway)
		case bytes.Contains(body, []byte("right")):
			fmt.Fprint(w, `{"success":true}`)
		default:
			w.WriteHeader(http.StatusUnauthorized)
		}
		return true
	})
}

func TestGuardedLoginRouteHoldsAgainstVariants(t *testing.T) {
	t.Parallel()
	s := startStack(t, guardedConfig)
	loginBackend(s.u1)
	c := s.from("127.0.0.100")
	for i := range 3 {
		require.Equal(t, http.StatusUnauthorized, c.postJSON("/api/login", `{"username":"carol","password":"wrong"}`).Code, "failure %d", i+1)
	}
	before := s.u1.count("/")
	for _, p := range []string{"/api/login", "/api/login/", "/API/LOGIN", "//api//login", "/api/login;jsessionid=1", "/api;x=1/login;y"} {
		r := c.postJSON(p, `{"username":"carol","password":"right"}`)
		assert.Equal(t, http.StatusForbidden, r.Code, "%s: the locked login stays locked", p)
	}
	assert.Equal(t, before, s.u1.count("/"), "no variant reached the backend")
}

func TestGuardedLoginNeedsAReadableLogin(t *testing.T) {
	t.Parallel()
	s := startStack(t, guardedConfig)
	loginBackend(s.u1)
	c := s.from("127.0.0.101")
	r := c.postJSON("/api/login", `{"username":["carol"],"password":"wrong"}`)
	assert.Equal(t, http.StatusBadRequest, r.Code, "a login that is not a string is refused, not waved through")
	for i := range 3 {
		r = c.do("POST", "/api/login", strings.NewReader("username=dave&password=wrong"), "Content-Type", "Application/X-WWW-Form-URLencoded; charset=utf-8")
		require.Equal(t, http.StatusUnauthorized, r.Code, "form failure %d", i+1)
	}
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	_ = mw.WriteField("username", "dave")
	_ = mw.WriteField("password", "right")
	require.NoError(t, mw.Close())
	r = c.do("POST", "/api/login", &body, "Content-Type", mw.FormDataContentType())
	assert.Equal(t, http.StatusForbidden, r.Code, "the login read from a form is the one locked, multipart included")
}

func TestUpstreamErrorsAreNotFailedLogins(t *testing.T) {
	t.Parallel()
	s := startStack(t, guardedConfig)
	loginBackend(s.u1)
	c := s.from("127.0.0.102")
	for range 5 {
		assert.Equal(t, http.StatusBadGateway, c.postJSON("/api/login", `{"username":"erin","password":"upstream-down"}`).Code)
	}
	assert.Equal(t, http.StatusOK, c.postJSON("/api/login", `{"username":"erin","password":"right"}`).Code,
		"a backend outage locks nobody out")
}

func TestRBACHoldsAgainstPathVariants(t *testing.T) {
	t.Parallel()
	s := startStack(t, keysConfig)
	loginAs(s.u1, "alice", "pw", "user")
	key := mintKey(t, s, "127.0.0.103")
	c := s.from("127.0.0.103")
	for _, p := range []string{"/app/secret", "/app/SECRET", "/app/secret;a=b", "/app/Secret/x"} {
		assert.Equal(t, http.StatusForbidden, c.get(p+"?KEY="+key).Code, p)
	}
	assert.Zero(t, s.u1.count("/app/"), "none reached the upstream")
}

func TestIPv6ClientsAreBannedByTheirSlash64(t *testing.T) {
	t.Parallel()
	s := startStack(t, keysConfig)
	proxy := s.from("127.0.0.2") // trusted
	for i := range 5 {
		r := proxy.get(fmt.Sprintf("/app/hello?KEY=bad%d", i), "X-Forwarded-For", fmt.Sprintf("2001:db8:7:7::%x", i+1))
		require.Equal(t, http.StatusUnauthorized, r.Code)
	}
	r := proxy.get("/app/hello?KEY=bad6", "X-Forwarded-For", "2001:db8:7:7::99")
	assert.Equal(t, http.StatusForbidden, r.Code, "six bad keys from one /64 ban it")
	r = proxy.get("/api/x", "X-Forwarded-For", "2001:db8:7:7:abcd::1")
	assert.Equal(t, http.StatusForbidden, r.Code, "a fresh address in the banned /64 is still banned")
	assert.Equal(t, http.StatusOK, proxy.get("/api/x", "X-Forwarded-For", "2001:db8:7:8::1").Code, "another /64 is not")
}

func TestClientForwardingHeadersNeverReachTheUpstream(t *testing.T) {
	t.Parallel()
	s := startStack(t, keysConfig)
	s.from("127.0.0.104").get("/api/x", "X-Real-IP", "10.0.0.1", "X-Forwarded-For", "10.0.0.2", "Forwarded", "for=10.0.0.3", "X-Forwarded-Host", "evil.example")
	got := s.u1.requests()
	require.Len(t, got, 1)
	assert.Equal(t, "127.0.0.104", got[0].Header.Get("X-Real-IP"))
	assert.Equal(t, "127.0.0.104", got[0].XFF)
	assert.Empty(t, got[0].Header.Get("Forwarded"))
	assert.NotEqual(t, "evil.example", got[0].Header.Get("X-Forwarded-Host"))
}

func TestReloadRefusesRestartOnlyChanges(t *testing.T) {
	t.Parallel()
	s := startStack(t, proxyConfig)
	s.write(strings.Replace(proxyConfig, "password: s3cret", "password: n3w", 1))
	r := s.adminPost("/admin/reload", "")
	assert.Equal(t, http.StatusBadRequest, r.Code)
	assert.Contains(t, r.Body, "admin", "names what needs a restart")
	assert.Equal(t, http.StatusOK, s.adminGet("/admin/routes").Code, "the old credentials still work, as reported")

	// trusted_proxies reloads: 127.0.0.2 stops being believed.
	s.write(strings.Replace(proxyConfig, "trusted_proxies: [127.0.0.2/32]", "trusted_proxies: []", 1))
	require.Equal(t, http.StatusOK, s.adminPost("/admin/reload", "").Code)
	s.from("127.0.0.2").get("/api/x", "X-Forwarded-For", "203.0.113.9")
	got := s.u1.requests()
	require.NotEmpty(t, got)
	assert.Equal(t, "127.0.0.2", got[len(got)-1].XFF)
}

func TestMethods(t *testing.T) {
	t.Parallel()
	s := startStack(t, proxyConfig)
	c := s.from("127.0.0.105")
	assert.Equal(t, http.StatusMethodNotAllowed, c.do("TRACE", "/api/x", nil).Code, "TRACE would echo credentials")
	assert.Equal(t, http.StatusOK, c.do("PURGE", "/api/x", nil).Code, "other methods are proxied")
	assert.Equal(t, "PURGE", s.u1.requests()[0].Method)
}

// With CORS configured, the gateway's headers are the only ones: the
// upstream's permissive CORS neither doubles nor leaks through.
func TestGatewayOwnsCORS(t *testing.T) {
	t.Parallel()
	s := startStack(t, proxyConfig)
	s.u1.handle(func(w http.ResponseWriter, r *http.Request, _ []byte) bool {
		w.Header().Set("Access-Control-Allow-Origin", "*")
		return false
	})
	r := s.from("127.0.0.106").get("/api/x", "Origin", "https://app.example")
	assert.Equal(t, []string{"https://app.example"}, r.Header.Values("Access-Control-Allow-Origin"))
	r = s.from("127.0.0.106").get("/api/x", "Origin", "https://evil.example")
	assert.Empty(t, r.Header.Values("Access-Control-Allow-Origin"))
}

// Impossible travel may only ever be fed by verified principals: a key the
// gateway accepted is remembered with the address it came from; a key it
// refused is not.
func TestVerifiedKeysAreRememberedForTravel(t *testing.T) {
	t.Parallel()
	s := startStack(t, keysConfig)
	loginAs(s.u1, "alice", "pw", "user")
	key := mintKey(t, s, "127.0.0.107")
	require.Equal(t, http.StatusOK, s.from("127.0.0.107").get("/app/hello", "X-API-Key", key).Code)
	require.Equal(t, http.StatusUnauthorized, s.from("127.0.0.108").get("/app/hello", "X-API-Key", strings.Repeat("0", 64)).Code)

	locs, err := testenv.Keys(t.Context(), s.rdb, s.prefix+"{key:*}:loc")
	require.NoError(t, err)
	require.Len(t, locs, 1, "only the accepted key")
	ip, err := s.rdb.HGet(t.Context(), locs[0], "ip").Result()
	require.NoError(t, err)
	assert.Equal(t, "127.0.0.107", ip)
}
