package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
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
