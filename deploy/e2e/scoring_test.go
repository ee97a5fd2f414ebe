package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/bulwarkgw/bulwark/shared/wire"
)

// scoringStack is a running shop, scorer and gateway on the test Redis and
// MongoDB, in their own namespace.
type scoringStack struct {
	gateway string // host:port
	ns      string
	bins    map[string]string
}

// startScoringStack starts the services; scorerEnv and gatewayEnv are added to
// each one's environment. The gateway trusts 127.0.0.1 to present clients
// in X-Forwarded-For, as the simulator does.
func startScoringStack(t *testing.T, scorerEnv, gatewayEnv []string) scoringStack {
	t.Helper()
	redisURL := need(t, "BULWARK_TEST_REDIS_URL")
	mongoURI := need(t, "BULWARK_TEST_MONGO_URI")
	root := repoRoot(t)
	bins := build(t, root, t.TempDir())
	ns := fmt.Sprintf("e2e%d", time.Now().UnixNano())
	shop, scorer, gw := freeAddr(t), freeAddr(t), freeAddr(t)
	start(t, "shop", bins["shop"], shop)
	for _, v := range []string{"BULWARK_GEOIP_DB", "BULWARK_GEOIP_ASN_DB"} {
		if db := os.Getenv(strings.Replace(v, "BULWARK_", "BULWARK_TEST_", 1)); db != "" {
			scorerEnv = append(scorerEnv, v+"="+db)
		}
	}
	start(t, "scorer", bins["scorer"], scorer, scorerEnv...)
	start(t, "gateway", bins["gateway"], gw, append([]string{
		"BULWARK_REDIS_URL=" + redisURL, "BULWARK_REDIS_PREFIX=" + ns + ":",
		"BULWARK_MONGO_URI=" + mongoURI, "BULWARK_MONGO_DB=" + ns,
		"BULWARK_UPSTREAM_URL=http://" + shop, "BULWARK_SCORER_URL=http://" + scorer,
		"BULWARK_TRUSTED_PROXIES=127.0.0.1",
		// Behaviour, not latency: a loaded test machine must not turn a
		// slow reply into a fail-open.
		"BULWARK_REDIS_TIMEOUT=3s", "BULWARK_SCORER_TIMEOUT=3s",
	}, gatewayEnv...)...)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		mc, err := mongo.Connect(options.Client().ApplyURI(mongoURI))
		if err == nil {
			_ = mc.Database(ns).Drop(ctx)
			_ = mc.Disconnect(ctx)
		}
	})
	return scoringStack{gateway: gw, ns: ns, bins: bins}
}

// TestSimulatorSneakerBlockedPeopleNot runs a short simulation against the
// real stack (default profile, demo GeoIP databases): the 50 rps sneaker
// bot is blocked within its first second and no person is throttled or
// blocked.
func TestSimulatorSneakerBlockedPeopleNot(t *testing.T) {
	t.Parallel()
	s := startScoringStack(t, nil, nil)
	var out, errOut bytes.Buffer
	cmd := exec.Command(s.bins["simulator"], "-target", "http://"+s.gateway,
		"-duration", "6s", "-mix", "human=8,sneaker=1", "-seed", "7", "-json", "-")
	cmd.Stdout, cmd.Stderr = &out, &errOut
	require.NoError(t, cmd.Run(), "simulator: %s", errOut.String())

	var rep struct {
		Scenarios []struct {
			Name               string
			Sent               int
			Allowed            int
			Throttled          int
			Blocked            int
			Failed             int
			ClientsBlocked     int   `json:"clients_blocked"`
			TimeToFirstBlockMS int64 `json:"time_to_first_block_ms"`
			Pass               bool
		}
	}
	require.NoError(t, json.Unmarshal(out.Bytes(), &rep), out.String())
	require.Len(t, rep.Scenarios, 2)
	human, sneaker := rep.Scenarios[0], rep.Scenarios[1]
	require.Equal(t, "human", human.Name)
	require.Equal(t, "sneaker", sneaker.Name)
	t.Logf("report: %s", out.String())

	assert.Greater(t, human.Sent, 8, "people browsed")
	assert.Zero(t, human.Throttled+human.Blocked, "no person throttled or blocked")
	assert.Zero(t, human.Failed)

	assert.Greater(t, sneaker.Sent, 200)
	assert.Equal(t, 1, sneaker.ClientsBlocked, "the sneaker bot is blocked")
	assert.GreaterOrEqual(t, sneaker.TimeToFirstBlockMS, int64(0))
	assert.LessOrEqual(t, sneaker.TimeToFirstBlockMS, int64(1000), "within its first second")
	assert.True(t, sneaker.Pass, "99 %% of its requests after the first second refused")
}

// TestSeed002Scenarios runs SEEDS.md's S26–S28 through the real gateway
// and scorer with the seed-002 profile and the scenarios' test config:
// a 3 s visit window, the seed's sensitive paths, thresholds 0.7.
func TestSeed002Scenarios(t *testing.T) {
	t.Parallel()
	cfg := filepath.Join(t.TempDir(), "gateway.yaml")
	require.NoError(t, os.WriteFile(cfg, []byte(`
routes: [{path: /, upstream: "${BULWARK_UPSTREAM_URL}"}]
thresholds: {block: 0.7, throttle: 0.7}
ban_ttl: 1s
scoring:
  sensitive_paths: [/api/login, /api/register, /api/data]
  visit_window: 3s
  cache_ttl: 0s
`), 0o600))
	s := startScoringStack(t, []string{"BULWARK_PROFILE=seed-002"}, []string{"BULWARK_CONFIG=" + cfg})
	client := &http.Client{Timeout: 5 * time.Second}
	send := func(ip, method, path string) (int, string) {
		req, err := http.NewRequest(method, "http://"+s.gateway+path, strings.NewReader(`{}`))
		require.NoError(t, err)
		req.Header.Set("X-Forwarded-For", ip)
		resp, err := client.Do(req)
		require.NoError(t, err)
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp.StatusCode, string(b)
	}
	refused := func(code int) bool { return code == 403 || code == 429 }

	// S26: 7 × GET /svc/public within 3 s: 1–6 forwarded, the 7th 403.
	s26 := time.Now()
	for i := 1; i <= 6; i++ {
		code, _ := send("127.0.0.40", "GET", "/svc/public")
		assert.False(t, refused(code), "S26 request %d: %d", i, code)
	}
	code, body := send("127.0.0.40", "GET", "/svc/public")
	assert.Equal(t, 403, code)
	assert.JSONEq(t, `{"error":"Suspicious behavior detected. Connection dropped."}`, stripRequestID(t, body))

	// S27: 4 × /api/data: the 4th is 403; the same with /API/DATA and
	// /api/data/; 3 × /svc/public then POST /api/login: the 4th is 403.
	for i, path := range []string{"/api/data", "/API/DATA", "/api/data/"} {
		ip := fmt.Sprintf("127.0.0.%d", 50+i)
		for j := 1; j <= 3; j++ {
			code, _ := send(ip, "GET", path)
			assert.False(t, refused(code), "S27 %s request %d: %d", path, j, code)
		}
		code, _ := send(ip, "GET", path)
		assert.Equal(t, 403, code, "S27 %s: the 4th", path)
	}
	for j := 1; j <= 3; j++ {
		code, _ := send("127.0.0.60", "GET", "/svc/public")
		assert.False(t, refused(code))
	}
	code, _ = send("127.0.0.60", "POST", "/api/login")
	assert.Equal(t, 403, code, "S27: counting is per IP across paths")

	// S28: 3 s after S26's first request the window has reset (and the 1 s
	// ban has expired): forwarded again.
	time.Sleep(time.Until(s26.Add(3100 * time.Millisecond)))
	code, _ = send("127.0.0.40", "GET", "/svc/public")
	assert.False(t, refused(code), "S28: forwarded after the window, got %d", code)

	// The S26 block is recorded with seed 002's score and its reason.
	mc, err := mongo.Connect(options.Client().ApplyURI(need(t, "BULWARK_TEST_MONGO_URI")))
	require.NoError(t, err)
	defer func() { _ = mc.Disconnect(context.Background()) }()
	var ev wire.Event
	require.Eventually(t, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		return mc.Database(s.ns).Collection("events").FindOne(ctx, bson.D{{Key: "ip", Value: "127.0.0.40"}, {Key: "type", Value: "ban"}}).Decode(&ev) == nil
	}, 10*time.Second, 100*time.Millisecond)
	assert.Equal(t, 0.8, ev.Score)
	require.NotEmpty(t, ev.Reasons)
	assert.Equal(t, wire.Reason{Feature: "visits", Value: 7, Contribution: 0.8}, ev.Reasons[0])
}

// stripRequestID drops the request_id every gateway error carries.
func stripRequestID(t *testing.T, body string) string {
	var m map[string]any
	require.NoError(t, json.Unmarshal([]byte(body), &m))
	delete(m, "request_id")
	b, _ := json.Marshal(m)
	return string(b)
}
