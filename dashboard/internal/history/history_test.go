package history_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulwarkgw/bulwark/dashboard/internal/history"
	"github.com/bulwarkgw/bulwark/dashboard/internal/testenv"
	"github.com/bulwarkgw/bulwark/shared/wire"
)

var t0 = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

// seed stores five events from three clients and returns a store over them.
func seed(t *testing.T) *history.Store {
	t.Helper()
	coll := testenv.Mongo(t).Collection("events")
	gb := &wire.Geo{Country: "GB", City: "London", Lat: 51.5, Lon: -0.1}
	_, err := coll.InsertMany(context.Background(), []any{
		wire.Event{ID: "a", TS: t0, Type: wire.EventBan, IP: "203.0.113.1", Path: "/api/products", Score: 0.9,
			Reasons: []wire.Reason{{Feature: "burst", Value: 40, Contribution: 0.9}}, Geo: &wire.Geo{Country: "DE"}},
		wire.Event{ID: "b", TS: t0.Add(time.Second), Type: wire.EventThrottle, IP: "203.0.113.1", Path: "/login", Score: 0.6},
		wire.Event{ID: "c", TS: t0.Add(2 * time.Second), Type: wire.EventBan, IP: "198.51.100.2", Path: "/apix", Score: 0.95, Geo: gb},
		wire.Event{ID: "d", TS: t0.Add(3 * time.Second), Type: wire.EventThrottle, IP: "198.51.100.2", Path: "/api", Score: 0.55, Geo: gb},
		// Same second as d: the id breaks the tie.
		wire.Event{ID: "e", TS: t0.Add(3 * time.Second), Type: wire.EventThrottle, IP: "198.51.100.2", Path: "/", Score: 0.5, Geo: gb},
		wire.Event{ID: "f", TS: t0.Add(4 * time.Second), Type: wire.EventBlock, IP: "192.0.2.9", Score: 0.85},
	})
	require.NoError(t, err)
	s, err := history.New(coll)
	require.NoError(t, err)
	return s
}

func ids(evs []wire.Event) []string {
	out := []string{}
	for _, e := range evs {
		out = append(out, e.ID)
	}
	return out
}

func TestEventsFilters(t *testing.T) {
	t.Parallel()
	s := seed(t)
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		q    history.Query
		want []string
	}{
		{"all, newest first, ties by id", history.Query{}, []string{"f", "e", "d", "c", "b", "a"}},
		{"type", history.Query{Type: wire.EventBan}, []string{"c", "a"}},
		{"ip", history.Query{IP: "203.0.113.1"}, []string{"b", "a"}},
		{"unknown ip", history.Query{IP: "192.0.2.1"}, []string{}},
		{"country", history.Query{Country: "GB"}, []string{"e", "d", "c"}},
		{"route prefix on segment boundaries", history.Query{Route: "/api/"}, []string{"d", "a"}},
		{"min score", history.Query{MinScore: 0.85}, []string{"f", "c", "a"}},
		{"time range, from inclusive, to exclusive", history.Query{From: t0.Add(time.Second), To: t0.Add(3 * time.Second)}, []string{"c", "b"}},
		{"combined", history.Query{IP: "198.51.100.2", Type: wire.EventThrottle, MinScore: 0.52}, []string{"d"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.q.Limit = 10
			p, err := s.Events(ctx, tc.q)
			require.NoError(t, err)
			assert.Equal(t, tc.want, ids(p.Events))
			assert.True(t, p.Next.IsZero(), "a single page has no next cursor")
		})
	}

	p, err := s.Events(ctx, history.Query{Limit: 10})
	require.NoError(t, err)
	a := p.Events[5]
	assert.Equal(t, t0, a.TS.UTC())
	assert.Equal(t, "DE", a.Geo.Country)
	assert.Equal(t, "burst", a.Reasons[0].Feature)

	for _, n := range []int{0, history.MaxLimit + 1} {
		_, err = s.Events(ctx, history.Query{Limit: n})
		assert.Error(t, err, "limit %d", n)
	}
}

func TestEventsPagination(t *testing.T) {
	t.Parallel()
	s := seed(t)
	ctx := context.Background()
	var got []string
	q := history.Query{Limit: 2}
	pages := 0
	for {
		p, err := s.Events(ctx, q)
		require.NoError(t, err)
		pages++
		got = append(got, ids(p.Events)...)
		if p.Next.IsZero() {
			break
		}
		// The cursor survives its URL form.
		c, err := history.ParseCursor(p.Next.String())
		require.NoError(t, err)
		require.Equal(t, p.Next, c)
		q.After = c
		require.Less(t, pages, 10, "pagination does not end")
	}
	assert.Equal(t, []string{"f", "e", "d", "c", "b", "a"}, got, "every event once, newest first")
	assert.Equal(t, 3, pages)

	// Filters hold across pages.
	p1, err := s.Events(ctx, history.Query{Country: "GB", Limit: 1})
	require.NoError(t, err)
	p2, err := s.Events(ctx, history.Query{Country: "GB", Limit: 5, After: p1.Next})
	require.NoError(t, err)
	assert.Equal(t, []string{"e"}, ids(p1.Events))
	assert.Equal(t, []string{"d", "c"}, ids(p2.Events))
}

func TestParseCursorRejectsGarbage(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"", "!!", "bm9jb2xvbg", "MTIzOg"} { // "nocolon", "123:"
		_, err := history.ParseCursor(s)
		assert.ErrorIs(t, err, history.ErrBadCursor, "%q", s)
	}
}

func TestStats(t *testing.T) {
	t.Parallel()
	s := seed(t)
	ctx := context.Background()

	st, err := s.Stats(ctx, t0, t0.Add(time.Hour), 2)
	require.NoError(t, err)
	assert.Equal(t, int64(6), st.Total)
	assert.Equal(t, []history.Count{{Key: "throttle", N: 3}, {Key: "ban", N: 2}, {Key: "block", N: 1}}, st.ByType)
	assert.Equal(t, []history.Count{{Key: "GB", N: 3}, {Key: "", N: 2}, {Key: "DE", N: 1}}, st.Country)
	assert.Equal(t, []history.TopIP{{IP: "198.51.100.2", Country: "GB", N: 3}, {IP: "203.0.113.1", Country: "DE", N: 2}}, st.TopIPs)

	// The range bounds every count.
	st, err = s.Stats(ctx, t0.Add(4*time.Second), t0.Add(time.Hour), 10)
	require.NoError(t, err)
	assert.Equal(t, int64(1), st.Total)
	assert.Equal(t, []history.TopIP{{IP: "192.0.2.9", N: 1}}, st.TopIPs)

	st, err = s.Stats(ctx, t0.Add(-time.Hour), t0, 10)
	require.NoError(t, err)
	assert.Zero(t, st.Total)
	assert.Empty(t, st.TopIPs)

	_, err = s.Stats(ctx, t0, t0.Add(time.Hour), 0)
	assert.Error(t, err)
}

// A folded event stands for its count of requests, everywhere a count is
// given; an event without one for a single request.
func TestStatsCountRequestsOfFoldedEvents(t *testing.T) {
	t.Parallel()
	coll := testenv.Mongo(t).Collection("events")
	gb, de := &wire.Geo{Country: "GB"}, &wire.Geo{Country: "DE"}
	_, err := coll.InsertMany(context.Background(), []any{
		// One client hammering: its first throttle, then 40 more folded.
		wire.Event{ID: "a", TS: t0, Type: wire.EventThrottle, IP: "203.0.113.1", Geo: gb},
		wire.Event{ID: "b", TS: t0.Add(time.Second), Type: wire.EventThrottle, IP: "203.0.113.1", Geo: gb, Count: 40, FirstTS: t0.Add(time.Millisecond)},
		// A client seen twice from one country and folded once from another:
		// its country is where most of its requests came from.
		wire.Event{ID: "c", TS: t0, Type: wire.EventBan, IP: "198.51.100.2", Geo: de},
		wire.Event{ID: "d", TS: t0, Type: wire.EventBan, IP: "198.51.100.2", Geo: de},
		wire.Event{ID: "e", TS: t0, Type: wire.EventDenyList, IP: "198.51.100.2", Geo: gb, Count: 5},
		// Three single events outnumber one event of two requests.
		wire.Event{ID: "f", TS: t0, Type: wire.EventBlock, IP: "192.0.2.9"},
		wire.Event{ID: "g", TS: t0, Type: wire.EventBlock, IP: "192.0.2.9"},
		wire.Event{ID: "h", TS: t0, Type: wire.EventBlock, IP: "192.0.2.9"},
		wire.Event{ID: "i", TS: t0, Type: wire.EventKeyInvalid, IP: "192.0.2.10", Count: 2},
	})
	require.NoError(t, err)
	s, err := history.New(coll)
	require.NoError(t, err)
	ctx := context.Background()

	st, err := s.Stats(ctx, t0, t0.Add(time.Hour), 3)
	require.NoError(t, err)
	assert.Equal(t, int64(41+7+3+2), st.Total)
	assert.Equal(t, []history.Count{{Key: "throttle", N: 41}, {Key: "deny_list", N: 5}, {Key: "block", N: 3}, {Key: "ban", N: 2}, {Key: "key_invalid", N: 2}}, st.ByType)
	assert.Equal(t, []history.Count{{Key: "GB", N: 46}, {Key: "", N: 5}, {Key: "DE", N: 2}}, st.Country)
	assert.Equal(t, []history.TopIP{{IP: "203.0.113.1", Country: "GB", N: 41}, {IP: "198.51.100.2", Country: "GB", N: 7}, {IP: "192.0.2.9", N: 3}}, st.TopIPs)

	c, err := s.Client(ctx, "198.51.100.2", 10)
	require.NoError(t, err)
	assert.Equal(t, []history.Count{{Key: "deny_list", N: 5}, {Key: "ban", N: 2}}, c.ByType)
	c, err = s.Client(ctx, "203.0.113.1", 10)
	require.NoError(t, err)
	assert.Equal(t, []string{"b", "a"}, ids(c.Events))
	assert.Equal(t, 40, c.Events[0].Count)
	assert.Equal(t, t0.Add(time.Millisecond), c.Events[0].FirstTS.UTC())
}

func TestClient(t *testing.T) {
	t.Parallel()
	s := seed(t)
	ctx := context.Background()

	c, err := s.Client(ctx, "203.0.113.1", 50)
	require.NoError(t, err)
	assert.Equal(t, []string{"b", "a"}, ids(c.Events))
	assert.ElementsMatch(t, []history.Count{{Key: "throttle", N: 1}, {Key: "ban", N: 1}}, c.ByType)
	require.NotNil(t, c.Latest, "the newest event with reasons")
	assert.Equal(t, "a", c.Latest.ID)
	require.NotNil(t, c.Geo)
	assert.Equal(t, "DE", c.Geo.Country)

	// The latest scored event is found beyond the page.
	c, err = s.Client(ctx, "203.0.113.1", 1)
	require.NoError(t, err)
	assert.Equal(t, []string{"b"}, ids(c.Events))
	require.NotNil(t, c.Latest)
	assert.Equal(t, "a", c.Latest.ID)
	require.NotNil(t, c.Geo)

	c, err = s.Client(ctx, "192.0.2.200", 10)
	require.NoError(t, err)
	assert.Empty(t, c.Events)
	assert.Nil(t, c.Latest)
	assert.Nil(t, c.Geo)
}

// TestIPv6Slash64History: an address finds its own events, the /64 (as
// clientid.Display spells it) those of every address in it and those
// recorded for the /64 itself (an admin ban, an unban); the neighbouring
// /64 and an address that only looks alike stay out.
func TestIPv6Slash64History(t *testing.T) {
	t.Parallel()
	coll := testenv.Mongo(t).Collection("events")
	ctx := context.Background()
	reasons := []wire.Reason{{Feature: "burst", Value: 40, Contribution: 0.9}}
	_, err := coll.InsertMany(ctx, []any{
		wire.Event{ID: "a", TS: t0, Type: wire.EventBlock, IP: "2001:db8:1:2::5", Score: 0.9, Reasons: reasons, Geo: &wire.Geo{Country: "DE"}},
		wire.Event{ID: "b", TS: t0.Add(time.Second), Type: wire.EventThrottle, IP: "2001:db8:1:2:ffff::1", Score: 0.6},
		wire.Event{ID: "c", TS: t0.Add(2 * time.Second), Type: wire.EventBan, IP: "2001:db8:1:2::/64"},
		wire.Event{ID: "d", TS: t0.Add(3 * time.Second), Type: wire.EventBlock, IP: "2001:db8:1:3::5"},
		wire.Event{ID: "e", TS: t0.Add(4 * time.Second), Type: wire.EventBlock, IP: "2001:db8:1:22::5"},
		wire.Event{ID: "f", TS: t0.Add(5 * time.Second), Type: wire.EventUnban, IP: "2001:db8:1:2::/64"},
		wire.Event{ID: "g", TS: t0.Add(6 * time.Second), Type: wire.EventBlock, IP: "2001:db8::1:2:0:5"}, // in 2001:db8::/64
	})
	require.NoError(t, err)
	s, err := history.New(coll)
	require.NoError(t, err)

	page, err := s.Events(ctx, history.Query{IP: "2001:db8:1:2::/64", Limit: 50})
	require.NoError(t, err)
	assert.Equal(t, []string{"f", "c", "b", "a"}, ids(page.Events))
	page, err = s.Events(ctx, history.Query{IP: "2001:db8:1:2::5", Limit: 50})
	require.NoError(t, err)
	assert.Equal(t, []string{"a"}, ids(page.Events), "an address is itself")
	page, err = s.Events(ctx, history.Query{IP: "2001:db8::/64", Limit: 50})
	require.NoError(t, err)
	assert.Equal(t, []string{"g"}, ids(page.Events), "zero groups shortened across the /64's boundary")

	c, err := s.Client(ctx, "2001:db8:1:2::/64", 10)
	require.NoError(t, err)
	assert.Equal(t, []string{"f", "c", "b", "a"}, ids(c.Events))
	assert.ElementsMatch(t, []history.Count{{Key: "ban", N: 1}, {Key: "unban", N: 1}, {Key: "throttle", N: 1}, {Key: "block", N: 1}}, c.ByType)
	require.NotNil(t, c.Latest)
	assert.Equal(t, "a", c.Latest.ID)
	assert.Equal(t, "DE", c.Geo.Country)
}
