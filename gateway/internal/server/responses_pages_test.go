package server_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulwarkgw/bulwark/gateway/internal/bans"
	"github.com/bulwarkgw/bulwark/gateway/internal/config"
	"github.com/bulwarkgw/bulwark/gateway/internal/server"
	"github.com/bulwarkgw/bulwark/gateway/internal/testenv"
	"github.com/bulwarkgw/bulwark/gateway/internal/traffic"
	"github.com/bulwarkgw/bulwark/shared/wire"
)

// catalogue answers by path: /products/... and /index are pages (HTML),
// /image/... and /login images, /api/... JSON, /download/... bytes,
// /empty a 204 with no type, /ct?type=X an empty 200 of type X; anything
// else HTML.
func catalogue(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	switch {
	case strings.HasPrefix(p, "/image/"), p == "/login", p == "/wp-login.php":
		w.Header().Set("Content-Type", "image/jpeg")
		_, _ = w.Write([]byte("\xff\xd8\xff\xe0"))
	case strings.HasPrefix(p, "/api/"):
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"id":7}`))
	case strings.HasPrefix(p, "/download/"):
		w.Header().Set("Content-Type", "application/octet-stream")
		_, _ = w.Write([]byte{0, 1, 2})
	case p == "/empty":
		w.WriteHeader(http.StatusNoContent)
	case p == "/ct":
		w.Header()["Content-Type"] = []string{r.URL.Query().Get("type")}
		w.WriteHeader(http.StatusOK)
	default:
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write([]byte("<!doctype html><title>shop</title>"))
	}
}

// clock is a settable Deps.Now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }

// answersChain is the whole chain in front of catalogue, its clock set by
// the test, every request scored by a recording scorer; on the Redis store
// (fallback nil), or on the in-memory one behind a Redis that is down.
type answersChain struct {
	h        http.Handler
	clock    *clock
	requests func() []wire.ScoreRequest
	// state observes one more request, "/", from ip at the clock's time,
	// on the store the chain counts in, and returns what it reads.
	state func(ip string) traffic.Observation
}

func newAnswersChain(t *testing.T, fallback bool) *answersChain {
	t.Helper()
	up := httptest.NewServer(http.HandlerFunc(catalogue))
	t.Cleanup(up.Close)
	cfg, err := config.Parse([]byte("routes: [{path: /, upstream: "+up.URL+"}]\ntrusted_proxies: [127.0.0.2]\nban_ttl: 1m\n"), func(string) string { return "" })
	require.NoError(t, err)
	ck := &clock{t: time.Unix(1_800_000_000, 0)}
	scorer, requests := capturing(0)
	d := server.Deps{Scorer: scorer, Events: &recorder{}, Stats: nopStats{}, Log: slog.New(slog.DiscardHandler), Now: ck.now}
	root := traffic.Describe("/", nil, 0)
	var state func(ip string) traffic.Observation
	if fallback {
		mem, err := traffic.NewMemory(100)
		require.NoError(t, err)
		d.Traffic, d.Bans, d.Fallback = redisDown{}, redisDown{}, mem
		state = func(ip string) traffic.Observation { return mem.Observe(netip.MustParseAddr(ip), ck.now(), root) }
	} else {
		rdb, prefix := testenv.Redis(t)
		cfg.Redis.Prefix = prefix
		store, err := traffic.New(rdb, prefix)
		require.NoError(t, err)
		banStore, err := bans.New(rdb, prefix)
		require.NoError(t, err)
		d.Traffic, d.Bans = store, banStore
		state = func(ip string) traffic.Observation {
			o, err := store.Observe(context.Background(), netip.MustParseAddr(ip), ck.now(), root)
			require.NoError(t, err)
			return o
		}
	}
	g, err := server.New(cfg, d)
	require.NoError(t, err)
	return &answersChain{h: g, clock: ck, requests: requests, state: state}
}

// do sends method path from client ip at the given time and returns the
// status.
func (a *answersChain) do(ip, method, path string, at time.Time) int {
	a.clock.set(at)
	r := httptest.NewRequest(method, path, nil)
	r.RemoteAddr = "127.0.0.2:1"
	r.Header.Set("X-Forwarded-For", ip)
	w := httptest.NewRecorder()
	a.h.ServeHTTP(w, r)
	_, _ = io.Copy(io.Discard, w.Body)
	return w.Code
}

func (a *answersChain) of(ip string) []wire.ScoreRequest {
	var out []wire.ScoreRequest
	for _, r := range a.requests() {
		if r.IP == ip {
			out = append(out, r)
		}
	}
	return out
}

func chains(t *testing.T) map[string]*answersChain {
	return map[string]*answersChain{"redis": newAnswersChain(t, false), "memory": newAnswersChain(t, true)}
}

// Issue "API clients are not bots": a product page whose 25 thumbnails
// have no extension (/image/60844/productModel/200x200). The first is
// counted as an ordinary request until its image answer moves it to the
// asset windows and teaches the gateway the pattern; the rest are assets
// from the start. So the thumbnails are no burst, and the next page reads
// the two pages.
func TestExtensionlessThumbnailsAreNoBurst(t *testing.T) {
	t.Parallel()
	for name, a := range chains(t) {
		const client = "203.0.113.80"
		t0 := time.Unix(1_800_000_000, 0).Add(120 * time.Millisecond)
		require.Equal(t, http.StatusOK, a.do(client, "GET", "/products/7", t0))
		for i := range 25 {
			at := t0.Add(time.Duration(30+i*35) * time.Millisecond) // 25 in 875 ms
			require.Equal(t, http.StatusOK, a.do(client, "GET", fmt.Sprintf("/image/%d/productModel/200x200", 60844+i), at))
		}
		require.Equal(t, http.StatusOK, a.do(client, "GET", "/products/8", t0.Add(950*time.Millisecond)))
		got := a.of(client)
		require.Len(t, got, 27, name)
		before := got[0].Count1s
		assert.EqualValues(t, 1, before, name)
		for i, r := range got[1:26] {
			if i == 0 {
				assert.False(t, r.Asset, "%s %s: no extension, ordinary when scored", name, r.Path)
				assert.Equal(t, before+1, r.Count1s, "%s %s: the page and itself", name, r.Path)
				assert.EqualValues(t, 0, r.Assets10s, "%s %s", name, r.Path)
				continue
			}
			// The first one's image answer taught the gateway the pattern
			// (/image/:id/productmodel/200x200): the rest are assets from
			// the start.
			assert.True(t, r.Asset, "%s %s: a learned asset pattern", name, r.Path)
			assert.Equal(t, before, r.Count1s, "%s %s: the page alone", name, r.Path)
			assert.EqualValues(t, i+1, r.Assets10s, "%s %s", name, r.Path)
		}
		last := got[26]
		assert.Equal(t, before+1, last.Count1s, "%s: the 1 s window where it was before the thumbnails, and this page", name)
		assert.EqualValues(t, 2, last.Count10s, name)
		assert.EqualValues(t, 2, last.Count60s, name)
		assert.EqualValues(t, 25, last.Assets10s, name)
		assert.EqualValues(t, 27, last.Visits, name)

		a.clock.set(t0.Add(time.Second))
		o := a.state(client)
		assert.EqualValues(t, 2, o.Pages60s, "%s: both pages answered with HTML", name)
		assert.EqualValues(t, 25, o.Assets60s, name)
		assert.EqualValues(t, 3, o.Count60s, "%s: the two pages and this request", name)
	}
}

// Only positive evidence moves a request to the assets, only for GET and
// HEAD, never for a sensitive path or a probe; only a 2xx HTML answer to a
// GET is a page, and an "asset" answered with HTML is a page, not an
// asset.
func TestAnswersThatCountAsPagesAndAssets(t *testing.T) {
	t.Parallel()
	for name, a := range chains(t) {
		t0 := time.Unix(1_800_000_000, 0)
		n := 0
		// count sends one request from a fresh client and reads its
		// pages and assets in 60 s and its ordinary requests, this read
		// aside.
		count := func(method, path string) (pages, assets, ordinary int64) {
			n++
			ip := fmt.Sprintf("203.0.113.%d", 100+n)
			at := t0.Add(time.Duration(n) * time.Second)
			a.do(ip, method, path, at)
			a.clock.set(at.Add(10 * time.Millisecond))
			o := a.state(ip)
			return o.Pages60s, o.Assets60s, o.Count60s - 1
		}
		for _, c := range []struct {
			method, path            string
			pages, assets, ordinary int64
		}{
			{"GET", "/products/7", 1, 0, 1},
			{"HEAD", "/products/7", 0, 0, 1},
			{"POST", "/products/7", 0, 0, 1},
			{"GET", "/image/1/200x200", 0, 1, 0},
			{"HEAD", "/image/1/200x200", 0, 1, 0},
			{"POST", "/image/1/200x200", 0, 0, 1},
			{"GET", "/image/1.jpg", 0, 1, 0},        // an asset by its path, answered as one
			{"GET", "/products/9.png", 1, 0, 1},     // an "asset" answered with a page
			{"GET", "/api/products/9.png", 0, 0, 1}, // an "asset" answered with JSON
			{"GET", "/api/products/9", 0, 0, 1},     // JSON
			{"GET", "/login", 0, 0, 1},              // sensitive: counted whatever it answers
			{"GET", "/wp-login.php", 0, 0, 1},       // a probe, likewise
			{"GET", "/download/report", 0, 0, 1},    // bytes of no stated kind: no evidence
			{"GET", "/empty", 0, 0, 1},              // no type at all
			{"GET", "/ct?type=text/css", 0, 1, 0},   //
			{"GET", "/ct?type=font/woff2", 0, 1, 0}, //
			{"GET", "/ct?type=video/mp4", 0, 1, 0},  //
			{"GET", "/ct?type=audio/mpeg", 0, 1, 0}, //
			{"GET", "/ct?type=application/javascript%3B%20charset=utf-8", 0, 1, 0},
			{"GET", "/ct?type=application/vnd.apple.mpegurl", 0, 1, 0},
			{"GET", "/ct?type=application/xhtml%2Bxml", 1, 0, 1},
			{"GET", "/ct?type=TEXT/HTML%3Bcharset=utf-8", 1, 0, 1},
			{"GET", "/ct?type=text/plain", 0, 0, 1},
			{"GET", "/ct?type=application/json", 0, 0, 1},
		} {
			pages, assets, ordinary := count(c.method, c.path)
			assert.Equal(t, [3]int64{c.pages, c.assets, c.ordinary}, [3]int64{pages, assets, ordinary},
				"%s: %s %s: pages, assets, ordinary requests", name, c.method, c.path)
		}
	}
}
