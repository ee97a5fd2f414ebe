package main

// Issue 13, the gateway's side: page assets are counted apart (a browser
// loading a page of 150 images is no burst, its missing icons no errors),
// and scanners' probe paths are named to the scorer.

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulwarkgw/bulwark/shared/wire"
)

// scoreRecorder is a scorer that allows everything and keeps what it was
// asked, per client and path.
type scoreRecorder struct {
	srv *httptest.Server
	mu  sync.Mutex
	got []wire.ScoreRequest
}

func newScoreRecorder(t *testing.T) *scoreRecorder {
	sr := &scoreRecorder{}
	sr.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			http.NotFound(w, r)
			return
		}
		var req wire.ScoreRequest
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		sr.mu.Lock()
		sr.got = append(sr.got, req)
		sr.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"score": 0, "reasons": []any{}})
	}))
	t.Cleanup(sr.srv.Close)
	return sr
}

func (sr *scoreRecorder) of(ip string) []wire.ScoreRequest {
	sr.mu.Lock()
	defer sr.mu.Unlock()
	var out []wire.ScoreRequest
	for _, r := range sr.got {
		if r.IP == ip {
			out = append(out, r)
		}
	}
	return out
}

// recordedStack is a gateway whose every request is scored (no fast path,
// no score cache) by a scorer that records what it is sent.
func recordedStack(t *testing.T) (*stack, *scoreRecorder) {
	sr := newScoreRecorder(t)
	s := startStack(t, `
routes:
  - {path: /, upstream: "{{U1}}"}
scorer: {url: "`+sr.srv.URL+`", timeout: 2s}
scoring: {fast_path: false, cache_ttl: 0s}
`)
	return s, sr
}

func TestPageAssetsAndProbesInTheScoreRequest(t *testing.T) {
	t.Parallel()
	s, sr := recordedStack(t)
	s.u1.handle(func(w http.ResponseWriter, r *http.Request, _ []byte) bool {
		if r.URL.Path == "/apple-touch-icon.png" {
			http.NotFound(w, r) // what iOS asks every site for
			return true
		}
		if strings.HasPrefix(r.URL.Path, "/static/img/") {
			w.Header().Set("Content-Type", "image/webp") // a real image: never reclassified
			_, _ = w.Write([]byte("RIFF\x00\x00\x00\x00WEBP"))
			return true
		}
		return false
	})

	// A browser: the page, its 150 assets over 6 connections as fast as
	// they go, the icon it does not have, then the next page.
	const browser = "127.0.0.31"
	c := s.from(browser)
	require.Equal(t, http.StatusOK, c.get("/products/7").Code)
	var wg sync.WaitGroup
	jobs := make(chan int)
	for range 6 {
		wg.Go(func() {
			for i := range jobs {
				r := c.get(fmt.Sprintf("/static/img/%d.webp", i))
				assert.Equal(t, http.StatusOK, r.Code, r.Body)
			}
		})
	}
	for i := range 149 {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	assert.Equal(t, http.StatusNotFound, c.get("/apple-touch-icon.png").Code)
	require.Equal(t, http.StatusOK, c.get("/products/8").Code)

	got := sr.of(browser)
	require.Len(t, got, 152)
	var assets int
	var maxAssets int64
	for _, r := range got {
		assert.LessOrEqual(t, r.Count1s, int64(2), "%s: assets are not in the burst", r.Path)
		if r.Asset {
			assets++
			maxAssets = max(maxAssets, r.Assets10s)
		}
		assert.False(t, r.Probe, r.Path)
	}
	assert.Equal(t, 150, assets)
	assert.EqualValues(t, 150, maxAssets, "every asset in the 10 s window")
	last := got[len(got)-1]
	assert.Equal(t, "/products/8", last.Path)
	assert.False(t, last.Asset)
	assert.EqualValues(t, 150, last.Assets10s)
	assert.EqualValues(t, 2, last.Count10s)
	assert.EqualValues(t, 2, last.DistinctPaths)
	assert.EqualValues(t, 1, last.Intervals, "one gap: page to page")
	assert.Zero(t, last.Errors4xx, "the missing icon is not an error")

	// A scanner: each probe is named, and counted.
	const scanner = "127.0.0.32"
	sc := s.from(scanner)
	sc.get("/.env")
	sc.get("/wp-login.php")
	sc.get("/api/products")
	got = sr.of(scanner)
	require.Len(t, got, 3)
	assert.True(t, got[0].Probe)
	assert.EqualValues(t, 1, got[0].Probes)
	assert.True(t, got[1].Probe)
	assert.EqualValues(t, 2, got[1].Probes)
	assert.EqualValues(t, 2, got[1].Count1s, "a probe is a request too")
	assert.False(t, got[2].Probe)
	assert.EqualValues(t, 2, got[2].Probes)
}

// Issue 13's evasion: an upstream that ignores a suffix answers
// /api/products/N.png with the product's JSON. Once answered, such a
// request is counted as the ordinary one it was, so a scraper adding .png
// to every id at 40/s is seen bursting and enumerating; a 401 to an
// "asset" is an auth failure.
func TestFakeAssetsAreReclassified(t *testing.T) {
	t.Parallel()
	s, sr := recordedStack(t)
	s.u1.handle(func(w http.ResponseWriter, r *http.Request, _ []byte) bool {
		switch {
		case strings.HasPrefix(r.URL.Path, "/img/"):
			w.Header().Set("Content-Type", "image/png")
			_, _ = w.Write([]byte("\x89PNG\r\n\x1a\n"))
			return true
		case r.URL.Path == "/api/me.js":
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte(`{"error":"bad token"}`))
			return true
		}
		return false // JSON, whatever the suffix
	})

	// The scraper: /api/products/1.png ... 60.png at 40/s, one at a time.
	const scraper = "127.0.0.41"
	c := s.from(scraper)
	tick := time.NewTicker(25 * time.Millisecond)
	defer tick.Stop()
	for i := 1; i <= 60; i++ {
		<-tick.C
		r := c.get(fmt.Sprintf("/api/products/%d.png", i))
		require.Equal(t, http.StatusOK, r.Code, r.Body)
	}
	got := sr.of(scraper)
	require.Len(t, got, 60)
	var maxCount1s int64
	for i, r := range got {
		assert.True(t, r.Asset, "%s: an asset until its answer", r.Path)
		assert.LessOrEqual(t, r.Assets10s, int64(2), "%s: and out of the asset window once answered", r.Path)
		maxCount1s = max(maxCount1s, r.Count1s)
		if i > 0 {
			assert.GreaterOrEqual(t, r.SequentialIDs, got[i-1].SequentialIDs, "%s: the run of ids grows", r.Path)
		}
	}
	last := got[len(got)-1]
	t.Logf("scraper: max count_1s %d; last: sequential_ids %d, distinct_paths %d, intervals %d, cv %.2f",
		maxCount1s, last.SequentialIDs, last.DistinctPaths, last.Intervals, last.IntervalCV)
	assert.GreaterOrEqual(t, maxCount1s, int64(15), "the burst is seen (0 when counted as assets)")
	assert.GreaterOrEqual(t, last.SequentialIDs, int64(50), "the enumeration is seen")
	assert.GreaterOrEqual(t, last.DistinctPaths, int64(40))
	assert.GreaterOrEqual(t, last.Intervals, 10)

	// A browser's page of 150 real images stays out of the burst.
	const browser = "127.0.0.42"
	b := s.from(browser)
	require.Equal(t, http.StatusOK, b.get("/products/7").Code)
	var wg sync.WaitGroup
	jobs := make(chan int)
	for range 6 {
		wg.Go(func() {
			for i := range jobs {
				assert.Equal(t, http.StatusOK, b.get(fmt.Sprintf("/img/%d.png", i)).Code)
			}
		})
	}
	for i := range 150 {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	require.Equal(t, http.StatusOK, b.get("/products/8").Code)
	got = sr.of(browser)
	require.Len(t, got, 152)
	for _, r := range got {
		assert.LessOrEqual(t, r.Count1s, int64(2), "%s: real images are not in the burst", r.Path)
	}
	assert.EqualValues(t, 150, got[len(got)-1].Assets10s)

	// Token guessing against an "asset": every 401 is an auth failure.
	const guesser = "127.0.0.43"
	g := s.from(guesser)
	for i := range 5 {
		r := g.get("/api/me.js", "Authorization", fmt.Sprintf("Bearer guess-%d", i))
		require.Equal(t, http.StatusUnauthorized, r.Code)
	}
	got = sr.of(guesser)
	require.Len(t, got, 5)
	assert.EqualValues(t, 4, got[4].AuthFailures, "the four answers before the fifth")
	assert.EqualValues(t, 4, got[4].Errors4xx)
}
