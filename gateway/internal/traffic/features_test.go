package traffic_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulwarkgw/bulwark/gateway/internal/loginname"
	"github.com/bulwarkgw/bulwark/gateway/internal/pathnorm"
	"github.com/bulwarkgw/bulwark/gateway/internal/traffic"
)

func TestDescribeKeysPathsAsBackendsReadThem(t *testing.T) {
	for in, want := range map[string]string{
		"/api/data": "/api/data", "/API/DATA": "/api/data", "/api/data/": "/api/data",
		"/api/data//": "/api/data", "/": "/", "": "/", "//": "/", "/api/data.json": "/api/data",
		"/api/data.": "/api/data", "/api/data;x=1": "/api/data", "/api/data ": "/api/data",
	} {
		assert.Equal(t, want, traffic.Describe(in, nil, time.Minute).Path, in)
	}
	sensitive := map[string]bool{"/api/login": true}
	assert.True(t, traffic.Describe("/API/Login.json", sensitive, time.Minute).Sensitive)
	exact := &pathnorm.Equivalence{}
	assert.False(t, traffic.DescribeAs(exact, "/API/Login.json", sensitive, time.Minute).Sensitive)
}

func TestDescribe(t *testing.T) {
	sensitive := map[string]bool{"/api/data": true, "/auth": true}
	tests := []struct {
		path      string
		sensitive bool
		pattern   string
		id        int64
	}{
		{"/API/Data/", true, "", 0},
		{"/auth", true, "", 0},
		{"/api/products/42", false, "/api/products/:id", 42},
		{"/api/products/42/reviews", false, "/api/products/:id/reviews", 42},
		{"/users/7/orders/19", false, "/users/7/orders/:id", 19},
		{"/api/products/abc", false, "", 0},
		{"/v2/items", false, "", 0},
		{"/n/1234567890123456789", false, "", 0}, // too long for an id
	}
	for _, tt := range tests {
		r := traffic.Describe(tt.path, sensitive, 3*time.Second)
		assert.Equal(t, tt.sensitive, r.Sensitive, tt.path)
		assert.Equal(t, tt.pattern, r.Pattern, tt.path)
		assert.Equal(t, tt.id, r.ID, tt.path)
		assert.Equal(t, 3*time.Second, r.VisitWindow)
	}
}

func TestRegularity(t *testing.T) {
	n, cv := traffic.Regularity(nil)
	assert.Equal(t, 0, n)
	assert.Zero(t, cv)
	n, cv = traffic.Regularity([]int64{5000, 4000, 3000, 2000})
	assert.Equal(t, 3, n)
	assert.Zero(t, cv, "a metronome")
	n, cv = traffic.Regularity([]int64{1000, 1000, 1000})
	assert.Equal(t, 2, n)
	assert.Zero(t, cv, "simultaneous requests")
	// Gaps 0, 0, 0, 6000: mean 1500, stddev ≈ 2598 → CV ≈ 1.73 (a page
	// with its assets, then a pause).
	_, cv = traffic.Regularity([]int64{7000, 1000, 1000, 1000, 1000})
	assert.InDelta(t, 1.732, cv, 1e-3)
}

func TestObserveFeatures(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	ip := netip.MustParseAddr("203.0.113.9")
	t0 := time.Unix(1_800_000_000, 0)
	sensitive := map[string]bool{"/auth": true}
	obs := func(at time.Duration, path string) traffic.Observation {
		t.Helper()
		o, err := s.Observe(ctx, ip, t0.Add(at), traffic.Describe(path, sensitive, time.Minute))
		require.NoError(t, err)
		return o
	}

	// A scraper walks product ids, one every 250 ms.
	var o traffic.Observation
	for i := range 6 {
		o = obs(time.Duration(i)*250*time.Millisecond, "/api/products/"+string(rune('1'+i)))
	}
	assert.Equal(t, int64(5), o.SequentialIDs)
	assert.Equal(t, int64(6), o.DistinctPaths)
	assert.Equal(t, 5, o.Intervals)
	assert.Zero(t, o.IntervalCV)
	assert.Equal(t, int64(6), o.Visits)

	// A jump breaks the run; a path without an id keeps it.
	o = obs(1600*time.Millisecond, "/api/products/9")
	assert.Equal(t, int64(0), o.SequentialIDs)
	o = obs(1700*time.Millisecond, "/api/products/8")
	assert.Equal(t, int64(1), o.SequentialIDs)
	o = obs(1800*time.Millisecond, "/AUTH/")
	assert.Equal(t, int64(1), o.SequentialIDs)
	assert.True(t, o.Sensitive)
	assert.Equal(t, int64(1), o.SensitiveHits)
	assert.Equal(t, int64(9), o.DistinctPaths)

	// Upstream answers: two 401s and a 404 count; a 200 and a 502 do not.
	for _, status := range []int{401, 404, 403, 200, 502} {
		require.NoError(t, s.RecordResponse(ctx, ip, t0.Add(2*time.Second), status))
	}
	o = obs(2100*time.Millisecond, "/auth")
	assert.Equal(t, int64(2), o.SensitiveHits)
	assert.Equal(t, int64(3), o.Errors4xx)
	assert.Equal(t, int64(2), o.AuthFailures)
	assert.Equal(t, 9, o.Intervals)

	// Two minutes later everything has aged out but the new request. (The
	// 60 s windows slide in 10 s and 20 s steps and the distinct paths by
	// the minute, so a minute and a bit may still show a fading part of
	// what came just over a minute ago.)
	o = obs(125*time.Second, "/")
	assert.Equal(t, [3]int64{1, 1, 1}, counts(o))
	assert.Zero(t, o.SensitiveHits)
	assert.Zero(t, o.Errors4xx)
	assert.Zero(t, o.AuthFailures)
	assert.Equal(t, int64(1), o.DistinctPaths)
}

// TestVisitWindow is seed 002's counter: per IP across paths, a fixed
// window anchored at the first visit (S26 and S28 with a 3 s window).
func TestVisitWindow(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	ip := netip.MustParseAddr("127.0.0.40")
	req := traffic.Describe("/svc/public", nil, 300*time.Millisecond)
	var visits []int64
	for range 7 {
		o, err := s.Observe(ctx, ip, time.Now(), req)
		require.NoError(t, err)
		visits = append(visits, o.Visits)
	}
	assert.Equal(t, []int64{1, 2, 3, 4, 5, 6, 7}, visits)
	// The window's expiry is Redis's own clock: wait it out.
	require.Eventually(t, func() bool {
		o, err := s.Observe(ctx, ip, time.Now(), req)
		require.NoError(t, err)
		return o.Visits == 1
	}, 5*time.Second, 100*time.Millisecond)
}

func TestRecordResponseIgnoresOtherStatuses(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	ip := netip.MustParseAddr("198.51.100.77")
	now := time.Now()
	for _, status := range []int{200, 204, 301, 399, 500, 503} {
		require.NoError(t, s.RecordResponse(ctx, ip, now, status))
	}
	o, err := s.Observe(ctx, ip, now, root)
	require.NoError(t, err)
	assert.Zero(t, o.Errors4xx)
	assert.Zero(t, o.AuthFailures)
}

// TestSequentialRunsGoOneWay: a run grows by steps of +1 (or -1), always
// the same way; back-and-forth browsing among neighbours does not.
func TestSequentialRunsGoOneWay(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	ip := netip.MustParseAddr("203.0.113.10")
	at := time.Unix(1_800_000_000, 0)
	run := func(ids ...string) []int64 {
		var out []int64
		for _, id := range ids {
			at = at.Add(time.Second)
			o, err := s.Observe(ctx, ip, at, traffic.Describe("/p/"+id, nil, time.Minute))
			require.NoError(t, err)
			out = append(out, o.SequentialIDs)
		}
		return out
	}
	assert.Equal(t, []int64{0, 1, 2, 3}, run("10", "11", "12", "13"))
	assert.Equal(t, []int64{0, 1, 1, 2}, run("12", "11", "11", "10"), "a jump back resets; the same id again keeps the run")
	assert.Equal(t, []int64{3, 0, 1, 0}, run("9", "10", "9", "10"), "9 goes on down; then back and forth")
	assert.Equal(t, []int64{0, 0}, run("12", "14"), "steps of 2 are not a run")
}

func TestPrincipalOf(t *testing.T) {
	req := func(hdr, val, query string) *http.Request {
		r := httptest.NewRequest("GET", "/api/x"+query, nil)
		if hdr != "" {
			r.Header.Set(hdr, val)
		}
		return r
	}
	k := traffic.PrincipalOf(req("X-API-Key", "secret-1", ""))
	assert.Regexp(t, `^key:[0-9a-f]{16}$`, k)
	assert.NotContains(t, k, "secret")
	assert.Equal(t, k, traffic.PrincipalOf(req("Authorization", "Bearer secret-1", "")))
	assert.Equal(t, k, traffic.PrincipalOf(req("", "", "?KEY=secret-1")))
	assert.NotEqual(t, k, traffic.PrincipalOf(req("X-API-Key", "secret-2", "")))
	assert.Empty(t, traffic.PrincipalOf(req("", "", "")))
	assert.Empty(t, traffic.PrincipalOf(req("Authorization", "Basic YTpi", "")))

	d := traffic.DescribeRequest(req("X-API-Key", "secret-1", ""), nil, time.Minute)
	assert.Equal(t, k, d.Principal)
	assert.Equal(t, "/api/x", d.Path)
}

// TestObservePrincipalTravel: a verified principal's last other address
// and its age come back with the observation, from any client address; a
// principal that was only observed, never remembered, moves nothing.
func TestObservePrincipalTravel(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	t0 := time.Unix(1_800_000_000, 0)
	london, tokyo := netip.MustParseAddr("81.2.69.142"), netip.MustParseAddr("192.0.2.1")
	req := traffic.Describe("/api/orders", nil, time.Minute)
	req.Principal = "key:0123456789abcdef"

	o, err := s.Observe(ctx, london, t0, req)
	require.NoError(t, err)
	assert.False(t, o.PrevIP.IsValid(), "a new principal")
	assert.Equal(t, [3]int64{1, 1, 1}, counts(o), "counted as usual")
	o, err = s.Observe(ctx, tokyo, t0.Add(time.Second), req)
	require.NoError(t, err)
	assert.False(t, o.PrevIP.IsValid(), "observing a principal never records it")

	require.NoError(t, s.Remember(ctx, req.Principal, london, t0))
	o, err = s.Observe(ctx, london, t0.Add(time.Second), req)
	require.NoError(t, err)
	assert.False(t, o.PrevIP.IsValid(), "the same address")

	o, err = s.Observe(ctx, tokyo, t0.Add(90*time.Second), req)
	require.NoError(t, err)
	assert.Equal(t, london, o.PrevIP)
	assert.Equal(t, 90*time.Second, o.PrevAge)
	assert.Equal(t, [3]int64{1, 1, 1}, counts(o), "counts stay per client address")

	// Another principal is tracked apart.
	other := req
	other.Principal = "key:fedcba9876543210"
	o, err = s.Observe(ctx, tokyo, t0.Add(91*time.Second), other)
	require.NoError(t, err)
	assert.False(t, o.PrevIP.IsValid())
}

func TestLoginOf(t *testing.T) {
	loginOf := func(r *http.Request) string {
		t.Helper()
		login, _, err := traffic.LoginOf(r, loginname.Last)
		require.NoError(t, err)
		return login
	}
	post := func(ct, body string) *http.Request {
		r := httptest.NewRequest("POST", "/auth", strings.NewReader(body))
		r.Header.Set("Content-Type", ct)
		return r
	}
	r := post("application/json", `{"username":"Alice","password":"wonderland"}`)
	alice := loginOf(r)
	assert.Regexp(t, `^login:[0-9a-f]{16}$`, alice)
	rest, err := io.ReadAll(r.Body)
	require.NoError(t, err)
	assert.Equal(t, `{"username":"Alice","password":"wonderland"}`, string(rest), "the upstream still gets the whole body")

	assert.Equal(t, alice, loginOf(post("application/x-www-form-urlencoded", "username=alice&password=x")), "case-insensitive, form or JSON")
	assert.Equal(t, alice, loginOf(post("application/json", `{"email":" ALICE "}`)))
	assert.NotEqual(t, alice, loginOf(post("application/json", `{"username":"bob"}`)))
	assert.Equal(t, alice, loginOf(post("application/json", `{"username":"ＡＬＩＣＥ"}`)), "NFKC")
	assert.Equal(t, alice, loginOf(post("application/x-www-form-urlencoded", "username=bob&username=alice")), "the last duplicate")
	first, _, _ := traffic.LoginOf(post("application/x-www-form-urlencoded", "username=alice&username=bob"), loginname.First)
	assert.Equal(t, alice, first)
	for _, body := range []string{`{"password":"x"}`, `not json`, `{"username":7}`, ``} {
		assert.Empty(t, loginOf(post("application/json", body)), body)
	}
	big := `{"username":"alice","pad":"` + strings.Repeat("x", traffic.MaxLoginBody) + `"}`
	r = post("application/json", big)
	_, whole, err := traffic.LoginOf(post("application/json", big), loginname.Last)
	require.NoError(t, err)
	assert.False(t, whole, "read in part")
	_, whole, _ = traffic.LoginOf(post("application/json", `{}`), loginname.Last)
	assert.True(t, whole, "read to its end")
	assert.Empty(t, loginOf(r), "too large to be a login")
	rest, _ = io.ReadAll(r.Body)
	assert.Equal(t, big, string(rest))

	// A read that fails (a deadline passed) is reported, and what was read
	// is put back all the same.
	r = httptest.NewRequest("POST", "/auth", io.MultiReader(strings.NewReader(`{"user`), iotest.ErrReader(os.ErrDeadlineExceeded)))
	login, whole, err := traffic.LoginOf(r, loginname.Last)
	assert.Empty(t, login)
	assert.False(t, whole)
	assert.ErrorIs(t, err, os.ErrDeadlineExceeded)
	rest, _ = io.ReadAll(r.Body)
	assert.Equal(t, `{"user`, string(rest))

	// DescribeRequest reads logins only from POSTs to sensitive paths, and
	// prefers an API key.
	sensitive := map[string]bool{"/auth": true}
	assert.Equal(t, alice, traffic.DescribeRequest(post("application/json", `{"username":"alice"}`), sensitive, time.Minute).Principal)
	assert.Empty(t, traffic.DescribeRequest(post("application/json", `{"username":"alice"}`), nil, time.Minute).Principal)
	withKey := post("application/json", `{"username":"alice"}`)
	withKey.Header.Set("X-API-Key", "k")
	assert.Regexp(t, `^key:`, traffic.DescribeRequest(withKey, sensitive, time.Minute).Principal)
}

// TestSequentialRunEndsAfterAMinute: a run not extended for 60 s is over,
// however busy the client stays elsewhere.
func TestSequentialRunEndsAfterAMinute(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	ip := netip.MustParseAddr("203.0.113.11")
	at := time.Unix(1_800_000_000, 0)
	var o traffic.Observation
	var err error
	for _, id := range []string{"1", "2", "3", "4"} {
		at = at.Add(time.Second)
		o, err = s.Observe(ctx, ip, at, traffic.Describe("/items/"+id, nil, time.Minute))
		require.NoError(t, err)
	}
	require.Equal(t, int64(3), o.SequentialIDs)
	for range 20 { // browsing elsewhere every 5 s
		at = at.Add(5 * time.Second)
		o, err = s.Observe(ctx, ip, at, root)
		require.NoError(t, err)
	}
	assert.Zero(t, o.SequentialIDs)
	// And the next id on the old pattern starts a new run.
	o, err = s.Observe(ctx, ip, at.Add(time.Second), traffic.Describe("/items/5", nil, time.Minute))
	require.NoError(t, err)
	assert.Zero(t, o.SequentialIDs)
}
