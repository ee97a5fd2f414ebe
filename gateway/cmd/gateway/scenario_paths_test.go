package main

// Ambiguous paths, sent raw over TCP (issue 12, item 4): refused with 400
// before any upstream sees them, except what a raw route opts into.
// Policy: gateway/internal/pathnorm; SECURITY.md ("The gateway's edge").

import (
	"net/http"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const pathsConfig = `
routes:
  - {path: /api/, upstream: "{{U1}}"}
  - {path: /raw/, upstream: "{{U2}}", path_normalization: raw}
scorer: {enabled: false}
`

func TestAmbiguousPathsAreRefused(t *testing.T) {
	t.Parallel()
	s := startStack(t, pathsConfig)
	for _, tc := range []struct{ path, why string }{
		{"/api/..;/secret", "dot segment"},
		{"/api/.;/secret", "dot segment"},
		{"/api/../secret", "dot segment"},
		{"/api/./secret", "dot segment"},
		{"/api/%2e%2e/secret", "dot segment"},
		{"/api/..%20/secret", "dot segment"},
		{`/api/..\secret`, "backslash"},
		{"/api/..%5csecret", "backslash"},
		{"/api/..%5Csecret", "backslash"},
		{"/api/%252e%252e/secret", "double encoding"},
		{"/api/..%252fsecret", "double encoding"},
		{"/api/..%2fsecret", "dot segment"}, // %2F splits segments on raw routes, so .. is the reason on every route
		{"/api/a%2Fb", "encoded slash"},
		{"/api/%c0%ae%c0%ae/secret", "invalid or overlong UTF-8"},
		{"/api/%e0%80%ae/secret", "invalid or overlong UTF-8"},
		{"/api/..%00/secret", "control character"},
		{"/api/a%0d%0aX-Injected:%201", "control character"},
		{"/raw/..%2f..%2fapi/secret", "dot segment"}, // raw routes still refuse dot segments
		{"/raw/a%5Cb", "backslash"},
	} {
		answers, _ := s.rawExchange("127.0.0.122", "GET "+tc.path+" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
		require.Len(t, answers, 1, tc.path)
		assert.Equal(t, http.StatusBadRequest, answers[0].Code, tc.path)
		assert.JSONEq(t, `{"error":"Ambiguous path: `+tc.why+`"}`, stripRequestID(t, answers[0].Body), tc.path)
	}
	// A target that is not a path matches no route at all.
	answers, _ := s.rawExchange("127.0.0.122", "GET * HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	require.Len(t, answers, 1)
	assert.Equal(t, http.StatusNotFound, answers[0].Code)
	assert.Empty(t, s.u1.requests(), "nothing reached the upstream")
	assert.Empty(t, s.u2.requests(), "nothing reached the raw upstream")

	// Duplicate slashes are merged, not refused.
	answers, _ = s.rawExchange("127.0.0.122", "GET //api//merged/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	require.Len(t, answers, 1)
	assert.Equal(t, http.StatusOK, answers[0].Code)
	require.Len(t, s.u1.requests(), 1)
	assert.Equal(t, "/api/merged/", s.u1.requests()[0].URI)
}

// A route with path_normalization: raw forwards the path byte for byte,
// while routing used the normalised one.
func TestRawRouteForwardsThePathAsSent(t *testing.T) {
	t.Parallel()
	s := startStack(t, pathsConfig)
	for _, target := range []string{
		"/raw/a%2Fb//c%252e;v=1?q=%2F",
		"//raw//x%2Fy",
		"/raw/caf%C3%A9/%7Euser",
	} {
		answers, _ := s.rawExchange("127.0.0.123", "GET "+target+" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
		require.Len(t, answers, 1, target)
		assert.Equal(t, http.StatusOK, answers[0].Code, target)
		got := s.u2.requests()
		require.NotEmpty(t, got)
		assert.Equal(t, target, got[len(got)-1].URI)
	}
	assert.Empty(t, s.u1.requests())
	// The same encoded slash on a strict route is refused.
	answers, _ := s.rawExchange("127.0.0.123", "GET /api/a%2Fb HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	require.Len(t, answers, 1)
	assert.Equal(t, http.StatusBadRequest, answers[0].Code)
	assert.Empty(t, s.u1.requests())
}

// On a raw route the protections still see the normalised path: a login
// locked at /raw/login stays locked when spelled //raw//%6Cogin.
func TestRawRouteIsProtectedOnTheNormalisedPath(t *testing.T) {
	t.Parallel()
	s := startStack(t, pathsConfig+`
login_protection:
  routes: [{path: /raw/login}]
  login: {rate: 0}
  password: {rate: 0}
  ip: {rate: 0}
  failures: 2
  failure_window: 10s
  block: 10s
`)
	s.u2.handle(func(w http.ResponseWriter, r *http.Request, _ []byte) bool {
		w.WriteHeader(http.StatusUnauthorized)
		return true
	})
	body := `{"username":"carol","password":"wrong"}`
	login := func(target string) int {
		answers, _ := s.rawExchange("127.0.0.124", "POST "+target+" HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"+
			"Content-Length: "+strconv.Itoa(len(body))+"\r\nConnection: close\r\n\r\n"+body)
		require.Len(t, answers, 1, target)
		return answers[0].Code
	}
	require.Equal(t, http.StatusUnauthorized, login("/raw/login"))
	require.Equal(t, http.StatusUnauthorized, login("/raw/login"))
	assert.Equal(t, http.StatusForbidden, login("//raw//%6Cogin"), "the same login, however spelled")
	assert.Equal(t, http.StatusForbidden, login("/raw/login/"))
	assert.Len(t, s.u2.requests(), 2, "the locked attempts never reached the upstream")
}

// Headers some frameworks take as the real path (Symfony, IIS URL Rewrite)
// would name a path the gateway never routed or checked: removed.
func TestPathOverrideHeadersAreRemoved(t *testing.T) {
	t.Parallel()
	s := startStack(t, pathsConfig)
	r := s.from("127.0.0.123").get("/api/public", "X-Original-URL", "/admin/secret", "X-Rewrite-URL", "/admin/secret",
		"X_Original_URL", "/admin/secret", "X-Original-URI", "/admin/secret")
	require.Equal(t, http.StatusOK, r.Code)
	got := s.u1.last(t)
	require.Equal(t, "/api/public", got.URI)
	for k, v := range got.Header {
		assert.NotContains(t, v, "/admin/secret", k)
	}
}
