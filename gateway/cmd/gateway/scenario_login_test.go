package main

// Groups D and E of SEEDS.md section 8: the login/password/IP limiter
// (seed 003, S33–S36) and the consecutive-failure lockout (seed 004, S38).

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const loginConfig = `
routes:
  - {path: /api/, upstream: "{{U1}}"}
  - {path: /app/, upstream: "{{U1}}", auth: api_key}
trusted_proxies: [127.0.0.2/32]
scorer: {enabled: false}
admin: {username: admin, password: s3cret}
api_key:
  auth_upstream: "{{U1}}"
  invalid_threshold: 1000
login_protection:
  login: {rate: 2, interval: 1s}
  password: {rate: 3, interval: 1s}
  ip: {rate: 4, interval: 1s}
  failures: 3
  failure_window: 2s
  block: 2s
`

func (s *stack) check(login, password, ip string) bool {
	s.t.Helper()
	r := s.adminPost("/v1/check", fmt.Sprintf(`{"login":%q,"password":%q,"ip":%q}`, login, password, ip))
	require.Equal(s.t, http.StatusOK, r.Code, r.Body)
	ok, isBool := r.json(s.t)["ok"].(bool)
	require.True(s.t, isBool, r.Body)
	return ok
}

func TestS33ThreeBucketsAndS34Expiry(t *testing.T) {
	t.Parallel()
	s := startStack(t, loginConfig)
	ip := "192.168.199.132"
	// (a) one login, different passwords.
	assert.Equal(t, []bool{true, true, false}, []bool{s.check("loginAuth", "p1", ip), s.check("loginAuth", "p2", ip), s.check("loginAuth", "p3", ip)})
	// (b) one password across logins (from other addresses, so the IP bucket is not the limit).
	var got []bool
	for i := 1; i <= 4; i++ {
		got = append(got, s.check(fmt.Sprintf("login%d", i), "passwordAuth", fmt.Sprintf("10.9.0.%d", i)))
	}
	assert.Equal(t, []bool{true, true, true, false}, got)
	// (c) five distinct pairs from one address.
	got = nil
	for i := 1; i <= 5; i++ {
		got = append(got, s.check(fmt.Sprintf("c-login%d", i), fmt.Sprintf("c-pass%d", i), "10.8.0.1"))
	}
	assert.Equal(t, []bool{true, true, true, true, false}, got)

	// S34: after the interval the same login is allowed again.
	time.Sleep(1100 * time.Millisecond)
	assert.True(t, s.check("loginAuth", "p4", "10.7.0.1"))

	r := s.adminPost("/v1/check", `{"login":"x","password":"y","ip":"garbage"}`)
	assert.Equal(t, http.StatusBadRequest, r.Code, "an invalid ip is refused, not bucketed together")

	// Bad input is the caller's error (400, saying which field), never an
	// outage (503).
	for body, want := range map[string]string{
		`{"password":"y","ip":"10.0.0.1"}`:                                        "login: required",
		`{"login":"","password":"y","ip":"10.0.0.1"}`:                             "login: required",
		`{"login":"  \t ","password":"y","ip":"10.0.0.1"}`:                        "login: required",
		`{"login":"` + strings.Repeat("a", 100_000) + `","ip":"10.0.0.1"}`:        "login: at most 256 bytes",
		`{"login":"a","password":"` + strings.Repeat("p", 2000) + `","ip":"::1"}`: "password: at most 1024 bytes",
		`not json`: "body must be JSON",
		`{"login":"a","password":"y","ip":"fe80::1%eth0"}`: "ip: an address with a zone",
		`{"login":"a","password":"y","ip":"10.0.0.300"}`:   "ip: not an IP address",
	} {
		r := s.adminPost("/v1/check", body)
		assert.Equal(t, http.StatusBadRequest, r.Code, body[:min(len(body), 60)])
		assert.Contains(t, r.Body, want, body[:min(len(body), 60)])
	}
}

func TestS35AdminBucketReset(t *testing.T) {
	t.Parallel()
	s := startStack(t, loginConfig)
	ip := "192.168.199.132"
	s.check("loginAuth", "p1", ip)
	s.check("loginAuth", "p2", ip)
	require.False(t, s.check("loginAuth", "p3", ip))
	r := s.adminPost("/admin/reset_bucket_by_login", `{"login":"loginAuth"}`)
	require.Equal(t, http.StatusOK, r.Code, r.Body)
	assert.JSONEq(t, `{}`, r.Body)
	assert.True(t, s.check("loginAuth", "p4", ip))
	assert.Equal(t, http.StatusOK, s.adminPost("/admin/reset_bucket_by_login", `{"login":"loginAuth"}`).Code, "the bucket exists again")
	assert.Equal(t, http.StatusNotFound, s.adminPost("/admin/reset_bucket_by_login", `{"login":"loginAuth"}`).Code, "nothing left to reset")

	s.check("a", "shared-pw", "10.1.1.1")
	assert.Equal(t, http.StatusOK, s.adminPost("/admin/reset_bucket_by_password", `{"password":"shared-pw"}`).Code)
	assert.Equal(t, http.StatusNotFound, s.adminPost("/admin/reset_bucket_by_password", `{"password":"shared-pw"}`).Code)
	assert.Equal(t, http.StatusOK, s.adminPost("/admin/reset_bucket_by_ip", `{"ip":"192.168.199.132"}`).Code)
	assert.Equal(t, http.StatusNotFound, s.adminPost("/admin/reset_bucket_by_ip", `{"ip":"192.168.199.132"}`).Code)
}

func TestS36WhitelistAndBlacklist(t *testing.T) {
	t.Parallel()
	s := startStack(t, loginConfig)
	ip := "192.168.199.132"
	r := s.adminPost("/admin/add_in_whitelist", `{"ip_with_mask":"192.168.199.0/24"}`)
	require.Equal(t, http.StatusOK, r.Code, r.Body)
	for i := range 10 {
		assert.True(t, s.check("wl-login", fmt.Sprintf("p%d", i), ip), "whitelisted attempt %d", i+1)
	}
	assert.Equal(t, http.StatusConflict, s.adminPost("/admin/add_in_whitelist", `{"ip_with_mask":"192.168.199.0/24"}`).Code)
	assert.Equal(t, http.StatusConflict, s.adminPost("/admin/add_in_blacklist", `{"ip_with_mask":"192.168.199.0/24"}`).Code)
	require.Equal(t, http.StatusOK, s.adminPost("/admin/remove_from_whitelist", `{"ip_with_mask":"192.168.199.0/24"}`).Code)
	assert.True(t, s.check("wl-login", "q1", ip), "no bucket was consumed while whitelisted")
	assert.True(t, s.check("wl-login", "q2", ip))
	assert.False(t, s.check("wl-login", "q3", ip))

	require.Equal(t, http.StatusOK, s.adminPost("/admin/add_in_blacklist", `{"ip_with_mask":"10.1.2.3/8"}`).Code)
	assert.Contains(t, s.adminGet("/v1/admin/lists/deny").Body, "10.0.0.0/8", "the network address is stored")
	assert.False(t, s.check("bl-login", "p", "10.200.0.1"))
	require.Equal(t, http.StatusOK, s.adminPost("/admin/remove_from_blacklist", `{"ip_with_mask":"10.0.0.0/8"}`).Code)
	assert.True(t, s.check("bl-login", "p", "10.200.0.1"))
	assert.Equal(t, http.StatusBadRequest, s.adminPost("/admin/add_in_blacklist", `{"ip_with_mask":"10.0.0.0/33"}`).Code)
	assert.Equal(t, http.StatusNotFound, s.adminPost("/admin/remove_from_blacklist", `{"ip_with_mask":"10.0.0.0/8"}`).Code)

	// At the gateway: a blacklisted peer is refused on every route.
	require.Equal(t, http.StatusOK, s.adminPost("/admin/add_in_blacklist", `{"ip_with_mask":"127.0.0.51/32"}`).Code)
	bad := s.from("127.0.0.51")
	for _, p := range []string{"/api/x", "/app/x", "/nowhere"} {
		assert.Equal(t, http.StatusForbidden, bad.get(p).Code, p)
	}
	assert.Zero(t, s.u1.count("/api/x"))
}

// S36's last point with the S05 rule on: an allow-listed client is never
// blocked, however many bad keys it sends.
func TestS36WhitelistBypassesKeyBans(t *testing.T) {
	t.Parallel()
	s := startStack(t, strings.Replace(keysConfig, "trusted_proxies: [127.0.0.2/32]", "trusted_proxies: [127.0.0.2/32]\nlists: {allow: [127.0.0.50/32]}", 1))
	c := s.from("127.0.0.50")
	for i := range 20 {
		assert.Equal(t, http.StatusUnauthorized, c.get(fmt.Sprintf("/app/hello?KEY=bad%d", i)).Code, "bad key %d", i+1)
	}
}

func TestS38UserLock(t *testing.T) {
	t.Parallel()
	cfg := strings.Replace(loginConfig, "login: {rate: 2, interval: 1s}\n  password: {rate: 3, interval: 1s}\n  ip: {rate: 4, interval: 1s}", "login: {rate: 0}\n  password: {rate: 0}\n  ip: {rate: 0}", 1)
	s := startStack(t, cfg)
	loginAs(s.u1, "u", "right", "user")
	for i, ip := range []string{"127.0.0.11", "127.0.0.12", "127.0.0.13"} {
		r := s.from(ip).postJSON("/auth", `{"username":"u","password":"wrong"}`)
		require.Equal(t, http.StatusUnauthorized, r.Code, "failure %d", i+1)
	}
	lockedAt := time.Now()
	before := s.u1.count("/auth")
	r := s.from("127.0.0.14").postJSON("/auth", `{"username":"u","password":"right"}`)
	assert.Contains(t, []int{http.StatusForbidden, http.StatusTooManyRequests}, r.Code, "locked even with the right password")
	assert.Equal(t, before, s.u1.count("/auth"), "U1 was not called")
	// The lock is on the login, not on the addresses.
	loginAs(s.u1, "other", "pw", "user")
	assert.Equal(t, http.StatusOK, s.from("127.0.0.14").postJSON("/auth", `{"username":"other","password":"pw"}`).Code)

	time.Sleep(time.Until(lockedAt.Add(2100 * time.Millisecond)))
	loginAs(s.u1, "u", "right", "user")
	r = s.from("127.0.0.14").postJSON("/auth", `{"username":"u","password":"right"}`)
	assert.Equal(t, http.StatusOK, r.Code, "the lock has expired: %s", r.Body)
}
