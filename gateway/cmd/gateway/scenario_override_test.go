package main

// Method overrides (issue 19): frameworks run a POST carrying
// X-HTTP-Method-Override: DELETE (or _method=DELETE) as a DELETE, so a role
// check that saw POST would guard a method the upstream never runs. By
// default the gateway removes the override headers and refuses _method
// where roles are checked; a route with method_override: true passes them
// on and checks each method they name.

import (
	"bytes"
	"io"
	"mime/multipart"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// overrideConfig checks roles on /app/ and /opt/ (opted in): the role
// "user" may GET and POST items, nobody may DELETE them; /open/ checks no
// roles.
const overrideConfig = `
routes:
  - {path: /app/, upstream: "{{U1}}", auth: api_key}
  - {path: /open/, upstream: "{{U3}}"}
  #OPT
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

// optedIn adds /opt/, a route with role checks that lets overrides through.
var optedIn = strings.Replace(overrideConfig, "#OPT",
	`- {path: /opt/, upstream: "{{U2}}", auth: api_key, method_override: true}`, 1)

// overrideHeaders are the override headers a client can send, in the
// spellings frameworks (and CGI-style servers, for '_') read.
var overrideHeaders = []string{
	"X-HTTP-Method-Override", "X-Method-Override", "X-HTTP-Method", "X-Method",
	"X_HTTP_Method_Override", "x-http-method-override",
}

// multipartBody is a multipart/form-data body with the given fields.
func multipartBody(t *testing.T, fields ...string) (*bytes.Buffer, string) {
	t.Helper()
	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	for i := 0; i+1 < len(fields); i += 2 {
		require.NoError(t, mw.WriteField(fields[i], fields[i+1]))
	}
	require.NoError(t, mw.Close())
	return &b, mw.FormDataContentType()
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

func TestMethodOverrideParameterIsRefusedWhereRolesAreChecked(t *testing.T) {
	t.Parallel()
	s := startStack(t, overrideConfig)
	loginAs(s.u1, "alice", "pw", "user")
	key := mintKey(t, s, "127.0.0.191")
	c := s.from("127.0.0.191")
	before := s.u1.count("/app/")

	refused := func(r reply, where, msg string) {
		t.Helper()
		assert.Equal(t, http.StatusBadRequest, r.Code, "%s: %s", msg, r.Body)
		if r.Code == http.StatusBadRequest {
			e, _ := r.json(t)["error"].(string)
			assert.Contains(t, e, where, msg)
			assert.Contains(t, e, `"_method`, msg)
		}
	}
	for _, q := range []string{
		"_method=DELETE", "_METHOD=delete", "%5Fmethod=DELETE", "%5f%6Dethod=DELETE",
		".method=DELETE",          // PHP reads '.' in a name as '_'
		"_method[]=DELETE",        // qs (Express), PHP: an array whose first element is used
		"a=1;_method=DELETE",      // ';' separates parameters for some parsers
		"a=1&_method=&b=2",        // present, even empty
		"_method_override=DELETE", // WAI's older name
	} {
		refused(c.do("POST", "/app/items/1?KEY="+key+"&"+q, nil), "query", q)
		refused(c.get("/app/items/1?"+q+"&KEY="+key), "query", "GET "+q)
	}

	form := func(ct, body string) reply {
		return c.do("POST", "/app/items/1?KEY="+key, strings.NewReader(body), "Content-Type", ct)
	}
	refused(form("application/x-www-form-urlencoded", "name=x&_method=DELETE"), "form", "urlencoded")
	refused(form("Application/X-WWW-Form-Urlencoded; charset=utf-8", "%5Fmethod=DELETE"), "form", "urlencoded, encoded name")
	refused(c.do("POST", "/app/items/1?KEY="+key, io.MultiReader(strings.NewReader("a=1&"), strings.NewReader("_method=DELETE")),
		"Content-Type", "application/x-www-form-urlencoded"), "form", "chunked")
	// Rack reads a POST without a Content-Type as a form.
	refused(c.do("POST", "/app/items/1?KEY="+key, strings.NewReader("_method=DELETE")), "form", "no Content-Type")
	mp, ct := multipartBody(t, "name", "x", "_method", "DELETE")
	refused(form(ct, mp.String()), "form", "multipart")
	assert.Equal(t, before, s.u1.count("/app/"), "no refused request reached the upstream")

	// Where the method decides nothing, nothing is read or refused: an
	// endpoint with no permissions entry, a route without role checks,
	// a JSON body (not read; see SECURITY.md).
	assert.Equal(t, http.StatusOK, c.do("POST", "/app/other?_method=DELETE&KEY="+key, nil).Code)
	assert.Equal(t, http.StatusOK, c.do("POST", "/open/x?_method=DELETE", strings.NewReader("_method=DELETE"),
		"Content-Type", "application/x-www-form-urlencoded").Code)
	r := form("application/x-www-form-urlencoded", "name=x&method=DELETE")
	require.Equal(t, http.StatusOK, r.Code, "a form without an override passes: %s", r.Body)
	got := s.u1.last(t)
	assert.Equal(t, "name=x&method=DELETE", string(got.Body), "the form body read is forwarded as sent")
	assert.Equal(t, "application/x-www-form-urlencoded", got.ContentType)
	mp, ct = multipartBody(t, "name", "x")
	require.Equal(t, http.StatusOK, form(ct, mp.String()).Code)
	assert.Equal(t, mp.String(), string(s.u1.last(t).Body))

	// What it costs: a form body there is read whole, so it may be at
	// most body_buffer_size (64 KiB); other bodies stream as before.
	big := "a=" + strings.Repeat("x", 70<<10)
	r = form("application/x-www-form-urlencoded", big)
	assert.Equal(t, http.StatusRequestEntityTooLarge, r.Code, r.Body)
	assert.Contains(t, r.Body, "body_buffer_size")
	assert.Equal(t, http.StatusOK, form("application/json", `"`+big+`"`).Code)
	assert.Equal(t, http.StatusOK, c.do("POST", "/open/x", strings.NewReader(big), "Content-Type", "application/x-www-form-urlencoded").Code)
}

func TestMethodOverrideOptInChecksTheOverridingMethod(t *testing.T) {
	t.Parallel()
	s := startStack(t, optedIn)
	loginAs(s.u1, "alice", "pw", "user")
	key := mintKey(t, s, "127.0.0.192")
	c := s.from("127.0.0.192")
	forbidden := func(r reply, msg string) {
		t.Helper()
		assert.Equal(t, http.StatusForbidden, r.Code, "%s: %s", msg, r.Body)
		assert.JSONEq(t, `{"error":"Not allowed"}`, stripRequestID(t, r.Body), msg)
	}

	// A POST overridden to DELETE is checked as DELETE, in every spelling.
	for _, h := range overrideHeaders {
		forbidden(c.do("POST", "/opt/items/1?KEY="+key, nil, h, "DELETE"), h)
		forbidden(c.do("POST", "/opt/items/1?KEY="+key, nil, h, " delete "), h+", lower case")
	}
	forbidden(c.do("POST", "/opt/items/1?KEY="+key+"&_method=DELETE", nil), "query")
	forbidden(c.do("POST", "/opt/items/1?KEY="+key, strings.NewReader("_method=delete"),
		"Content-Type", "application/x-www-form-urlencoded"), "form")
	mp, ct := multipartBody(t, "_method", "DELETE")
	forbidden(c.do("POST", "/opt/items/1?KEY="+key, mp, "Content-Type", ct), "multipart")
	// Two overrides: the upstream picks one, so both are checked.
	forbidden(c.do("POST", "/opt/items/1?KEY="+key+"&_method=GET", nil, "X-HTTP-Method-Override", "DELETE"), "header and query")
	forbidden(c.do("POST", "/opt/items/1?KEY="+key, nil, "X-HTTP-Method-Override", "GET, DELETE"), "a list")
	assert.Zero(t, s.u2.count("/opt/"), "no refused override reached the upstream")

	// An override the role allows passes, with the override.
	r := c.do("POST", "/opt/items/1?KEY="+key, nil, "X-HTTP-Method-Override", "GET")
	require.Equal(t, http.StatusOK, r.Code, r.Body)
	got := s.u2.last(t)
	assert.Equal(t, "POST", got.Method)
	assert.Equal(t, "GET", got.Header.Get("X-HTTP-Method-Override"))
	require.Equal(t, http.StatusOK, c.do("POST", "/opt/items/1?_method=GET&KEY="+key, nil).Code)
	assert.Equal(t, "/opt/items/1?_method=GET", s.u2.last(t).URI)
	r = c.do("POST", "/opt/items/1?KEY="+key, strings.NewReader("_method=GET&a=1"), "Content-Type", "application/x-www-form-urlencoded")
	require.Equal(t, http.StatusOK, r.Code, r.Body)
	assert.Equal(t, "_method=GET&a=1", string(s.u2.last(t).Body))

	// Only POST is overridden by the frameworks: an override on any other
	// method is refused, not guessed at.
	r = c.get("/opt/items/1?KEY="+key, "X-HTTP-Method-Override", "GET")
	assert.Equal(t, http.StatusBadRequest, r.Code, r.Body)
	assert.Contains(t, r.Body, "only POST")
	// An override that names no method, or one the gateway never forwards.
	assert.Equal(t, http.StatusBadRequest, c.do("POST", "/opt/items/1?KEY="+key, nil, "X-HTTP-Method-Override", "DEL ETE").Code)
	assert.Equal(t, http.StatusBadRequest, c.do("POST", "/opt/items/1?KEY="+key, nil, "X-HTTP-Method-Override", "TRACE").Code)
	// The route without the opt-in still removes them.
	require.Equal(t, http.StatusOK, c.do("POST", "/app/items/1?KEY="+key, nil, "X-HTTP-Method-Override", "GET").Code)
	noOverrideHeader(t, s.u1.last(t), "/app/")
}
