package traffic_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulwarkgw/bulwark/gateway/internal/traffic"
)

// observer is the Redis store or the in-memory one, seen alike.
type observer func(ip netip.Addr, at time.Time, req traffic.Request) traffic.Observation

func observers(t *testing.T) map[string]observer {
	s := newStore(t)
	m, err := traffic.NewMemory(1000)
	require.NoError(t, err)
	return map[string]observer{
		"redis": func(ip netip.Addr, at time.Time, req traffic.Request) traffic.Observation {
			o, err := s.Observe(context.Background(), ip, at, req)
			require.NoError(t, err)
			return o
		},
		"memory": m.Observe,
	}
}

func get(path string) traffic.Request {
	d := traffic.Describe(path, map[string]bool{"/login": true}, time.Minute)
	d.Classify("GET", assets, probes)
	return d
}

func TestClassify(t *testing.T) {
	assert.True(t, get("/static/app.css").Asset)
	assert.False(t, get("/static/app.css").Probe)
	assert.False(t, get("/api/products/3").Asset)
	post := traffic.Describe("/img/a.png", nil, 0)
	post.Classify("POST", assets, probes)
	assert.False(t, post.Asset, "only GET and HEAD fetch assets")
	p := get("/wp-content/plugins/revslider/js/admin.js")
	assert.True(t, p.Probe)
	assert.False(t, p.Asset, "a probe is never an asset")
	sens := traffic.Describe("/login.js", map[string]bool{"/login.js": true}, 0)
	sens.Classify("GET", assets, probes)
	assert.False(t, sens.Asset, "nor is a sensitive path")
	assert.True(t, get("/.env").Probe)
	assert.True(t, get("/WP-LOGIN.PHP").Probe, "matched on the normalised path")
}

// A burst of n requests evenly spread over any 1 s span reads n ± 1 in the
// 1 s window at its last request, whatever the phase against the 25 ms
// buckets; n spread over 10 s reads n ± (n/20 + 1) in the 10 s window (a
// 500 ms bucket's share).
func TestWindowsArePrecise(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(13, 1))
	ip := 0
	for name, observe := range observers(t) {
		for _, n := range []int{2, 5, 10, 17, 24, 33, 40} {
			for range 6 {
				phase := time.Duration(r.Int64N(int64(time.Second)))
				t0 := time.Unix(1_800_000_000, 0).Add(phase)
				for _, span := range []int64{999, 1000} { // the first and last request 1 s apart, or within 1 s
					ip++
					addr := netip.AddrFrom4([4]byte{198, 51, 101, byte(ip)})
					if ip > 250 {
						addr = netip.AddrFrom4([4]byte{198, 51, 102, byte(ip - 250)})
					}
					var o traffic.Observation
					for i := range n {
						at := t0.Add(time.Duration(int64(i)*span/int64(n-1)) * time.Millisecond)
						o = observe(addr, at, root)
					}
					assert.InDelta(t, n, o.Count1s, 1, "%s: %d over %d ms from phase %v", name, n, span, phase)
				}
			}
		}
		// A spike faster than a bucket holds reads whole.
		spike := netip.MustParseAddr("198.51.103.200")
		var o traffic.Observation
		for i := range 60 {
			o = observe(spike, time.Unix(1_800_002_000, 0).Add(time.Duration(i/10)*time.Millisecond), root)
		}
		assert.Equal(t, [3]int64{60, 60, 60}, counts(o), "%s: 60 in 6 ms", name)
		for _, n := range []int{20, 60, 150} {
			phase := time.Duration(r.Int64N(int64(time.Second)))
			t0 := time.Unix(1_800_001_000, 0).Add(phase)
			addr := netip.AddrFrom4([4]byte{198, 51, 103, byte(n)})
			var o traffic.Observation
			for i := range n {
				o = observe(addr, t0.Add(time.Duration(int64(i)*9999/int64(n-1))*time.Millisecond), root)
			}
			assert.InDelta(t, n, o.Count10s, float64(n)/20+1, "%s: %d over 10 s from phase %v", name, n, phase)
		}
	}
}

// A page of 150 assets at browser speed is not a burst: the assets are
// counted in Assets10s only, and the client's gaps, paths, ids and windows
// are those of its other requests.
func TestAssetsAreCountedApart(t *testing.T) {
	t.Parallel()
	for name, observe := range observers(t) {
		ip := netip.MustParseAddr("198.51.104.1")
		t0 := time.Unix(1_800_000_000, 0)
		var o traffic.Observation
		for page := range 3 {
			start := t0.Add(time.Duration(page) * 3 * time.Second)
			o = observe(ip, start, get(fmt.Sprintf("/products/%d", 1+4*page)))
			for i := range 150 {
				o = observe(ip, start.Add(time.Duration(5+i*8)*time.Millisecond), get(fmt.Sprintf("/img/%d/p.png", i)))
				require.True(t, o.Asset)
				assert.LessOrEqual(t, o.Count1s, int64(1), "%s page %d asset %d", name, page, i)
			}
			assert.EqualValues(t, page+1, o.Count10s, name)
			assert.EqualValues(t, page+1, o.Count60s, name)
			assert.EqualValues(t, page+1, o.DistinctPaths, name)
			assert.EqualValues(t, page, o.Intervals, name)
		}
		assert.EqualValues(t, 450, o.Assets10s, "%s: three pages of assets in 10 s", name)
		assert.EqualValues(t, 453, o.Visits, "%s: assets are visits", name)
		assert.Zero(t, o.SequentialIDs, "%s: asset ids make no run", name)
		assert.InDelta(t, 0, o.IntervalCV, 0.03, "%s: the gaps between pages, 3 s each, not to the assets", name)
		o = observe(ip, t0.Add(6*time.Second+2*time.Second), get("/cart"))
		assert.False(t, o.Asset)
		assert.EqualValues(t, 1, o.Count1s, name)
		assert.EqualValues(t, 3, o.Intervals, name)

		// Assets before any other request: the first other one has no gap.
		fresh := netip.MustParseAddr("198.51.104.2")
		for i := range 3 {
			o = observe(fresh, t0.Add(time.Duration(i)*time.Millisecond), get("/favicon.ico"))
		}
		assert.EqualValues(t, 3, o.Assets10s, name)
		assert.Zero(t, o.Count60s, name)
		o = observe(fresh, t0.Add(time.Second), get("/"))
		assert.Zero(t, o.Intervals, name)
		assert.EqualValues(t, 1, o.Count1s, name)
		assert.EqualValues(t, 3, o.Assets10s, name)

		// An asset flood reads as one, in Assets10s.
		flood := netip.MustParseAddr("198.51.104.3")
		for i := range 1000 {
			o = observe(flood, t0.Add(time.Duration(i)*10*time.Millisecond), get("/logo.png")) // 100/s
		}
		assert.InDelta(t, 1000, o.Assets10s, 10, name)
		assert.Zero(t, o.Count1s, name)
	}
}

// Probes are counted in a 60 s ring, and as requests like any other.
func TestProbesAreCounted(t *testing.T) {
	t.Parallel()
	for name, observe := range observers(t) {
		ip := netip.MustParseAddr("198.51.105.1")
		t0 := time.Unix(1_800_000_000, 0)
		for i, p := range []string{"/.env", "/wp-login.php", "/.git/config", "/phpmyadmin/index.php", "/fckeditor/editor/fckeditor.html"} {
			o := observe(ip, t0.Add(time.Duration(i)*100*time.Millisecond), get(p))
			assert.True(t, o.Probe, p)
			assert.EqualValues(t, i+1, o.Probes, "%s %s", name, p)
			assert.EqualValues(t, i+1, o.Count1s, name)
			assert.EqualValues(t, i+1, o.DistinctPaths, name)
		}
		o := observe(ip, t0.Add(30*time.Second), get("/"))
		assert.False(t, o.Probe)
		assert.EqualValues(t, 5, o.Probes, name)
		o = observe(ip, t0.Add(90*time.Second), get("/.aws/credentials"))
		assert.EqualValues(t, 1, o.Probes, "%s: the first five are more than a minute old", name)
	}
}

func TestServed(t *testing.T) {
	sensitive := map[string]bool{"/admin": true}
	s := get("/api/products/7.png").Served(sensitive)
	assert.Equal(t, traffic.Request{Path: "/api/products/7", Pattern: "/api/products/:id", ID: 7, VisitWindow: time.Minute}, s)
	assert.Equal(t, "/api/me", get("/api/me.js").Served(sensitive).Path)
	assert.Equal(t, "/js/app.min", get("/js/app.min.js").Served(sensitive).Path, "only the last extension")
	assert.Equal(t, "/img/.png", get("/img/.png").Served(sensitive).Path, "a name that is all extension stays")
	assert.True(t, get("/admin.css").Served(sensitive).Sensitive, "asked again without the extension")
}

// A scraper that puts an asset's suffix on an API's ids (GET
// /api/products/N.png, answered with JSON) is counted, once its answers
// are reclassified, exactly as the same requests without the suffix: the
// same burst, distinct paths, run of ids and gaps, and nothing left in the
// asset window. Real assets, never reclassified, stay apart.
func TestReclassifiedAssetsCountAsTheRequestsTheyWere(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	m, err := traffic.NewMemory(1000)
	require.NoError(t, err)
	ctx := context.Background()
	type store struct {
		observe    observer
		reclassify observer
	}
	stores := map[string]store{
		"redis": {
			observe: func(ip netip.Addr, at time.Time, req traffic.Request) traffic.Observation {
				o, err := s.Observe(ctx, ip, at, req)
				require.NoError(t, err)
				return o
			},
			reclassify: func(ip netip.Addr, at time.Time, req traffic.Request) traffic.Observation {
				o, err := s.Reclassify(ctx, ip, at, req, false)
				require.NoError(t, err)
				return o
			},
		},
		"memory": {observe: m.Observe, reclassify: func(ip netip.Addr, at time.Time, req traffic.Request) traffic.Observation {
			return m.Reclassify(ip, at, req, false)
		}},
	}
	n := 0
	for name, st := range stores {
		n++
		plain := netip.AddrFrom4([4]byte{198, 51, 110, byte(n)})
		suffixed := netip.AddrFrom4([4]byte{198, 51, 111, byte(n)})
		browser := netip.AddrFrom4([4]byte{198, 51, 112, byte(n)})
		t0 := time.Unix(1_800_000_000, 0)
		var last traffic.Observation
		for i := 1; i <= 80; i++ {
			at := t0.Add(time.Duration(i) * 25 * time.Millisecond) // 40/s
			want := st.observe(plain, at, get(fmt.Sprintf("/api/products/%d", i)))
			req := get(fmt.Sprintf("/api/products/%d.png", i))
			require.True(t, req.Asset)
			o := st.observe(suffixed, at, req)
			assert.EqualValues(t, 1, o.Assets10s, "%s %d: counted as an asset until its answer", name, i)
			got := st.reclassify(suffixed, at, req.Served(nil))
			require.Equal(t, want, got, "%s %d: as the request without the suffix", name, i)
			last = got
		}
		assert.InDelta(t, 40, last.Count1s, 1, name)
		assert.EqualValues(t, 63, last.SequentialIDs, name)
		assert.Greater(t, last.DistinctPaths, int64(60), name)
		assert.Zero(t, last.Assets10s, name)
		assert.EqualValues(t, 11, last.Intervals, name)
		assert.Less(t, last.IntervalCV, 0.05, "%s: as regular as it is", name)

		// A real page's images: never reclassified, never in the burst.
		at := t0.Add(3 * time.Second)
		st.observe(browser, at, get("/products/7"))
		var o traffic.Observation
		for i := range 150 {
			o = st.observe(browser, at.Add(time.Duration(i)*2*time.Millisecond), get(fmt.Sprintf("/img/%d.png", i)))
		}
		assert.EqualValues(t, 1, o.Count1s, name)
		assert.EqualValues(t, 150, o.Assets10s, name)
		assert.EqualValues(t, 1, o.DistinctPaths, name)
	}
}
