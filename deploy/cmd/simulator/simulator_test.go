package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
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
	assert.Equal(t, Allowed, classify(403, []byte(`{"error":"forbidden by the app"}`)), "the application's own 403")
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
// share an address, every address is in its scenario's pool, and the same
// seed gives the same addresses.
func TestAddressesAreDistinctAndReproducible(t *testing.T) {
	mix := map[string]int{}
	for _, sc := range Scenarios {
		mix[sc.Name] = 200
	}
	for _, seed := range []uint64{1, 2, 99} {
		addrs := addresses(mix, seed)
		assert.Equal(t, addrs, addresses(mix, seed), "reproducible")
		seen := map[netip.Addr]string{}
		for _, sc := range Scenarios {
			require.Len(t, addrs[sc.Name], 200)
			for i, a := range addrs[sc.Name] {
				inPool := false
				for _, p := range sc.Pool {
					inPool = inPool || p.Contains(a)
				}
				require.True(t, inPool, "%s client %d: %s", sc.Name, i, a)
				who := fmt.Sprintf("%s#%d", sc.Name, i)
				require.NotContains(t, seen, a, "%s and %s share %s", seen[a], who, a)
				seen[a] = who
			}
		}
	}
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
