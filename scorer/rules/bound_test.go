package rules_test

import (
	"math/rand/v2"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulwarkgw/bulwark/scorer/profile"
	"github.com/bulwarkgw/bulwark/scorer/rules"
)

// TestUpperBoundHoldsForEveryGeo is the promise the gateway's fast path
// rests on: for any observed features, no country, ASN, travel distance or
// allow rule makes the score exceed the bound.
func TestUpperBoundHoldsForEveryGeo(t *testing.T) {
	risky := rules.DefaultConfig()
	risky.CountryRisk = map[string]float64{"KP": 1, "RU": 0.4}
	capped, err := profile.Builtin("seed-002")
	require.NoError(t, err)
	configs := map[string]rules.Config{"default": rules.DefaultConfig(), "country risk": risky, "seed-002": capped.Rules()}
	uas := []string{"", "curl/8.0", "Mozilla/5.0 (Windows NT 10.0) Chrome/131.0", "Googlebot/2.1", "bingbot/2.0"}
	countries := []string{"", "KP", "RU", "GB", "US"}
	asns := []uint32{0, 16509, 3320}
	rng := rand.New(rand.NewPCG(1, 2))
	for name, cfg := range configs {
		for range 20000 {
			f := rules.Features{
				Count1s: rng.Int64N(60), Count10s: rng.Int64N(200), Count60s: rng.Int64N(600),
				Visits: rng.Int64N(10), Sensitive: rng.IntN(2) == 0, SensitiveHits: rng.Int64N(8),
				AuthFailures: rng.Int64N(10), Errors4xx: rng.Int64N(50), DistinctPaths: rng.Int64N(150),
				SequentialIDs: rng.Int64N(12), Intervals: rng.IntN(12), IntervalCV: rng.Float64() * 2,
				UserAgent: uas[rng.IntN(len(uas))],
				Addr:      netip.AddrFrom4([4]byte{66, 249, byte(64 + rng.IntN(4)), byte(rng.IntN(256))}),
			}
			travel := rng.IntN(2) == 0
			bound, known := cfg.Bounds(&f, travel)
			require.LessOrEqual(t, known, bound)
			g := f
			g.Country, g.ASN = countries[rng.IntN(len(countries))], asns[rng.IntN(len(asns))]
			if travel {
				g.TravelKm, g.TravelSeconds = rng.Float64()*20000, rng.Float64()*3600
			}
			got := rules.Score(&cfg, g).Score
			if !assert.LessOrEqual(t, got, bound, "%s: %+v travel=%v", name, g, travel) {
				return
			}
		}
	}
}

// TestUpperBoundIsTight checks the bound is not trivially 1: a browser
// with ordinary counts stays under the default throttle threshold, a
// command-line tool does not.
func TestUpperBoundIsTight(t *testing.T) {
	cfg := rules.DefaultConfig()
	browser := rules.Features{Count1s: 3, Count10s: 8, Count60s: 20, UserAgent: "Mozilla/5.0 Chrome/131.0"}
	assert.Less(t, cfg.UpperBound(&browser, false), cfg.Throttle)
	assert.GreaterOrEqual(t, cfg.UpperBound(&browser, true), cfg.Throttle, "travel unknown: could be anything")
	// A tool from anywhere that does nothing abusive cannot be throttled:
	// no scorer call is needed for it (the API-clients fix).
	tool := browser
	tool.UserAgent = "curl/8.0"
	assert.Zero(t, cfg.UpperBound(&tool, false))
	// With some behaviour, the network it may turn out to be on can lift
	// it over the line: the scorer decides.
	tool.Count60s, tool.Errors4xx = 12, 7
	assert.Less(t, rules.Score(&cfg, tool).Score, cfg.Throttle, "residential")
	assert.GreaterOrEqual(t, cfg.UpperBound(&tool, false), cfg.Throttle, "hosting could make it")
	// A principal's circumstances never count: its bound is its score.
	tool.Principal = "key:0123456789ab"
	assert.Equal(t, rules.Score(&cfg, tool).Score, cfg.UpperBound(&tool, false))
}
