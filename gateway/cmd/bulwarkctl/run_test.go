package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulwarkgw/bulwark/gateway/internal/admin"
	"github.com/bulwarkgw/bulwark/gateway/internal/admin/admintest"
)

// seen is one request as the admin API received it.
type seen struct{ method, path, query, body string }

type server struct {
	f   *admintest.Fixture
	url string
	mu  sync.Mutex
	log []seen
}

func (s *server) last() seen {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.log[len(s.log)-1]
}

// newServer runs the real admin API over fakes, recording every request.
func newServer(t *testing.T) *server {
	t.Helper()
	s := &server{f: admintest.NewFixture()}
	e, err := admin.New(s.f.Deps(admin.Auth{Token: "t0ken", Username: "admin", Password: "s3cret"}))
	require.NoError(t, err)
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(b))
		s.mu.Lock()
		s.log = append(s.log, seen{r.Method, r.URL.EscapedPath(), r.URL.RawQuery, string(b)})
		s.mu.Unlock()
		e.ServeHTTP(w, r)
	}))
	t.Cleanup(ts.Close)
	s.url = ts.URL
	return s
}

type result struct {
	code           int
	stdout, stderr string
}

func (s *server) run(env map[string]string, args ...string) result {
	if env == nil {
		env = map[string]string{"BULWARK_ADMIN_TOKEN": "t0ken"}
	}
	env["BULWARK_ADMIN_ADDR"] = s.url
	var out, errOut bytes.Buffer
	code := run(context.Background(), append([]string{"bulwarkctl"}, args...), func(k string) string { return env[k] }, &out, &errOut)
	return result{code, out.String(), errOut.String()}
}

func TestSeedAliasesCallTheSeedRoutes(t *testing.T) {
	s := newServer(t)
	s.f.Buckets["login:loginAuth"] = true
	s.f.Buckets["password:pw"] = true
	s.f.Buckets["ip:192.168.199.132"] = true
	tests := []struct {
		args []string
		want seen
	}{
		{[]string{"rbl", "loginAuth"}, seen{"POST", "/admin/reset_bucket_by_login", "", `{"login":"loginAuth"}`}},
		{[]string{"reset_bucket_by_password", "pw"}, seen{"POST", "/admin/reset_bucket_by_password", "", `{"password":"pw"}`}},
		{[]string{"rbi", "192.168.199.132"}, seen{"POST", "/admin/reset_bucket_by_ip", "", `{"ip":"192.168.199.132"}`}},
		{[]string{"aw", "192.168.199.0/24"}, seen{"POST", "/admin/add_in_whitelist", "", `{"ip_with_mask":"192.168.199.0/24"}`}},
		{[]string{"remove_from_whitelist", "192.168.199.0/24"}, seen{"POST", "/admin/remove_from_whitelist", "", `{"ip_with_mask":"192.168.199.0/24"}`}},
		{[]string{"add_in_blacklist", "10.1.2.3/8"}, seen{"POST", "/admin/add_in_blacklist", "", `{"ip_with_mask":"10.1.2.3/8"}`}},
		{[]string{"rb", "10.0.0.0/8"}, seen{"POST", "/admin/remove_from_blacklist", "", `{"ip_with_mask":"10.0.0.0/8"}`}},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			r := s.run(nil, tt.args...)
			require.Equal(t, 0, r.code, r.stderr)
			assert.Equal(t, "Successfully!\n", r.stdout)
			assert.Empty(t, r.stderr)
			assert.Equal(t, tt.want, s.last())
		})
	}
}

func TestExitCodes(t *testing.T) {
	s := newServer(t)
	s.f.Buckets["login:loginAuth"] = true
	steps := []struct {
		args   []string
		code   int
		stderr string // a substring, "" for none at all
	}{
		{[]string{"rbl", "loginAuth"}, 0, ""},
		{[]string{"rbl", "loginAuth"}, 1, "Error: reset login bucket: not found (HTTP 404)\n"},
		{[]string{"aw", "192.168.199.0/24"}, 0, ""},
		{[]string{"aw", "192.168.199.0/24"}, 1, "(HTTP 409)"},
		{[]string{"ab", "192.168.199.0/24"}, 1, "(HTTP 409)"},
		{[]string{"ab", "10.0.0.0/33"}, 1, "(HTTP 400)"},
		{[]string{"rw", "172.16.0.0/12"}, 1, "(HTTP 404)"},
		{[]string{"bans", "rm", "203.0.113.1"}, 1, "Error: no ban for 203.0.113.1 (HTTP 404)"},
		{[]string{"keys", "revoke", "nope"}, 1, "(HTTP 404)"},
		{[]string{"ratelimit", "stats", "not-an-ip"}, 1, `Error: ip: invalid client "not-an-ip": not an IP address or an IPv6 /64 (HTTP 400)`},
		{[]string{"bans", "add", "2001:db8::/48"}, 1, `Error: ip: invalid client "2001:db8::/48": an IPv6 client is a /64 (or any address in it), not a /48 (HTTP 400)`},

		{[]string{}, 2, "Usage: bulwarkctl"},
		{[]string{"frobnicate"}, 2, `unknown command "frobnicate"`},
		{[]string{"rbl"}, 2, "usage: reset_bucket_by_login LOGIN"},
		{[]string{"rbl", "a", "b"}, 2, "usage: reset_bucket_by_login LOGIN"},
		{[]string{"ratelimit", "stats"}, 2, "usage: ratelimit stats|clear CLIENT"},
		{[]string{"ratelimit", "purge", "1.2.3.4"}, 2, "usage:"},
		{[]string{"lists", "grey", "ls"}, 2, `unknown list "grey"`},
		{[]string{"lists", "deny", "add"}, 2, "usage:"},
		{[]string{"bans", "add", "1.2.3.4", "--ttl", "soon"}, 2, "invalid value"},
		{[]string{"reset", "email", "x"}, 2, "usage:"},
		{[]string{"--nope", "status"}, 2, "flag provided but not defined"},
		{[]string{"--addr", "ftp://x", "status"}, 2, "--addr"},
		{[]string{"-h"}, 0, "Usage: bulwarkctl"},
	}
	for _, st := range steps {
		r := s.run(nil, st.args...)
		assert.Equal(t, st.code, r.code, "%v: %s", st.args, r.stderr)
		if st.stderr == "" {
			assert.Empty(t, r.stderr, "%v", st.args)
		} else {
			assert.Contains(t, r.stderr, st.stderr, "%v", st.args)
		}
		if st.code != 0 {
			assert.Empty(t, r.stdout, "%v: nothing on stdout on failure", st.args)
		}
	}
}

func TestCredentials(t *testing.T) {
	s := newServer(t)
	tests := []struct {
		name   string
		env    map[string]string
		args   []string
		code   int
		stderr string
	}{
		{"token from env", map[string]string{"BULWARK_ADMIN_TOKEN": "t0ken"}, nil, 0, ""},
		{"basic from env", map[string]string{"BULWARK_ADMIN_USER": "admin", "BULWARK_ADMIN_PASSWORD": "s3cret"}, nil, 0, ""},
		{"token flag", map[string]string{}, []string{"--token", "t0ken"}, 0, ""},
		{"basic flags beat a wrong env token", map[string]string{"BULWARK_ADMIN_TOKEN": "wrong"}, []string{"--user", "admin", "--password", "s3cret"}, 0, ""},
		{"wrong token", map[string]string{"BULWARK_ADMIN_TOKEN": "wrong"}, nil, 1, "Error: Unauthorized (HTTP 401)\n"},
		{"none", map[string]string{}, nil, 1, "Error: Unauthorized; set BULWARK_ADMIN_TOKEN"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := s.run(tt.env, append(tt.args, "status")...)
			assert.Equal(t, tt.code, r.code, r.stderr)
			if tt.stderr != "" {
				assert.Contains(t, r.stderr, tt.stderr)
			}
		})
	}
}

func TestHumanAndJSONOutput(t *testing.T) {
	s := newServer(t)
	s.f.RateLimit.Count[netip.MustParseAddr("127.0.0.6")] = 5
	s.f.AuditLog.Totals = admin.AuditStats{TotalEntries: 3, RequestCount: 2, AdminActionCount: 1}
	s.f.AuditLog.Entries = []admin.AuditEntry{
		{ID: 2, Timestamp: time.Date(2026, 1, 2, 3, 4, 6, 0, time.UTC), EventType: "admin_action", ClientIP: "127.0.0.1", Action: "config_reload", Details: "Reloaded 1 routes"},
		{ID: 1, Timestamp: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), EventType: "request", ClientIP: "127.0.0.31", Method: "GET", Path: "/api/users", StatusCode: 200, DurationMS: 1.5, UserAgent: "acc/1"},
	}
	s.f.Lists.Static = map[admin.ListKind][]string{admin.Allow: {"127.0.0.50/32"}}

	steps := []struct {
		args   []string
		stdout string
		req    seen // the request sent, when method is set
	}{
		{[]string{"status"}, "status:      running\nroutes:      1\nrate limit:  5 requests per 60s\naudit:       3 entries (2 requests, 1 admin actions)\n", seen{method: "GET", path: "/v1/admin/status"}},
		{[]string{"reload"}, "Configuration reloaded: 1 routes, rate limit 5 requests per minute\n", seen{method: "POST", path: "/v1/admin/reload"}},
		{[]string{"routes"}, "PATH   TARGET\n/api/  http://127.0.0.1:9001\n", seen{}},
		{[]string{"config"}, "{\n  \"rate_limit\": {\n    \"requests_per_minute\": 5\n  }\n}\n", seen{method: "GET", path: "/v1/admin/config"}},
		{[]string{"ratelimit", "stats", "127.0.0.6"}, "127.0.0.6: 5 of 5 requests in the window, 0 remaining\n", seen{method: "GET", path: "/v1/admin/ratelimit/127.0.0.6"}},
		{[]string{"ratelimit", "clear", "127.0.0.6"}, "Rate limit cleared for 127.0.0.6\n", seen{method: "DELETE", path: "/v1/admin/ratelimit/127.0.0.6"}},
		{[]string{"ratelimit", "stats", "::1"}, "::/64: 0 of 5 requests in the window, 5 remaining\n", seen{}},
		{[]string{"lists", "deny", "add", "10.1.2.3/8"}, "Added 10.0.0.0/8 to the deny list\n", seen{"POST", "/v1/admin/lists/deny", "", `{"cidr":"10.1.2.3/8"}`}},
		{[]string{"lists", "deny", "ls"}, "10.0.0.0/8\n", seen{method: "GET", path: "/v1/admin/lists/deny"}},
		{[]string{"lists", "allow", "ls"}, "127.0.0.50/32  (config file)\n", seen{}},
		{[]string{"lists", "deny", "remove", "10.0.0.0/8"}, "Removed 10.0.0.0/8 from the deny list\n", seen{"DELETE", "/v1/admin/lists/deny", "cidr=10.0.0.0%2F8", ""}},
		{[]string{"lists", "deny", "ls"}, "The deny list is empty\n", seen{}},
		{[]string{"bans", "ls"}, "No bans\n", seen{method: "GET", path: "/v1/admin/bans"}},
		{[]string{"bans", "add", "203.0.113.7", "--ttl", "1h", "--reason", "scraping"}, "Banned 203.0.113.7 until 2026-01-02T04:04:05Z (scraping)\n", seen{"POST", "/v1/admin/bans", "", `{"ip":"203.0.113.7","reason":"scraping","ttl":"1h0m0s"}`}},
		{[]string{"bans", "ls"}, "IP           EXPIRES               REASON\n203.0.113.7  2026-01-02T04:04:05Z  scraping\n", seen{}},
		{[]string{"bans", "rm", "203.0.113.7"}, "Unbanned 203.0.113.7\n", seen{method: "DELETE", path: "/v1/admin/bans/203.0.113.7"}},
		{[]string{"audit", "--limit", "2", "--type", "request", "--ip", "127.0.0.31"}, "TIME                  TYPE     CLIENT      METHOD  PATH        STATUS  ACTION  DETAILS\n2026-01-02T03:04:05Z  request  127.0.0.31  GET     /api/users  200     -       -\n", seen{method: "GET", path: "/v1/admin/audit", query: "client_ip=127.0.0.31&event_type=request&limit=2"}},
		{[]string{"audit", "stats"}, "3 entries: 2 requests, 1 admin actions\n", seen{method: "GET", path: "/v1/admin/audit/stats"}},

		// An IPv6 client is its /64: any address of it, or the /64, in and
		// the /64 out.
		{[]string{"bans", "add", "2001:db8:1:2::5", "--ttl", "1h"}, "Banned 2001:db8:1:2::/64 until 2026-01-02T04:04:05Z (admin)\n", seen{"POST", "/v1/admin/bans", "", `{"ip":"2001:db8:1:2::5","ttl":"1h0m0s"}`}},
		{[]string{"bans", "ls"}, "IP                 EXPIRES               REASON\n2001:db8:1:2::/64  2026-01-02T04:04:05Z  admin\n", seen{}},
		{[]string{"bans", "rm", "2001:db8:1:2::99"}, "Unbanned 2001:db8:1:2::/64\n", seen{method: "DELETE", path: "/v1/admin/bans/2001:db8:1:2::99"}},
		{[]string{"bans", "add", "2001:db8:1:2::/64"}, "Banned 2001:db8:1:2::/64 until 2026-01-03T03:04:05Z (admin)\n", seen{}},
		{[]string{"bans", "rm", "2001:db8:1:2::/64"}, "Unbanned 2001:db8:1:2::/64\n", seen{method: "DELETE", path: "/v1/admin/bans/2001:db8:1:2::%2F64"}},
		{[]string{"bans", "ls"}, "No bans\n", seen{}},
		{[]string{"ratelimit", "clear", "2001:db8:1:2::1"}, "Rate limit cleared for 2001:db8:1:2::/64\n", seen{}},
		{[]string{"audit", "--ip", "2001:db8:1:2::/64"}, "TIME  TYPE  CLIENT  METHOD  PATH  STATUS  ACTION  DETAILS\n", seen{method: "GET", path: "/v1/admin/audit", query: "client_ip=2001%3Adb8%3A1%3A2%3A%3A%2F64"}},
	}
	for _, st := range steps {
		r := s.run(nil, st.args...)
		require.Equal(t, 0, r.code, "%v: %s", st.args, r.stderr)
		assert.Equal(t, st.stdout, r.stdout, "%v", st.args)
		if st.req.method != "" {
			assert.Equal(t, st.req, s.last(), "%v", st.args)
		}
	}

	t.Run("resets and revocations", func(t *testing.T) {
		s.f.Buckets["password:hunter2"] = true
		s.f.Keys["k/1"] = true
		r := s.run(nil, "reset", "password", "hunter2")
		require.Equal(t, 0, r.code, r.stderr)
		assert.Equal(t, "Reset the password bucket\n", r.stdout)
		assert.Equal(t, seen{"POST", "/v1/admin/buckets/reset", "", `{"password":"hunter2"}`}, s.last())

		r = s.run(nil, "keys", "revoke", "k/1")
		require.Equal(t, 0, r.code, r.stderr)
		assert.Equal(t, "Revoked key k/1\n", r.stdout)
		assert.Equal(t, seen{method: "DELETE", path: "/v1/admin/keys/k%2F1"}, s.last())
	})

	t.Run("--json prints the server's JSON, before or after the command", func(t *testing.T) {
		r := s.run(nil, "--json", "ratelimit", "stats", "127.0.0.9")
		require.Equal(t, 0, r.code, r.stderr)
		assert.JSONEq(t, `{"ip":"127.0.0.9","requests_in_window":0,"limit":5,"remaining":5}`, r.stdout)
		assert.True(t, strings.HasSuffix(r.stdout, "}\n"))

		r = s.run(nil, "aw", "192.0.2.0/24", "--json")
		require.Equal(t, 0, r.code, r.stderr)
		assert.Equal(t, "{}\n", r.stdout)

		r = s.run(nil, "status", "--json")
		require.Equal(t, 0, r.code, r.stderr)
		assert.JSONEq(t, `{"status":"running","routes_count":1,"rate_limit":{"requests_per_minute":5,"window_size":60},"audit":{"total_entries":3,"request_count":2,"admin_action_count":1}}`, r.stdout)
	})

	t.Run("a value starting with a dash after --", func(t *testing.T) {
		s.f.Buckets["login:-x"] = true
		r := s.run(nil, "rbl", "--", "-x")
		require.Equal(t, 0, r.code, r.stderr)
		assert.Equal(t, `{"login":"-x"}`, s.last().body)
	})
}

func TestServerDown(t *testing.T) {
	ts := httptest.NewServer(http.NotFoundHandler())
	ts.Close()
	var out, errOut bytes.Buffer
	code := run(context.Background(), []string{"bulwarkctl", "--addr", ts.URL, "status"}, func(string) string { return "" }, &out, &errOut)
	assert.Equal(t, 1, code)
	assert.Contains(t, errOut.String(), "connection refused")
}
