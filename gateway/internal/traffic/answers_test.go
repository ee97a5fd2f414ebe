package traffic_test

import (
	"context"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulwarkgw/bulwark/gateway/internal/testenv"
	"github.com/bulwarkgw/bulwark/gateway/internal/traffic"
	"github.com/bulwarkgw/bulwark/shared/wire"
)

// answerer is the Redis store or the in-memory one with what the gateway's
// outcome step tells them, seen alike.
type answerer struct {
	observe      observer
	reclassify   func(ip netip.Addr, at time.Time, req traffic.Request, page bool) traffic.Observation
	recordPage   func(ip netip.Addr, at time.Time)
	countAsAsset func(ip netip.Addr, at time.Time)
}

func answerers(t *testing.T) map[string]answerer {
	s := newStore(t)
	m, err := traffic.NewMemory(1000)
	require.NoError(t, err)
	ctx := context.Background()
	return map[string]answerer{
		"redis": {
			observe: func(ip netip.Addr, at time.Time, req traffic.Request) traffic.Observation {
				o, err := s.Observe(ctx, ip, at, req)
				require.NoError(t, err)
				return o
			},
			reclassify: func(ip netip.Addr, at time.Time, req traffic.Request, page bool) traffic.Observation {
				o, err := s.Reclassify(ctx, ip, at, req, page)
				require.NoError(t, err)
				return o
			},
			recordPage:   func(ip netip.Addr, at time.Time) { require.NoError(t, s.RecordPage(ctx, ip, at)) },
			countAsAsset: func(ip netip.Addr, at time.Time) { require.NoError(t, s.CountAsAsset(ctx, ip, at)) },
		},
		"memory": {observe: m.Observe, reclassify: m.Reclassify, recordPage: m.RecordPage, countAsAsset: m.CountAsAsset},
	}
}

// A page's 25 thumbnails served without an extension
// (/image/60844/productModel/200x200), each counted as an ordinary request
// until its image answer moves it to the asset windows: the burst, rate
// and 60 s windows read as if they had had one, and the assets are
// counted as assets.
func TestExtensionlessAssetsLeaveTheRequestWindows(t *testing.T) {
	t.Parallel()
	for name, st := range answerers(t) {
		for i, spacing := range []time.Duration{38 * time.Millisecond, 0} { // over a second, and all in one 25 ms bucket
			ip := netip.AddrFrom4([4]byte{198, 51, 120, byte(i + 1)})
			t0 := time.Unix(1_800_000_000, 0).Add(310 * time.Millisecond)
			page := st.observe(ip, t0, get("/products/7"))
			st.recordPage(ip, t0)
			require.EqualValues(t, 1, page.Count1s, name)
			at := t0.Add(20 * time.Millisecond)
			for j := range 25 {
				req := get(fmt.Sprintf("/image/%d/productModel/200x200", 60844+j))
				require.False(t, req.Asset, "no extension: ordinary until answered")
				o := st.observe(ip, at, req)
				assert.EqualValues(t, 2, o.Count1s, "%s %v: the page and this one; the thumbnails before it are assets", name, spacing)
				assert.EqualValues(t, j, o.Assets10s, "%s %v", name, spacing)
				st.countAsAsset(ip, at)
				at = at.Add(spacing)
			}
			next := st.observe(ip, at.Add(5*time.Millisecond), get("/products/8"))
			assert.Equal(t, [3]int64{2, 2, 2}, counts(next), "%s %v: the two pages only, as before the thumbnails", name, spacing)
			assert.EqualValues(t, 25, next.Assets10s, "%s %v", name, spacing)
			assert.EqualValues(t, 25, next.Assets60s, "%s %v", name, spacing)
			assert.EqualValues(t, 1, next.Pages60s, "%s %v: /products/8 not answered yet", name, spacing)
			assert.EqualValues(t, 27, next.Visits, "%s %v: a visit either way", name, spacing)
			// What stays: each thumbnail's path and gap.
			assert.Greater(t, next.DistinctPaths, int64(20), "%s %v", name, spacing)
			assert.EqualValues(t, 11, next.Intervals, "%s %v", name, spacing)
		}

		// Answered after the windows moved on, a request is left where
		// it was counted once its bucket has left the ring, and taken
		// out of those still holding it.
		ip := netip.AddrFrom4([4]byte{198, 51, 120, 10})
		t0 := time.Unix(1_800_000_100, 0)
		st.observe(ip, t0, get("/img/thumb"))
		st.observe(ip, t0.Add(2*time.Second), get("/products/7"))
		st.countAsAsset(ip, t0)
		o := st.observe(ip, t0.Add(2500*time.Millisecond), get("/products/8"))
		assert.Equal(t, [3]int64{2, 2, 2}, counts(o), "%s: out of the 10 s and 60 s windows (the 1 s one had let it go)", name)
		assert.EqualValues(t, 1, o.Assets10s, name)
		assert.EqualValues(t, 1, o.Assets60s, name)

		// No state, no count: an answer alone creates nothing.
		none := netip.AddrFrom4([4]byte{198, 51, 120, 11})
		st.countAsAsset(none, t0)
		st.recordPage(none, t0)
		o = st.observe(none, t0.Add(time.Second), get("/"))
		assert.Equal(t, [3]int64{1, 1, 1}, counts(o), name)
		assert.Zero(t, o.Assets60s, name)
		assert.Zero(t, o.Pages60s, name)
	}
}

// Pages60s counts the HTML answers of the last 60 s, Assets60s the page
// assets (by path, or by their answer), both windowed as Count60s; an
// "asset" whose answer was a page counts as a page, not as an asset.
func TestPagesAndAssetsOver60s(t *testing.T) {
	t.Parallel()
	for name, st := range answerers(t) {
		ip := netip.MustParseAddr("198.51.121.1")
		t0 := time.Unix(1_800_000_000, 0)
		for p := range 4 {
			at := t0.Add(time.Duration(p) * 12 * time.Second)
			o := st.observe(ip, at, get(fmt.Sprintf("/products/%d", p)))
			assert.EqualValues(t, p, o.Pages60s, "%s: the pages answered before this one", name)
			assert.EqualValues(t, p*11, o.Assets60s, name)
			st.recordPage(ip, at)
			for a := range 10 {
				o = st.observe(ip, at.Add(time.Duration(a+1)*10*time.Millisecond), get(fmt.Sprintf("/static/%d.css", a)))
			}
			assert.EqualValues(t, p*11+10, o.Assets60s, "%s: this one included", name)
			assert.EqualValues(t, 10, o.Assets10s, "%s: the 10 s window has this page's only", name)
			thumb := at.Add(200 * time.Millisecond)
			st.observe(ip, thumb, get(fmt.Sprintf("/thumbs/%d", p)))
			st.countAsAsset(ip, thumb)
		}
		o := st.observe(ip, t0.Add(40*time.Second), get("/cart"))
		assert.EqualValues(t, 4, o.Pages60s, name)
		assert.EqualValues(t, 44, o.Assets60s, name)
		assert.EqualValues(t, 5, o.Count60s, "%s: the pages and /cart", name)

		// 80 s on, the window holds 20–80 s: the first two pages and
		// their assets have left.
		o = st.observe(ip, t0.Add(80*time.Second), get("/cart"))
		assert.EqualValues(t, 2, o.Pages60s, "%s: the pages at 24 s and 36 s", name)
		assert.EqualValues(t, 22, o.Assets60s, name)
		o = st.observe(ip, t0.Add(140*time.Second), get("/cart"))
		assert.Zero(t, o.Pages60s, name)
		assert.Zero(t, o.Assets60s, name)

		// /products/9.png answered with a page: a page, no asset.
		fake := netip.MustParseAddr("198.51.121.2")
		req := get("/products/9.png")
		require.True(t, req.Asset)
		o = st.observe(fake, t0, req)
		assert.EqualValues(t, 1, o.Assets60s, name)
		o = st.reclassify(fake, t0, req.Served(nil), true)
		assert.Zero(t, o.Assets60s, name)
		assert.Zero(t, o.Assets10s, name)
		assert.EqualValues(t, 1, o.Pages60s, "%s: counted with its reclassification", name)
		assert.EqualValues(t, 1, o.Count1s, name)
	}
}

// A state the gateway wrote before the pages and assets rings (version 4,
// 119 bytes) is read as none: counting starts again.
func TestOlderStateStartsAgain(t *testing.T) {
	t.Parallel()
	rdb, prefix := testenv.Redis(t)
	s, err := traffic.New(rdb, prefix)
	require.NoError(t, err)
	ctx := context.Background()
	ip := netip.MustParseAddr("198.51.122.1")
	old := make([]byte, 119)
	old[0] = 4
	for i := 5; i < len(old); i++ {
		old[i] = 9
	}
	key := wire.ClientKey(prefix, ip)
	require.NoError(t, rdb.Set(ctx, key, old, time.Minute).Err())
	require.NoError(t, s.CountAsAsset(ctx, ip, time.Unix(1_800_000_000, 0)))
	require.NoError(t, s.RecordPage(ctx, ip, time.Unix(1_800_000_000, 0)))
	raw, err := rdb.Get(ctx, key).Bytes()
	require.NoError(t, err)
	assert.Equal(t, old, raw, "an answer leaves a state it cannot read alone")
	o, err := s.Observe(ctx, ip, time.Unix(1_800_000_000, 0), root)
	require.NoError(t, err)
	assert.Equal(t, [3]int64{1, 1, 1}, counts(o))
	assert.Zero(t, o.Errors4xx)
	assert.EqualValues(t, 1, o.Visits)
	raw, err = rdb.Get(ctx, key).Bytes()
	require.NoError(t, err)
	assert.Len(t, raw, wire.ClientStateSize)
	assert.EqualValues(t, wire.ClientStateVersion, raw[0])
}
