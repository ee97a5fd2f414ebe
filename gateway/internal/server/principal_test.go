package server_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulwarkgw/bulwark/gateway/internal/apikey"
	"github.com/bulwarkgw/bulwark/gateway/internal/bans"
	"github.com/bulwarkgw/bulwark/gateway/internal/config"
	"github.com/bulwarkgw/bulwark/gateway/internal/ratelimit"
	"github.com/bulwarkgw/bulwark/gateway/internal/server"
	"github.com/bulwarkgw/bulwark/gateway/internal/testenv"
	"github.com/bulwarkgw/bulwark/gateway/internal/traffic"
	"github.com/bulwarkgw/bulwark/shared/clientid"
	"github.com/bulwarkgw/bulwark/shared/wire"
)

// jwtFunc is a JWT verifier double.
type jwtFunc func(token string) (string, error)

func (f jwtFunc) Verify(token string, _ time.Time) (string, error) { return f(token) }

var _ server.JWTVerifier = jwtFunc(nil)

// principalGateway is the whole chain in front of shop with real key,
// traffic and ban stores, a JWT double that knows "alice.jwt.sig", and a
// scorer double that blocks a client at its 5th request in 60 s and
// records what it is asked.
func principalGateway(t *testing.T, mutate func(*config.Config)) (http.Handler, *apikey.Store, func() []wire.ScoreRequest) {
	t.Helper()
	rdb, prefix := testenv.Redis(t)
	up := httptest.NewServer(http.HandlerFunc(shop))
	t.Cleanup(up.Close)
	cfg, err := config.Parse([]byte("routes: [{path: /, upstream: "+up.URL+"}]\ntrusted_proxies: [127.0.0.2]\nban_ttl: 1m\nscoring: {cache_ttl: 0s}\n"), func(string) string { return "" })
	require.NoError(t, err)
	cfg.Redis.Prefix = prefix
	if mutate != nil {
		mutate(cfg)
	}
	store, err := traffic.New(rdb, prefix)
	require.NoError(t, err)
	banStore, err := bans.New(rdb, prefix)
	require.NoError(t, err)
	keys, err := apikey.New(rdb, prefix, time.Hour)
	require.NoError(t, err)
	limiter, err := ratelimit.New(rdb, prefix)
	require.NoError(t, err)
	var mu sync.Mutex
	var seen []wire.ScoreRequest
	scorer := scoreFunc(func(r wire.ScoreRequest) (wire.ScoreResponse, error) {
		mu.Lock()
		seen = append(seen, r)
		mu.Unlock()
		if r.Count60s >= 5 {
			return wire.ScoreResponse{Score: 1, Level: wire.LevelBlock}, nil
		}
		return wire.ScoreResponse{}, nil
	})
	verifier := jwtFunc(func(tok string) (string, error) {
		if tok == "alice.jwt.sig" {
			return "alice", nil
		}
		return "", errors.New("bad signature")
	})
	g, err := server.New(cfg, server.Deps{Traffic: store, Bans: banStore, Keys: keys, JWT: verifier, Limiter: limiter, Scorer: scorer,
		Events: &recorder{}, Stats: nopStats{}, Log: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	return g, keys, func() []wire.ScoreRequest {
		mu.Lock()
		defer mu.Unlock()
		return append([]wire.ScoreRequest(nil), seen...)
	}
}

// TestPrincipalsBehindOneAddressAreJudgedApart: many principals share a
// NAT's or a cloud's address. Each is counted, scored and banned as
// itself: a principal's ban leaves the address and the other principals
// alone. The address's own ban (earned by its anonymous clients) is
// refused first, whatever credential a request shows (seed 000's order).
func TestPrincipalsBehindOneAddressAreJudgedApart(t *testing.T) {
	t.Parallel()
	h, keys, seen := principalGateway(t, nil)
	ctx := context.Background()
	keyA, sessA, err := keys.Mint(ctx, "", time.Now())
	require.NoError(t, err)
	keyB, _, err := keys.Mint(ctx, "", time.Now())
	require.NoError(t, err)
	nat := []string{"X-Forwarded-For", "203.0.113.60", "User-Agent", "Go-http-client/1.1"}
	asA := append([]string{"X-API-Key", keyA}, nat...)
	asB := append([]string{"Authorization", "Bearer " + keyB}, nat...)
	asAlice := append([]string{"Authorization", "Bearer alice.jwt.sig"}, nat...)

	for i := range 4 {
		require.Equal(t, 200, send(h, "GET", "/api/products/1", "", asA...), "A's request %d", i+1)
	}
	last := seen()[len(seen())-1]
	assert.Equal(t, clientid.Display(clientid.Principal(clientid.KindKey, sessA.ID)), last.Principal)
	assert.Equal(t, "203.0.113.60", last.IP, "the address still travels for the record")
	assert.EqualValues(t, 4, last.Count60s, "A's own count")

	assert.Equal(t, 403, send(h, "GET", "/api/products/1", "", asA...), "A's 5th: blocked")
	assert.Equal(t, 403, send(h, "GET", "/api/products/1", "", asA...), "A is banned")
	assert.Equal(t, 200, send(h, "GET", "/api/products/1", "", asB...), "B, same address: its own record")
	assert.Equal(t, 200, send(h, "GET", "/api/products/1", "", nat...), "the address: A's ban is not its")
	assert.Equal(t, 200, send(h, "GET", "/api/products/1", "", asAlice...), "a JWT principal: its own record")
	last = seen()[len(seen())-1]
	assert.Regexp(t, `^jwt:[0-9a-f]{12}$`, last.Principal)
	assert.EqualValues(t, 1, last.Count60s)

	// The address's anonymous clients earn it a ban: 4 more requests.
	for range 3 {
		require.Equal(t, 200, send(h, "GET", "/", "", nat...))
	}
	assert.Equal(t, 403, send(h, "GET", "/", "", nat...), "the address's 5th")
	assert.Equal(t, 403, send(h, "GET", "/", "", nat...), "the address is banned")
	assert.Equal(t, 403, send(h, "GET", "/", "", asB...), "a banned address is refused whatever key it shows")
	assert.Equal(t, 200, send(h, "GET", "/", "", "X-API-Key", keyB, "X-Forwarded-For", "198.51.100.60"), "B from elsewhere: its own record is clean")
	assert.Equal(t, 403, send(h, "GET", "/", "", "X-API-Key", keyA, "X-Forwarded-For", "198.51.100.61"), "A's ban follows A")
}

// TestInvalidCredentialsOnOpenRoutes: on a route without auth, a
// credential the gateway cannot verify (the upstream's own token, a
// revoked key) makes nobody a principal: the request is judged by its
// address, and nothing is refused for it.
func TestInvalidCredentialsOnOpenRoutes(t *testing.T) {
	t.Parallel()
	h, _, seen := principalGateway(t, nil)
	xff := []string{"X-Forwarded-For", "203.0.113.61"}
	for _, cred := range [][]string{
		{"X-API-Key", "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"},
		{"Authorization", "Bearer mallory.jwt.sig"},
		{"Authorization", "Bearer opaque-upstream-token"},
	} {
		assert.Equal(t, 200, send(h, "GET", "/", "", append(cred, xff...)...), cred[1])
		assert.Empty(t, seen()[len(seen())-1].Principal, cred[1])
	}
	assert.EqualValues(t, 3, seen()[len(seen())-1].Count60s, "all three counted for the address")
}

// TestAPIKeyRouteUsesTheVerifiedCredential: the auth step reuses what the
// credential step found: a valid key passes and is stripped, a bad one is
// a 401 counted against the address.
func TestAPIKeyRouteUsesTheVerifiedCredential(t *testing.T) {
	t.Parallel()
	h, keys, _ := principalGateway(t, func(c *config.Config) { c.Routes[0].Auth = "api_key" })
	key, _, err := keys.Mint(context.Background(), "", time.Now())
	require.NoError(t, err)
	xff := []string{"X-Forwarded-For", "203.0.113.62"}
	assert.Equal(t, 200, send(h, "GET", "/api/products/1", "", append([]string{"X-API-Key", key}, xff...)...))
	assert.Equal(t, 401, send(h, "GET", "/api/products/1", "", xff...), "no key")
	bad := "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	assert.Equal(t, 401, send(h, "GET", "/api/products/1", "", append([]string{"X-API-Key", bad}, xff...)...), "unknown key")
}

// TestPrincipalsHaveTheirOwnLimits: rate_limit.per_key and the per-client
// limit apply to a principal on every route, not only on routes with auth,
// and one principal's limit leaves the others and the address alone.
func TestPrincipalsHaveTheirOwnLimits(t *testing.T) {
	t.Parallel()
	h, keys, _ := principalGateway(t, func(c *config.Config) {
		c.RateLimit.PerKey = config.Limit{Requests: 3, Window: time.Minute}
		c.RateLimit.RequestsPerMinute = 3
	})
	ctx := context.Background()
	keyA, _, err := keys.Mint(ctx, "", time.Now())
	require.NoError(t, err)
	keyB, _, err := keys.Mint(ctx, "", time.Now())
	require.NoError(t, err)
	nat := []string{"X-Forwarded-For", "203.0.113.63"}
	for i := range 2 {
		require.Equal(t, 200, send(h, "GET", "/", "", append([]string{"X-API-Key", keyA}, nat...)...), "A %d", i+1)
	}
	// Count60s < 5: the scorer double lets these pass; the limits decide.
	assert.Equal(t, 200, send(h, "GET", "/", "", append([]string{"X-API-Key", keyA}, nat...)...), "A's 3rd: at its limit")
	assert.Equal(t, 429, send(h, "GET", "/", "", append([]string{"X-API-Key", keyA}, nat...)...), "A's 4th: over it")
	assert.Equal(t, 200, send(h, "GET", "/", "", append([]string{"X-API-Key", keyB}, nat...)...), "B: its own limit")
	assert.Equal(t, 200, send(h, "GET", "/", "", nat...), "the address: its own limit")
}

// TestFailedLoginsThroughTheKeyMinterCount: a login the gateway forwards
// itself to mint a key (api_key.auth_upstream) and the backend refuses is
// the client's auth failure, counted as the upstream's 401 would be.
func TestFailedLoginsThroughTheKeyMinterCount(t *testing.T) {
	t.Parallel()
	h, _, seen := principalGateway(t, func(c *config.Config) { c.APIKey.AuthUpstream = c.Routes[0].Upstream })
	xff := []string{"X-Forwarded-For", "203.0.113.64", "Content-Type", "application/json"}
	assert.Equal(t, 401, send(h, "POST", "/auth", `{"username":"a","password":"b"}`, xff...))
	assert.Equal(t, 401, send(h, "POST", "/auth", `{"username":"a","password":"c"}`, xff...))
	last := seen()[len(seen())-1]
	assert.EqualValues(t, 1, last.AuthFailures, "the first refusal, counted before the second")
	assert.EqualValues(t, 1, last.Errors4xx)
}

// TestJWTRoute: a route with auth: jwt needs a verified token; a missing or
// bad one is a 401 counted against the address (the sixth in the window
// bans it, as bad API keys do, and then the address is shut to valid
// tokens too).
func TestJWTRoute(t *testing.T) {
	t.Parallel()
	h, _, seen := principalGateway(t, func(c *config.Config) { c.Routes[0].Auth = "jwt" })
	xff := []string{"X-Forwarded-For", "203.0.113.65"}
	assert.Equal(t, 200, send(h, "GET", "/api/products/1", "", append([]string{"Authorization", "Bearer alice.jwt.sig"}, xff...)...))
	assert.Regexp(t, `^jwt:`, seen()[len(seen())-1].Principal)
	assert.Equal(t, 401, send(h, "GET", "/api/products/1", "", xff...), "no token")
	for i := range 4 {
		assert.Equal(t, 401, send(h, "GET", "/api/products/1", "", append([]string{"Authorization", "Bearer mallory.jwt.sig"}, xff...)...), "bad token %d", i+1)
	}
	assert.Equal(t, 403, send(h, "GET", "/api/products/1", "", append([]string{"Authorization", "Bearer mallory.jwt.sig"}, xff...)...), "the sixth bad credential bans the address")
	assert.Equal(t, 403, send(h, "GET", "/api/products/1", "", append([]string{"Authorization", "Bearer alice.jwt.sig"}, xff...)...), "the banned address is shut to valid tokens too")
	assert.Equal(t, 200, send(h, "GET", "/api/products/1", "", "Authorization", "Bearer alice.jwt.sig", "X-Forwarded-For", "198.51.100.65"), "alice elsewhere")
}

// TestPrincipalIsTheAccount: every key minted for one account is one
// principal (a fresh key is no fresh record); a login is judged by its
// address, whatever key rides along; a vendor's own X-API-Key does not hide
// a valid JWT.
func TestPrincipalIsTheAccount(t *testing.T) {
	t.Parallel()
	h, keys, seen := principalGateway(t, func(c *config.Config) { c.APIKey.AuthUpstream = c.Routes[0].Upstream })
	ctx := context.Background()
	acct := apikey.AccountOf("alice")
	k1, _, err := keys.MintFor(ctx, "", acct, time.Now())
	require.NoError(t, err)
	k2, _, err := keys.MintFor(ctx, "", acct, time.Now())
	require.NoError(t, err)
	xff := []string{"X-Forwarded-For", "203.0.113.66"}
	require.Equal(t, 200, send(h, "GET", "/", "", append([]string{"X-API-Key", k1}, xff...)...))
	first := seen()[len(seen())-1]
	require.Equal(t, 200, send(h, "GET", "/", "", append([]string{"X-API-Key", k2}, xff...)...))
	second := seen()[len(seen())-1]
	assert.Equal(t, first.Principal, second.Principal, "one account, one principal")
	assert.EqualValues(t, 2, second.Count60s, "one record")

	assert.Equal(t, 401, send(h, "POST", "/auth", `{"username":"a","password":"b"}`, append([]string{"X-API-Key", k1, "Content-Type", "application/json"}, xff...)...))
	assert.Empty(t, seen()[len(seen())-1].Principal, "a login is its address's")

	require.Equal(t, 200, send(h, "GET", "/", "", "X-API-Key", "vendor-key-abc", "Authorization", "Bearer alice.jwt.sig", "X-Forwarded-For", "203.0.113.67"))
	assert.Regexp(t, `^jwt:`, seen()[len(seen())-1].Principal, "a vendor's own key is not ours; the JWT still verifies")
}
