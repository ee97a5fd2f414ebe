package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestClassify(t *testing.T) {
	assert.Equal(t, Throttled, classify(429, nil))
	assert.Equal(t, Blocked, classify(403, []byte(`{"error":"Suspicious behavior detected. Connection dropped."}`)))
	assert.Equal(t, Blocked, classify(403, []byte(`{"error":"Client banned"}`)))
	assert.Equal(t, Blocked, classify(403, []byte(`{"error":"IP blocked due to repeated invalid requests."}`)), "banned for failed logins")
	assert.Equal(t, Blocked, classify(403, []byte(`{"error":"Too many failed login attempts"}`)), "a login locked")
	assert.Equal(t, Allowed, classify(403, []byte(`{"error":"forbidden by the app"}`)), "the application's own 403")
	assert.Equal(t, Allowed, classify(403, []byte(`{"error":"not your order"}`)), "the shop's")
	assert.Equal(t, Allowed, classify(401, []byte(`{"success":false}`)))
	assert.Equal(t, Allowed, classify(404, nil))
	assert.Equal(t, Failed, classify(502, nil))
}

func TestParseMix(t *testing.T) {
	m, err := parseMix("")
	require.NoError(t, err)
	assert.Equal(t, 40, m["human"])
	assert.Len(t, m, len(Scenarios))

	m, err = parseMix("human=5, sneaker")
	require.NoError(t, err)
	assert.Equal(t, map[string]int{"human": 5, "sneaker": 1}, m)

	_, err = parseMix("zombie=3")
	assert.ErrorContains(t, err, `unknown scenario "zombie"`)
	_, err = parseMix("human=-1")
	assert.ErrorContains(t, err, "human")
}

// TestAddressesAreDistinctAndReproducible: no two clients of a full run
// share an address (nor does any of the addresses a rotating client owns),
// every address is in its scenario's pool, and the same seed gives the
// same addresses.
func TestAddressesAreDistinctAndReproducible(t *testing.T) {
	mix := map[string]int{}
	for _, sc := range Scenarios {
		mix[sc.Name] = 200
	}
	for _, seed := range []uint64{1, 2, 99} {
		all := allocate(mix, seed)
		assert.Equal(t, all, allocate(mix, seed), "reproducible")
		addrs := addresses(mix, seed)
		seen := map[netip.Addr]string{}
		for _, sc := range Scenarios {
			require.Len(t, all[sc.Name], 200)
			require.Len(t, addrs[sc.Name], 200)
			for i, own := range all[sc.Name] {
				require.Len(t, own, max(sc.Rotate, 1), sc.Name)
				assert.Equal(t, own[0], addrs[sc.Name][i], "a client's address is the first it owns")
				for j, a := range own {
					inPool := false
					for _, p := range sc.Pool {
						inPool = inPool || p.Contains(a)
					}
					require.True(t, inPool, "%s client %d: %s", sc.Name, i, a)
					who := fmt.Sprintf("%s#%d/%d", sc.Name, i, j)
					if prev, dup := seen[a]; dup {
						require.Failf(t, "shared address", "%s and %s share %s", prev, who, a)
					}
					seen[a] = who
				}
			}
		}
	}
}

// TestAddressKeepsItsNumbering: within a pool's first rounds (all its
// ranges in turn) address gives what it always gave, so that the same
// seed still gives the existing scenarios the same addresses; past a full
// /24 the other ranges go on, and no address repeats before the pool's
// whole capacity is used.
func TestAddressKeepsItsNumbering(t *testing.T) {
	old := func(pool []netip.Prefix, n int, seed uint64) netip.Addr {
		p := pool[n%len(pool)]
		k := uint64(n/len(pool)) + seed*7919
		a := p.Addr().As4()
		size := uint64(1) << (32 - p.Bits())
		v := uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3])
		v += uint32(1 + k%(size-2))
		return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
	}
	for _, pool := range [][]netip.Prefix{residential, hosting, scanners, cloud, bing} {
		for n := range len(pool) * 254 {
			require.Equal(t, old(pool, n, 1), address(pool, n, 1), "n=%d", n)
		}
	}
	small := prefixes("10.0.0.0/30", "10.1.0.0/29", "10.2.0.0/24") // 2 + 6 + 254 hosts
	seen := map[netip.Addr]int{}
	for n := range 262 {
		a := address(small, n, 3)
		if prev, dup := seen[a]; dup {
			require.Failf(t, "repeated address", "n=%d and n=%d give %s", prev, n, a)
		}
		seen[a] = n
		require.True(t, small[0].Contains(a) || small[1].Contains(a) || small[2].Contains(a), a)
	}
	assert.Equal(t, address(small, 0, 3), address(small, 262, 3), "wraps round after the capacity")
}

func TestJudge(t *testing.T) {
	bot := ScenarioReport{Name: "scraper", Label: Bot, Clients: 1, Sent: 200, AfterFirstSecond: 196, CaughtAfterFirstSecond: 195}
	judge(&bot, 1)
	assert.True(t, bot.Pass)
	bot.CaughtAfterFirstSecond = 193
	judge(&bot, 1)
	assert.False(t, bot.Pass, "98.5%% is not enough")

	sneaker := ScenarioReport{Name: "sneaker", Label: Bot, Clients: 1, Sent: 500, AfterFirstSecond: 450, CaughtAfterFirstSecond: 450, ClientsBlocked: 1, TimeToFirstBlockMS: 1200}
	judge(&sneaker, 1)
	assert.False(t, sneaker.Pass, "blocked after more than a second")
	sneaker.TimeToFirstBlockMS = 600
	judge(&sneaker, 1)
	assert.True(t, sneaker.Pass)

	human := ScenarioReport{Name: "human", Label: Human, Clients: 40, Sent: 2000, Throttled: 2}
	judge(&human, 1)
	assert.True(t, human.Pass, "0.1%% is allowed")
	human.Blocked = 1
	judge(&human, 1)
	assert.False(t, human.Pass)
}

// fakeGateway refuses X-Forwarded-For addresses in hosting networks and
// throttles POST /api/checkout; everything else passes.
func fakeGateway(t *testing.T) (*httptest.Server, func() []string) {
	var mu sync.Mutex
	var seen []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Header.Get("X-Forwarded-For")+" "+r.Method+" "+r.URL.Path)
		mu.Unlock()
		ip := netip.MustParseAddr(r.Header.Get("X-Forwarded-For"))
		switch {
		case hosting[0].Contains(ip) || hosting[1].Contains(ip) || hosting[2].Contains(ip) || hosting[3].Contains(ip) || hosting[4].Contains(ip):
			w.WriteHeader(403)
			_, _ = w.Write([]byte(`{"error":"Client banned"}`))
		case r.URL.Path == "/api/checkout":
			w.WriteHeader(429)
		default:
			_, _ = w.Write([]byte("ok"))
		}
	}))
	t.Cleanup(srv.Close)
	return srv, func() []string { mu.Lock(); defer mu.Unlock(); return append([]string(nil), seen...) }
}

func TestRunReportsPerScenario(t *testing.T) {
	srv, seen := fakeGateway(t)
	var out bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err := run(ctx, []string{"-target", srv.URL, "-duration", "1500ms", "-mix", "human=3,sneaker,botnet=2", "-rate", "4", "-report", "-json", "-"}, func(string) string { return "" }, &out)
	require.NoError(t, err)
	text := out.String()
	assert.Contains(t, text, "scenario")
	i := strings.Index(text, "{")
	require.GreaterOrEqual(t, i, 0, text)
	var rep Report
	require.NoError(t, json.Unmarshal([]byte(text[i:]), &rep))
	require.Len(t, rep.Scenarios, 3)
	by := map[string]ScenarioReport{}
	for _, s := range rep.Scenarios {
		by[s.Name] = s
	}
	assert.Greater(t, by["sneaker"].Throttled, 100, "50 rps × 4 for 1.5 s")
	assert.Zero(t, by["sneaker"].Allowed)
	assert.Equal(t, by["botnet"].Sent, by["botnet"].Blocked)
	assert.Equal(t, by["human"].Sent, by["human"].Allowed)
	assert.Greater(t, by["human"].Sent, 3, "pages come with their assets")

	// People fetch pages with their assets from their own addresses.
	var humanLines []string
	for _, l := range seen() {
		if strings.Contains(l, "/assets/") {
			humanLines = append(humanLines, l)
		}
	}
	assert.NotEmpty(t, humanLines)
}

func TestRunCheckFailsWhenAGoalIsMissed(t *testing.T) {
	srv, _ := fakeGateway(t)
	var out bytes.Buffer
	// The fake gateway lets the scraper through.
	err := run(context.Background(), []string{"-target", srv.URL, "-duration", "1500ms", "-mix", "scraper", "-rate", "4", "-check"}, func(string) string { return "" }, &out)
	assert.ErrorContains(t, err, "detection goal was missed")
}

func TestRunRejectsBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"-duration", "0s"}, {"-rate", "0"}, {"-mix", "nope"}, {"extra"},
	} {
		err := run(context.Background(), args, func(string) string { return "" }, &bytes.Buffer{})
		assert.Error(t, err, "%v", args)
	}
}

// TestAssetCount: pages carry 5–150 assets, median about 70.
func TestAssetCount(t *testing.T) {
	c := &client{rng: newRand(1, 0, 0)}
	const n = 20001
	counts := make([]int, n)
	for i := range counts {
		counts[i] = c.assetCount()
		require.GreaterOrEqual(t, counts[i], assetsMin)
		require.LessOrEqual(t, counts[i], assetsMax)
	}
	slices.Sort(counts)
	assert.InDelta(t, 70, counts[n/2], 3, "median")
	assert.Equal(t, assetsMax, counts[n-1], "the cap is reached")
	assert.Less(t, counts[n/20], 40, "a tail of small pages")

	as := c.pageAssets("home", 70)
	require.Len(t, as, 70)
	assert.Equal(t, "/assets/app.css", as[0].path)
	for _, a := range as {
		assert.True(t, strings.HasPrefix(a.path, "/assets/"), a.path)
		assert.Contains(t, fetchHeaders, a.kind)
	}
}

func TestJudgePerClientAndProbes(t *testing.T) {
	b := ScenarioReport{Name: "browser", Label: Human, Measure: PerClient, Clients: 2000, Sent: 500000, Throttled: 40, ClientsRefused: 2}
	judge(&b, 1)
	assert.InDelta(t, 0.001, b.Share, 1e-12)
	assert.True(t, b.Pass, "2 of 2000 clients refused is 0.1%%: met, however many of their requests were")
	b.ClientsRefused = 3
	judge(&b, 1)
	assert.False(t, b.Pass, "3 of 2000")
	b.ClientsRefused, b.Blocked, b.ClientsBlocked = 1, 1, 1
	judge(&b, 1)
	assert.False(t, b.Pass, "one person banned is too many")

	s := ScenarioReport{Name: "scanner", Label: Bot, Measure: AfterProbes, Clients: 10, Probes: 230, ProbesAfterGrace: 200, RefusedAfterGrace: 198}
	judge(&s, 1)
	assert.InDelta(t, 0.99, s.Share, 1e-12)
	assert.True(t, s.Pass)
	s.RefusedAfterGrace = 197
	judge(&s, 1)
	assert.False(t, s.Pass)
	s.ProbesAfterGrace, s.RefusedAfterGrace = 0, 0
	judge(&s, 1)
	assert.False(t, s.Pass, "no probe after the 3rd proves nothing")
	assert.Equal(t, ">= 99% of probes after the 3rd refused", s.Goal)
}

// TestRecorderCountsClientsAndProbes: the recorder's per-client and
// after-the-3rd-probe counts, from outcomes as clients report them.
func TestRecorderCountsClientsAndProbes(t *testing.T) {
	now := time.Now()
	rec := newRecorder(now)
	rec.declare(Scenario{Name: "browser", Label: Human, Measure: PerClient}, 4)
	rec.declare(Scenario{Name: "scanner", Label: Bot, Measure: AfterProbes}, 2)
	b := []*client{{scenario: "browser"}, {scenario: "browser"}, {scenario: "browser"}, {scenario: "browser"}}
	for _, c := range b {
		for range 50 {
			rec.add(c, now, now, Allowed)
		}
	}
	rec.add(b[1], now, now, Throttled)
	rec.add(b[1], now, now, Throttled)
	rec.add(b[2], now, now, Blocked)

	s1, s2 := &client{scenario: "scanner"}, &client{scenario: "scanner"}
	for i, o := range []Outcome{Allowed, Allowed, Allowed, Allowed, Throttled, Blocked} { // 4th let through
		rec.add(s1, now, now, o)
		rec.probe(s1, i+1, o)
	}
	for i, o := range []Outcome{Allowed, Throttled, Blocked, Blocked} {
		rec.add(s2, now, now, o)
		rec.probe(s2, i+1, o)
	}
	rep := rec.report(time.Second, options{seed: 1, rate: 1})
	require.Len(t, rep.Scenarios, 2)
	br, sc := rep.Scenarios[0], rep.Scenarios[1]
	assert.Equal(t, 2, br.ClientsRefused)
	assert.Equal(t, 1, br.ClientsBlocked)
	assert.InDelta(t, 0.5, br.Share, 1e-12)
	assert.False(t, br.Pass)
	assert.Equal(t, 10, sc.Probes)
	assert.Equal(t, 4, sc.ProbesAfterGrace, "s1's 4th–6th, s2's 4th")
	assert.Equal(t, 3, sc.RefusedAfterGrace)
	assert.InDelta(t, 0.75, sc.Share, 1e-12)
	assert.False(t, rep.Pass)
}

// TestDNSServesCrawlers: the -dns-listen server gives every crawler
// client's address its crawler's name (PTR) and the name the address (A),
// through Go's resolver as the scorer asks it; other addresses have no
// name.
func TestDNSServesCrawlers(t *testing.T) {
	mix := map[string]int{"crawler": 1, "bingbot": 3, "browser": 2}
	addrs := addresses(mix, 1)
	records, err := crawlerRecords(mix, addrs)
	require.NoError(t, err)
	assert.Len(t, records, 8, "PTR and A for 4 crawlers")
	srv, addr, err := startDNS("127.0.0.1:0", records)
	require.NoError(t, err)
	t.Cleanup(srv.close)
	r := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	bing := addrs["bingbot"][0]
	for _, p := range []string{"157.55.39.0/24", "207.46.13.0/24", "40.77.167.0/24"} {
		assert.False(t, netip.MustParsePrefix(p).Contains(bing), "bingbot must be outside the allow rule's %s", p)
	}
	for _, tc := range []struct {
		a      netip.Addr
		suffix string
	}{{addrs["crawler"][0], ".googlebot.com."}, {bing, ".search.msn.com."}, {addrs["bingbot"][2], ".search.msn.com."}} {
		names, err := r.LookupAddr(ctx, tc.a.String())
		require.NoError(t, err, tc.a)
		require.Len(t, names, 1)
		assert.True(t, strings.HasSuffix(names[0], tc.suffix), names[0])
		ips, err := r.LookupNetIP(ctx, "ip", names[0])
		require.NoError(t, err, names[0])
		assert.Equal(t, []netip.Addr{tc.a}, ips, "forward-confirmed")
	}
	assert.Equal(t, "msnbot-"+strings.ReplaceAll(bing.String(), ".", "-")+".search.msn.com", bingbotPTR(bing))

	assert.GreaterOrEqual(t, srv.queries.Load(), int64(6), "3 PTR and 3 A at least")

	_, err = r.LookupAddr(ctx, addrs["browser"][0].String())
	var de *net.DNSError
	require.ErrorAs(t, err, &de)
	assert.True(t, de.IsNotFound, "a person's address has no name: %v", err)
}

// TestScannersAndBrowsers runs both against a fake gateway that refuses
// every probe after a client's 2nd and lets everything else through.
func TestScannersAndBrowsers(t *testing.T) {
	var mu sync.Mutex
	probes := map[string]int{}
	uas := map[string]bool{}
	var referers, icons, pages int
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ip := r.Header.Get("X-Forwarded-For")
		mu.Lock()
		defer mu.Unlock()
		if slices.Contains(probePaths, r.URL.Path) {
			probes[ip]++
			_, has := r.Header["User-Agent"]
			uas[fmt.Sprintf("%v %q", has, r.UserAgent())] = true
			if probes[ip] > 2 {
				w.WriteHeader(429)
				return
			}
			w.WriteHeader(404)
			return
		}
		switch {
		case strings.HasPrefix(r.URL.Path, "/apple-touch-icon"):
			icons++
			w.WriteHeader(404)
		case strings.HasPrefix(r.URL.Path, "/assets/"):
			if r.Header.Get("Referer") != "" && strings.HasPrefix(r.Header.Get("Referer"), "http://"+r.Host+"/") {
				referers++
			}
		case r.Header.Get("Sec-Fetch-Dest") == "document":
			pages++
		}
	}))
	t.Cleanup(srv.Close)
	var out bytes.Buffer
	err := run(context.Background(), []string{"-target", srv.URL, "-duration", "3s", "-mix", "browser=12,scanner=6,scanner-ua=6",
		"-rate", "20", "-rtt", "1ms", "-json", "-"}, func(string) string { return "" }, &out)
	require.NoError(t, err)
	var rep Report
	require.NoError(t, json.Unmarshal(out.Bytes(), &rep))
	by := map[string]ScenarioReport{}
	for _, s := range rep.Scenarios {
		by[s.Name] = s
	}
	for _, name := range []string{"scanner", "scanner-ua"} {
		s := by[name]
		assert.Greater(t, s.ProbesAfterGrace, 0, name)
		assert.Equal(t, s.ProbesAfterGrace, s.RefusedAfterGrace, "%s: every probe after the 2nd refused", name)
		assert.True(t, s.Pass, name)
	}
	b := by["browser"]
	assert.True(t, b.Pass)
	assert.Greater(t, b.Sent, 12*5)
	mu.Lock()
	defer mu.Unlock()
	assert.Greater(t, pages, 0)
	assert.Greater(t, referers, 12*4, "assets carry their page as referer")
	assert.True(t, uas[`false ""`], "some scanners send no user agent: %v", uas)
	assert.True(t, uas[fmt.Sprintf("true %q", browsers[0])] || uas[fmt.Sprintf("true %q", browsers[1])] || uas[fmt.Sprintf("true %q", browsers[2])] ||
		uas[fmt.Sprintf("true %q", browsers[3])] || uas[fmt.Sprintf("true %q", browsers[4])], "scanner-ua sends a browser's: %v", uas)
	assert.Greater(t, icons, 0, "phones ask for the home-screen icons (seed 1 draws some phones)")
}

func TestClassifyFlaky(t *testing.T) {
	assert.Equal(t, Allowed, classify(503, []byte(`{"error":"temporarily unavailable (flaky by design)"}`)), "the shop's own 503 reached it")
	assert.Equal(t, Failed, classify(503, []byte(`{"error":"Service Unavailable"}`)), "the gateway's 503")
	assert.Equal(t, Failed, classify(502, []byte(flakyMarker)), "only a 503")
}

func TestJudgeAPIAndAfterMinute(t *testing.T) {
	api := ScenarioReport{Name: "integration", Label: Human, Measure: API, Clients: 10, Sent: 100000}
	judge(&api, 1)
	assert.True(t, api.Pass)
	assert.Equal(t, "0% refused", api.Goal)
	api.Throttled = 1
	judge(&api, 1)
	assert.False(t, api.Pass, "one request in 100000 refused is one too many")
	assert.InDelta(t, 1e-5, api.Share, 1e-12)
	api.Throttled, api.Blocked = 0, 1
	judge(&api, 1)
	assert.False(t, api.Pass)
	api.Blocked, api.Failed = 0, 1
	judge(&api, 1)
	assert.False(t, api.Pass, "a failure is not a pass")
	empty := ScenarioReport{Measure: API, Label: Human, Clients: 1}
	judge(&empty, 1)
	assert.False(t, empty.Pass, "nothing sent proves nothing")

	keyed := ScenarioReport{Name: "integration-key", Label: Human, Measure: API, Credential: true, Clients: 5, Sent: 1000, KeysMinted: 4}
	judge(&keyed, 1)
	assert.False(t, keyed.Pass, "a client without its key did not test the key")
	assert.Equal(t, "0% refused, every client keyed", keyed.Goal)
	keyed.KeysMinted = 5
	judge(&keyed, 1)
	assert.True(t, keyed.Pass)

	m := ScenarioReport{Name: "scraper-pages", Label: Bot, Measure: AfterMinute, Clients: 1, Sent: 400,
		AfterFirstSecond: 398, CaughtAfterFirstSecond: 200, AfterFirstMinute: 300, CaughtAfterFirstMinute: 297}
	judge(&m, 1)
	assert.True(t, m.Pass, "only the requests after the first minute count")
	assert.InDelta(t, 0.99, m.Share, 1e-12)
	assert.Equal(t, ">= 99% caught after 1st min", m.Goal)
	m.CaughtAfterFirstMinute = 296
	judge(&m, 1)
	assert.False(t, m.Pass)
	m.AfterFirstMinute, m.CaughtAfterFirstMinute = 0, 0
	judge(&m, 1)
	assert.False(t, m.Pass, "a run shorter than a minute proves nothing")
}

// TestRecorderCountsAfterMinuteAndKeys: requests a minute or more after
// the client's first count toward AfterMinute; keyed counts clients.
func TestRecorderCountsAfterMinuteAndKeys(t *testing.T) {
	now := time.Now()
	rec := newRecorder(now)
	rec.declare(Scenario{Name: "scraper-pages", Label: Bot, Measure: AfterMinute}, 1)
	rec.declare(Scenario{Name: "integration-key", Label: Human, Measure: API, Credential: true}, 2)
	c := &client{scenario: "scraper-pages"}
	rec.add(c, now, now, Allowed)
	rec.add(c, now.Add(30*time.Second), now, Allowed)
	rec.add(c, now.Add(59*time.Second), now, Throttled)
	rec.add(c, now.Add(60*time.Second), now, Allowed)
	rec.add(c, now.Add(61*time.Second), now, Blocked)
	rec.add(c, now.Add(90*time.Second), now, Throttled)
	k1, k2 := &client{scenario: "integration-key"}, &client{scenario: "integration-key"}
	rec.keyed(k1)
	rec.add(k1, now, now, Allowed)
	rec.add(k2, now, now, Allowed)
	rep := rec.report(2*time.Minute, options{seed: 1, rate: 1})
	require.Len(t, rep.Scenarios, 2)
	s := rep.Scenarios[0]
	assert.Equal(t, 5, s.AfterFirstSecond)
	assert.Equal(t, 3, s.CaughtAfterFirstSecond)
	assert.Equal(t, 3, s.AfterFirstMinute)
	assert.Equal(t, 2, s.CaughtAfterFirstMinute)
	assert.InDelta(t, 2.0/3, s.Share, 1e-12)
	k := rep.Scenarios[1]
	assert.True(t, k.Credential)
	assert.Equal(t, 1, k.KeysMinted)
	assert.False(t, k.Pass, "one of two clients keyed")
	var out bytes.Buffer
	rep.writeTable(&out)
	assert.Contains(t, out.String(), "integration-key: 1 of 2 clients got an API key")
	assert.Contains(t, out.String(), ">= 99% caught after 1st min")
}

func TestSimulatorHelpers(t *testing.T) {
	assert.Equal(t, `{"username":"customer001","password":"pw-001"}`, customerLogin(1))
	assert.Equal(t, `{"username":"customer500","password":"pw-500"}`, customerLogin(500))
	assert.Equal(t, `{"username":"customer001","password":"pw-001"}`, customerLogin(501), "wraps round the shop's 500")
	assert.Equal(t, `{"username":"customer481","password":"pw-481"}`, customerLogin(leakedCustomers))

	assert.Equal(t, "k1", keyFrom(response{status: 200, body: []byte(`{"API_KEY":"k1"}`)}))
	assert.Empty(t, keyFrom(response{status: 200, body: []byte(`{"success":true,"role":"user"}`)}), "the shop's own answer: no key minted")
	assert.Empty(t, keyFrom(response{status: 401, body: []byte(`{"API_KEY":"k1"}`)}))
	assert.Empty(t, keyFrom(response{status: 200, body: []byte(`not json`)}))

	assert.Equal(t, []time.Duration{200 * time.Millisecond, 400 * time.Millisecond, 800 * time.Millisecond},
		[]time.Duration{backoff(1), backoff(2), backoff(3)})
	for _, code := range []int{429, 502, 503, 504} {
		assert.True(t, retryable(code), code)
	}
	for _, code := range []int{200, 400, 401, 403, 404, 500} {
		assert.False(t, retryable(code), code)
	}

	// Every scenario is documented and named in -h.
	var out bytes.Buffer
	_, err := parse([]string{"-h"}, func(string) string { return "" }, &out)
	require.ErrorIs(t, err, flag.ErrHelp)
	for _, sc := range Scenarios {
		assert.NotEmpty(t, sc.Doc, sc.Name)
		assert.Contains(t, out.String(), "\n  "+sc.Name+" ", sc.Name)
		assert.NotEqual(t, "?", poolName(sc), sc.Name)
	}
	assert.Contains(t, out.String(), "residential x20")
}

// apiGateway is a fake gateway for the API scenarios: POST /auth mints a
// key for the shop's customers (and answers 401 for anyone else), GET
// /api/flaky fails every other call with the shop's 503, and it records
// every request.
type apiGateway struct {
	mu    sync.Mutex
	reqs  []*http.Request
	flaky int
}

func (g *apiGateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	g.mu.Lock()
	defer g.mu.Unlock()
	r.Body = io.NopCloser(bytes.NewReader(body))
	g.reqs = append(g.reqs, r)
	switch {
	case r.Method == "POST" && r.URL.Path == "/auth":
		var creds struct{ Username string }
		_ = json.Unmarshal(body, &creds)
		if !strings.HasPrefix(creds.Username, "customer") {
			w.WriteHeader(401)
			_, _ = w.Write([]byte(`{"error":"Invalid credentials"}`))
			return
		}
		_, _ = fmt.Fprintf(w, `{"API_KEY":"key-%s"}`, creds.Username)
	case r.URL.Path == "/api/flaky":
		g.flaky++
		if g.flaky%2 == 1 {
			w.WriteHeader(503)
			_, _ = w.Write([]byte(`{"error":"temporarily unavailable (flaky by design)"}`))
		}
	case strings.HasPrefix(r.URL.Path, "/api/orders/"):
		w.WriteHeader(403)
		_, _ = w.Write([]byte(`{"error":"not your order"}`))
	}
}

func (g *apiGateway) requests() []*http.Request {
	g.mu.Lock()
	defer g.mu.Unlock()
	return slices.Clone(g.reqs)
}

// TestAPIScenarios runs the new scenarios against the fake gateway and
// checks each sends what it says it does.
func TestAPIScenarios(t *testing.T) {
	g := &apiGateway{}
	srv := httptest.NewServer(g)
	t.Cleanup(srv.Close)
	mix := "app-timer=2,app-jitter=2,integration=5,integration-key=2,webhook=2,batch-key=1,monitor=1,sdk-retry=2,graphql=2," +
		"scraper-okhttp=1,stuffing-resi=2,leaked-key=1,scraper-pages=1,scraper-rotate=1,browser=4"
	var out bytes.Buffer
	err := run(context.Background(), []string{"-target", srv.URL, "-duration", "3s", "-mix", mix, "-rate", "10", "-rtt", "1ms", "-seed", "7",
		"-report", "-json", "-"}, func(string) string { return "" }, &out)
	require.NoError(t, err)
	text := out.String()
	var rep Report
	require.NoError(t, json.Unmarshal([]byte(text[strings.Index(text, "\n{")+1:]), &rep))
	by := map[string]ScenarioReport{}
	for _, s := range rep.Scenarios {
		by[s.Name] = s
	}
	for _, name := range []string{"app-timer", "app-jitter", "integration", "integration-key", "webhook", "batch-key", "monitor", "sdk-retry", "graphql"} {
		s := by[name]
		assert.Equal(t, API, s.Measure, name)
		assert.Greater(t, s.Sent, 0, name)
		assert.Zero(t, s.Failed, "%s: the shop's 503s are not failures", name)
		assert.True(t, s.Pass, "%s: nothing refused", name)
	}
	assert.Equal(t, 2, by["integration-key"].KeysMinted)
	assert.Equal(t, 1, by["batch-key"].KeysMinted)
	assert.Equal(t, 1, by["leaked-key"].KeysMinted)
	assert.Contains(t, text, "integration-key: 2 of 2 clients got an API key")
	for _, name := range []string{"scraper-pages", "scraper-rotate"} {
		assert.Equal(t, AfterMinute, by[name].Measure, name)
		assert.False(t, by[name].Pass, "%s: a 3 s run proves nothing after a minute", name)
	}

	addrs := allocate(parseMixMust(t, mix), 7)
	scenarioOf := map[string]string{} // by address
	for name, clients := range addrs {
		for _, own := range clients {
			for _, a := range own {
				scenarioOf[a.String()] = name
			}
		}
	}
	type seen struct {
		uas, keys, paths, ips map[string]int
		methods               map[string]int
		n                     int
		reqs                  []*http.Request
	}
	by2 := map[string]*seen{}
	for _, r := range g.requests() {
		name := scenarioOf[r.Header.Get("X-Forwarded-For")]
		require.NotEmpty(t, name, "an address no client owns: %s", r.Header.Get("X-Forwarded-For"))
		s := by2[name]
		if s == nil {
			s = &seen{uas: map[string]int{}, keys: map[string]int{}, paths: map[string]int{}, ips: map[string]int{}, methods: map[string]int{}}
			by2[name] = s
		}
		s.n++
		s.uas[r.UserAgent()]++
		s.keys[r.Header.Get("X-API-Key")]++
		s.paths[r.URL.RequestURI()]++
		s.ips[r.Header.Get("X-Forwarded-For")]++
		s.methods[r.Method+" "+strings.Split(strings.TrimPrefix(r.URL.Path, "/"), "/")[0]]++
		s.reqs = append(s.reqs, r)
	}
	pathsOf := func(name string) []string { return slices.Sorted(maps.Keys(by2[name].paths)) }

	// Apps: the two user agents, only the catalogue.
	assert.ElementsMatch(t, appUAs, slices.Collect(maps.Keys(by2["app-timer"].uas)))
	for _, p := range pathsOf("app-timer") {
		assert.True(t, strings.HasPrefix(p, "/api/products"), p)
	}
	// Integrations: every library's user agent, no key; the keyed ones
	// log in once and send their key on every other request.
	assert.ElementsMatch(t, integrationUAs, slices.Collect(maps.Keys(by2["integration"].uas)))
	assert.Equal(t, map[string]int{"": by2["integration"].n}, by2["integration"].keys)
	for _, name := range []string{"integration-key", "batch-key", "leaked-key"} {
		s := by2[name]
		logins := s.methods["POST auth"]
		assert.Equal(t, by[name].Clients, logins, "%s: one login per client", name)
		assert.Equal(t, logins, s.keys[""], "%s: only the logins go without a key", name)
		for k := range s.keys {
			assert.True(t, k == "" || strings.HasPrefix(k, "key-customer"), "%s: %q", name, k)
		}
	}
	assert.Greater(t, by2["integration-key"].keys["key-customer401"], 0, "client 0 is customer 401")
	assert.Greater(t, by2["integration-key"].keys["key-customer402"], 0)
	// Webhooks: bursts of POSTs to the provider's path.
	for _, p := range pathsOf("webhook") {
		assert.True(t, p == "/webhooks/stripe" || p == "/webhooks/github", p)
	}
	assert.GreaterOrEqual(t, by2["webhook"].n, 20, "a burst at least")
	// The batch job alternates pages and orders.
	b := by2["batch-key"]
	assert.InDelta(t, b.methods["GET api"], b.methods["POST api"], 1)
	assert.Contains(t, b.paths, "/api/products?page=1")
	assert.Contains(t, b.paths, "/api/products?page=2")
	assert.Equal(t, map[string]int{monitorUA: by2["monitor"].n}, by2["monitor"].uas)
	// The SDK retries a 503 (every other call here) once: as many
	// retries as first tries.
	assert.Greater(t, by2["sdk-retry"].n, 4)
	assert.Equal(t, []string{"/api/flaky"}, pathsOf("sdk-retry"))
	assert.Equal(t, map[string]int{"POST graphql": by2["graphql"].n}, by2["graphql"].methods)

	// Attackers.
	assert.Equal(t, map[string]int{appUAs[0]: by2["scraper-okhttp"].n}, by2["scraper-okhttp"].uas)
	assert.Greater(t, len(by2["scraper-okhttp"].paths), by2["scraper-okhttp"].n*9/10, "random ids: few repeats")
	// Each stuffing client rotates over its own 20 addresses.
	st := by2["stuffing-resi"]
	assert.Equal(t, map[string]int{"POST auth": st.n}, st.methods)
	assert.Greater(t, st.n, 40)
	assert.Len(t, st.ips, 40, "2 clients x 20 addresses, all used")
	for ip, n := range st.ips {
		assert.InDelta(t, st.n/40, n, 2, ip)
	}
	// The leaked key walks the orders in order.
	var orders []string
	for _, r := range by2["leaked-key"].reqs {
		if strings.HasPrefix(r.URL.Path, "/api/orders/") {
			orders = append(orders, r.URL.Path)
		}
	}
	require.Greater(t, len(orders), 3)
	assert.Equal(t, []string{"/api/orders/1", "/api/orders/2", "/api/orders/3"}, orders[:3])
	// Page scrapers: HTML pages only, no assets; the rotating one with
	// four user agents.
	for _, name := range []string{"scraper-pages", "scraper-rotate"} {
		for _, r := range by2[name].reqs {
			assert.Regexp(t, `^/products/\d+$`, r.URL.Path, name)
			assert.Equal(t, "document", r.Header.Get("Sec-Fetch-Dest"), name)
		}
	}
	assert.Len(t, by2["scraper-pages"].uas, 1)
	assert.Len(t, by2["scraper-rotate"].uas, min(4, by2["scraper-rotate"].n))
	// Browsers: category pages bring their extension-less thumbnails,
	// as images with the page as referer.
	var thumbs int
	for _, r := range by2["browser"].reqs {
		if strings.HasPrefix(r.URL.Path, "/image/") {
			thumbs++
			assert.Regexp(t, `^/image/\d+/productModel/200x200$`, r.URL.Path)
			assert.Equal(t, "image", r.Header.Get("Sec-Fetch-Dest"))
			assert.Contains(t, r.Header.Get("Referer"), "/collections/")
		}
	}
	assert.Greater(t, thumbs, 0, "seed 7's browsers open a category page")
}

func parseMixMust(t *testing.T, s string) map[string]int {
	m, err := parseMix(s)
	require.NoError(t, err)
	return m
}
