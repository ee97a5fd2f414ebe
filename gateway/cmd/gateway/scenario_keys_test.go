package main

// Group A of SEEDS.md section 8: the API-key gateway (seed 000), S01–S10.

import (
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/bulwarkgw/bulwark/gateway/internal/testenv"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// keysConfig is the base test config with every layer but API keys off.
const keysConfig = `
routes:
  - {path: /api/, upstream: "{{U1}}"}
  - {path: /api/v2/, upstream: "{{U2}}"}
  - {path: /svc/, upstream: "{{U3}}"}
  - {path: /app/, upstream: "{{U1}}", auth: api_key}
trusted_proxies: [127.0.0.2/32]
scorer: {enabled: false}
admin: {username: admin, password: s3cret}
api_key:
  auth_upstream: "{{U1}}"
  key_ttl: 3s
  invalid_window: 5s
  invalid_threshold: 5
  block_duration: 3s
  role_attribute: role
  permissions:
    hello: {GET: [admin, user]}
    secret: {GET: [superadmin]}
login_protection:
  login: {rate: 0}
  password: {rate: 0}
  ip: {rate: 0}
`

// loginAs makes U1's /auth accept exactly user/pw with the given role.
func loginAs(u *upstream, user, pw, role string) {
	u.handle(func(w http.ResponseWriter, r *http.Request, body []byte) bool {
		if r.URL.Path != "/auth" {
			return false
		}
		w.Header().Set("Content-Type", "application/json")
		if strings.Contains(string(body), `"username":"`+user+`"`) && strings.Contains(string(body), `"password":"`+pw+`"`) {
			fmt.Fprintf(w, `{"success":"ok","role":%q}`, role)
			return true
		}
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprint(w, `{"success":false}`)
		return true
	})
}

func mintKey(t *testing.T, s *stack, ip string) string {
	t.Helper()
	r := s.from(ip).postJSON("/auth", `{"username":"alice","password":"pw"}`)
	require.Equal(t, http.StatusOK, r.Code, r.Body)
	key, _ := r.json(t)["API_KEY"].(string)
	require.NotEmpty(t, key)
	return key
}

var hexKey = regexp.MustCompile(`^[0-9a-f]{32,}$`)

func TestS01KeyIssuance(t *testing.T) {
	t.Parallel()
	s := startStack(t, keysConfig)
	loginAs(s.u1, "alice", "pw", "user")
	body := `{"username":"alice","password":"pw"}`
	r := s.from("127.0.0.60").postJSON("/auth", body)
	require.Equal(t, http.StatusOK, r.Code, r.Body)
	m := r.json(t)
	assert.Len(t, m, 1)
	assert.Regexp(t, hexKey, m["API_KEY"], "at least 128 bits")
	got := s.u1.requests()
	require.Len(t, got, 1)
	assert.Equal(t, "/auth", got[0].URI)
	assert.Equal(t, body, string(got[0].Body), "the same body bytes")
	assert.Equal(t, "application/json", got[0].ContentType, "client headers are forwarded")
	// Keys are stored hashed: the raw key is nowhere in Redis.
	keys, err := testenv.Keys(t.Context(), s.rdb, s.prefix+"*")
	require.NoError(t, err)
	for _, k := range keys {
		assert.NotContains(t, k, m["API_KEY"])
		if v, err := s.rdb.Get(t.Context(), k).Result(); err == nil {
			assert.NotContains(t, v, m["API_KEY"])
		}
	}
}

func TestS02FailedAuth(t *testing.T) {
	t.Parallel()
	s := startStack(t, keysConfig)
	for i, answer := range []string{`{"error":"bad"}`, `{"success":false}`, `{"success":""}`, `{"success":null}`, `{"success":"false"}`} {
		s.u1.handle(func(w http.ResponseWriter, r *http.Request, _ []byte) bool {
			fmt.Fprint(w, answer)
			return true
		})
		r := s.from(fmt.Sprintf("127.0.0.%d", 61+i)).postJSON("/auth", `{"username":"alice","password":"x"}`)
		assert.Equal(t, http.StatusUnauthorized, r.Code, answer)
		assert.JSONEq(t, `{"error":"Invalid credentials"}`, stripRequestID(t, r.Body), answer)
	}

	down := startStack(t, strings.Replace(keysConfig, `auth_upstream: "{{U1}}"`, `auth_upstream: "http://127.0.0.1:1"`, 1))
	r := down.from("127.0.0.66").postJSON("/auth", `{"username":"alice","password":"pw"}`)
	assert.Equal(t, http.StatusBadGateway, r.Code)
	assert.JSONEq(t, `{"error":"Bad Gateway"}`, stripRequestID(t, r.Body))
}

// stripRequestID drops the request_id every error carries, to compare the rest.
func stripRequestID(t *testing.T, body string) string {
	return regexp.MustCompile(`,"request_id":"[^"]*"`).ReplaceAllString(body, "")
}

func TestS03ValidKeyPassthrough(t *testing.T) {
	t.Parallel()
	s := startStack(t, keysConfig)
	loginAs(s.u1, "alice", "pw", "user")
	key := mintKey(t, s, "127.0.0.70")
	c := s.from("127.0.0.70")

	r := c.get("/app/hello?KEY=" + key + "&a=1&a=2")
	require.Equal(t, http.StatusOK, r.Code, r.Body)
	last := s.u1.requests()[len(s.u1.requests())-1]
	assert.Equal(t, "GET", last.Method)
	assert.Equal(t, "/app/hello?a=1&a=2", last.URI, "KEY is stripped, repeated parameters kept in order")
	assert.Equal(t, strings.TrimPrefix(s.u1.URL(), "http://"), last.Host)

	s.u1.handle(func(w http.ResponseWriter, r *http.Request, _ []byte) bool {
		if r.URL.Path != "/app/teapot" {
			return false
		}
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(http.StatusTeapot)
		fmt.Fprint(w, "teapot")
		return true
	})
	r = c.get("/app/teapot?KEY=" + key)
	assert.Equal(t, http.StatusTeapot, r.Code)
	assert.Equal(t, "text/plain", r.Header.Get("Content-Type"))
	assert.Equal(t, "teapot", r.Body)

	r = c.postJSON("/app/orders/42/items?KEY="+key, `{"sku":"x1","qty":2}`)
	require.Equal(t, http.StatusOK, r.Code, r.Body)
	last = s.u1.requests()[len(s.u1.requests())-1]
	assert.Equal(t, "POST", last.Method)
	assert.Equal(t, "/app/orders/42/items", last.URI)
	assert.Equal(t, `{"sku":"x1","qty":2}`, string(last.Body))

	r = c.get("/app/hello", "X-API-Key", key)
	assert.Equal(t, http.StatusOK, r.Code)
	last = s.u1.requests()[len(s.u1.requests())-1]
	assert.Empty(t, last.Header.Get("X-API-Key"), "the key never reaches the upstream")
	r = c.get("/app/hello", "Authorization", "Bearer "+key)
	assert.Equal(t, http.StatusOK, r.Code)
}

func TestS04MissingOrInvalidKey(t *testing.T) {
	t.Parallel()
	s := startStack(t, keysConfig)
	c := s.from("127.0.0.71")
	r := c.get("/app/hello")
	assert.Equal(t, http.StatusUnauthorized, r.Code)
	assert.JSONEq(t, `{"error":"key not provided"}`, stripRequestID(t, r.Body))
	r = c.get("/app/hello?KEY=nope")
	assert.Equal(t, http.StatusUnauthorized, r.Code)
	assert.JSONEq(t, `{"error":"Invalid key"}`, stripRequestID(t, r.Body))
	assert.Zero(t, s.u1.count("/app/"), "U1 receives nothing")
}

// S05 and S07: five bad keys are 401, the sixth is 403 and bans for
// block_duration; another client is unaffected; the ban lifts by itself.
func TestS05BadKeyIPBlockAndS07Isolation(t *testing.T) {
	t.Parallel()
	s := startStack(t, keysConfig)
	loginAs(s.u1, "alice", "pw", "user")
	key := mintKey(t, s, "127.0.0.4")
	c := s.from("127.0.0.3")
	for i := range 5 {
		r := c.get(fmt.Sprintf("/app/hello?KEY=wrong%d", i))
		require.Equal(t, http.StatusUnauthorized, r.Code, "bad key %d", i+1)
	}
	r := c.get("/app/hello?KEY=wrong6")
	blockedAt := time.Now()
	assert.Equal(t, http.StatusForbidden, r.Code)
	assert.JSONEq(t, `{"error":"IP blocked due to repeated invalid requests."}`, stripRequestID(t, r.Body))

	before := len(s.u1.requests())
	assert.Equal(t, http.StatusForbidden, c.get("/app/hello?KEY="+key).Code, "a valid key from a banned client")
	assert.Equal(t, http.StatusForbidden, c.postJSON("/auth", `{"username":"alice","password":"pw"}`).Code)
	assert.Equal(t, http.StatusForbidden, c.get("/api/users").Code)
	assert.Equal(t, before, len(s.u1.requests()), "nothing from a banned client reaches U1")

	// S07: another client is unaffected.
	assert.Equal(t, http.StatusOK, s.from("127.0.0.4").get("/app/hello?KEY="+key).Code)

	time.Sleep(time.Until(blockedAt.Add(3500 * time.Millisecond)))
	key = mintKey(t, s, "127.0.0.4") // the first key has expired by now (key_ttl 3s)
	assert.Equal(t, http.StatusOK, c.get("/app/hello?KEY="+key).Code, "the ban has lifted")
}

func TestS06SlidingWindowEdge(t *testing.T) {
	t.Parallel()
	s := startStack(t, keysConfig)
	c := s.from("127.0.0.5")
	start := time.Now()
	for i := range 6 {
		time.Sleep(time.Until(start.Add(time.Duration(i) * 1100 * time.Millisecond)))
		r := c.get(fmt.Sprintf("/app/hello?KEY=wrong%d", i))
		assert.Equal(t, http.StatusUnauthorized, r.Code, "attempt %d: no 5 s window ever holds more than 5", i+1)
	}
}

func TestS08KeyExpiry(t *testing.T) {
	t.Parallel()
	s := startStack(t, keysConfig)
	loginAs(s.u1, "alice", "pw", "user")
	minted := time.Now()
	key := mintKey(t, s, "127.0.0.72")
	c := s.from("127.0.0.72")
	time.Sleep(time.Until(minted.Add(time.Second)))
	assert.Equal(t, http.StatusOK, c.get("/app/hello?KEY="+key).Code)
	time.Sleep(time.Until(minted.Add(3500 * time.Millisecond)))
	r := c.get("/app/hello?KEY=" + key)
	assert.Equal(t, http.StatusUnauthorized, r.Code)
	assert.JSONEq(t, `{"error":"Invalid key"}`, stripRequestID(t, r.Body))
	// That attempt counted: four more bad keys reach the threshold, the fifth is 403.
	for i := range 4 {
		require.Equal(t, http.StatusUnauthorized, c.get(fmt.Sprintf("/app/hello?KEY=x%d", i)).Code)
	}
	assert.Equal(t, http.StatusForbidden, c.get("/app/hello?KEY=x5").Code)
}

func TestS09RBAC(t *testing.T) {
	t.Parallel()
	s := startStack(t, keysConfig)
	loginAs(s.u1, "alice", "pw", "user")
	key := mintKey(t, s, "127.0.0.73")
	c := s.from("127.0.0.73")
	assert.Equal(t, http.StatusOK, c.get("/app/hello?KEY="+key).Code)
	r := c.get("/app/secret?KEY=" + key)
	assert.Equal(t, http.StatusForbidden, r.Code)
	assert.JSONEq(t, `{"error":"Not allowed"}`, stripRequestID(t, r.Body))
	assert.Equal(t, http.StatusForbidden, c.do("DELETE", "/app/hello?KEY="+key, nil).Code, "a method not listed")
	assert.Equal(t, http.StatusOK, c.get("/app/unlisted?KEY="+key).Code, "no permission entry: forwarded, never 500")
}

func TestS10CredentialGuessingCounts(t *testing.T) {
	t.Parallel()
	s := startStack(t, keysConfig)
	loginAs(s.u1, "alice", "pw", "user")
	c := s.from("127.0.0.20")
	for i := range 5 {
		r := c.postJSON("/auth", fmt.Sprintf(`{"username":"alice","password":"guess%d"}`, i))
		require.Equal(t, http.StatusUnauthorized, r.Code, "guess %d", i+1)
	}
	r := c.postJSON("/auth", `{"username":"alice","password":"guess6"}`)
	assert.Equal(t, http.StatusForbidden, r.Code)
	assert.Equal(t, 5, s.u1.count("/auth"), "the sixth attempt never reached the backend")
}
