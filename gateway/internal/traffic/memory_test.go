package traffic_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulwarkgw/bulwark/gateway/internal/pathclass"
	"github.com/bulwarkgw/bulwark/gateway/internal/testenv"
	"github.com/bulwarkgw/bulwark/gateway/internal/traffic"
	"github.com/bulwarkgw/bulwark/shared/wire"
)

// step is one thing a client does: a request, an upstream answer to
// record, an asset's answer that showed it was none (and maybe a page), an
// ordinary request's answer that showed it was an asset, a document, or
// the gateway's refusal of a request.
type step struct {
	at      time.Time
	req     traffic.Request
	status  int    // > 0: RecordResponse instead of Observe
	reclass bool   // Reclassify instead of Observe
	page    bool   // with reclass: the answer was a document
	answer  string // "page": RecordPage, "asset": CountAsAsset (at at)
	refused bool   // RecordRefusal (at at)
}

// request is whether st is counted by observe (Observe or Reclassify).
func (st step) request() bool { return st.status == 0 && st.answer == "" && !st.refused }

var (
	assets, _ = pathclass.ParseAssets(pathclass.DefaultAssetExtensions)
	probes, _ = pathclass.ParseProbes(pathclass.DefaultProbePaths)
)

// clientSteps makes a random but reproducible life for one client:
// bursts and pauses (up to 45 s, under the state's 62 s TTL, which in
// Redis runs on the server's clock), page assets (before any other
// request, in pages, with ids, alone for more than a minute), probes, a
// clock that sometimes steps back or
// far ahead (another gateway's), sequential ids going up and down,
// sensitive paths, 4xx and 401/403 answers, visit windows shorter and
// longer than the state's TTL, assets reclassified once answered (an
// enumeration with a suffix; a real asset's answer, late, after other
// requests or in a bucket gone by; some answered with HTML), and ordinary
// requests answered with an asset or a document (right away or late, in
// bursts past what a 25 ms bucket holds), and requests the gateway refused
// (as it answered them, or a little later; a spike refused whole).
func clientSteps(seed uint64, n int) []step {
	r := rand.New(rand.NewPCG(seed, 1))
	sensitive := map[string]bool{"/login": true, "/api/checkout": true}
	paths := []string{"/", "/login", "/api/checkout", "/api/products", "/about", "/api/search",
		"/static/app.css", "/img/hero.png", "/favicon.ico", "/apple-touch-icon.png", "/.env", "/wp-login.php", "/.git/config"}
	window := []time.Duration{0, 3 * time.Second, time.Minute, 2 * time.Minute}[r.IntN(4)]
	t := time.Unix(1_800_000_000, 0).Add(time.Duration(r.Int64N(int64(time.Hour))))
	id := r.Int64N(1000)
	dir := int64(1)
	describe := func(path string) traffic.Request {
		d := traffic.Describe(path, sensitive, window)
		d.Classify([]string{"GET", "GET", "GET", "HEAD", "POST"}[r.IntN(5)], assets, probes)
		return d
	}
	var out []step
	for range r.IntN(3) {
		out = append(out, step{at: t, req: describe("/favicon.ico")}) // assets first
		t = t.Add(time.Millisecond)
	}
	for range n {
		switch p := r.IntN(100); {
		case p < 60:
			t = t.Add(time.Duration(r.Int64N(int64(300 * time.Millisecond))))
		case p < 80:
			t = t.Add(time.Duration(r.Int64N(int64(3 * time.Second))))
		case p < 92:
			t = t.Add(time.Duration(r.Int64N(int64(45 * time.Second))))
		case p < 97:
			t = t.Add(-time.Duration(r.Int64N(int64(3 * time.Second)))) // a clock behind
		default:
			// A gateway far ahead writes once; time goes on from where it was.
			out = append(out, step{at: t.Add(time.Duration(2+r.IntN(20)) * time.Second), req: describe("/")})
		}
		// Never more than 60 s after the last request, answers between
		// them or not: the state's TTL would end in memory only.
		for i := len(out) - 1; i >= 0; i-- {
			if out[i].request() {
				if lim := out[i].at.Add(time.Minute); t.After(lim) {
					t = lim
				}
				break
			}
		}
		if r.IntN(6) == 0 {
			out = append(out, step{at: t, status: []int{400, 401, 403, 404, 429}[r.IntN(5)]})
			continue
		}
		path := paths[r.IntN(len(paths))]
		spiked := false
		switch r.IntN(6) {
		case 0:
			if r.IntN(8) == 0 {
				dir = -dir
			}
			id += []int64{dir, dir, 0, 7}[r.IntN(4)]
			path = fmt.Sprintf("/api/items/%d", id)
			if r.IntN(3) == 0 {
				path += ".png" // answered with JSON: reclassified below
			}
		case 1:
			path = fmt.Sprintf("/p/%d", r.IntN(300)) // many distinct paths
		case 2:
			path = fmt.Sprintf("/n/%d", r.Int64N(1<<62)) // ids past 2^53: Lua reads them as doubles
		case 3:
			path = fmt.Sprintf("/img/%d/x.png", id) // an asset with an id: no run
		case 5:
			if r.IntN(8) == 0 { // assets alone for 70 s
				for range 70 {
					t = t.Add(time.Second)
					out = append(out, step{at: t, req: describe("/img/hero.png")})
				}
			}
		case 4:
			if r.IntN(4) == 0 { // a spike past what a 25 ms bucket holds
				throttled := r.IntN(3) == 0
				for range 20 + r.IntN(30) {
					out = append(out, step{at: t, req: describe("/api/search")})
					if throttled {
						out = append(out, step{at: t, refused: true})
					}
				}
				spiked = true
			}
			// a page's assets at browser speed
			for range r.IntN(40) {
				t = t.Add(time.Duration(r.Int64N(int64(20 * time.Millisecond))))
				out = append(out, step{at: t, req: describe(fmt.Sprintf("/a/%d.js", r.IntN(50)))})
			}
		}
		out = append(out, step{at: t, req: describe(path)})
		// The gateway refuses it (a throttle, a block): as it answers, or
		// once the upstream's time is up.
		if r.IntN(5) == 0 {
			out = append(out, step{at: t.Add(time.Duration(r.IntN(3)) * time.Duration(r.Int64N(int64(time.Second)))), refused: true})
		}
		// The answer to an asset shows it was none: right away, or once
		// later requests were counted (its own time, up to 12 s back).
		for i := len(out) - 1; i >= 0 && i >= len(out)-5; i-- {
			if st := out[i]; st.status == 0 && !st.reclass && st.req.Asset && r.IntN(3) == 0 {
				if strings.HasPrefix(st.req.Path, "/api/items/") || r.IntN(4) == 0 {
					out = append(out, step{at: st.at, req: st.req.Served(sensitive), reclass: true, page: r.IntN(3) == 0})
				}
				break
			}
		}
		// The answer to an ordinary request shows it was an asset (the
		// gateway asks only for GET or HEAD, never for a sensitive path or
		// a probe) or a document: right away, or once later requests were
		// counted; after a spike, maybe every request of it.
		back := 5
		if spiked && r.IntN(2) == 0 {
			back = 100
		}
		for i := len(out) - 1; i >= 0 && i >= len(out)-back; i-- {
			st := out[i]
			if !st.request() || st.req.Asset {
				continue
			}
			switch p := r.IntN(6); {
			case p < 2 && !st.req.Sensitive && !st.req.Probe:
				out = append(out, step{at: st.at, answer: "asset"})
			case p < 3:
				out = append(out, step{at: st.at, answer: "page"})
			}
			if back == 5 {
				break
			}
		}
	}
	return out
}

// TestMemoryMatchesRedis: the in-memory store and the Redis scripts make
// the same state, byte for byte, and so the same features, for the same
// requests and answers.
func TestMemoryMatchesRedis(t *testing.T) {
	t.Parallel()
	rdb, prefix := testenv.Redis(t)
	s, err := traffic.New(rdb, prefix)
	require.NoError(t, err)
	m, err := traffic.NewMemory(1000)
	require.NoError(t, err)
	ctx := context.Background()
	reclassified, answers, changed := 0, map[string]int{}, map[string]int{}
	for c := range 12 {
		ip := netip.AddrFrom4([4]byte{198, 18, 0, byte(c + 1)})
		var prev []byte
		for i, st := range clientSteps(uint64(c), 250) {
			switch {
			case st.status > 0:
				require.NoError(t, s.RecordResponse(ctx, ip, st.at, st.status))
				m.RecordResponse(ip, st.at, st.status)
			case st.answer == "page":
				require.NoError(t, s.RecordPage(ctx, ip, st.at))
				m.RecordPage(ip, st.at)
				answers[st.answer]++
			case st.answer == "asset":
				require.NoError(t, s.CountAsAsset(ctx, ip, st.at))
				m.CountAsAsset(ip, st.at)
				answers[st.answer]++
			case st.refused:
				require.NoError(t, s.RecordRefusal(ctx, ip, st.at))
				m.RecordRefusal(ip, st.at)
				answers["refused"]++
			case st.reclass:
				want, err := s.Reclassify(ctx, ip, st.at, st.req, st.page)
				require.NoError(t, err)
				got := m.Reclassify(ip, st.at, st.req, st.page)
				require.Equal(t, want, got, "client %d step %d: %+v", c, i, st)
				reclassified++
				if st.page {
					answers["reclassified page"]++
				}
			default:
				want, err := s.Observe(ctx, ip, st.at, st.req)
				require.NoError(t, err)
				got := m.Observe(ip, st.at, st.req)
				require.Equal(t, want, got, "client %d step %d: %+v", c, i, st)
			}
			raw, err := rdb.Get(ctx, wire.ClientKey(prefix, ip)).Bytes()
			require.NoError(t, err)
			mem, ok := m.State(ip, st.at)
			require.True(t, ok)
			require.Equal(t, raw, mem.Encode(), "client %d step %d: %+v", c, i, st)
			if st.answer != "" && string(raw) != string(prev) {
				changed[st.answer]++
			}
			if st.refused && string(raw) != string(prev) {
				changed["refused"]++
			}
			prev = raw
		}
	}
	assert.Greater(t, reclassified, 50, "the steps reclassify assets")
	assert.Greater(t, answers["asset"], 300, "the steps count ordinary requests as assets")
	assert.Greater(t, answers["page"], 100, "the steps count pages")
	t.Logf("answers %v, of which changed the state %v", answers, changed)
	assert.Greater(t, changed["asset"], answers["asset"]/2, "most while their buckets are in the rings")
	assert.Greater(t, changed["page"], answers["page"]/2)
	assert.Greater(t, answers["reclassified page"], 15, "the steps reclassify assets that were pages")
	assert.Greater(t, answers["refused"], 300, "the steps refuse requests")
	assert.Equal(t, answers["refused"], changed["refused"], "every refusal of a client with a state counts")
}

// A state not touched for its TTL starts again, as the Redis key expires.
func TestMemoryStateExpires(t *testing.T) {
	m, err := traffic.NewMemory(100)
	require.NoError(t, err)
	ip := netip.MustParseAddr("198.18.1.1")
	t0 := time.Unix(1_800_000_000, 0)
	for i := range 5 {
		m.Observe(ip, t0.Add(time.Duration(i)*time.Second), root)
	}
	o := m.Observe(ip, t0.Add(4*time.Second+61*time.Second), root)
	assert.Equal(t, 5, o.Intervals, "61 s after the last request: the same state")
	o = m.Observe(ip, t0.Add(4*time.Second+61*time.Second+62*time.Second), root)
	assert.Equal(t, 0, o.Intervals, "62 s after the last request: a new state")
	assert.EqualValues(t, 1, o.Count60s)

	// A window longer than the TTL keeps the state for the visit counter.
	long := traffic.Describe("/", nil, 5*time.Minute)
	m.Observe(ip, t0.Add(time.Hour), long)
	o = m.Observe(ip, t0.Add(time.Hour+4*time.Minute), long)
	assert.EqualValues(t, 2, o.Visits)
}

// The store holds at most its bound; recent clients are kept, the oldest
// forgotten.
func TestMemoryIsBounded(t *testing.T) {
	m, err := traffic.NewMemory(1000)
	require.NoError(t, err)
	now := time.Unix(1_800_000_000, 0)
	keep := netip.MustParseAddr("198.18.2.1")
	for i := range 10_000 {
		ip := netip.AddrFrom4([4]byte{10, 1, byte(i >> 8), byte(i)})
		m.Observe(ip, now, root)
		if i%100 == 0 {
			m.Observe(keep, now, root) // a client that keeps coming
		}
		require.LessOrEqual(t, m.Len(), 1000)
	}
	o := m.Observe(keep, now, root)
	assert.EqualValues(t, 101, o.Count60s, "a client seen all along is remembered")
	o = m.Observe(netip.AddrFrom4([4]byte{10, 1, 0, 0}), now, root)
	assert.EqualValues(t, 1, o.Count60s, "the first client was forgotten")
	m.Forget()
	assert.Zero(t, m.Len())
}

func TestMemoryResponses(t *testing.T) {
	m, err := traffic.NewMemory(100)
	require.NoError(t, err)
	ip := netip.MustParseAddr("198.18.3.1")
	now := time.Unix(1_800_000_000, 0)
	for _, status := range []int{200, 302, 404, 401, 403, 500} {
		m.RecordResponse(ip, now, status)
	}
	o := m.Observe(ip, now, root)
	assert.EqualValues(t, 3, o.Errors4xx)
	assert.EqualValues(t, 2, o.AuthFailures)
}

// Local bans: held until written back, the longer of two kept, expired
// ones gone, bounded.
func TestMemoryBans(t *testing.T) {
	m, err := traffic.NewMemory(4)
	require.NoError(t, err)
	now := time.Unix(1_800_000_000, 0)
	a, b := netip.MustParseAddr("198.18.4.1"), netip.MustParseAddr("198.18.4.2")
	_, banned := m.Banned(a, now)
	assert.False(t, banned)
	m.Ban(a, time.Minute, "score 0.90", now)
	m.Ban(a, time.Second, "shorter", now)
	left, banned := m.Banned(a, now.Add(10*time.Second))
	assert.True(t, banned)
	assert.Equal(t, 50*time.Second, left, "the longer ban holds")
	_, banned = m.Banned(b, now)
	assert.False(t, banned, "per client")
	_, banned = m.Banned(a, now.Add(time.Minute))
	assert.False(t, banned, "expired")
	assert.Zero(t, m.Bans())

	for i := range 6 {
		m.Ban(netip.AddrFrom4([4]byte{10, 2, 0, byte(i)}), time.Duration(i+1)*time.Minute, "x", now)
	}
	assert.Equal(t, 4, m.Bans(), "bounded")
	_, banned = m.Banned(netip.AddrFrom4([4]byte{10, 2, 0, 0}), now)
	assert.False(t, banned, "the ban that ends first gave way")
	_, banned = m.Banned(netip.AddrFrom4([4]byte{10, 2, 0, 5}), now)
	assert.True(t, banned)
}

// Replay writes each ban with its time left, drops those written, and
// keeps the rest when a write fails.
func TestMemoryReplay(t *testing.T) {
	m, err := traffic.NewMemory(100)
	require.NoError(t, err)
	now := time.Unix(1_800_000_000, 0)
	a, b, gone := netip.MustParseAddr("198.18.5.1"), netip.MustParseAddr("198.18.5.2"), netip.MustParseAddr("198.18.5.3")
	m.Ban(a, 10*time.Minute, "score 0.95", now)
	m.Ban(b, time.Minute, "repeated invalid requests", now)
	m.Ban(gone, time.Second, "x", now)

	down := errors.New("redis down")
	_, err = m.Replay(context.Background(), func(context.Context, netip.Addr, time.Duration, string, time.Time) error { return down }, now)
	assert.ErrorIs(t, err, down)
	_, banned := m.Banned(a, now)
	assert.True(t, banned, "kept, and enforced, for the next replay")

	var mu sync.Mutex
	got := map[netip.Addr]string{}
	later := now.Add(30 * time.Second)
	n, err := m.Replay(context.Background(), func(_ context.Context, ip netip.Addr, ttl time.Duration, reason string, at time.Time) error {
		mu.Lock()
		defer mu.Unlock()
		assert.Equal(t, later, at)
		got[ip] = fmt.Sprint(ttl, " ", reason)
		return nil
	}, later)
	require.NoError(t, err)
	assert.Equal(t, 2, n)
	assert.Equal(t, map[netip.Addr]string{a: "9m30s score 0.95", b: "30s repeated invalid requests"}, got)
	assert.Zero(t, m.Bans(), "written back: Redis has them now")
	_, banned = m.Banned(a, later)
	assert.False(t, banned)
}

// Known bans (Redis's, seen by this gateway) are what the fallback
// enforces; Redis saying "not banned" forgets them; a replayed ban becomes
// known.
func TestMemoryKnownBans(t *testing.T) {
	m, err := traffic.NewMemory(4)
	require.NoError(t, err)
	now := time.Unix(1_800_000_000, 0)
	a, b := netip.MustParseAddr("198.18.6.1"), netip.MustParseAddr("198.18.6.2")
	_, banned := m.BannedInRedis(a, now)
	assert.False(t, banned)
	m.Seen(a, time.Minute, now)
	m.Seen(a, time.Minute-10*time.Millisecond, now.Add(10*time.Millisecond)) // seen again, same ban
	left, banned := m.BannedInRedis(a, now.Add(20*time.Second))
	assert.True(t, banned)
	assert.Equal(t, 40*time.Second, left)
	_, banned = m.Banned(a, now)
	assert.False(t, banned, "Redis has it: not held for replay")
	m.Seen(b, 0, now) // a ban without expiry
	_, banned = m.BannedInRedis(b, now.Add(59*time.Minute))
	assert.True(t, banned)

	m.Lifted(a)
	_, banned = m.BannedInRedis(a, now)
	assert.False(t, banned, "lifted in Redis")
	_, banned = m.BannedInRedis(b, now.Add(61*time.Minute))
	assert.False(t, banned, "ended")

	c := netip.MustParseAddr("198.18.6.3")
	m.Ban(c, time.Minute, "score 0.91", now)
	_, err = m.Replay(context.Background(), func(context.Context, netip.Addr, time.Duration, string, time.Time) error { return nil }, now)
	require.NoError(t, err)
	_, banned = m.Banned(c, now)
	assert.False(t, banned, "written back")
	_, banned = m.BannedInRedis(c, now)
	assert.True(t, banned, "and known: should Redis go away again, it still holds here")

	for i := range 10 {
		m.Seen(netip.AddrFrom4([4]byte{10, 3, 0, byte(i)}), time.Minute, now)
	}
	_, banned = m.BannedInRedis(netip.AddrFrom4([4]byte{10, 3, 0, 2}), now)
	assert.True(t, banned)
	_, banned = m.BannedInRedis(netip.AddrFrom4([4]byte{10, 3, 0, 9}), now)
	assert.False(t, banned, "bounded: a full set takes no more")
}

// BenchmarkMemory: what the fallback adds to every request while Redis is
// up (the held-ban check and the lifted-ban check, nothing held or known),
// and what counting a request in memory costs while Redis is down (50,000
// clients, as BenchmarkObserve).
func BenchmarkMemory(b *testing.B) {
	m, err := traffic.NewMemory(100_000)
	require.NoError(b, err)
	ip := netip.MustParseAddr("198.18.7.1")
	now := time.Unix(1_800_000_000, 0)
	b.Run("checks", func(b *testing.B) {
		for b.Loop() {
			m.Banned(ip, now)
			m.Lifted(ip)
		}
	})
	b.Run("observe", func(b *testing.B) {
		i := 0
		for b.Loop() {
			m.Observe(netip.AddrFrom4([4]byte{10, 200 + byte(i>>16), byte(i >> 8), byte(i)}), now.Add(time.Duration(i)*250*time.Microsecond), root)
			i = (i + 1) % 50_000
		}
	})
}
