package server_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulwarkgw/bulwark/gateway/internal/bans"
	"github.com/bulwarkgw/bulwark/gateway/internal/config"
	"github.com/bulwarkgw/bulwark/gateway/internal/localscore"
	"github.com/bulwarkgw/bulwark/gateway/internal/server"
	"github.com/bulwarkgw/bulwark/gateway/internal/testenv"
	"github.com/bulwarkgw/bulwark/gateway/internal/traffic"
	"github.com/bulwarkgw/bulwark/scorer/profile"
	"github.com/bulwarkgw/bulwark/scorer/rules"
	"github.com/bulwarkgw/bulwark/shared/wire"
)

// TestCrawlerClaimsReachTheScorerOffThePath: with the fast path on, a
// client that does nothing abusive is forwarded without asking the
// scorer; one whose user agent claims a crawler the scorer verifies by
// reverse DNS is also sent to the scorer in the background (once a
// minute), so its lookup starts at its first request. Its request does not
// wait for that call.
func TestCrawlerClaimsReachTheScorerOffThePath(t *testing.T) {
	t.Parallel()
	rdb, prefix := testenv.Redis(t)
	up := httptest.NewServer(http.HandlerFunc(shop))
	t.Cleanup(up.Close)
	cfg, err := config.Parse([]byte("routes: [{path: /, upstream: "+up.URL+"}]\ntrusted_proxies: [127.0.0.2]\n"), func(string) string { return "" })
	require.NoError(t, err)
	cfg.Redis.Prefix = prefix
	store, err := traffic.New(rdb, prefix)
	require.NoError(t, err)
	banStore, err := bans.New(rdb, prefix)
	require.NoError(t, err)
	p, err := profile.Builtin("default")
	require.NoError(t, err)
	doc, err := json.Marshal(p)
	require.NoError(t, err)
	local, err := localscore.New(func(context.Context) ([]byte, string, error) { return doc, rules.Version, nil }, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	require.NoError(t, local.Sync(context.Background()))

	var mu sync.Mutex
	asked := map[string]int{}
	release := make(chan struct{})
	scorer := scoreFunc(func(r wire.ScoreRequest) (wire.ScoreResponse, error) {
		<-release // the scorer is slow: nobody's request may wait for it
		mu.Lock()
		asked[r.UserAgent]++
		mu.Unlock()
		return wire.ScoreResponse{}, nil
	})
	g, err := server.New(cfg, server.Deps{Traffic: store, Bans: banStore, Scorer: scorer, Local: local,
		Events: &recorder{}, Stats: nopStats{}, Log: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)

	const bingbot = "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)"
	for range 3 {
		assert.Equal(t, 200, send(g, "GET", "/", "", "X-Forwarded-For", "40.77.188.9", "User-Agent", bingbot))
		assert.Equal(t, 200, send(g, "GET", "/", "", "X-Forwarded-For", "203.0.113.70", "User-Agent", "python-requests/2.32.3"))
	}
	close(release)
	require.Eventually(t, func() bool { mu.Lock(); defer mu.Unlock(); return asked[bingbot] == 1 }, 5*time.Second, 10*time.Millisecond)
	time.Sleep(50 * time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	assert.Equal(t, 1, asked[bingbot], "once, not per request")
	assert.Zero(t, asked["python-requests/2.32.3"], "no claim, no call: its bound said it could not be refused")
}

// TestRefusedDocumentRequestsCountAsPages: a throttled GET that asks for
// HTML still counts as a page fetched, so a scraper taking pages without
// their assets cannot fall back under the line by being refused; one that
// asks for JSON does not.
func TestRefusedDocumentRequestsCountAsPages(t *testing.T) {
	t.Parallel()
	throttle, seen := capturing(0.6)
	h, _ := scoringGateway(t, throttle, nil)
	for range 3 {
		assert.Equal(t, 429, send(h, "GET", "/products/1", "", "X-Forwarded-For", "203.0.113.71", "Accept", "text/html,application/xhtml+xml,*/*;q=0.8"))
		assert.Equal(t, 429, send(h, "GET", "/api/products/1", "", "X-Forwarded-For", "203.0.113.72", "Accept", "application/json"))
	}
	var html, api wire.ScoreRequest
	for _, r := range seen() {
		switch r.IP {
		case "203.0.113.71":
			html = r
		case "203.0.113.72":
			api = r
		}
	}
	assert.EqualValues(t, 2, html.Pages60s, "the two refused before the last")
	assert.EqualValues(t, 2, html.Refused60s)
	assert.Zero(t, api.Pages60s)
	assert.EqualValues(t, 2, api.Refused60s)
}

// TestLearnedAssetPatterns: once the upstream has answered a pattern of
// extensionless paths with images, the next requests on it are page
// assets from the start (no burst, no distinct paths), and the first
// answer that is no asset unlearns it.
func TestLearnedAssetPatterns(t *testing.T) {
	t.Parallel()
	rdb, prefix := testenv.Redis(t)
	var jsonNow sync.Mutex
	asJSON := false
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		jsonNow.Lock()
		j := asJSON
		jsonNow.Unlock()
		if j {
			w.Header().Set("Content-Type", "application/json")
		} else {
			w.Header().Set("Content-Type", "image/jpeg")
		}
		_, _ = w.Write([]byte("x"))
	}))
	t.Cleanup(up.Close)
	capture, seen := capturing(0)
	g, _ := newGateway(t, up.URL, nil, capture, rdb, prefix)
	xff := []string{"X-Forwarded-For", "203.0.113.80"}
	assert.Equal(t, 200, send(g, "GET", "/image/1/productModel/200x200", "", xff...))
	first := seen()[len(seen())-1]
	assert.False(t, first.Asset, "not known yet: counted as a request, then as the asset its answer showed")
	for i := 2; i <= 30; i++ {
		assert.Equal(t, 200, send(g, "GET", "/image/"+strconv.Itoa(i)+"/productModel/200x200", "", xff...))
	}
	last := seen()[len(seen())-1]
	assert.True(t, last.Asset, "learned from the upstream's answer")
	assert.LessOrEqual(t, last.Count1s, int64(1), "thirty thumbnails are no burst")
	assert.LessOrEqual(t, last.DistinctPaths, int64(2), "nor thirty paths")
	assert.GreaterOrEqual(t, last.Assets10s, int64(29))

	jsonNow.Lock()
	asJSON = true // the same pattern now answers JSON: no asset after all
	jsonNow.Unlock()
	assert.Equal(t, 200, send(g, "GET", "/image/31/productModel/200x200", "", xff...))
	assert.Equal(t, 200, send(g, "GET", "/image/32/productModel/200x200", "", xff...))
	assert.False(t, seen()[len(seen())-1].Asset, "unlearned")
}

// TestAnswersAreRecordedWhileTheScorerIsDown: a request the traffic store
// counted has its answer recorded there even when the scorer failed for it
// (fail open marks the request degraded, yet Redis counted it): here, an
// "asset" answered with text is counted again as the request it was.
func TestAnswersAreRecordedWhileTheScorerIsDown(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	calls := 0
	var second wire.ScoreRequest
	flaky := scoreFunc(func(r wire.ScoreRequest) (wire.ScoreResponse, error) {
		mu.Lock()
		defer mu.Unlock()
		calls++
		if calls == 1 {
			return wire.ScoreResponse{}, errors.New("scorer down")
		}
		second = r
		return wire.ScoreResponse{}, nil
	})
	h, _ := scoringGateway(t, flaky, nil)
	xff := []string{"X-Forwarded-For", "203.0.113.81"}
	assert.Equal(t, 200, send(h, "GET", "/api/products/7.png", "", xff...), "fail open")
	assert.Equal(t, 200, send(h, "GET", "/api/products/8", "", xff...))
	mu.Lock()
	defer mu.Unlock()
	assert.EqualValues(t, 2, second.Count1s, "the fake asset was counted again as the request it was")
	assert.Zero(t, second.Assets10s)
}
