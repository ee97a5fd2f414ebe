package main

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestUpstreamAnswers50Bytes(t *testing.T) {
	rec := httptest.NewRecorder()
	upstreamHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/api/products", nil))
	assert.Equal(t, http.StatusOK, rec.Code)
	assert.Len(t, rec.Body.Bytes(), 50)
	assert.Equal(t, "application/json", rec.Header().Get("Content-Type"))
}

func TestSequences(t *testing.T) {
	legit := sequence(loadBrowsers, 50000)
	require.Len(t, legit, 50000)
	assert.Equal(t, 50000, distinct(legit, 50000), "every legitimate client is distinct")
	assert.Equal(t, 1000, distinct(legit, 1000))
	assert.Contains(t, legit[0].UserAgent, "Chrome/")
	for _, c := range legit {
		require.Equal(t, classBrowser, c.Class, c.IP)
	}

	mix := sequence(loadMix, 50000)
	attackers := map[string]bool{}
	for _, c := range mix {
		if strings.HasPrefix(c.IP, "45.0.0.") {
			attackers[c.IP] = true
			assert.Equal(t, classAttacker, c.Class)
		}
	}
	assert.Len(t, attackers, mixAttackers)
	assert.Equal(t, 45000+mixAttackers, distinct(mix, 50000), "90% distinct legitimate clients")

	warm := sequence(loadWarmup, 0)
	for _, c := range warm {
		assert.NotContains(t, legit[:1000], c, "warm-up clients are not measured clients")
		require.Equal(t, classWarmup, c.Class, c.IP)
	}
	assert.Len(t, sequence(loadHammer, 50000), 1)
	assert.Equal(t, classAttacker, sequence(loadHammer, 1)[0].Class)

	// The most browsers the flag allows stay out of the warm-up's network.
	assert.Equal(t, classBrowser, classOf(legitIP(3*61440-1)))
}

func TestClassCounts(t *testing.T) {
	assert.Equal(t, []int{20000, 12500, 7500, 7500, 2500}, classCounts(50000))
	for _, n := range []int{1, 2, 3, 7, 19, 99, 101, 12345} {
		sum := 0
		for _, c := range classCounts(n) {
			sum += c
		}
		assert.Equal(t, n, sum, "n=%d", n)
	}
	assert.Equal(t, []int{1, 0, 0, 0, 0}, classCounts(1))
	assert.Equal(t, []int{3, 2, 1, 1, 0}, classCounts(7)) // 2.8, 1.75, 1.05, 1.05, 0.35
	m := maxAPIClients()
	assert.Greater(t, m, 100000)
	_, err := apiMix(m, 1, 1)
	assert.NoError(t, err)
	_, err = apiMix(m+1, 1, 1)
	assert.Error(t, err)
}

func TestAPIMix(t *testing.T) {
	const n, repeat = 50000, 4
	seq, err := apiMix(n, repeat, 1)
	require.NoError(t, err)
	require.Len(t, seq, n*repeat)

	perIP := map[string]int{}
	requests := map[string]int{}
	paths := map[string]int{}
	uas := map[string]map[string]int{}
	for _, c := range seq {
		perIP[c.IP]++
		requests[c.Class]++
		require.Equal(t, c.Class, classOf(c.IP), "the class is told by the address: %s", c.IP)
		if uas[c.Class] == nil {
			uas[c.Class] = map[string]int{}
		}
		uas[c.Class][c.UserAgent]++
		p := c.Path
		if rest, ok := strings.CutPrefix(p, "/api/products/"); ok {
			id, err := strconv.Atoi(rest)
			require.NoError(t, err, p)
			require.True(t, id >= 1 && id <= apiProducts, p)
			p = "/api/products/{id}"
		}
		paths[p]++
	}
	assert.Len(t, perIP, n, "distinct clients")
	for ip, k := range perIP {
		require.Equal(t, repeat, k, "each client appears repeat times: %s", ip)
	}
	// The shares are exact over a cycle.
	assert.Equal(t, map[string]int{classBrowser: 80000, classAndroid: 50000, classIOS: 30000, classSDK: 30000, classCurl: 10000}, requests)
	// Five paths, equally often (±3% of a fifth).
	require.Len(t, paths, len(apiPaths))
	for _, p := range apiPaths {
		assert.InDelta(t, float64(n*repeat)/5, float64(paths[p]), float64(n*repeat)/5*0.03, p)
	}
	// User agents.
	assert.Equal(t, map[string]int{"okhttp/4.12.0": 50000}, uas[classAndroid])
	assert.Equal(t, map[string]int{iosUA: 30000}, uas[classIOS])
	assert.Equal(t, map[string]int{"curl/8.5.0": 10000}, uas[classCurl])
	assert.Equal(t, map[string]int{"python-requests/2.32.3": 10000, "Go-http-client/1.1": 10000, "Java-http-client/17.0.10": 10000}, uas[classSDK])
	require.Len(t, uas[classBrowser], 3)
	for ua := range uas[classBrowser] {
		assert.Contains(t, ua, "Chrome/")
	}
	// Any stretch of the shuffled cycle is close to the mix too: the first
	// 10,000 requests (about a second of a run) within 2 points of each share.
	head := seqClassCounts(seq, 0, 10000)
	for _, c := range apiClasses {
		assert.InDelta(t, float64(c.Percent)/100, float64(head[c.Name])/10000, 0.02, c.Name)
	}
	// The residential classes' addresses are residential, the SDKs' hosting
	// (in the demo GeoIP databases: deploy/cmd/geoipgen).
	for _, c := range seq[:2000] {
		a := netip.MustParseAddr(c.IP)
		inCloud := false
		for _, cl := range apiClouds {
			inCloud = inCloud || cl.Prefix.Contains(a)
		}
		assert.Equal(t, c.Class == classSDK, inCloud, c.IP)
		b := a.As4()
		home := b[0] == 73 && b[1] == 0 || b[0] == 86 && b[1] == 128
		assert.Equal(t, c.Class != classSDK, home, c.IP)
	}
}

func TestAPIMixIsReproducible(t *testing.T) {
	a, err := apiMix(1000, 3, 7)
	require.NoError(t, err)
	b, err := apiMix(1000, 3, 7)
	require.NoError(t, err)
	c, err := apiMix(1000, 3, 8)
	require.NoError(t, err)
	assert.Equal(t, a, b)
	assert.Equal(t, fingerprint(a), fingerprint(b))
	assert.NotEqual(t, fingerprint(a), fingerprint(c))
	// The generator is the harness's own (splitmix64, Fisher-Yates), so the
	// default mix is the same with every Go release: a change to it must
	// show here (and in the report's fingerprint).
	seq, err := apiMix(defaultAPIClients, defaultAPIRepeat, defaultAPISeed)
	require.NoError(t, err)
	assert.Equal(t, apiMixFingerprint, fingerprint(seq))
}

// apiMixFingerprint is the default API mix's (50,000 clients, 4 each, seed 1).
const apiMixFingerprint = "aee5483edbb137c3"

func TestClassOf(t *testing.T) {
	for ip, want := range map[string]string{
		"73.0.0.1":          classBrowser,
		"86.128.95.255":     classBrowser,
		"73.0.96.0":         classAndroid,
		"86.128.175.9":      classAndroid,
		"73.0.176.4":        classIOS,
		"86.128.231.1":      classIOS,
		"73.0.232.0":        classCurl,
		"86.128.255.255":    classCurl,
		"3.80.0.1":          classSDK,
		"34.64.1.2":         classSDK,
		"13.64.0.9":         classSDK,
		"159.89.3.4":        classSDK,
		"88.198.0.0":        classSDK,
		"::ffff:73.0.100.1": classAndroid,
		"24.0.3.4":          classBrowser, // the browsers load
		"90.0.0.1":          classBrowser,
		"49.0.12.1":         classBrowser,
		"49.0.240.1":        classWarmup,
		"45.0.0.10":         classAttacker,
		"45.1.0.7":          classAttacker,
		"45.2.0.1":          classOther,
		"73.1.0.0":          classOther,
		"8.8.8.8":           classOther,
		"2001:db8::1":       classOther,
		"":                  classOther,
		"not an address":    classOther,
	} {
		assert.Equal(t, want, classOf(ip), ip)
	}
	// Every class's first and last address maps back to it.
	for _, c := range apiClasses {
		assert.Equal(t, c.Name, classOf(c.addr(0)))
		assert.Equal(t, c.Name, classOf(c.addr(c.capacity()-1)), c.addr(c.capacity()-1))
	}
}

func TestSentByClass(t *testing.T) {
	seq := []client{{Class: "a"}, {Class: "b"}, {Class: "b"}, {Class: "c"}}
	assert.Equal(t, map[string]int64{"a": 1, "b": 2}, seqClassCounts(seq, 0, 3))
	assert.Equal(t, map[string]int64{"a": 3, "b": 5, "c": 2}, seqClassCounts(seq, 0, 10), "wraps round")
	assert.Equal(t, map[string]int64{"c": 1, "a": 1}, seqClassCounts(seq, 3, 2))
	assert.Equal(t, map[string]int64{"a": 1, "b": 2}, sentByClass(seq, 3, 1))
	// Two threads: one from 0, one from 2 (wrkScript's offsets).
	assert.Equal(t, map[string]int64{"a": 1, "b": 2, "c": 1}, sentByClass(seq, 4, 2))
	assert.Empty(t, sentByClass(nil, 5, 1))
}

func TestWriteClients(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.tsv")
	require.NoError(t, writeClients(path, []client{
		{IP: "3.80.0.1", UserAgent: "Go-http-client/1.1", Class: classSDK, Path: "/api/cart"},
		browser("24.0.0.1"),
	}))
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, "3.80.0.1\tGo-http-client/1.1\t\t\t/api/cart\n24.0.0.1\t"+chromeUA+"\t"+chromeAccept+"\t"+chromeLanguage+"\t\n", string(b))
	h := client{IP: "3.80.0.1", UserAgent: "Go-http-client/1.1"}.header()
	assert.Equal(t, http.Header{"X-Forwarded-For": {"3.80.0.1"}, "User-Agent": {"Go-http-client/1.1"}}, h, "no empty Accept")
}

func TestIPScanner(t *testing.T) {
	body := `POST /v1/score HTTP/1.1\r\nHost: s\r\nContent-Length: 60\r\n\r\n{"ip":"73.0.96.5","count_1s":1,"prev_ip":"1.2.3.4"}` +
		`POST /v1/score HTTP/1.1\r\n\r\n{"ip":"3.80.0.1","count_1s":2}` +
		`GET /v1/profile HTTP/1.1\r\n\r\n` +
		`POST /v1/score/batch HTTP/1.1\r\n\r\n{"requests":[{"ip":"86.128.232.1"},{"ip":"::ffff:45.0.0.10"}]}`
	want := []string{"73.0.96.5", "3.80.0.1", "86.128.232.1", "::ffff:45.0.0.10"}
	// Cut into pieces of every size: the same addresses.
	for size := 1; size <= len(body); size++ {
		var got []string
		s := ipScanner{found: func(ip []byte) { got = append(got, string(ip)) }}
		for i := 0; i < len(body); i += size {
			s.feed([]byte(body[i:min(i+size, len(body))]))
		}
		require.Equal(t, want, got, "pieces of %d bytes", size)
	}
	// A marker with no address after it does not hold on to the stream.
	var got []string
	s := ipScanner{found: func(ip []byte) { got = append(got, string(ip)) }}
	s.feed([]byte(`{"ip":"` + strings.Repeat("x", 100)))
	s.feed([]byte(`" {"ip":"1.2.3.4"}`))
	assert.Equal(t, []string{"1.2.3.4"}, got)
	assert.LessOrEqual(t, len(s.carry), len(ipMarker))
}

func TestRecorderRelays(t *testing.T) {
	// A scorer that echoes the body it got.
	scorer := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		_, _ = w.Write(b)
	}))
	defer scorer.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	counts := &callCounts{n: map[string]int64{}}
	host := strings.TrimPrefix(scorer.URL, "http://")
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go relayConn(c, host, counts.add)
		}
	}()
	for _, ip := range []string{"73.0.96.5", "73.0.96.6", "3.80.0.1", "24.0.0.1"} {
		body := `{"ip":"` + ip + `","count_1s":1}`
		resp, err := http.Post("http://"+ln.Addr().String()+"/v1/score", "application/json", strings.NewReader(body))
		require.NoError(t, err)
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		assert.Equal(t, body, string(got))
	}
	resp, err := http.Get("http://" + ln.Addr().String() + "/v1/profile")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, map[string]int64{classAndroid: 2, classSDK: 1, classBrowser: 1}, counts.snapshot())
}

func TestTallyLog(t *testing.T) {
	log := `{"time":"t","level":"INFO","msg":"request","service":"gateway","gateway":"g","method":"GET","path":"/api/cart","status":200,"decision":"forwarded","ip":"73.0.0.1","duration_ms":0.5,"request_id":"a"}
{"time":"t","level":"INFO","msg":"request","service":"gateway","gateway":"g","method":"GET","path":"/api/cart","status":429,"decision":"throttled","ip":"3.80.0.1","duration_ms":0.5,"request_id":"b"}
{"time":"t","level":"INFO","msg":"request","service":"gateway","gateway":"g","method":"GET","path":"/api/cart","status":403,"decision":"banned","ip":"3.80.0.2","duration_ms":0.5,"request_id":"c"}
{"time":"t","level":"INFO","msg":"request","service":"gateway","gateway":"g","method":"GET","path":"/","status":403,"decision":"blocked","ip":"73.0.232.9","duration_ms":0.5,"request_id":"d"}
{"time":"t","level":"WARN","msg":"scorer unavailable","ip":"73.0.0.1","status":503}
{"time":"t","level":"WARN","msg":"log lines dropped: output too slow","dropped":12}
not json at all
`
	got, err := tallyLog(strings.NewReader(log))
	require.NoError(t, err)
	assert.Equal(t, map[string]int64{classBrowser: 1, classSDK: 2, classCurl: 1}, got.Requests)
	assert.Equal(t, map[string]int64{classSDK: 2, classCurl: 1}, got.Refused)
	assert.Equal(t, map[string]int64{"throttled/429": 1, "banned/403": 1}, got.Decisions[classSDK])
	assert.Equal(t, int64(12), got.Dropped)
}
func TestPercentiles(t *testing.T) {
	ds := make([]time.Duration, 100)
	for i := range ds {
		ds[i] = time.Duration(100-i) * time.Millisecond
	}
	p := percentiles(ds)
	assert.Equal(t, 50.0, p.P50)
	assert.Equal(t, 99.0, p.P99)
	assert.Equal(t, 100.0, p.Max)
	assert.Equal(t, latencyMS{}, percentiles(nil))
}

func TestLabel(t *testing.T) {
	k := `bulwark_gateway_requests_total{code="403",decision="banned",route="/"}`
	assert.Equal(t, "banned", label(k, "decision"))
	assert.Equal(t, "403", label(k, "code"))
	assert.Equal(t, 3.0, sumMetric(map[string]float64{k: 1, `bulwark_gateway_requests_total{code="200"}`: 2, "other": 5}, "bulwark_gateway_requests_total"))
}

func TestHistogramTimes(t *testing.T) {
	const n = "bulwark_gateway_dependency_duration_seconds"
	b := func(dep, le string) string { return n + `_bucket{dependency="` + dep + `",le="` + le + `"}` }
	before := map[string]float64{b("redis", "0.001"): 10, b("redis", "0.01"): 10, b("redis", "0.1"): 10, b("redis", "+Inf"): 10}
	after := map[string]float64{
		// 1000 calls in the run: 989 under 1 ms, 10 more under 10 ms, 1 past 100 ms.
		b("redis", "0.001"): 999, b("redis", "0.01"): 1009, b("redis", "0.1"): 1009, b("redis", "+Inf"): 1010,
		b("scorer", "0.001"): 0, b("scorer", "0.01"): 4, b("scorer", "0.1"): 4, b("scorer", "+Inf"): 4,
		n + `_count{dependency="redis"}`: 1010,
	}
	got := histogramTimes(before, after, n, "dependency")
	assert.Equal(t, depTimes{Calls: 1000, P50MS: 1, P99MS: 10, P999MS: 10, MaxMS: -1}, got["redis"])
	assert.Equal(t, depTimes{Calls: 4, P50MS: 10, P99MS: 10, P999MS: 10, MaxMS: 10}, got["scorer"])
	assert.Equal(t, ">1000", bucketMS(-1))
	assert.Equal(t, "0.25", bucketMS(0.25))
}

func TestReportByClassAndVerdict(t *testing.T) {
	seq, err := apiMix(1000, 2, 1)
	require.NoError(t, err)
	run := func(mode, load, target string, rate int, rps float64, refused int64) *runResult {
		r := &runResult{Mode: mode, Load: load, Target: target, Rate: rate, Requests: int64(rps * 10), Seconds: 10, RPS: rps, OKPerSec: rps - float64(refused)/10, Refused: refused,
			LatencyMS: latencyMS{P50: 1, P99: 5}, CPUMicros: map[string]float64{"recorder": 3.5}}
		if rate > 0 {
			r.OKPerSec = float64(rate)
		}
		return r
	}
	apiBW := run("closed", loadAPI, targetBulwark, 0, 5000, 30)
	apiBW.Classes = map[string]*classResult{
		classBrowser: {Requests: 20000, Logged: 20000, ScorerCalls: 0},
		classAndroid: {Requests: 12500, Logged: 12500, ScorerCalls: 12500, CallsPerRequest: 1, Refused: 10, RefusedBy: map[string]int64{"throttled/429": 10}},
		classIOS:     {Requests: 7500, Logged: 7500, ScorerCalls: 3750, CallsPerRequest: 0.5},
		classSDK:     {Requests: 7500, Logged: 7500, ScorerCalls: 7500, CallsPerRequest: 1, Refused: 15, RefusedBy: map[string]int64{"banned/403": 15}},
		classCurl:    {Requests: 2500, Logged: 2500, ScorerCalls: 2500, CallsPerRequest: 1, Refused: 3, RefusedBy: map[string]int64{"throttled/429": 3}},
	}
	apiBW.Unattributed = 2
	brBW := run("closed", loadBrowsers, targetBulwark, 0, 6000, 0)
	brBW.Classes = map[string]*classResult{classBrowser: {Requests: 60000, Logged: 60000}}
	openBare, openBW := run("open", loadAPI, targetBare, 2000, 2000, 0), run("open", loadAPI, targetBulwark, 2000, 2000, 0)
	openBW.LatencyMS = latencyMS{P50: 1.5, P99: 7}
	openBW.Classes = map[string]*classResult{classAndroid: {Requests: 5000, Logged: 5000}}
	res := &results{
		Date: "2026-12-07T00:00:00Z",
		Setup: setup{Path: "/api/products", Clients: 50000, API: describeAPIMix(1000, 2, 1, seq), MixAttackers: 20,
			RefusalsByClass: "log", ScorerCallsByClass: "recorder"},
		Runs: []*runResult{
			run("closed", loadAPI, targetBare, 0, 10000, 0), run("closed", loadAPI, targetNginx, 0, 20000, 0), apiBW,
			run("closed", loadBrowsers, targetBare, 0, 10000, 0), run("closed", loadBrowsers, targetNginx, 0, 25000, 0), brBW,
			openBare, openBW,
		},
	}
	var out strings.Builder
	report(&out, res)
	text := out.String()
	if os.Getenv("DUMP") != "" {
		t.Log("\n" + text)
	}
	lines := strings.Split(text, "\n")
	// row is the first line starting with prefix after the line starting
	// with section, its fields single-spaced.
	row := func(section, prefix string) string {
		t.Helper()
		for i := indexAfter(lines, section); i >= 0 && i < len(lines); i++ {
			if strings.HasPrefix(lines[i], prefix) {
				return strings.Join(strings.Fields(lines[i]), " ")
			}
		}
		t.Fatalf("no line starting %q after %q in\n%s", prefix, section, text)
		return ""
	}
	// The mix is stated, class by class.
	assert.Contains(t, text, "API mix: 1000 clients, each 2 times in a shuffled cycle of 2000 requests (seed 1, fingerprint "+fingerprint(seq)+")")
	assert.Equal(t, "android 25% 250 okhttp/4.12.0 residential: 73.0.96-175.x, 86.128.96-175.x", row("API mix", "android "))
	assert.Equal(t, "browser 40% 400 Chrome 131 Windows, Chrome 131 macOS, Chrome 131 Android residential: 73.0.0-95.x, 86.128.0-95.x", row("API mix", "browser "))
	assert.Contains(t, row("API mix", "sdk "), "python-requests/2.32.3, Go-http-client/1.1, Java-http-client/17.0.10 hosting: 3.80.0.0/12 AWS AS14618")
	// The headline per legitimate load: ratios, interval, added latency,
	// refusals and scorer calls.
	const legit, refused, calls = "Legitimate loads", "Refused by Bulwark", "Scorer calls per request"
	assert.Equal(t, "load clients bulwark req/s s between a client's requests vs bare vs nginx added p50 / p99 ms (open) refused (all runs) scorer calls/req (closed)", row(legit, "load "))
	assert.Equal(t, "api 1000 5000 0.2 0.50x 0.25x +0.50 / +2.00 @2000 30 0.53", row(legit, "api "))
	assert.Equal(t, "browsers 50000 6000 8.3 0.60x 0.24x n/a: the bare proxy kept up at no rate 0 0.00", row(legit, "browsers "))
	// By class.
	assert.Equal(t, "run requests refused browser android ios sdk curl attacker not in log", row(refused, "run "))
	assert.Equal(t, "closed api 50000 30 0 10 0 15 3 - 2", row(refused, "closed api "))
	assert.Equal(t, "closed browsers 60000 0 0 - - - - - 0", row(refused, "closed browsers "))
	assert.Equal(t, "open api @2000 20000 0 - 0 - - - - 0", row(refused, "open api "))
	assert.Equal(t, "closed api: android throttled/429 10; sdk banned/403 15; curl throttled/429 3", row(refused, "  closed api:"))
	assert.Equal(t, "run all browser android ios sdk curl attacker recorder cpu µs/req", row(calls, "run "))
	assert.Equal(t, "closed api 0.53 0.00 1.00 0.50 1.00 1.00 - 3.5", row(calls, "closed api "))
	// The verdict.
	assert.Equal(t, "FAIL: legitimate requests refused by bulwark, all runs: api 30 (the gateway's log: android 10, sdk 15, curl 3), browsers 0; must be 0", row(calls, "FAIL: "))
	ok, _ := legitVerdict(res)
	assert.False(t, ok)

	apiBW.Refused, apiBW.Unattributed = 0, 0
	for _, c := range apiBW.Classes {
		c.Refused, c.RefusedBy = 0, nil
	}
	ok, verdict := legitVerdict(res)
	assert.True(t, ok)
	assert.Equal(t, "legitimate requests refused by bulwark, all runs: api 0, browsers 0", verdict)
}

// indexAfter is the index of the first line that starts with prefix.
func indexAfter(lines []string, prefix string) int {
	for i, l := range lines {
		if strings.HasPrefix(l, prefix) {
			return i
		}
	}
	return -1
}
