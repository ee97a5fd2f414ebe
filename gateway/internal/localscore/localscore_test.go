package localscore_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulwarkgw/bulwark/gateway/internal/localscore"
	"github.com/bulwarkgw/bulwark/scorer/profile"
	"github.com/bulwarkgw/bulwark/scorer/rules"
	"github.com/bulwarkgw/bulwark/shared/wire"
)

const chrome = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36"

var (
	quiet = slog.New(slog.NewTextHandler(io.Discard, nil))
	home  = netip.MustParseAddr("203.0.113.10")
)

// served returns a Fetch answering what the scorer's GET /v1/profile
// answers for the built-in profile name: the profile as JSON.
func served(t *testing.T, name string) localscore.Fetch {
	t.Helper()
	p, err := profile.Builtin(name)
	require.NoError(t, err)
	b, err := json.Marshal(p)
	require.NoError(t, err)
	return func(context.Context) ([]byte, string, error) { return b, rules.Version, nil }
}

func TestFallback(t *testing.T) {
	r, err := localscore.New(localscore.NoProfile, quiet)
	require.NoError(t, err)
	tests := []struct {
		name  string
		req   wire.ScoreRequest
		score float64
		level string
	}{
		{"idle browser", wire.ScoreRequest{Count1s: 1, Count10s: 1, Count60s: 1, UserAgent: chrome}, 0, "allow"},
		// The scorer's default profile (amplified): a tool's user agent
		// alone is no behaviour, and circumstance only strengthens it.
		{"tool", wire.ScoreRequest{Count1s: 1, UserAgent: "curl/8"}, 0, "allow"},
		// Burst 32 is no risk (the ramp starts at 40); 32 sensitive hits
		// are 1 × 0.4.
		{"50 rps checkout at its 32nd request", wire.ScoreRequest{Count1s: 32, Count10s: 32, Count60s: 32, SensitiveHits: 32, UserAgent: chrome}, 0.4, "allow"},
		// Burst 50 is 0.125, rate 6 0.09, the hits 0.4: 1 − 0.875 · 0.91 · 0.6.
		{"50 rps checkout at its 60th request", wire.ScoreRequest{Count1s: 50, Count10s: 60, Count60s: 60, SensitiveHits: 60, UserAgent: chrome}, 0.5223, "throttle"},
		{"50 rps checkout for 3 s", wire.ScoreRequest{Count1s: 50, Count10s: 150, Count60s: 150, SensitiveHits: 150, UserAgent: chrome}, 0.9475, "block"},
		{"a webhook's burst of 50", wire.ScoreRequest{Count1s: 50, Count10s: 50, Count60s: 50, UserAgent: chrome}, 0.125, "allow"},
		{"burst alone", wire.ScoreRequest{Count1s: 120, Count10s: 120, Count60s: 120, UserAgent: chrome}, 1, "block"},
		// A run of 8 neighbouring ids is (8 − 4) / 6 × 0.9; a run of 4, which
		// an API client picking among a few resources makes by chance, is
		// none.
		{"enumeration", wire.ScoreRequest{Count1s: 4, Count10s: 8, Count60s: 8, SequentialIDs: 8, UserAgent: chrome}, 0.6, "throttle"},
		{"an API client's run of 4 ids by chance", wire.ScoreRequest{Count1s: 2, Count10s: 10, Count60s: 40, DistinctPaths: 6, SequentialIDs: 4, UserAgent: "python-requests/2.32.3"}, 0, "allow"},
		{"error ratio: 3 in 4 is no evidence", wire.ScoreRequest{Count1s: 4, Count10s: 4, Count60s: 4, Errors4xx: 3, UserAgent: chrome}, 0.1, "allow"},
		{"error ratio: 40 in 40", wire.ScoreRequest{Count1s: 4, Count10s: 20, Count60s: 40, Errors4xx: 40, UserAgent: chrome}, 0.6, "throttle"},
		// The same errors from a tool: 1 − 0.4^(1 + 3 · 0.45).
		{"error ratio: 40 in 40 from a tool", wire.ScoreRequest{Count1s: 4, Count10s: 20, Count60s: 40, Errors4xx: 40, UserAgent: "curl/8"}, 0.8839, "block"},
		{"3rd probe", wire.ScoreRequest{Count1s: 1, Count10s: 3, Count60s: 3, Probe: true, Probes: 3, UserAgent: chrome}, 0.5238, "throttle"},
		// Regular timing is circumstance: alone it refuses nobody, on
		// checkout it amplifies the hits, 1 − 0.6^(1 + 3 · 0.6).
		{"metronome", wire.ScoreRequest{Count1s: 1, Count10s: 4, Count60s: 20, Intervals: 11, IntervalCV: 0, UserAgent: chrome}, 0, "allow"},
		{"metronome on checkout", wire.ScoreRequest{Count1s: 1, Count10s: 4, Count60s: 20, SensitiveHits: 20, Intervals: 11, IntervalCV: 0, UserAgent: chrome}, 0.7608, "throttle"},
		{"a browser's user agent, 40 pages a minute without assets", wire.ScoreRequest{Count1s: 1, Count10s: 7, Count60s: 40, DistinctPaths: 40, Pages60s: 40, UserAgent: chrome}, 0.7679, "throttle"},
		{"a principal at 80 req/s", wire.ScoreRequest{Count1s: 80, Count10s: 800, Count60s: 4800, DistinctPaths: 2, UserAgent: "Go-http-client/1.1", Principal: "key:0123456789ab"}, 0, "allow"},
	}
	for _, tt := range tests {
		res := r.Fallback(tt.req, home, 0.8, 0.5)
		assert.Equal(t, tt.score, res.Score, tt.name)
		assert.Equal(t, tt.level, res.Level, tt.name)
		assert.Equal(t, localscore.Profile, res.Profile)
		sum := 0.0
		for _, rs := range res.Reasons {
			sum += rs.Contribution
		}
		assert.InDelta(t, res.Score, sum, 1e-3, tt.name)
	}
	// A verified crawler keeps its allow rule without the scorer.
	bot := r.Fallback(wire.ScoreRequest{Count1s: 1, UserAgent: "Googlebot/2.1"}, netip.MustParseAddr("66.249.66.1"), 0.8, 0.5)
	assert.Equal(t, "googlebot", bot.Allow)
	assert.Equal(t, "network", bot.AllowVia)
	assert.Zero(t, bot.Score)
	// The gateway does no DNS: outside the networks a crawler that only the
	// scorer's reverse DNS would verify is not allowed, and its claim counts
	// neither way (as in the scorer while a lookup is pending): never
	// stricter than the scorer.
	far := r.Fallback(wire.ScoreRequest{Count1s: 1, UserAgent: "bingbot/2.0"}, netip.MustParseAddr("52.167.144.20"), 0.8, 0.5)
	assert.Empty(t, far.Allow)
	assert.Zero(t, far.Score, "%+v", far.Reasons)
	// A claim no DNS rule checks is scored as a self-declared crawler: a
	// circumstance, nothing alone, strengthening behaviour (3 probes,
	// 0.5238 from a browser: 1 − 0.4762^(1 + 3 · 0.225)).
	other := r.Fallback(wire.ScoreRequest{Count1s: 1, UserAgent: "somebot/1.0"}, netip.MustParseAddr("52.167.144.20"), 0.8, 0.5)
	assert.Zero(t, other.Score, "%+v", other.Reasons)
	probing := r.Fallback(wire.ScoreRequest{Count1s: 1, Count10s: 3, Count60s: 3, Probe: true, Probes: 3, UserAgent: "somebot/1.0"}, netip.MustParseAddr("52.167.144.20"), 0.8, 0.5)
	assert.Equal(t, 0.7114, probing.Score, "%+v", probing.Reasons)
}

func TestNoBoundUntilTheProfileIsKnown(t *testing.T) {
	fail := func(context.Context) ([]byte, string, error) { return nil, "", errors.New("scorer down") }
	r, err := localscore.New(fail, quiet)
	require.NoError(t, err)
	req := wire.ScoreRequest{Count1s: 1, UserAgent: chrome}
	_, _, ok := r.Bound(&req, home)
	assert.False(t, ok, "without the scorer's profile every request is scored")
	require.Error(t, r.Sync(context.Background()))
	_, _, ok = r.Bound(&req, home)
	assert.False(t, ok)
}

// TestOnlyTheScorersExactProfileBounds: anything short of the whole
// profile, for this rules version, is refused, and so is a profile that
// was read once but can no longer be (the bound is dropped, not kept).
func TestOnlyTheScorersExactProfileBounds(t *testing.T) {
	full, _, err := served(t, "default")(context.Background())
	require.NoError(t, err)
	var doc map[string]any
	require.NoError(t, json.Unmarshal(full, &doc))
	delete(doc["features"].(map[string]any), "geo")
	partial, err := json.Marshal(doc)
	require.NoError(t, err)
	req := wire.ScoreRequest{Count1s: 1, UserAgent: chrome}
	for name, answer := range map[string]struct {
		body    []byte
		version string
	}{
		"empty object":          {[]byte(`{}`), rules.Version},
		"null":                  {[]byte(`null`), rules.Version},
		"a feature left out":    {partial, rules.Version},
		"another rules version": {full, rules.Version + "-next"},
		"invalid":               {[]byte(`{"combine": "median"}`), rules.Version},
	} {
		r, err := localscore.New(func(context.Context) ([]byte, string, error) { return answer.body, answer.version, nil }, quiet)
		require.NoError(t, err)
		assert.Error(t, r.Sync(context.Background()), name)
		_, _, ok := r.Bound(&req, home)
		assert.False(t, ok, name)
	}

	// Read once, then the scorer cannot be read: no bound any more.
	up := true
	r, err := localscore.New(func(ctx context.Context) ([]byte, string, error) {
		if !up {
			return nil, "", errors.New("scorer down")
		}
		return full, rules.Version, nil
	}, quiet)
	require.NoError(t, err)
	require.NoError(t, r.Sync(context.Background()))
	_, _, ok := r.Bound(&req, home)
	require.True(t, ok)
	up = false
	require.Error(t, r.Sync(context.Background()))
	_, _, ok = r.Bound(&req, home)
	assert.False(t, ok)
}

// TestAnswerFromAnotherProfileDropsTheBound: the scorer reloaded; its
// next answer names the new profile and the gateway stops bounding with
// the old one until it has read the new one.
func TestAnswerFromAnotherProfileDropsTheBound(t *testing.T) {
	fetch := served(t, "default")
	r, err := localscore.New(fetch, quiet)
	require.NoError(t, err)
	require.NoError(t, r.Sync(context.Background()))
	body, _, err := fetch(context.Background())
	require.NoError(t, err)
	req := wire.ScoreRequest{Count1s: 1, UserAgent: chrome}

	r.Check(wire.ProfileHashOf(body)) // the same profile: nothing changes
	_, _, ok := r.Bound(&req, home)
	require.True(t, ok)
	r.Check("") // a scorer that names no profile: nothing to compare
	_, _, ok = r.Bound(&req, home)
	require.True(t, ok)

	r.Check("0123456789abcdef")
	_, _, ok = r.Bound(&req, home)
	assert.False(t, ok, "an answer from another profile stops the fast path")
	require.NoError(t, r.Sync(context.Background()))
	_, _, ok = r.Bound(&req, home)
	assert.True(t, ok)
}

// TestBoundFollowsTheScorersProfile: the same request is under the
// threshold with the default profile and over it with seed 002's (a capped
// sum where 4 visits already add 0.3 and a sensitive path 0.4).
func TestBoundFollowsTheScorersProfile(t *testing.T) {
	req := wire.ScoreRequest{Count1s: 4, Count10s: 4, Count60s: 4, Visits: 4, Sensitive: true, UserAgent: chrome}
	def, err := localscore.New(served(t, "default"), quiet)
	require.NoError(t, err)
	require.NoError(t, def.Sync(context.Background()))
	b, _, ok := def.Bound(&req, home)
	require.True(t, ok)
	assert.Less(t, b, 0.5)

	seed, err := localscore.New(served(t, "seed-002"), quiet)
	require.NoError(t, err)
	require.NoError(t, seed.Sync(context.Background()))
	b, _, ok = seed.Bound(&req, home)
	require.True(t, ok)
	assert.GreaterOrEqual(t, b, 0.7)
}

// TestBoundOfCircumstanceAlone: with the default (amplified) profile a
// tool doing nothing abusive cannot be throttled wherever it turns out to
// come from, so the gateway need not wait for the scorer; with some
// behaviour the network it may be on can lift it over the line.
func TestBoundOfCircumstanceAlone(t *testing.T) {
	r, err := localscore.New(served(t, "default"), quiet)
	require.NoError(t, err)
	require.NoError(t, r.Sync(context.Background()))
	req := wire.ScoreRequest{Count1s: 3, Count10s: 20, Count60s: 120, DistinctPaths: 3, Intervals: 11, IntervalCV: 0, UserAgent: "python-requests/2.32.3"}
	bound, local, ok := r.Bound(&req, home)
	require.True(t, ok)
	assert.Zero(t, bound)
	assert.Zero(t, local)

	req.Errors4xx, req.Count60s, req.Intervals = 7, 12, 0
	bound, local, ok = r.Bound(&req, home)
	require.True(t, ok)
	assert.Less(t, local, 0.5)
	assert.GreaterOrEqual(t, bound, 0.5)
}

// TestBoundAroundACrawlerClaim: for a user agent a DNS allow rule claims,
// the scorer may answer with the claim pending (no crawler risk) or
// refuted (the crawler risk): the bound stays at or above the refuted
// score, the gateway's own estimate at or below the pending one.
func TestBoundAroundACrawlerClaim(t *testing.T) {
	r, err := localscore.New(served(t, "default"), quiet)
	require.NoError(t, err)
	require.NoError(t, r.Sync(context.Background()))
	cfg := rules.DefaultConfig()
	addr := netip.MustParseAddr("52.167.144.20") // no geo known: the estimate and the scorer see the same
	req := wire.ScoreRequest{Count1s: 3, Count10s: 8, Count60s: 30, DistinctPaths: 40, UserAgent: "Mozilla/5.0 (compatible; bingbot/2.0)"}
	f := rules.Observed(&req, addr)
	refuted := rules.Score(&cfg, f).Score
	f.CrawlerPending = true
	pending := rules.Score(&cfg, f).Score
	require.Less(t, pending, refuted, "the claim's risk is what separates them")

	bound, local, ok := r.Bound(&req, addr)
	require.True(t, ok)
	assert.GreaterOrEqual(t, bound, refuted)
	assert.LessOrEqual(t, local, pending)
}

func TestFallbackBoundedAndMonotone(t *testing.T) {
	r, err := localscore.New(localscore.NoProfile, quiet)
	require.NoError(t, err)
	rng := rand.New(rand.NewPCG(7, 8))
	for range 3000 {
		req := wire.ScoreRequest{
			Count1s: rng.Int64N(80), Count10s: rng.Int64N(300), Count60s: rng.Int64N(900),
			SensitiveHits: rng.Int64N(10), AuthFailures: rng.Int64N(12), Errors4xx: rng.Int64N(50),
			DistinctPaths: rng.Int64N(150), SequentialIDs: rng.Int64N(12),
			Intervals: rng.IntN(12), IntervalCV: rng.Float64() * 2, UserAgent: chrome,
		}
		base := r.Fallback(req, home, 0.8, 0.5)
		assert.GreaterOrEqual(t, base.Score, 0.0)
		assert.LessOrEqual(t, base.Score, 1.0)
		if b, _, ok := r.Bound(&req, home); ok {
			assert.GreaterOrEqual(t, b, base.Score)
		}
		grown := []wire.ScoreRequest{req, req, req, req, req, req}
		grown[0].Count1s += 5
		grown[1].Count10s += 5
		grown[2].SensitiveHits++
		grown[3].AuthFailures++
		grown[4].SequentialIDs++
		grown[5].DistinctPaths += 10
		for _, g := range grown {
			if !assert.GreaterOrEqual(t, r.Fallback(g, home, 0.8, 0.5).Score, base.Score, "%+v → %+v", req, g) {
				return
			}
		}
	}
}

// TestOnLoadOncePerProfile: the gateway's threshold check runs when a
// profile is loaded, not on every read of the same one.
func TestOnLoadOncePerProfile(t *testing.T) {
	name := "default"
	r, err := localscore.New(func(ctx context.Context) ([]byte, string, error) { return served(t, name)(ctx) }, quiet)
	require.NoError(t, err)
	var loaded []string
	r.OnLoad(func(c rules.Config) { loaded = append(loaded, c.Name) })
	require.NoError(t, r.Sync(context.Background()))
	require.NoError(t, r.Sync(context.Background()))
	name = "seed-002"
	require.NoError(t, r.Sync(context.Background()))
	assert.Equal(t, []string{"default", "seed-002"}, loaded)
}

// TestVerifies: only user agents an allow rule with domains claims are
// ones the scorer verifies by DNS, and nothing is while the profile is not
// known.
func TestVerifies(t *testing.T) {
	fail := func(context.Context) ([]byte, string, error) { return nil, "", errors.New("scorer down") }
	unknown, err := localscore.New(fail, quiet)
	require.NoError(t, err)
	assert.False(t, unknown.Verifies("Mozilla/5.0 (compatible; bingbot/2.0)"), "no profile, no promise")

	r, err := localscore.New(served(t, "default"), quiet)
	require.NoError(t, err)
	require.NoError(t, r.Sync(context.Background()))
	assert.True(t, r.Verifies("Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)"))
	assert.True(t, r.Verifies("Mozilla/5.0 (compatible; Googlebot/2.1)"))
	assert.False(t, r.Verifies(chrome))
	assert.False(t, r.Verifies("python-requests/2.32.3"))
}
