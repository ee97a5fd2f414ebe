package main

// Method overrides (issue 19): frameworks run a POST carrying
// X-HTTP-Method-Override: DELETE (or _method=DELETE) as a DELETE, so a role
// check that saw POST would guard a method the upstream never runs. The
// gateway removes the override headers.

import (
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// overrideConfig checks roles on /app/: the role "user" may GET and POST
// items, nobody may DELETE them; /open/ checks no roles.
const overrideConfig = `
routes:
  - {path: /app/, upstream: "{{U1}}", auth: api_key}
  - {path: /open/, upstream: "{{U3}}"}
scorer: {enabled: false}
admin: {username: admin, password: s3cret}
api_key:
  auth_upstream: "{{U1}}"
  key_ttl: 60s
  invalid_window: 5s
  invalid_threshold: 5
  block_duration: 3s
  role_attribute: role
  permissions:
    items: {GET: [user], POST: [user]}
login_protection:
  login: {rate: 0}
  password: {rate: 0}
  ip: {rate: 0}
`

// overrideHeaders are the override headers a client can send, in the
// spellings frameworks (and CGI-style servers, for '_') read.
var overrideHeaders = []string{
	"X-HTTP-Method-Override", "X-Method-Override", "X-HTTP-Method", "X-Method",
	"X_HTTP_Method_Override", "x-http-method-override",
}

// noOverrideHeader asserts that the upstream's last request carried no
// override header in any spelling.
func noOverrideHeader(t *testing.T, got recorded, msg string) {
	t.Helper()
	for k := range got.Header {
		n := strings.ToLower(strings.ReplaceAll(k, "_", "-"))
		assert.NotContains(t, []string{"x-http-method-override", "x-method-override", "x-http-method", "x-method"}, n,
			"%s: the upstream got %s: %v", msg, k, got.Header[k])
	}
}

func TestMethodOverrideHeadersAreRemoved(t *testing.T) {
	t.Parallel()
	s := startStack(t, overrideConfig)
	loginAs(s.u1, "alice", "pw", "user")
	key := mintKey(t, s, "127.0.0.190")
	c := s.from("127.0.0.190")

	for _, h := range overrideHeaders {
		r := c.do("POST", "/app/items/1?KEY="+key, strings.NewReader(`{}`), "Content-Type", "application/json", h, "DELETE")
		require.Equal(t, http.StatusOK, r.Code, "%s: %s", h, r.Body)
		got := s.u1.last(t)
		assert.Equal(t, "POST", got.Method)
		noOverrideHeader(t, got, h)
	}
	// All of them at once, on a route without role checks and
	// on a GET: removed on every route and every method.
	hdr := []string{}
	for _, h := range overrideHeaders[:4] {
		hdr = append(hdr, h, "DELETE")
	}
	require.Equal(t, http.StatusOK, c.do("POST", "/open/x", nil, hdr...).Code)
	noOverrideHeader(t, s.u3.last(t), "open route")
	require.Equal(t, http.StatusOK, c.get("/app/items/1?KEY="+key, hdr...).Code)
	noOverrideHeader(t, s.u1.last(t), "GET")
}
