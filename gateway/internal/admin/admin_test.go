package admin_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulwarkgw/bulwark/gateway/internal/admin"
	"github.com/bulwarkgw/bulwark/gateway/internal/admin/admintest"
	"github.com/bulwarkgw/bulwark/gateway/internal/redisbreaker"
)

var creds = admin.Auth{Token: "t0ken", Username: "admin", Password: "s3cret"}

func newAPI(t *testing.T, f *admintest.Fixture) *echo.Echo {
	t.Helper()
	e, err := admin.New(f.Deps(creds))
	require.NoError(t, err)
	return e
}

type opt func(*http.Request)

func basic(user, pass string) opt { return func(r *http.Request) { r.SetBasicAuth(user, pass) } }
func bearer(tok string) opt {
	return func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+tok) }
}
func from(ip string) opt { return func(r *http.Request) { r.RemoteAddr = ip + ":40000" } }

// admin is the correct credentials.
var asAdmin = basic("admin", "s3cret")

func do(h http.Handler, method, path, body string, opts ...opt) *httptest.ResponseRecorder {
	var req *http.Request
	if body == "" {
		req = httptest.NewRequest(method, path, nil)
	} else {
		req = httptest.NewRequest(method, path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
	}
	req.RemoteAddr = "192.0.2.1:40000"
	for _, o := range opts {
		o(req)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func TestNewRefusesAnOpenOrIncompleteAdmin(t *testing.T) {
	f := admintest.NewFixture()
	for name, auth := range map[string]admin.Auth{
		"no credentials":   {},
		"user only":        {Username: "admin"},
		"password only":    {Password: "x"},
		"token, half user": {Token: "t", Username: "admin"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := admin.New(f.Deps(auth))
			assert.Error(t, err)
		})
	}
	t.Run("missing dependencies are all named", func(t *testing.T) {
		d := f.Deps(creds)
		d.Lists, d.Audit = nil, nil
		_, err := admin.New(d)
		require.Error(t, err)
		assert.Contains(t, err.Error(), "Lists")
		assert.Contains(t, err.Error(), "Audit")
	})
	for name, auth := range map[string]admin.Auth{
		"token only": {Token: "t"},
		"basic only": {Username: "admin", Password: "s3cret"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := admin.New(f.Deps(auth))
			assert.NoError(t, err)
		})
	}
}

func TestAuthentication(t *testing.T) {
	tests := []struct {
		name string
		auth admin.Auth
		opts []opt
		code int
		// challenge is the WWW-Authenticate values on a 401.
		challenge []string
	}{
		{"bearer", creds, []opt{bearer("t0ken")}, 200, nil},
		{"basic", creds, []opt{asAdmin}, 200, nil},
		{"nothing", creds, nil, 401, []string{`Basic realm="bulwark-admin"`, `Bearer realm="bulwark-admin"`}},
		{"wrong token", creds, []opt{bearer("t0ke")}, 401, []string{`Basic realm="bulwark-admin"`, `Bearer realm="bulwark-admin"`}},
		{"wrong password", creds, []opt{basic("admin", "s3cre")}, 401, []string{`Basic realm="bulwark-admin"`, `Bearer realm="bulwark-admin"`}},
		{"wrong user", creds, []opt{basic("root", "s3cret")}, 401, []string{`Basic realm="bulwark-admin"`, `Bearer realm="bulwark-admin"`}},
		{"empty bearer", admin.Auth{Username: "admin", Password: "s3cret"}, []opt{bearer("")}, 401, []string{`Basic realm="bulwark-admin"`}},
		{"basic when only a token is set", admin.Auth{Token: "t0ken"}, []opt{basic("", "t0ken")}, 401, []string{`Bearer realm="bulwark-admin"`}},
		{"token when only basic is set", admin.Auth{Username: "admin", Password: "s3cret"}, []opt{bearer("s3cret")}, 401, []string{`Basic realm="bulwark-admin"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := admintest.NewFixture()
			e, err := admin.New(f.Deps(tt.auth))
			require.NoError(t, err)
			// Every route family is protected, the seeds' aliases included.
			for _, path := range []string{"/admin/config", "/audit/logs", "/v1/admin/status", "/nowhere"} {
				rec := do(e, http.MethodGet, path, "", tt.opts...)
				if tt.code == 200 && path == "/nowhere" {
					assert.Equal(t, http.StatusNotFound, rec.Code, path)
					continue
				}
				require.Equal(t, tt.code, rec.Code, path)
				if tt.code == 401 {
					assert.JSONEq(t, `{"error":"Unauthorized"}`, rec.Body.String())
					assert.Equal(t, tt.challenge, rec.Header().Values("WWW-Authenticate"))
				}
			}
			if tt.code == 401 {
				rec := do(e, http.MethodPost, "/admin/reload", "", tt.opts...)
				assert.Equal(t, 401, rec.Code)
				assert.Equal(t, []string{"auth_failed", "auth_failed", "auth_failed", "auth_failed", "auth_failed"}, f.Audit.Actions(),
					"every auth failure is audited, and nothing else happened")
			}
		})
	}
}

func TestLockoutAfterFiveFailures(t *testing.T) {
	f := admintest.NewFixture()
	e := newAPI(t, f)
	attacker, other := from("127.0.0.30"), from("127.0.0.31")

	for i := range 5 {
		rec := do(e, http.MethodGet, "/admin/config", "", attacker, basic("admin", "guess"))
		require.Equal(t, http.StatusUnauthorized, rec.Code, "failure %d", i+1)
		f.Advance(10 * time.Second)
	}
	// The first failure was 50 s ago: 250 s of the 300 s window remain.
	rec := do(e, http.MethodGet, "/admin/config", "", attacker, asAdmin)
	require.Equal(t, http.StatusTooManyRequests, rec.Code)
	assert.JSONEq(t, `{"error":"Too many failed authentication attempts"}`, rec.Body.String())
	assert.Equal(t, "250", rec.Header().Get("Retry-After"))

	rec = do(e, http.MethodGet, "/admin/config", "", attacker, bearer("t0ken"))
	assert.Equal(t, http.StatusTooManyRequests, rec.Code, "the correct token is refused too")
	assert.Equal(t, http.StatusOK, do(e, http.MethodGet, "/admin/config", "", other, asAdmin).Code, "other IPs are unaffected")

	f.Advance(249 * time.Second)
	rec = do(e, http.MethodGet, "/admin/config", "", attacker, asAdmin)
	require.Equal(t, http.StatusTooManyRequests, rec.Code)
	assert.Equal(t, "1", rec.Header().Get("Retry-After"))

	f.Advance(time.Second)
	assert.Equal(t, http.StatusOK, do(e, http.MethodGet, "/admin/config", "", attacker, asAdmin).Code, "the window has passed")
}

// Fifty guesses at once from one address: only five are ever checked; the
// rest are refused as locked out, never answered 401.
func TestLockoutHoldsUnderConcurrentGuesses(t *testing.T) {
	f := admintest.NewFixture()
	e := newAPI(t, f)
	attacker := from("127.0.0.40")
	var wg sync.WaitGroup
	var mu sync.Mutex
	codes := map[int]int{}
	for range 50 {
		wg.Go(func() {
			rec := do(e, http.MethodGet, "/admin/config", "", attacker, basic("admin", "guess"))
			mu.Lock()
			codes[rec.Code]++
			mu.Unlock()
		})
	}
	wg.Wait()
	assert.Equal(t, map[int]int{http.StatusUnauthorized: 5, http.StatusTooManyRequests: 45}, codes)
}

func TestLockoutCountsOnlyRecentWrongCredentials(t *testing.T) {
	f := admintest.NewFixture()
	e := newAPI(t, f)
	ip := from("127.0.0.32")
	fail := func(n int) {
		for range n {
			require.Equal(t, 401, do(e, http.MethodGet, "/admin/status", "", ip, bearer("nope")).Code)
		}
	}

	fail(4)
	require.Equal(t, 200, do(e, http.MethodGet, "/admin/status", "", ip, asAdmin).Code)
	fail(4) // a success wipes the slate
	for range 10 {
		require.Equal(t, 401, do(e, http.MethodGet, "/admin/status", "", ip).Code, "no credentials at all guess nothing")
	}
	assert.Equal(t, 200, do(e, http.MethodGet, "/admin/status", "", ip, asAdmin).Code)

	fail(4)
	f.Advance(301 * time.Second)
	fail(4) // the first four have left the window
	assert.Equal(t, 200, do(e, http.MethodGet, "/admin/status", "", ip, asAdmin).Code)

	// X-Forwarded-For never picks the IP that is counted.
	fail(5)
	rec := do(e, http.MethodGet, "/admin/status", "", ip, asAdmin, func(r *http.Request) { r.Header.Set("X-Forwarded-For", "198.51.100.1") })
	assert.Equal(t, http.StatusTooManyRequests, rec.Code)
}

// TestLockoutCountsAnIPv6PeerByItsSlash64: rotating through one /64 does
// not buy an IPv6 peer more guesses; the next /64 is another peer.
func TestLockoutCountsAnIPv6PeerByItsSlash64(t *testing.T) {
	e := newAPI(t, admintest.NewFixture())
	for i := range 5 {
		peer := func(r *http.Request) { r.RemoteAddr = fmt.Sprintf("[2001:db8:1:2::%x]:40000", i+1) }
		require.Equal(t, 401, do(e, http.MethodGet, "/admin/status", "", peer, bearer("nope")).Code)
	}
	other := func(r *http.Request) { r.RemoteAddr = "[2001:db8:1:2:ffff::1]:40000" }
	assert.Equal(t, http.StatusTooManyRequests, do(e, http.MethodGet, "/admin/status", "", other, asAdmin).Code)
	next := func(r *http.Request) { r.RemoteAddr = "[2001:db8:1:3::1]:40000" }
	assert.Equal(t, http.StatusOK, do(e, http.MethodGet, "/admin/status", "", next, asAdmin).Code)
}

func TestLockoutIsBounded(t *testing.T) {
	f := admintest.NewFixture()
	d := f.Deps(creds)
	d.Lockout = admin.Lockout{MaxClients: 2}
	e, err := admin.New(d)
	require.NoError(t, err)

	for range 5 {
		do(e, http.MethodGet, "/admin/status", "", from("10.0.0.1"), bearer("x"))
	}
	require.Equal(t, 429, do(e, http.MethodGet, "/admin/status", "", from("10.0.0.1"), asAdmin).Code)
	do(e, http.MethodGet, "/admin/status", "", from("10.0.0.2"), bearer("x"))
	do(e, http.MethodGet, "/admin/status", "", from("10.0.0.3"), bearer("x"))
	assert.Equal(t, 200, do(e, http.MethodGet, "/admin/status", "", from("10.0.0.1"), asAdmin).Code,
		"the oldest record was evicted to stay within MaxClients")
}

// TestSeedShapes checks the seeds' paths return their exact bodies.
func TestSeedShapes(t *testing.T) {
	f := admintest.NewFixture()
	f.RateLimit.Count[netip.MustParseAddr("127.0.0.6")] = 5
	f.RateLimit.Count[netip.MustParseAddr("::")] = 7 // ::1's client: its /64
	f.AuditLog.Totals = admin.AuditStats{TotalEntries: 10, RequestCount: 7, AdminActionCount: 3}
	f.AuditLog.Entries = []admin.AuditEntry{
		{ID: 2, Timestamp: time.Date(2026, 1, 2, 3, 4, 6, 0, time.UTC), EventType: "admin_action", ClientIP: "127.0.0.1", Method: "POST", Path: "/admin/reload", Action: "config_reload", Details: "Reloaded 1 routes"},
		{ID: 1, Timestamp: time.Date(2026, 1, 2, 3, 4, 5, 500_000_000, time.UTC), EventType: "request", ClientIP: "127.0.0.31", Method: "GET", Path: "/api/users", StatusCode: 200, DurationMS: 1.25, UserAgent: "acc/1"},
	}
	f.Config = map[string]any{"routes": []any{map[string]any{"path": "/api/", "target": "http://127.0.0.1:9001"}}, "rate_limit": map[string]any{"requests_per_minute": 5}}
	e := newAPI(t, f)

	tests := []struct {
		method, path string
		want         string
	}{
		{"POST", "/admin/reload", `{"status":"success","message":"Configuration reloaded successfully","routes_count":1,"rate_limit":5}`},
		{"GET", "/admin/routes", `[{"path":"/api/","target":"http://127.0.0.1:9001"}]`},
		{"GET", "/admin/config", `{"status":"success","config":{"routes":[{"path":"/api/","target":"http://127.0.0.1:9001"}],"rate_limit":{"requests_per_minute":5}}}`},
		{"GET", "/admin/status", `{"status":"running","routes_count":1,"rate_limit":{"requests_per_minute":5,"window_size":60},"audit":{"total_entries":10,"request_count":7,"admin_action_count":3}}`},
		{"GET", "/admin/ratelimit/stats/127.0.0.6", `{"ip":"127.0.0.6","requests_in_window":5,"limit":5,"remaining":0}`},
		{"GET", "/admin/ratelimit/stats/::1", `{"ip":"::/64","requests_in_window":7,"limit":5,"remaining":0}`},
		{"GET", "/admin/ratelimit/stats/127.0.0.7", `{"ip":"127.0.0.7","requests_in_window":0,"limit":5,"remaining":5}`},
		{"POST", "/admin/ratelimit/clear/127.0.0.6", `{"status":"success","message":"Rate limit cleared for 127.0.0.6"}`},
		{"POST", "/admin/ratelimit/clear/127.0.0.99", `{"status":"success","message":"Rate limit cleared for 127.0.0.99"}`},
		{"GET", "/audit/logs?client_ip=127.0.0.31&limit=1", `[{"id":1,"timestamp":"2026-01-02T03:04:05.5Z","event_type":"request","client_ip":"127.0.0.31","method":"GET","path":"/api/users","status_code":200,"duration_ms":1.25,"action":null,"details":null,"user_agent":"acc/1"}]`},
		{"GET", "/audit/logs?event_type=admin_action", `[{"id":2,"timestamp":"2026-01-02T03:04:06Z","event_type":"admin_action","client_ip":"127.0.0.1","method":"POST","path":"/admin/reload","status_code":null,"duration_ms":null,"action":"config_reload","details":"Reloaded 1 routes","user_agent":null}]`},
		{"GET", "/audit/logs?client_ip=203.0.113.9", `[]`},
		{"GET", "/audit/stats", `{"status":"success","stats":{"total_entries":10,"request_count":7,"admin_action_count":3}}`},
		{"POST", "/admin/ratelimit/stats/127.0.0.6", `{"error":"Method Not Allowed"}`},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			rec := do(e, tt.method, tt.path, "", asAdmin)
			if !strings.Contains(tt.want, `"error"`) {
				require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
			}
			assert.JSONEq(t, tt.want, rec.Body.String())
			assert.Contains(t, rec.Header().Get("Content-Type"), "application/json")
		})
	}
	assert.Equal(t, admin.AuditFilter{Limit: 100, ClientIP: "203.0.113.9"}, f.AuditLog.Last, "defaults: limit 100, offset 0")
	assert.Equal(t, []string{"config_reload", "rate_limit_clear", "rate_limit_clear"}, f.Audit.Actions())
	assert.Equal(t, "Reloaded 1 routes", f.Audit.Records()[0].Details)
	assert.Equal(t, "Cleared rate limit for 127.0.0.6", f.Audit.Records()[1].Details)
}

func TestFailedReloadIsReportedAndAudited(t *testing.T) {
	f := admintest.NewFixture()
	f.ReloadErr = errors.New("routes[1].target: must be an http(s) URL")
	e := newAPI(t, f)

	for _, path := range []string{"/admin/reload", "/v1/admin/reload"} {
		rec := do(e, http.MethodPost, path, "", asAdmin)
		require.Equal(t, http.StatusBadRequest, rec.Code)
		assert.JSONEq(t, `{"error":"Failed to reload configuration: routes[1].target: must be an http(s) URL"}`, rec.Body.String())
	}
	require.Len(t, f.Audit.Records(), 2)
	assert.Equal(t, admintest.Record{Action: "config_reload_failed", Details: "routes[1].target: must be an http(s) URL", Method: "POST", Path: "/admin/reload", ClientIP: "192.0.2.1:40000"}, f.Audit.Records()[0])
}

// TestSeed003 follows S35 and S36 through the seed's admin routes.
func TestSeed003(t *testing.T) {
	f := admintest.NewFixture()
	f.Buckets["login:loginAuth"] = true
	f.Buckets["password:pw"] = true
	f.Buckets["ip:192.168.199.132"] = true
	e := newAPI(t, f)

	tests := []struct {
		path, body string
		code       int
		want       string
	}{
		{"/admin/reset_bucket_by_login", `{"login":"loginAuth"}`, 200, `{}`},
		{"/admin/reset_bucket_by_login", `{"login":"loginAuth"}`, 404, `{"error":"reset login bucket: not found"}`},
		{"/admin/reset_bucket_by_password", `{"password":"pw"}`, 200, `{}`},
		{"/admin/reset_bucket_by_password", `{"password":"pw"}`, 404, `{"error":"reset password bucket: not found"}`},
		{"/admin/reset_bucket_by_ip", `{"ip":"192.168.199.132"}`, 200, `{}`},
		{"/admin/reset_bucket_by_ip", `{"ip":"192.168.199.132"}`, 404, `{"error":"reset ip bucket: not found"}`},
		{"/admin/reset_bucket_by_ip", `{"ip":"garbage"}`, 400, `{"error":"ip: invalid client \"garbage\": not an IP address or an IPv6 /64"}`},
		{"/admin/reset_bucket_by_login", `{"login":""}`, 400, `{"error":"login: required"}`},
		{"/admin/reset_bucket_by_login", `{"password":"x"}`, 400, `{"error":"login: required"}`},
		{"/admin/reset_bucket_by_login", `{"login":5}`, 400, `{"error":"login: must be a string"}`},
		{"/admin/reset_bucket_by_login", `{"login":`, 400, `{"error":"body: invalid JSON: unexpected EOF"}`},
		{"/admin/reset_bucket_by_login", ``, 400, `{"error":"body: a JSON object is required"}`},

		{"/admin/add_in_whitelist", `{"ip_with_mask":"192.168.199.0/24"}`, 200, `{}`},
		{"/admin/add_in_whitelist", `{"ip_with_mask":"192.168.199.0/24"}`, 409, `{"error":"add 192.168.199.0/24 to allow list: already exists"}`},
		{"/admin/add_in_blacklist", `{"ip_with_mask":"192.168.199.0/24"}`, 409, `{"error":"add 192.168.199.0/24 to deny list: on the other list"}`},
		{"/admin/add_in_blacklist", `{"ip_with_mask":"10.1.2.3/8"}`, 200, `{}`},
		{"/admin/add_in_blacklist", `{"ip_with_mask":"10.0.0.0/33"}`, 400, ``},
		{"/admin/add_in_blacklist", `{}`, 400, `{"error":"ip_with_mask: required"}`},
		{"/admin/remove_from_blacklist", `{"ip_with_mask":"10.0.0.0/8"}`, 200, `{}`},
		{"/admin/remove_from_blacklist", `{"ip_with_mask":"10.0.0.0/8"}`, 404, `{"error":"remove 10.0.0.0/8 from deny list: not found"}`},
		{"/admin/remove_from_whitelist", `{"ip_with_mask":"192.168.199.0/24"}`, 200, `{}`},
		{"/admin/remove_from_whitelist", `{"ip_with_mask":"192.168.199.0/24"}`, 404, `{"error":"remove 192.168.199.0/24 from allow list: not found"}`},
	}
	for _, tt := range tests {
		t.Run(tt.path+" "+tt.body, func(t *testing.T) {
			rec := do(e, http.MethodPost, tt.path, tt.body, asAdmin)
			require.Equal(t, tt.code, rec.Code, rec.Body.String())
			if tt.want != "" {
				assert.JSONEq(t, tt.want, rec.Body.String())
			}
		})
	}
	var details []string
	for _, r := range f.Audit.Records() {
		details = append(details, r.Action+": "+r.Details)
	}
	assert.Equal(t, []string{
		"bucket_reset: Reset login bucket for loginAuth",
		"bucket_reset: Reset password bucket", // never the password itself
		"bucket_reset: Reset ip bucket for 192.168.199.132",
		"list_add: Added 192.168.199.0/24 to allow list",
		"list_add: Added 10.0.0.0/8 to deny list",
		"list_remove: Removed 10.0.0.0/8 from deny list",
		"list_remove: Removed 192.168.199.0/24 from allow list",
	}, details, "only successful changes are audited")
}

// TestIPv6ClientIsItsSlash64: every endpoint that names a client takes any
// address of an IPv6 /64, or the /64 itself, acts on the /64 and shows it
// as "2001:db8:1:2::/64"; other prefixes are refused naming the field.
func TestIPv6ClientIsItsSlash64(t *testing.T) {
	f := admintest.NewFixture()
	id := netip.MustParseAddr("2001:db8:1:2::")
	f.RateLimit.Count[id] = 4
	f.Buckets["ip:"+id.String()] = true
	f.AuditLog.Entries = []admin.AuditEntry{
		{ID: 3, EventType: "request", ClientIP: "2001:db8:1:2::77"},
		{ID: 2, EventType: "request", ClientIP: "2001:db8:1:3::77"},
		{ID: 1, EventType: "request", ClientIP: "2001:db8:1:2:ffff::1"},
	}
	e := newAPI(t, f)

	steps := []struct {
		method, path, body string
		code               int
		want               string // JSON, or "" to skip the body
	}{
		{"POST", "/v1/admin/bans", `{"ip":"2001:db8:1:2::5","ttl":"1h"}`, 201, `{"ip":"2001:db8:1:2::/64","ttl":"1h0m0s","reason":"admin","expires_at":"2026-01-02T04:04:05Z"}`},
		{"GET", "/v1/admin/bans", "", 200, `{"bans":[{"ip":"2001:db8:1:2::/64","reason":"admin","expires_at":"2026-01-02T04:04:05Z"}]}`},
		// Banning another address of the /64, or the /64, is the same ban.
		{"POST", "/v1/admin/bans", `{"ip":"2001:db8:1:2::/64","ttl":"2h"}`, 201, `{"ip":"2001:db8:1:2::/64","ttl":"2h0m0s","reason":"admin","expires_at":"2026-01-02T05:04:05Z"}`},
		{"GET", "/v1/admin/bans", "", 200, `{"bans":[{"ip":"2001:db8:1:2::/64","reason":"admin","expires_at":"2026-01-02T05:04:05Z"}]}`},
		{"POST", "/v1/admin/bans", `{"ip":"2001:db8:1:2::/48"}`, 400, `{"error":"ip: invalid client \"2001:db8:1:2::/48\": an IPv6 client is a /64 (or any address in it), not a /48"}`},
		{"POST", "/v1/admin/bans", `{"ip":"2001:db8:1:2::5/128"}`, 400, `{"error":"ip: invalid client \"2001:db8:1:2::5/128\": an IPv6 client is a /64 (or any address in it), not a /128"}`},
		{"POST", "/v1/admin/bans", `{"ip":"192.0.2.0/24"}`, 400, `{"error":"ip: invalid client \"192.0.2.0/24\": an IPv4 client is one address (or its /32), not a /24"}`},
		{"POST", "/v1/admin/bans", `{"ip":"fe80::1%eth0"}`, 400, `{"error":"ip: invalid client \"fe80::1%eth0\": a client address has no zone"}`},
		{"DELETE", "/v1/admin/bans/2001:db8:1:2::99", "", 200, `{"ip":"2001:db8:1:2::/64","removed":true}`},
		{"DELETE", "/v1/admin/bans/2001:db8:1:2::99", "", 404, `{"error":"no ban for 2001:db8:1:2::/64"}`},
		{"GET", "/v1/admin/bans", "", 200, `{"bans":[]}`},
		// The /64 itself in the path, its slash escaped.
		{"POST", "/v1/admin/bans", `{"ip":"::ffff:192.0.2.7"}`, 201, ""},
		{"POST", "/v1/admin/bans", `{"ip":"2001:db8:1:2::1"}`, 201, ""},
		{"DELETE", "/v1/admin/bans/2001:db8:1:2::%2F64", "", 200, `{"ip":"2001:db8:1:2::/64","removed":true}`},
		{"DELETE", "/v1/admin/bans/2001:db8:1:2::%2F56", "", 400, ""},
		{"DELETE", "/v1/admin/bans/192.0.2.7", "", 200, `{"ip":"192.0.2.7","removed":true}`},

		{"GET", "/v1/admin/ratelimit/2001:db8:1:2::abcd", "", 200, `{"ip":"2001:db8:1:2::/64","requests_in_window":4,"limit":5,"remaining":1}`},
		{"GET", "/v1/admin/ratelimit/2001:db8:1:2::%2F64", "", 200, `{"ip":"2001:db8:1:2::/64","requests_in_window":4,"limit":5,"remaining":1}`},
		{"DELETE", "/v1/admin/ratelimit/2001:db8:1:2:0:0:0:1", "", 200, `{"ip":"2001:db8:1:2::/64","cleared":true}`},

		{"POST", "/v1/admin/buckets/reset", `{"ip":"2001:db8:1:2::42"}`, 200, `{"reset":"ip"}`},
		{"POST", "/v1/admin/buckets/reset", `{"ip":"2001:db8:1:2::/64"}`, 404, ""},
		{"POST", "/v1/admin/buckets/reset", `{"ip":"2001:db8::/32"}`, 400, ""},

		// The audit log: an address finds its rows, the /64 all of them.
		{"GET", "/v1/admin/audit?client_ip=2001:db8:1:2::77", "", 200, `[{"id":3,"timestamp":"0001-01-01T00:00:00Z","event_type":"request","client_ip":"2001:db8:1:2::77","method":null,"path":null,"status_code":null,"duration_ms":null,"action":null,"details":null,"user_agent":null}]`},
		{"GET", "/v1/admin/audit?client_ip=2001:db8:1:2::/64", "", 200, ""},
		{"GET", "/v1/admin/audit?client_ip=2001:db8:1:2::/63", "", 400, ""},
	}
	for _, s := range steps {
		rec := do(e, s.method, s.path, s.body, bearer("t0ken"))
		require.Equal(t, s.code, rec.Code, "%s %s %s: %s", s.method, s.path, s.body, rec.Body.String())
		if s.want != "" {
			assert.JSONEq(t, s.want, rec.Body.String(), "%s %s", s.method, s.path)
		}
	}
	rec := do(e, http.MethodGet, "/v1/admin/audit?client_ip=2001:db8:1:2::/64", "", bearer("t0ken"))
	assert.JSONEq(t, `[{"id":3},{"id":1}]`, idsOnly(t, rec.Body.Bytes()))
	assert.Equal(t, "", f.AuditLog.Last.ClientIP)
	assert.NotEmpty(t, f.AuditLog.Last.ClientPattern)

	var details []string
	for _, r := range f.Audit.Records() {
		details = append(details, r.Details)
	}
	assert.Equal(t, []string{
		"Banned 2001:db8:1:2::/64 for 1h0m0s: admin",
		"Banned 2001:db8:1:2::/64 for 2h0m0s: admin",
		"Unbanned 2001:db8:1:2::/64",
		"Banned 192.0.2.7 for 24h0m0s: admin",
		"Banned 2001:db8:1:2::/64 for 24h0m0s: admin",
		"Unbanned 2001:db8:1:2::/64",
		"Unbanned 192.0.2.7",
		"Cleared rate limit for 2001:db8:1:2::/64",
		"Reset ip bucket for 2001:db8:1:2::/64",
	}, details)
}

// idsOnly keeps the id of each audit entry in a JSON array.
func idsOnly(t *testing.T, body []byte) string {
	t.Helper()
	var es []struct {
		ID int64 `json:"id"`
	}
	require.NoError(t, json.Unmarshal(body, &es))
	out, err := json.Marshal(es)
	require.NoError(t, err)
	return string(out)
}

// TestV1 walks the REST-style paths, each with its error mapping.
func TestV1(t *testing.T) {
	f := admintest.NewFixture()
	f.Lists.Static = map[admin.ListKind][]string{admin.Allow: {"127.0.0.50/32"}}
	f.Buckets["login:alice"] = true
	f.Keys["k1"] = true
	f.RateLimit.Count[netip.MustParseAddr("127.0.0.6")] = 3
	f.AuditLog.Totals = admin.AuditStats{TotalEntries: 3, RequestCount: 2, AdminActionCount: 1}
	e := newAPI(t, f)

	steps := []struct {
		method, path, body string
		code               int
		want               string // JSON, or "" to skip the body
	}{
		{"GET", "/v1/admin/routes", "", 200, `[{"path":"/api/","target":"http://127.0.0.1:9001"}]`},
		{"GET", "/v1/admin/config", "", 200, `{"rate_limit":{"requests_per_minute":5}}`},
		{"GET", "/v1/admin/status", "", 200, `{"status":"running","routes_count":1,"rate_limit":{"requests_per_minute":5,"window_size":60},"audit":{"total_entries":3,"request_count":2,"admin_action_count":1}}`},
		{"POST", "/v1/admin/reload", "", 200, `{"status":"success","message":"Configuration reloaded successfully","routes_count":1,"rate_limit":5}`},

		{"GET", "/v1/admin/ratelimit/127.0.0.6", "", 200, `{"ip":"127.0.0.6","requests_in_window":3,"limit":5,"remaining":2}`},
		{"GET", "/v1/admin/ratelimit/not-an-ip", "", 400, `{"error":"ip: invalid client \"not-an-ip\": not an IP address or an IPv6 /64"}`},
		{"DELETE", "/v1/admin/ratelimit/127.0.0.6", "", 200, `{"ip":"127.0.0.6","cleared":true}`},
		{"DELETE", "/v1/admin/ratelimit/127.0.0.6", "", 200, `{"ip":"127.0.0.6","cleared":false}`},
		{"DELETE", "/v1/admin/ratelimit/::ffff:127.0.0.6", "", 200, `{"ip":"127.0.0.6","cleared":false}`},

		{"GET", "/v1/admin/lists/allow", "", 200, `{"kind":"allow","entries":[{"cidr":"127.0.0.50/32","static":true}]}`},
		{"GET", "/v1/admin/lists/grey", "", 400, `{"error":"kind: must be allow or deny"}`},
		{"POST", "/v1/admin/lists/deny", `{"cidr":"10.1.2.3/8"}`, 201, `{"kind":"deny","cidr":"10.0.0.0/8"}`},
		{"GET", "/v1/admin/lists/deny", "", 200, `{"kind":"deny","entries":[{"cidr":"10.0.0.0/8","static":false}]}`},
		{"POST", "/v1/admin/lists/deny", `{"cidr":"10.0.0.0/8"}`, 409, ""},
		{"POST", "/v1/admin/lists/allow", `{"cidr":"10.0.0.0/8"}`, 409, ""},
		{"POST", "/v1/admin/lists/allow", `{"cidr":"nope"}`, 400, ""},
		{"POST", "/v1/admin/lists/allow", `[]`, 400, `{"error":"body: must be a JSON object"}`},
		{"DELETE", "/v1/admin/lists/allow?cidr=127.0.0.50/32", "", 409, `{"error":"remove 127.0.0.50/32 from allow list: defined in the config file"}`},
		{"DELETE", "/v1/admin/lists/deny?cidr=10.0.0.0%2F8", "", 200, `{"kind":"deny","cidr":"10.0.0.0/8"}`},
		{"DELETE", "/v1/admin/lists/deny?cidr=10.0.0.0/8", "", 404, ""},
		{"DELETE", "/v1/admin/lists/deny", "", 400, `{"error":"cidr: required"}`},

		{"GET", "/v1/admin/bans", "", 200, `{"bans":[]}`},
		{"POST", "/v1/admin/bans", `{"ip":"203.0.113.7","ttl":"1h","reason":"scraping"}`, 201, `{"ip":"203.0.113.7","ttl":"1h0m0s","reason":"scraping","expires_at":"2026-01-02T04:04:05Z"}`},
		{"POST", "/v1/admin/bans", `{"ip":"203.0.113.8","ttl":90}`, 201, `{"ip":"203.0.113.8","ttl":"1m30s","reason":"admin","expires_at":"2026-01-02T03:05:35Z"}`},
		{"POST", "/v1/admin/bans", `{"ip":"203.0.113.9"}`, 201, `{"ip":"203.0.113.9","ttl":"24h0m0s","reason":"admin","expires_at":"2026-01-03T03:04:05Z"}`},
		{"POST", "/v1/admin/bans", `{"ip":"203.0.113.9","ttl":"soon"}`, 400, `{"error":"ttl: invalid duration \"soon\" (use e.g. \"90m\", \"24h\" or seconds)"}`},
		{"POST", "/v1/admin/bans", `{"ip":"203.0.113.9","ttl":"-1h"}`, 400, `{"error":"ttl: must be positive"}`},
		{"POST", "/v1/admin/bans", `{"ttl":"1h"}`, 400, `{"error":"ip: required"}`},
		{"DELETE", "/v1/admin/bans/203.0.113.7", "", 200, `{"ip":"203.0.113.7","removed":true}`},
		{"DELETE", "/v1/admin/bans/203.0.113.7", "", 404, `{"error":"no ban for 203.0.113.7"}`},
		{"DELETE", "/v1/admin/bans/300.1.1.1", "", 400, ""},

		{"POST", "/v1/admin/buckets/reset", `{"login":"alice"}`, 200, `{"reset":"login"}`},
		{"POST", "/v1/admin/buckets/reset", `{"login":"alice"}`, 404, `{"error":"reset login bucket: not found"}`},
		{"POST", "/v1/admin/buckets/reset", `{"login":"alice","ip":"1.2.3.4"}`, 400, `{"error":"body: exactly one of login, password or ip is required"}`},
		{"POST", "/v1/admin/buckets/reset", `{}`, 400, ""},

		{"DELETE", "/v1/admin/keys/k1", "", 200, `{"id":"k1","revoked":true}`},
		{"DELETE", "/v1/admin/keys/k1", "", 404, `{"error":"revoke key: not found"}`},

		{"GET", "/v1/admin/audit/stats", "", 200, `{"total_entries":3,"request_count":2,"admin_action_count":1}`},
		{"GET", "/v1/admin/audit?limit=1000&offset=2", "", 200, `[]`},
		{"GET", "/v1/admin/audit?limit=0", "", 400, `{"error":"limit: must be an integer from 1 to 1000"}`},
		{"GET", "/audit/logs?limit=1001", "", 400, `{"error":"limit: must be an integer from 1 to 1000"}`},
		{"GET", "/audit/logs?limit=ten", "", 400, ""},
		{"GET", "/audit/logs?offset=-1", "", 400, `{"error":"offset: must be an integer of at least 0"}`},
		{"GET", "/audit/logs?client_ip=me", "", 400, `{"error":"client_ip: invalid client \"me\": not an IP address or an IPv6 /64"}`},
	}
	for _, s := range steps {
		rec := do(e, s.method, s.path, s.body, bearer("t0ken"))
		require.Equal(t, s.code, rec.Code, "%s %s %s: %s", s.method, s.path, s.body, rec.Body.String())
		if s.want != "" {
			assert.JSONEq(t, s.want, rec.Body.String(), "%s %s", s.method, s.path)
		}
	}
	assert.Equal(t, admin.AuditFilter{Limit: 1000, Offset: 2}, f.AuditLog.Last)
	assert.Equal(t, []string{
		"config_reload",
		"rate_limit_clear", "rate_limit_clear", "rate_limit_clear",
		"list_add", "list_remove",
		"ban_add", "ban_add", "ban_add", "ban_remove",
		"bucket_reset",
		"key_revoke",
	}, f.Audit.Actions())
}

func TestKeyRevokeAuditsOnlyAPrefix(t *testing.T) {
	f := admintest.NewFixture()
	f.Keys["0123456789abcdef0123456789abcdef"] = true
	e := newAPI(t, f)
	require.Equal(t, 200, do(e, http.MethodDelete, "/v1/admin/keys/0123456789abcdef0123456789abcdef", "", asAdmin).Code)
	assert.Equal(t, "Revoked key 01234567…", f.Audit.Records()[0].Details)
}

func TestMetricsAreBehindAuth(t *testing.T) {
	f := admintest.NewFixture()
	d := f.Deps(creds)
	d.Metrics = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("up 1\n")) })
	e, err := admin.New(d)
	require.NoError(t, err)
	assert.Equal(t, 401, do(e, http.MethodGet, "/metrics", "").Code)
	rec := do(e, http.MethodGet, "/metrics", "", asAdmin)
	assert.Equal(t, 200, rec.Code)
	assert.Equal(t, "up 1\n", rec.Body.String())
}

func TestUnexpectedErrorsAreOpaque500s(t *testing.T) {
	f := admintest.NewFixture()
	d := f.Deps(creds)
	d.Keys = revokeFunc(func(string) error { return errors.New("mongo: connection refused to 10.0.0.9:27017") })
	e, err := admin.New(d)
	require.NoError(t, err)
	rec := do(e, http.MethodDelete, "/v1/admin/keys/k1", "", asAdmin)
	assert.Equal(t, http.StatusInternalServerError, rec.Code)
	assert.JSONEq(t, `{"error":"Internal Server Error"}`, rec.Body.String())
	assert.Empty(t, f.Audit.Actions(), "a failed change is not audited as done")
}

// A store that cannot be reached (the Redis breaker open, a refused
// connection) is a 503 the client may retry, with Retry-After and without
// the cause's details; other errors stay opaque 500s.
func TestUnavailableStoreIs503(t *testing.T) {
	f := admintest.NewFixture()
	d := f.Deps(creds)
	d.Errors.Unavailable = redisbreaker.Unavailable
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connect: connection refused")}
	for _, cause := range []error{redisbreaker.ErrOpen, refused} {
		d.Keys = revokeFunc(func(string) error { return fmt.Errorf("revoke in 10.0.0.9:6379: %w", cause) })
		e, err := admin.New(d)
		require.NoError(t, err)
		rec := do(e, http.MethodDelete, "/v1/admin/keys/k1", "", asAdmin)
		assert.Equal(t, http.StatusServiceUnavailable, rec.Code, "%v", cause)
		assert.Equal(t, "1", rec.Header().Get("Retry-After"))
		assert.JSONEq(t, `{"error":"state store unavailable: try again"}`, rec.Body.String())
	}
	d.Keys = revokeFunc(func(string) error { return errors.New("bad record") })
	e, err := admin.New(d)
	require.NoError(t, err)
	assert.Equal(t, http.StatusInternalServerError, do(e, http.MethodDelete, "/v1/admin/keys/k1", "", asAdmin).Code)
}

type revokeFunc func(id string) error

func (f revokeFunc) Revoke(_ context.Context, id string) error { return f(id) }

func TestProfilesAreBehindAuth(t *testing.T) {
	e := newAPI(t, admintest.NewFixture())
	assert.Equal(t, 401, do(e, http.MethodGet, "/debug/pprof/heap", "").Code)
	rec := do(e, http.MethodGet, "/debug/pprof/heap?debug=1", "", asAdmin)
	assert.Equal(t, 200, rec.Code)
	assert.Contains(t, rec.Body.String(), "heap profile")
	rec = do(e, http.MethodGet, "/debug/pprof/", "", asAdmin)
	assert.Equal(t, 200, rec.Code)
	assert.Contains(t, rec.Body.String(), "goroutine")
}
