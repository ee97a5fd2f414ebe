package server_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulwarkgw/bulwark/dashboard/internal/history"
	"github.com/bulwarkgw/bulwark/dashboard/internal/hub"
	"github.com/bulwarkgw/bulwark/dashboard/internal/server"
	"github.com/bulwarkgw/bulwark/dashboard/internal/traffic"
	"github.com/bulwarkgw/bulwark/shared/clientid"
	"github.com/bulwarkgw/bulwark/shared/wire"
)

// fakeEvents records the last query and answers from its fields.
type fakeEvents struct {
	q        history.Query
	from, to time.Time
	top      int
	stats    int // calls to Stats
	page     history.Page
	err      error
}

func (f *fakeEvents) Events(_ context.Context, q history.Query) (history.Page, error) {
	f.q = q
	return f.page, f.err
}

func (f *fakeEvents) Stats(_ context.Context, from, to time.Time, top int) (history.Stats, error) {
	f.from, f.to, f.top = from, to, top
	f.stats++
	return history.Stats{Total: int64(f.stats)}, f.err
}

func (f *fakeEvents) Client(_ context.Context, ip string, _ int) (history.Client, error) {
	if f.err != nil {
		return history.Client{}, f.err
	}
	return history.Client{Events: []wire.Event{{ID: "x", IP: ip}}, Geo: &wire.Geo{Country: "GB"}}, nil
}

// fakeClients keeps bans by client as traffic.Store does: an IPv6 /64 is
// one client.
type fakeClients struct {
	unbanned []string
	banned   map[string]bool // by clientid.Display
	err      error
}

func (f *fakeClients) Client(_ context.Context, ip netip.Addr, _ time.Time) (traffic.Client, error) {
	if f.err != nil {
		return traffic.Client{}, f.err
	}
	return traffic.Client{Banned: f.banned[clientid.Display(ip)], BanTTLSeconds: 60, Requests: []wire.Point{{TS: 1, Requests: 5}}}, nil
}

func (f *fakeClients) Unban(_ context.Context, ip netip.Addr, now time.Time) (wire.Event, error) {
	who := clientid.Display(ip)
	if !f.banned[who] {
		return wire.Event{}, traffic.ErrNotBanned
	}
	delete(f.banned, who)
	f.unbanned = append(f.unbanned, who)
	return wire.Event{ID: "u1", Type: wire.EventUnban, IP: who, TS: now}, nil
}

var now = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

func newServer(t *testing.T, mod func(*server.Deps)) (http.Handler, *fakeEvents, *fakeClients) {
	t.Helper()
	ev := &fakeEvents{page: history.Page{Events: []wire.Event{{ID: "a"}}, Next: history.Cursor{TS: now, ID: "a"}}}
	cl := &fakeClients{banned: map[string]bool{"203.0.113.1": true, "2001:db8:1:2::/64": true}}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	d := server.Deps{
		Hub: hub.New(log), Snapshot: func() []byte { return []byte("{}") }, Events: ev, Summaries: ev, Clients: cl,
		UI: fstest.MapFS{"index.html": {Data: []byte("<h1>ui</h1>")}}, Log: log, Now: func() time.Time { return now },
	}
	if mod != nil {
		mod(&d)
	}
	e, err := server.New(d)
	require.NoError(t, err)
	return e, ev, cl
}

func do(h http.Handler, method, target string, hdr ...string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, target, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func TestEventsParams(t *testing.T) {
	t.Parallel()
	h, ev, _ := newServer(t, nil)

	rec := do(h, "GET", "/api/events?type=ban&ip=::ffff:203.0.113.1&country=gb&route=/api&min_score=0.8&from=2026-11-23T11:00:00Z&to=1795435200&limit=20")
	require.Equal(t, 200, rec.Code, rec.Body.String())
	assert.Equal(t, history.Query{
		Type: wire.EventBan, IP: "203.0.113.1", Country: "GB", Route: "/api", MinScore: 0.8,
		From: now.Add(-time.Hour), To: time.Unix(1795435200, 0).UTC(), Limit: 20,
	}, ev.q)
	var body struct {
		Events []wire.Event `json:"events"`
		Next   string       `json:"next"`
	}
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &body))
	assert.Len(t, body.Events, 1)
	c, err := history.ParseCursor(body.Next)
	require.NoError(t, err)
	assert.Equal(t, "a", c.ID)

	rec = do(h, "GET", "/api/events?cursor="+body.Next)
	require.Equal(t, 200, rec.Code)
	assert.Equal(t, history.Query{After: c, Limit: 50}, ev.q, "the cursor comes back; default limit 50")

	for _, tc := range []struct{ query, param string }{
		{"limit=0", "limit"}, {"limit=501", "limit"}, {"limit=x", "limit"},
		{"from=yesterday", "from"}, {"to=2026-13-01", "to"}, {"from=20&to=10", "from"},
		{"ip=1.2.3", "ip"}, {"ip=fe80::1%25eth0", "ip"}, {"ip=2001:db8::/48", "ip"},
		{"min_score=1.5", "min_score"}, {"min_score=x", "min_score"},
		{"cursor=garbage!", "cursor"},
		{"type=nonsense", "type"}, {"country=GBR", "country"}, {"country=1", "country"}, {"route=api", "route"},
	} {
		t.Run(tc.query, func(t *testing.T) {
			rec := do(h, "GET", "/api/events?"+tc.query)
			assert.Equal(t, 400, rec.Code)
			var e map[string]string
			require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &e))
			assert.True(t, strings.HasPrefix(e["error"], tc.param+":"), "error %q names %s", e["error"], tc.param)
		})
	}

	ev.err = errors.New("mongo down")
	rec = do(h, "GET", "/api/events")
	assert.Equal(t, 503, rec.Code)
	assert.JSONEq(t, `{"error":"event history unavailable"}`, rec.Body.String())
}

func TestStatsDefaults(t *testing.T) {
	t.Parallel()
	clock := now
	h, ev, _ := newServer(t, func(d *server.Deps) { d.Now = func() time.Time { return clock } })
	rec := do(h, "GET", "/api/stats")
	require.Equal(t, 200, rec.Code)
	assert.Equal(t, now.Add(-24*time.Hour), ev.from)
	assert.Equal(t, now, ev.to)
	assert.Equal(t, 10, ev.top)

	// Every open dashboard asks for the default summary: it is computed
	// once per few seconds, per top.
	assert.JSONEq(t, rec.Body.String(), do(h, "GET", "/api/stats").Body.String())
	assert.Equal(t, 1, ev.stats)
	do(h, "GET", "/api/stats?top=3")
	assert.Equal(t, 2, ev.stats)
	do(h, "GET", "/api/stats?from=2026-11-23T00:00:00Z")
	do(h, "GET", "/api/stats?from=2026-11-23T00:00:00Z")
	assert.Equal(t, 4, ev.stats, "explicit ranges are not cached")
	clock = clock.Add(6 * time.Second)
	do(h, "GET", "/api/stats")
	assert.Equal(t, 5, ev.stats, "the cache expires")
	rec = do(h, "GET", "/api/stats?top=0")
	assert.Equal(t, 400, rec.Code)
	assert.Contains(t, rec.Body.String(), "top:")
	rec = do(h, "GET", "/api/stats?from=2020-01-01T00:00:00Z")
	assert.Equal(t, 400, rec.Code, "a range over 31 days is refused")
	assert.Contains(t, rec.Body.String(), "from:")
	assert.Equal(t, 5, ev.stats, "without touching MongoDB")
}

func TestClientView(t *testing.T) {
	t.Parallel()
	h, _, _ := newServer(t, nil)
	rec := do(h, "GET", "/api/ip/203.0.113.1")
	require.Equal(t, 200, rec.Code)
	var v map[string]any
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &v))
	assert.Equal(t, "203.0.113.1", v["ip"])
	assert.Equal(t, true, v["banned"], "Redis half")
	assert.NotEmpty(t, v["requests"])
	assert.NotEmpty(t, v["events"], "MongoDB half")
	assert.Equal(t, "GB", v["geo"].(map[string]any)["country"])

	assert.Nil(t, v["unavailable"])

	assert.Equal(t, 400, do(h, "GET", "/api/ip/not-an-ip").Code)
}

// TestIPv6ClientIsItsSlash64: the detail view, the events filter and the
// unban take any address of a /64 or the /64 itself (its slash escaped in
// a path); Redis state is the /64's, history the address's or, when the
// /64 was asked for, the whole /64's.
func TestIPv6ClientIsItsSlash64(t *testing.T) {
	t.Parallel()
	const token = "s3cret-admin-token-123"
	var told []string
	h, ev, cl := newServer(t, func(d *server.Deps) {
		d.AdminToken = token
		d.Unbanned = func(ip string) { told = append(told, ip) }
	})
	view := func(path string) map[string]any {
		rec := do(h, "GET", path)
		require.Equal(t, 200, rec.Code, "%s: %s", path, rec.Body)
		var v map[string]any
		require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &v))
		return v
	}
	v := view("/api/ip/2001:db8:1:2::77")
	assert.Equal(t, "2001:db8:1:2::77", v["ip"])
	assert.Equal(t, "2001:db8:1:2::/64", v["client"])
	assert.Equal(t, true, v["banned"], "the /64's ban")
	assert.Equal(t, "2001:db8:1:2::77", v["events"].([]any)[0].(map[string]any)["ip"], "the address's history")

	v = view("/api/ip/2001:db8:1:2::%2F64")
	assert.Equal(t, "2001:db8:1:2::/64", v["ip"])
	assert.Equal(t, "2001:db8:1:2::/64", v["client"])
	assert.Equal(t, "2001:db8:1:2::/64", v["events"].([]any)[0].(map[string]any)["ip"], "the /64's history")
	assert.Equal(t, "192.0.2.7", view("/api/ip/::ffff:192.0.2.7")["client"])
	assert.Equal(t, 400, do(h, "GET", "/api/ip/2001:db8:1:2::%2F48").Code)

	rec := do(h, "GET", "/api/events?ip=2001:db8:1:2::%2F64")
	require.Equal(t, 200, rec.Code)
	assert.Equal(t, "2001:db8:1:2::/64", ev.q.IP)
	rec = do(h, "GET", "/api/events?ip=2001:DB8:1:2::5")
	require.Equal(t, 200, rec.Code)
	assert.Equal(t, "2001:db8:1:2::5", ev.q.IP, "an address filters on itself")

	rec = do(h, "POST", "/api/bans/2001:db8:1:2::99/unban", "Authorization", "Bearer "+token)
	require.Equal(t, 200, rec.Code, rec.Body.String())
	var body struct {
		Unbanned string     `json:"unbanned"`
		Event    wire.Event `json:"event"`
	}
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &body))
	assert.Equal(t, "2001:db8:1:2::/64", body.Unbanned)
	assert.Equal(t, "2001:db8:1:2::/64", body.Event.IP)
	assert.Equal(t, []string{"2001:db8:1:2::/64"}, told, "the live view drops the ban as it lists it")
	assert.Equal(t, 404, do(h, "POST", "/api/bans/2001:db8:1:2::%2F64/unban", "Authorization", "Bearer "+token).Code)
	cl.banned["2001:db8:1:2::/64"] = true
	assert.Equal(t, 200, do(h, "POST", "/api/bans/2001:db8:1:2::%2F64/unban", "Authorization", "Bearer "+token).Code)
	assert.Equal(t, 400, do(h, "POST", "/api/bans/2001:db8:1:2::%2F56/unban", "Authorization", "Bearer "+token).Code)
}

func TestClientViewDegrades(t *testing.T) {
	t.Parallel()
	h, ev, cl := newServer(t, nil)
	ev.err = errors.New("mongo down")
	rec := do(h, "GET", "/api/ip/203.0.113.1")
	require.Equal(t, 200, rec.Code, "Redis still answers")
	var v map[string]any
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &v))
	assert.Equal(t, true, v["banned"])
	assert.Equal(t, []any{}, v["events"])
	assert.Equal(t, []any{"event history"}, v["unavailable"])

	cl.err = errors.New("redis down")
	rec = do(h, "GET", "/api/ip/203.0.113.1")
	assert.Equal(t, 503, rec.Code)
	assert.JSONEq(t, `{"error":"live client state and event history unavailable"}`, rec.Body.String())
}

func TestUnban(t *testing.T) {
	t.Parallel()
	const token = "s3cret-admin-token-123"
	for _, tc := range []struct {
		name     string
		admin    string
		auth     string
		ip       string
		want     int
		unbanned bool
	}{
		{"read-only without a token", "", "Bearer " + token, "203.0.113.1", 403, false},
		{"no credentials", token, "", "203.0.113.1", 401, false},
		{"wrong token", token, "Bearer nope", "203.0.113.1", 401, false},
		{"token prefix is not the token", token, "Bearer " + token[:10], "203.0.113.1", 401, false},
		{"right token", token, "Bearer " + token, "203.0.113.1", 200, true},
		{"token in another scheme", token, "Basic " + token, "203.0.113.1", 401, false},
		{"not banned", token, "Bearer " + token, "198.51.100.1", 404, false},
		{"bad ip", token, "Bearer " + token, "x", 400, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var told []string
			h, _, cl := newServer(t, func(d *server.Deps) {
				d.AdminToken = tc.admin
				d.Unbanned = func(ip string) { told = append(told, ip) }
			})
			rec := do(h, "POST", "/api/bans/"+tc.ip+"/unban", "Authorization", tc.auth)
			assert.Equal(t, tc.want, rec.Code, rec.Body.String())
			assert.Equal(t, tc.unbanned, len(cl.unbanned) == 1)
			assert.Equal(t, cl.unbanned, told, "the live view hears of every unban, and only those")
		})
	}

	h, _, _ := newServer(t, func(d *server.Deps) { d.AdminToken = token })
	rec := do(h, "GET", "/api/config")
	assert.JSONEq(t, `{"admin":true}`, rec.Body.String())
	assert.NotContains(t, rec.Body.String(), token, "the token never reaches the browser")
	h, _, _ = newServer(t, nil)
	assert.JSONEq(t, `{"admin":false}`, do(h, "GET", "/api/config").Body.String())
}

func TestLogin(t *testing.T) {
	t.Parallel()
	h, _, _ := newServer(t, func(d *server.Deps) { d.User, d.Password = "ops", "pa55word" })
	for _, tc := range []struct {
		path       string
		user, pass string
		want       int
	}{
		{"/healthz", "", "", 200},
		{"/", "", "", 401},
		{"/api/events", "", "", 401},
		{"/ws", "", "", 401},
		{"/api/events", "ops", "wrong", 401},
		{"/api/events", "x", "pa55word", 401},
		{"/api/events", "ops", "pa55word", 200},
		{"/", "ops", "pa55word", 200},
	} {
		req := httptest.NewRequest("GET", tc.path, nil)
		if tc.user != "" {
			req.SetBasicAuth(tc.user, tc.pass)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		assert.Equal(t, tc.want, rec.Code, "%s as %q", tc.path, tc.user)
		if tc.want == 401 {
			assert.Contains(t, rec.Header().Get("WWW-Authenticate"), "Basic")
		}
	}

	ev := &fakeEvents{}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	_, err := server.New(server.Deps{
		Hub: hub.New(log), Snapshot: func() []byte { return nil }, Events: ev, Summaries: ev, Clients: &fakeClients{},
		UI: fstest.MapFS{}, Log: log, User: "only",
	})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "both a user and a password", "a user without a password is refused for that reason")
}

func TestWebsocketOrigin(t *testing.T) {
	t.Parallel()
	h, _, _ := newServer(t, func(d *server.Deps) { d.AllowedOrigins = []string{"https://ops.example"} })
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	for _, tc := range []struct {
		origin string
		want   int
	}{
		{"", 101},
		{srv.URL, 101},
		{"https://ops.example", 101},
		{"https://evil.example", 403},
	} {
		req, _ := http.NewRequest("GET", srv.URL+"/ws", nil)
		for k, v := range map[string]string{"Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13", "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="} {
			req.Header.Set(k, v)
		}
		if tc.origin != "" {
			req.Header.Set("Origin", tc.origin)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, tc.want, resp.StatusCode, "origin %q", tc.origin)
	}
}
