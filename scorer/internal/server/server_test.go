package server_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/bulwarkgw/bulwark/scorer/internal/geo"
	"github.com/bulwarkgw/bulwark/scorer/internal/server"
	"github.com/bulwarkgw/bulwark/scorer/profile"
	"github.com/bulwarkgw/bulwark/scorer/rules"
	"github.com/bulwarkgw/bulwark/shared/wire"
	"github.com/labstack/echo/v4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// locatorFunc is a test double for server.Locator.
type locatorFunc func(netip.Addr) (*wire.Geo, error)

func (f locatorFunc) Lookup(a netip.Addr) (*wire.Geo, error) { return f(a) }

var _ server.Locator = locatorFunc(nil)

// fakeGeo knows two addresses and treats local ones as geo does.
func fakeGeo(a netip.Addr) (*wire.Geo, error) {
	switch {
	case geo.IsLocal(a):
		return &wire.Geo{Local: true}, nil
	case a == netip.MustParseAddr("175.45.176.1"):
		return &wire.Geo{Country: "KP", City: "Pyongyang", Lat: 39.0392, Lon: 125.7625}, nil
	case a == netip.MustParseAddr("81.2.69.142"):
		return &wire.Geo{Country: "GB", City: "London", Lat: 51.5142, Lon: -0.0931, ASN: 20712, Org: "Andrews & Arnold Ltd"}, nil
	case a == netip.MustParseAddr("6.6.6.6"):
		return nil, errors.New("corrupt database")
	case a == netip.MustParseAddr("6.6.6.7"):
		panic("locator bug")
	}
	return nil, nil
}

// syncBuffer is a bytes.Buffer safe for the logger and the test.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func newServer(t *testing.T, level slog.Level) (*server.Handler, *syncBuffer) {
	t.Helper()
	p := profile.Default()
	p.Features.Geo.CountryRisk = map[string]float64{"KP": 1}
	logs := &syncBuffer{}
	h, err := server.New(server.Config{
		Profile: p,
		Locator: locatorFunc(fakeGeo),
		Logger:  slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: level})),
	})
	require.NoError(t, err)
	return h, logs
}

func do(e http.Handler, method, path string, body io.Reader) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, path, body)
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	e.ServeHTTP(rec, req)
	return rec
}

const chrome = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36"

func TestScore(t *testing.T) {
	e, _ := newServer(t, slog.LevelInfo)
	tests := []struct {
		name  string
		body  string
		score float64
		level string
		top   wire.Reason
		geo   *wire.Geo
	}{
		{
			name: "known address, a burst from curl",
			body: `{"ip":"81.2.69.142","count_1s":100,"count_10s":31,"count_60s":31,"method":"GET","path":"/","user_agent":"curl/8"}`,
			// burst 100 is a risk of 0.75; the tool's user agent (c = 0.45)
			// amplifies it: 1 − 0.25^(1 + 3 · 0.45).
			score: 0.9615, level: "block",
			top: wire.Reason{Feature: "burst", Value: 100, Contribution: 0.75},
			geo: &wire.Geo{Country: "GB", City: "London", Lat: 51.5142, Lon: -0.0931, ASN: 20712, Org: "Andrews & Arnold Ltd"},
		},
		{
			name: "known address, a webhook's burst of 42 from curl",
			body: `{"ip":"81.2.69.142","count_1s":42,"count_10s":31,"count_60s":31,"method":"GET","path":"/","user_agent":"curl/8"}`,
			// burst 42 is a risk of 0.025: 1 − 0.975^2.35. The tool's user
			// agent explains what it added to the burst's 0.025.
			score: 0.0578, level: "allow",
			top: wire.Reason{Feature: "user_agent", Value: 1, Contribution: 0.0328},
			geo: &wire.Geo{Country: "GB", City: "London", Lat: 51.5142, Lon: -0.0931, ASN: 20712, Org: "Andrews & Arnold Ltd"},
		},
		{
			// Circumstance alone refuses nobody.
			name:  "risky country, nothing abusive",
			body:  `{"ip":"175.45.176.1","count_1s":1,"count_10s":1,"count_60s":1,"user_agent":"` + chrome + `"}`,
			score: 0, level: "allow",
			top: wire.Reason{Feature: "asset_rate", Value: 0, Contribution: 0},
			geo: &wire.Geo{Country: "KP", City: "Pyongyang", Lat: 39.0392, Lon: 125.7625},
		},
		{
			// It strengthens behaviour: two failed logins (b = 1 − 0.775 ·
			// 0.8 = 0.38, allowed from London below) amplified by the
			// country (c = 0.5): 1 − 0.62^2.5.
			name:  "risky country, two failed logins",
			body:  `{"ip":"175.45.176.1","count_1s":1,"count_10s":2,"count_60s":2,"sensitive":true,"sensitive_hits":2,"auth_failures":2,"errors_4xx":2,"user_agent":"` + chrome + `"}`,
			score: 0.6973, level: "throttle",
			top: wire.Reason{Feature: "geo", Value: 1, Contribution: 0.3173},
			geo: &wire.Geo{Country: "KP", City: "Pyongyang", Lat: 39.0392, Lon: 125.7625},
		},
		{
			name:  "known address, two failed logins",
			body:  `{"ip":"81.2.69.142","count_1s":1,"count_10s":2,"count_60s":2,"sensitive":true,"sensitive_hits":2,"auth_failures":2,"errors_4xx":2,"user_agent":"` + chrome + `"}`,
			score: 0.38, level: "allow",
			top: wire.Reason{Feature: "auth_failures", Value: 2, Contribution: 0.2012},
			geo: &wire.Geo{Country: "GB", City: "London", Lat: 51.5142, Lon: -0.0931, ASN: 20712, Org: "Andrews & Arnold Ltd"},
		},
		{
			name:  "local address",
			body:  `{"ip":"192.168.1.10","count_1s":5,"count_10s":20,"count_60s":60,"user_agent":"` + chrome + `"}`,
			score: 0, level: "allow",
			top: wire.Reason{Feature: "asset_rate", Value: 0, Contribution: 0},
			geo: &wire.Geo{Local: true},
		},
		{
			name: "unknown address and IPv6, every new feature",
			body: `{"ip":"2001:4860::8888","count_1s":2,"count_10s":4,"count_60s":8,"sensitive":true,"sensitive_hits":3,"auth_failures":5,"errors_4xx":5,"distinct_paths":4,"sequential_ids":0,"intervals":9,"interval_cv":0.9,"user_agent":"` + chrome + `"}`,
			// auth_failures weighs 0.5625, sensitive_hits 0.3, error_ratio
			// (5 in 8, smoothed to 5.4 / 16) 0.165: 1 − 0.4375 · 0.7 ·
			// 0.835, nothing circumstantial to amplify it.
			score: 0.7443, level: "throttle",
			top: wire.Reason{Feature: "auth_failures", Value: 5, Contribution: 0.4075},
		},
		{
			name:  "geo failure scores without geo",
			body:  `{"ip":"6.6.6.6","user_agent":"` + chrome + `"}`,
			score: 0, level: "allow",
			top: wire.Reason{Feature: "asset_rate", Value: 0, Contribution: 0},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := do(e, http.MethodPost, "/v1/score", strings.NewReader(tt.body))
			require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
			assert.Contains(t, rec.Header().Get("Content-Type"), "application/json")
			var got wire.ScoreResponse
			require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &got))
			assert.Equal(t, tt.score, got.Score)
			assert.Equal(t, tt.level, got.Level)
			assert.Equal(t, "default", got.Profile)
			require.Len(t, got.Reasons, int(rules.NumFeatures))
			assert.Equal(t, tt.top, got.Reasons[0], "%+v", got.Reasons)
			assert.Equal(t, tt.geo, got.Geo)
		})
	}
}

// TestImpossibleTravel: an API key last seen in Pyongyang a minute ago is
// now used from London.
func TestImpossibleTravel(t *testing.T) {
	e, _ := newServer(t, slog.LevelInfo)
	score := func(body string) wire.ScoreResponse {
		rec := do(e, http.MethodPost, "/v1/score", strings.NewReader(body))
		require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
		var got wire.ScoreResponse
		require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &got))
		return got
	}
	got := score(`{"ip":"81.2.69.142","prev_ip":"175.45.176.1","prev_seconds":60,"user_agent":"` + chrome + `"}`)
	assert.Equal(t, "block", got.Level)
	assert.Equal(t, "travel", got.Reasons[0].Feature)
	assert.InDelta(t, 8660*60, got.Reasons[0].Value, 8660*60*0.01, "km/h")

	// A day later it is a plausible flight; from a local or unknown
	// address there is nothing to measure.
	assert.Equal(t, "allow", score(`{"ip":"81.2.69.142","prev_ip":"175.45.176.1","prev_seconds":86400,"user_agent":"`+chrome+`"}`).Level)
	assert.Equal(t, "allow", score(`{"ip":"81.2.69.142","prev_ip":"10.0.0.1","prev_seconds":1,"user_agent":"`+chrome+`"}`).Level)
	assert.Equal(t, "allow", score(`{"ip":"81.2.69.142","prev_ip":"8.8.4.4","prev_seconds":1,"user_agent":"`+chrome+`"}`).Level)

	rec := do(e, http.MethodPost, "/v1/score", strings.NewReader(`{"ip":"81.2.69.142","prev_ip":"nope"}`))
	assert.Equal(t, http.StatusBadRequest, rec.Code)
	assert.Contains(t, rec.Body.String(), "prev_ip")
}

func TestScoreBatch(t *testing.T) {
	e, _ := newServer(t, slog.LevelInfo)
	body := `{"requests":[` +
		`{"ip":"175.45.176.1","count_60s":2,"sensitive_hits":2,"auth_failures":2,"errors_4xx":2,"user_agent":"` + chrome + `"},` +
		`{"ip":"10.0.0.1","count_1s":120,"user_agent":"` + chrome + `"},` +
		`{"ip":"10.0.0.2","user_agent":"` + chrome + `"},` +
		`{"ip":"175.45.176.1","user_agent":"` + chrome + `"}]}`
	rec := do(e, http.MethodPost, "/v1/score/batch", strings.NewReader(body))
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	var got wire.ScoreBatchResponse
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &got))
	require.Len(t, got.Responses, 4)
	assert.Equal(t, "throttle", got.Responses[0].Level, "failed logins from a risky country")
	assert.Equal(t, "block", got.Responses[1].Level)
	assert.Equal(t, "allow", got.Responses[2].Level)
	assert.Equal(t, &wire.Geo{Local: true}, got.Responses[2].Geo)
	assert.Equal(t, "allow", got.Responses[3].Level, "a risky country alone")
	assert.Equal(t, "KP", got.Responses[3].Geo.Country)

	// One bad request refuses the batch, naming it.
	rec = do(e, http.MethodPost, "/v1/score/batch", strings.NewReader(`{"requests":[{"ip":"10.0.0.1"},{"ip":"nope"}]}`))
	assert.Equal(t, http.StatusBadRequest, rec.Code)
	assert.Contains(t, rec.Body.String(), `requests[1]: ip \"nope\" is not an IP address`)

	many := `{"requests":[` + strings.Repeat(`{"ip":"10.0.0.1"},`, server.MaxBatch) + `{"ip":"10.0.0.1"}]}`
	rec = do(e, http.MethodPost, "/v1/score/batch", strings.NewReader(many))
	assert.Equal(t, http.StatusBadRequest, rec.Code)
}

func TestSetProfileAndMetrics(t *testing.T) {
	h, _ := newServer(t, slog.LevelInfo)
	body := `{"ip":"10.0.0.1","visits":7}`
	var got wire.ScoreResponse
	rec := do(h, http.MethodPost, "/v1/score", strings.NewReader(body))
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &got))
	assert.Equal(t, "default", got.Profile)

	seed, err := profile.Builtin("seed-002")
	require.NoError(t, err)
	h.SetProfile(seed)
	rec = do(h, http.MethodPost, "/v1/score", strings.NewReader(body))
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &got))
	assert.Equal(t, "seed-002", got.Profile)
	assert.Equal(t, 0.8, got.Score)
	assert.Equal(t, "block", got.Level)

	rec = do(h, http.MethodGet, "/v1/profile", nil)
	assert.Contains(t, rec.Body.String(), `"name":"seed-002"`)
	// The profile names the rules engine it runs on, and every score names
	// the profile by the hash of exactly these bytes.
	assert.Equal(t, rules.Version, rec.Header().Get(wire.RulesVersionHeader))
	assert.Equal(t, wire.ProfileHashOf(rec.Body.Bytes()), got.ProfileHash)
	again, err := profile.Parse(rec.Body.Bytes())
	require.NoError(t, err)
	assert.Equal(t, seed.Rules(), again.Rules(), "the served JSON reads back as the same rules")

	rec = do(h, http.MethodGet, "/metrics", nil)
	require.Equal(t, http.StatusOK, rec.Code)
	assert.Contains(t, rec.Body.String(), `bulwark_scorer_scores_total{level="block"} 1`)
	assert.Contains(t, rec.Body.String(), `bulwark_scorer_scores_total{level="allow"} 1`)
	assert.Contains(t, rec.Body.String(), "bulwark_scorer_score_seconds_count 2")
}

func TestScoreBadRequests(t *testing.T) {
	e, _ := newServer(t, slog.LevelInfo)
	tests := []struct {
		name   string
		body   string
		status int
		want   string // substring of the error
	}{
		{"empty body", ``, 400, "request body is empty"},
		{"not JSON", `ip=1.2.3.4`, 400, "invalid JSON at byte 1"},
		{"truncated", `{"ip":"1.2.3.4"`, 400, "invalid JSON: body ends too early"},
		{"array", `[1,2]`, 400, "request body must be a JSON object, got array"},
		{"wrong type", `{"ip":"1.2.3.4","count_1s":"many"}`, 400, "field count_1s: want a number, got string"},
		{"fractional count", `{"ip":"1.2.3.4","count_1s":1.5}`, 400, "field count_1s: want a number"},
		{"ip wrong type", `{"ip":17}`, 400, "field ip: want a string, got number"},
		{"two objects", `{"ip":"1.2.3.4"} {"ip":"1.2.3.5"}`, 400, "single JSON object"},
		{"trailing garbage", `{"ip":"1.2.3.4"} x`, 400, "invalid JSON"},
		{"missing ip", `{"count_1s":3}`, 400, "ip is required"},
		{"null", `null`, 400, "ip is required"},
		{"invalid ip", `{"ip":"1.2.3"}`, 400, `ip "1.2.3" is not an IP address`},
		{"ip with port", `{"ip":"1.2.3.4:80"}`, 400, `ip "1.2.3.4:80" is not an IP address`},
		{"ip with zone", `{"ip":"fe80::1%eth0"}`, 400, "must not carry a zone"},
		{"negative count", `{"ip":"1.2.3.4","count_10s":-1}`, 400, "count_10s must not be negative, got -1"},
		{"too large", `{"ip":"1.2.3.4","path":"` + strings.Repeat("a", server.MaxBodyBytes) + `"}`, 413, "request body is larger than 65536 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := do(e, http.MethodPost, "/v1/score", strings.NewReader(tt.body))
			assert.Equal(t, tt.status, rec.Code)
			var body map[string]string
			require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &body), rec.Body.String())
			assert.Contains(t, body["error"], tt.want)
		})
	}
}

// TestBodyLimitStreamed checks the limit also holds without a
// Content-Length (a chunked body).
func TestBodyLimitStreamed(t *testing.T) {
	e, _ := newServer(t, slog.LevelInfo)
	body := io.MultiReader(strings.NewReader(`{"ip":"1.2.3.4","path":"`), strings.NewReader(strings.Repeat("a", 2*server.MaxBodyBytes)), strings.NewReader(`"}`))
	req := httptest.NewRequest(http.MethodPost, "/v1/score", body)
	req.ContentLength = -1
	rec := httptest.NewRecorder()
	e.ServeHTTP(rec, req)
	assert.Equal(t, http.StatusRequestEntityTooLarge, rec.Code)
	assert.JSONEq(t, `{"error":"request body is larger than 65536 bytes"}`, rec.Body.String())
}

func TestRoutes(t *testing.T) {
	e, _ := newServer(t, slog.LevelInfo)

	rec := do(e, http.MethodGet, "/healthz", nil)
	assert.Equal(t, http.StatusOK, rec.Code)
	assert.JSONEq(t, `{"status":"ok"}`, rec.Body.String())

	rec = do(e, http.MethodGet, "/v1/profile", nil)
	assert.Equal(t, http.StatusOK, rec.Code)
	var prof map[string]any
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &prof))
	assert.Equal(t, "default", prof["name"])
	assert.Equal(t, "amplified", prof["combine"])
	assert.Equal(t, 3.0, prof["amplify"])
	assert.Equal(t, map[string]any{"low": 40.0, "high": 120.0, "weight": 1.0}, prof["features"].(map[string]any)["burst"])
	assert.Equal(t, map[string]any{"low": 10.0, "high": 30.0, "weight": 0.75}, prof["features"].(map[string]any)["bare_pages"])
	for _, name := range rules.FeatureNames {
		assert.Contains(t, prof["features"], name, "the gateway refuses a profile without every feature")
	}
	assert.Equal(t, map[string]any{"KP": 1.0}, prof["features"].(map[string]any)["geo"].(map[string]any)["country_risk"])

	rec = do(e, http.MethodGet, "/nope", nil)
	assert.Equal(t, http.StatusNotFound, rec.Code)
	assert.JSONEq(t, `{"error":"not found"}`, rec.Body.String())

	rec = do(e, http.MethodGet, "/v1/score", nil)
	assert.Equal(t, http.StatusMethodNotAllowed, rec.Code)
	assert.JSONEq(t, `{"error":"method not allowed"}`, rec.Body.String())

	req := httptest.NewRequest(http.MethodPost, "/v1/score", strings.NewReader(`{}`))
	req.Header.Set(echo.HeaderXRequestID, "req-123")
	rec = httptest.NewRecorder()
	e.ServeHTTP(rec, req)
	assert.JSONEq(t, `{"error":"ip is required","request_id":"req-123"}`, rec.Body.String())
}

func TestLogging(t *testing.T) {
	e, logs := newServer(t, slog.LevelInfo)

	// The hot paths log nothing at info level, not even a 400.
	do(e, http.MethodPost, "/v1/score", strings.NewReader(`{"ip":"81.2.69.142","count_1s":3}`))
	do(e, http.MethodPost, "/v1/score", strings.NewReader(`{`))
	do(e, http.MethodGet, "/healthz", nil)
	assert.Empty(t, logs.String())

	do(e, http.MethodGet, "/v1/profile", nil)
	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	require.Len(t, lines, 1)
	var line map[string]any
	require.NoError(t, json.Unmarshal([]byte(lines[0]), &line))
	assert.Equal(t, "request", line["msg"])
	assert.Equal(t, "/v1/profile", line["path"])
	assert.EqualValues(t, 200, line["status"])

	// At debug level every request gets exactly one line.
	e, logs = newServer(t, slog.LevelDebug)
	do(e, http.MethodPost, "/v1/score", strings.NewReader(`{"ip":"81.2.69.142"}`))
	do(e, http.MethodPost, "/v1/score", strings.NewReader(`{`))
	assert.Len(t, strings.Split(strings.TrimSpace(logs.String()), "\n"), 2)
}

func TestPanicIsInternalError(t *testing.T) {
	e, logs := newServer(t, slog.LevelInfo)
	rec := do(e, http.MethodPost, "/v1/score", strings.NewReader(`{"ip":"6.6.6.7"}`))
	assert.Equal(t, http.StatusInternalServerError, rec.Code)
	assert.JSONEq(t, `{"error":"internal error"}`, rec.Body.String())

	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	require.Len(t, lines, 1, "one line per request")
	var line map[string]any
	require.NoError(t, json.Unmarshal([]byte(lines[0]), &line))
	assert.Equal(t, "ERROR", line["level"])
	assert.EqualValues(t, 500, line["status"])
	assert.Contains(t, line["err"], "panic: locator bug")
}

func TestNew(t *testing.T) {
	_, err := server.New(server.Config{Logger: slog.New(slog.DiscardHandler)})
	assert.Error(t, err)
	_, err = server.New(server.Config{Profile: profile.Default()})
	assert.Error(t, err)
	e, err := server.New(server.Config{Profile: profile.Default(), Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	rec := do(e, http.MethodPost, "/v1/score", strings.NewReader(`{"ip":"10.0.0.1","count_1s":120}`))
	require.Equal(t, http.StatusOK, rec.Code)
	var got wire.ScoreResponse
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &got))
	assert.Equal(t, 1.0, got.Score)
	assert.Nil(t, got.Geo, "no locator: no geo")
}

// BenchmarkScoreHTTP is one POST /v1/score through the whole handler:
// JSON in, geo lookup (a fake), rules, JSON out.
func BenchmarkScoreHTTP(b *testing.B) {
	p := profile.Default()
	h, err := server.New(server.Config{Profile: p, Locator: locatorFunc(fakeGeo), Logger: slog.New(slog.DiscardHandler)})
	require.NoError(b, err)
	body := []byte(`{"ip":"81.2.69.142","count_1s":12,"count_10s":40,"count_60s":150,"sensitive":true,"sensitive_hits":3,"auth_failures":1,"errors_4xx":2,"distinct_paths":14,"sequential_ids":1,"intervals":11,"interval_cv":0.8,"user_agent":"` + chrome + `"}`)
	b.ReportAllocs()
	for b.Loop() {
		req := httptest.NewRequest(http.MethodPost, "/v1/score", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			b.Fatal(rec.Code, rec.Body.String())
		}
	}
}

// TestHostingAndCrawlerOnTheDemoDatabases scores through the generated
// demo databases: hosting networks carry the hosting risk, people's do
// not, and Googlebot is verified only from Google's network.
func TestHostingAndCrawlerOnTheDemoDatabases(t *testing.T) {
	need := func(name string) string {
		v := os.Getenv(name)
		if v == "" {
			if os.Getenv("CI") != "" {
				t.Fatalf("%s is not set: run the tests with `make test`", name)
			}
			t.Skipf("%s is not set: run the tests with `make test`", name)
		}
		return v
	}
	city, err := geo.OpenCity(need("BULWARK_TEST_GEOIP_DB"))
	require.NoError(t, err)
	asn, err := geo.OpenASN(need("BULWARK_TEST_GEOIP_ASN_DB"))
	require.NoError(t, err)
	l := geo.NewLocator(city, asn)
	t.Cleanup(func() { _ = l.Close() })
	h, err := server.New(server.Config{Profile: profile.Default(), Locator: l, Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)

	// extra adds fields to a request that otherwise does nothing abusive.
	score := func(ip, ua string, extra ...string) wire.ScoreResponse {
		fields := strings.Join(append([]string{`"count_1s":1,"count_10s":1,"count_60s":1`}, extra...), ",")
		rec := do(h, http.MethodPost, "/v1/score", strings.NewReader(`{"ip":"`+ip+`",`+fields+`,"user_agent":"`+ua+`"}`))
		require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
		var got wire.ScoreResponse
		require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &got))
		return got
	}
	hostingValue := func(r wire.ScoreResponse) float64 {
		for _, rs := range r.Reasons {
			if rs.Feature == "hosting" {
				return rs.Value
			}
		}
		t.Fatal("no hosting reason")
		return 0
	}
	for _, ip := range []string{"45.0.0.7", "45.1.2.3", "45.2.0.9", "45.3.1.1", "45.4.0.1"} {
		r := score(ip, chrome)
		assert.Equal(t, 1.0, hostingValue(r), ip)
		assert.Zero(t, r.Score, "%s: a hosting network alone counts for nothing", ip)
	}
	for _, ip := range []string{"24.0.0.7", "90.0.1.2", "49.0.0.3", "203.0.113.5", "81.2.69.142"} {
		r := score(ip, chrome)
		assert.Zero(t, hostingValue(r), ip)
		assert.Zero(t, r.Score, ip)
	}
	const googlebot = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
	assert.Equal(t, "googlebot", score("66.249.66.1", googlebot).Allow)
	fake := score("45.2.0.9", googlebot)
	assert.Empty(t, fake.Allow)
	assert.Equal(t, "allow", fake.Level, "a crawler's claim from a hosting network, doing nothing abusive")
	assert.Zero(t, fake.Score)
	// With some behaviour the claim and the network count: two probes
	// (a risk of 0.29) throttle it there, 1 − 0.714^(1 + 3 · 0.574),
	// and not from a people's network, 1 − 0.714^(1 + 3 · 0.225).
	const probes = `"probe":true,"probes":2`
	probing := score("45.2.0.9", googlebot, probes)
	assert.Equal(t, "throttle", probing.Level, "%+v", probing.Reasons)
	assert.Equal(t, "allow", score("24.0.0.7", googlebot, probes).Level)
}
