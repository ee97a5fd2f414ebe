package main

// Issue 12 item 2: an IPv6 client is its /64 everywhere. The gateway counts
// and bans a /64; the admin API takes any address of it (or the /64) and
// shows it as "2001:db8:1:2::/64".

import (
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const ipv6Config = `
routes:
  - {path: /api/, upstream: "{{U1}}"}
trusted_proxies: [127.0.0.2/32]
scorer: {enabled: false}
admin: {username: admin, password: s3cret}
`

func (s *stack) adminDelete(path string) reply {
	return s.adminFrom("127.0.0.1").do(http.MethodDelete, path, nil, "Authorization", basic)
}

// bansListed returns GET /v1/admin/bans as client → reason.
func (s *stack) bansListed(t *testing.T) map[string]string {
	t.Helper()
	r := s.adminGet("/v1/admin/bans")
	require.Equal(t, http.StatusOK, r.Code, r.Body)
	var body struct {
		Bans []struct{ IP, Reason string } `json:"bans"`
	}
	require.NoError(t, json.Unmarshal([]byte(r.Body), &body))
	out := map[string]string{}
	for _, b := range body.Bans {
		out[b.IP] = b.Reason
	}
	return out
}

func TestIPv6AdminBanActsOnTheSlash64(t *testing.T) {
	t.Parallel()
	s := startStack(t, ipv6Config)
	proxy := s.from("127.0.0.2")
	from := func(ip string) int { return proxy.get("/api/x", "X-Forwarded-For", ip).Code }

	r := s.adminPost("/v1/admin/bans", `{"ip":"2001:db8:1:2::5","ttl":"1h","reason":"ipv6 test"}`)
	require.Equal(t, http.StatusCreated, r.Code, r.Body)
	assert.Equal(t, "2001:db8:1:2::/64", r.json(t)["ip"])

	assert.Equal(t, http.StatusForbidden, from("2001:db8:1:2::77"), "another address of the banned /64")
	assert.Equal(t, http.StatusForbidden, from("2001:db8:1:2::5"))
	assert.Equal(t, http.StatusOK, from("2001:db8:1:3::5"), "the next /64 is another client")
	assert.Equal(t, map[string]string{"2001:db8:1:2::/64": "ipv6 test"}, s.bansListed(t))

	// Any address of the /64 lifts the ban.
	r = s.adminDelete("/v1/admin/bans/2001:db8:1:2::99")
	require.Equal(t, http.StatusOK, r.Code, r.Body)
	assert.JSONEq(t, `{"ip":"2001:db8:1:2::/64","removed":true}`, r.Body)
	assert.Equal(t, http.StatusOK, from("2001:db8:1:2::77"), "the client passes again")
	assert.Empty(t, s.bansListed(t))
	assert.Equal(t, http.StatusNotFound, s.adminDelete("/v1/admin/bans/2001:db8:1:2::5").Code)

	// The /64 as the API shows it works both ways, its slash escaped in a path.
	require.Equal(t, http.StatusCreated, s.adminPost("/v1/admin/bans", `{"ip":"2001:db8:1:2::/64"}`).Code)
	assert.Equal(t, http.StatusForbidden, from("2001:db8:1:2:abcd::1"))
	require.Equal(t, http.StatusOK, s.adminDelete("/v1/admin/bans/2001:db8:1:2::%2F64").Code)
	assert.Equal(t, http.StatusOK, from("2001:db8:1:2:abcd::1"))

	// Anything but a /64 names no IPv6 client.
	r = s.adminPost("/v1/admin/bans", `{"ip":"2001:db8:1::/48"}`)
	assert.Equal(t, http.StatusBadRequest, r.Code)
	assert.True(t, strings.HasPrefix(r.json(t)["error"].(string), "ip: "), r.Body)
	assert.Equal(t, http.StatusOK, from("2001:db8:1:7::1"), "nothing was banned")

	// IPv4 is unchanged: one address, and its ban key is the one it always was.
	require.Equal(t, http.StatusCreated, s.adminPost("/v1/admin/bans", `{"ip":"::ffff:198.51.100.7"}`).Code)
	assert.Equal(t, map[string]string{"198.51.100.7": "admin"}, s.bansListed(t))
	assert.Equal(t, http.StatusForbidden, from("198.51.100.7"))
	assert.Equal(t, http.StatusOK, from("198.51.100.8"))
	n, err := s.rdb.Exists(t.Context(), s.prefix+"{198.51.100.7}:ban").Result()
	require.NoError(t, err)
	assert.EqualValues(t, 1, n)
}

// A ban the gateway makes itself (a score over the block threshold) is
// listed as the client's /64, and any address of it lifts it.
func TestIPv6ScoreBanIsListedAsTheSlash64(t *testing.T) {
	t.Parallel()
	scorer := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			http.NotFound(w, r)
			return
		}
		var req struct {
			IP string `json:"ip"`
		}
		_ = json.NewDecoder(r.Body).Decode(&req)
		score := 0.0
		if strings.HasPrefix(req.IP, "2001:db8:9:9:") {
			score = 0.99
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"score": score, "reasons": []any{}})
	}))
	t.Cleanup(scorer.Close)
	cfg := strings.Replace(ipv6Config, "scorer: {enabled: false}", "scorer: {url: \""+scorer.URL+"\", timeout: 2s}\nscoring: {fast_path: false}", 1)
	s := startStack(t, cfg)
	proxy := s.from("127.0.0.2")
	from := func(ip string) reply { return proxy.get("/api/x", "X-Forwarded-For", ip) }

	require.Equal(t, http.StatusOK, from("2001:db8:1:2::1").Code)
	r := from("2001:db8:9:9::1")
	require.Equal(t, http.StatusForbidden, r.Code, r.Body)
	assert.Equal(t, map[string]string{"2001:db8:9:9::/64": "score 0.99"}, s.bansListed(t))
	r = from("2001:db8:9:9::2")
	assert.Equal(t, http.StatusForbidden, r.Code)
	assert.Contains(t, r.Body, "Client banned", "refused by the ban, before any scoring")

	require.Equal(t, http.StatusOK, s.adminDelete("/v1/admin/bans/2001:db8:9:9::ffff").Code)
	assert.Empty(t, s.bansListed(t))
}

// The issue's own case: a client on ::1, talking to a gateway on [::1].
// Banning "::1" bans its /64 ("::/64"), and "::1" lifts it.
func TestIPv6LoopbackClientBannedAndUnbanned(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback here: %v", err)
	}
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	s := startStack(t, ipv6Config, "BULWARK_LISTEN", addr)
	c := s.from("::1")
	require.Equal(t, http.StatusOK, c.get("/api/x").Code)

	r := s.adminPost("/v1/admin/bans", `{"ip":"::1"}`)
	require.Equal(t, http.StatusCreated, r.Code, r.Body)
	assert.Equal(t, "::/64", r.json(t)["ip"])
	assert.Equal(t, http.StatusForbidden, c.get("/api/x").Code, "::1 is banned")
	assert.Equal(t, map[string]string{"::/64": "admin"}, s.bansListed(t))

	r = s.adminDelete("/v1/admin/bans/::1")
	require.Equal(t, http.StatusOK, r.Code, r.Body)
	assert.Equal(t, http.StatusOK, c.get("/api/x").Code, "::1 passes again")
}

// Issue 19, item 7: one client has one spelling in Redis. Every key the
// gateway writes for an IPv6 client (its state, its rate-limit windows,
// its ban, its key failures) carries the same hash tag, the /64's
// identity, and the admin API's rate-limit reset finds the window the
// request path wrote.
func TestIPv6ClientHasOneSpellingInRedis(t *testing.T) {
	t.Parallel()
	cfg := strings.Replace(ipv6Config, "  - {path: /api/, upstream: \"{{U1}}\"}",
		"  - {path: /api/, upstream: \"{{U1}}\", rate_limit: {requests: 1000, window: 1m}}", 1) +
		"rate_limit: {requests_per_minute: 3}\n"
	s := startStack(t, cfg)
	proxy := s.from("127.0.0.2")
	from := func(ip string) int { return proxy.get("/api/x", "X-Forwarded-For", ip).Code }
	for range 3 {
		require.Equal(t, http.StatusOK, from("2001:db8:5:6::1"))
	}
	require.Equal(t, http.StatusTooManyRequests, from("2001:db8:5:6::2"), "one /64, one window")

	keys, err := s.rdb.Keys(t.Context(), s.prefix+"*2001:db8:5:6*").Result()
	require.NoError(t, err)
	require.NotEmpty(t, keys)
	for _, k := range keys {
		assert.Contains(t, k, "{2001:db8:5:6::}", "every key spells the client as its identity")
		assert.NotContains(t, k, "/64", k)
	}
	var limits int
	for _, k := range keys {
		if strings.Contains(k, "rl:") {
			limits++
		}
	}
	assert.Equal(t, 2, limits, "the per-client and the route window: %v", keys)

	// The admin reset clears the window the request path counts in.
	r := s.adminDelete("/v1/admin/ratelimit/2001:db8:5:6::99")
	require.Equal(t, http.StatusOK, r.Code, r.Body)
	assert.Equal(t, http.StatusOK, from("2001:db8:5:6::3"), "the reset found the client's window")
}
