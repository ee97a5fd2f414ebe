package rules_test

import (
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/bulwarkgw/bulwark/scorer/internal/rules"
	"github.com/bulwarkgw/bulwark/shared/wire"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRampRisk(t *testing.T) {
	r := rules.Ramp{Low: 10, High: 30, Weight: 1}
	tests := []struct {
		v, want float64
	}{
		{-5, 0}, {0, 0}, {10, 0}, {15, 0.25}, {20, 0.5}, {29, 0.95}, {30, 1}, {1e9, 1},
	}
	for _, tt := range tests {
		assert.InDelta(t, tt.want, r.Risk(tt.v), 1e-12, "v=%v", tt.v)
	}
}

func TestScoreExamples(t *testing.T) {
	cfg := rules.DefaultConfig()
	cfg.CountryRisk = map[string]float64{"KP": 1.0, "RU": 0.4}
	reason := func(f string, v, c float64) wire.Reason {
		return wire.Reason{Feature: f, Value: v, Contribution: c}
	}
	tests := []struct {
		name    string
		in      rules.Features
		score   float64
		reasons []wire.Reason
	}{
		{
			name:  "idle",
			in:    rules.Features{},
			score: 0,
			reasons: []wire.Reason{
				reason("burst", 0, 0), reason("geo", 0, 0), reason("rate", 0, 0), reason("rate_60s", 0, 0),
			},
		},
		{
			name:  "steady human",
			in:    rules.Features{Count1s: 5, Count10s: 20, Count60s: 60, Country: "GB"},
			score: 0,
			reasons: []wire.Reason{
				reason("burst", 5, 0), reason("geo", 0, 0), reason("rate", 2, 0), reason("rate_60s", 1, 0),
			},
		},
		{
			name:  "burst only",
			in:    rules.Features{Count1s: 20, Count10s: 20, Count60s: 20},
			score: 0.5,
			reasons: []wire.Reason{
				reason("burst", 20, 0.5), reason("geo", 0, 0), reason("rate", 2, 0), reason("rate_60s", 0.3333, 0),
			},
		},
		{
			// burst 0.8, rate 0.9×(4.2−3)/7, rate_60s 0.6×(3.5−2)/4:
			// 1 − 0.2 × 0.845714… × 0.775 = 0.868914…; shares of Σ 1.179286…
			name:  "scraper",
			in:    rules.Features{Count1s: 26, Count10s: 42, Count60s: 210},
			score: 0.8689,
			reasons: []wire.Reason{
				reason("burst", 26, 0.5894), reason("rate_60s", 3.5, 0.1658),
				reason("rate", 4.2, 0.1137), reason("geo", 0, 0),
			},
		},
		{
			name:  "risky country alone",
			in:    rules.Features{Count1s: 1, Count10s: 1, Count60s: 1, Country: "KP"},
			score: 0.5,
			reasons: []wire.Reason{
				reason("geo", 1, 0.5), reason("burst", 1, 0), reason("rate", 0.1, 0), reason("rate_60s", 0.0167, 0),
			},
		},
		{
			// 1 − (1 − 0.5) × (1 − 0.2) = 0.6; shares 0.5/0.7 and 0.2/0.7.
			name:  "burst and country",
			in:    rules.Features{Count1s: 20, Count10s: 20, Count60s: 20, Country: "RU"},
			score: 0.6,
			reasons: []wire.Reason{
				reason("burst", 20, 0.4286), reason("geo", 0.4, 0.1714), reason("rate", 2, 0), reason("rate_60s", 0.3333, 0),
			},
		},
		{
			name:  "flood saturates",
			in:    rules.Features{Count1s: 500, Count10s: 5000, Count60s: 30000, Country: "KP"},
			score: 1,
			reasons: []wire.Reason{
				// shares 1/3, 0.9/3, 0.6/3, 0.5/3 of 1
				reason("burst", 500, 0.3333), reason("rate", 500, 0.3), reason("rate_60s", 500, 0.2), reason("geo", 1, 0.1667),
			},
		},
		{
			name:  "negative counts are zero",
			in:    rules.Features{Count1s: -3, Count10s: -30, Count60s: -300},
			score: 0,
			reasons: []wire.Reason{
				reason("burst", 0, 0), reason("geo", 0, 0), reason("rate", 0, 0), reason("rate_60s", 0, 0),
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := rules.Score(&cfg, tt.in)
			assert.Equal(t, tt.score, got.Score)
			assert.Equal(t, tt.reasons, got.Reasons)
		})
	}
}

// TestDefaultCalibration pins the consequences of the defaults that the
// gateway's thresholds rely on.
func TestDefaultCalibration(t *testing.T) {
	cfg := rules.DefaultConfig()

	// 100 requests within one second: every window holds all of them.
	first := 0
	for n := int64(1); n <= 100; n++ {
		s := rules.Score(&cfg, rules.Features{Count1s: n, Count10s: n, Count60s: n}).Score
		if s >= 0.8 {
			first = int(n)
			break
		}
	}
	assert.Equal(t, 26, first, "request at which a one-second flood reaches 0.8")

	steady := rules.Score(&cfg, rules.Features{Count1s: 5, Count10s: 20, Count60s: 60})
	assert.Zero(t, steady.Score)
}

// randomConfig returns a valid config: weights in [0, 1], low < high.
func randomConfig(rng *rand.Rand) rules.Config {
	ramp := func() rules.Ramp {
		low := rng.Float64() * 20
		return rules.Ramp{Low: low, High: low + 0.5 + rng.Float64()*50, Weight: rng.Float64()}
	}
	return rules.Config{
		Burst: ramp(), Rate: ramp(), Rate60s: ramp(),
		GeoWeight:   rng.Float64(),
		CountryRisk: map[string]float64{"AA": rng.Float64(), "BB": 1, "CC": 0},
	}
}

func randomFeatures(rng *rand.Rand) rules.Features {
	countries := []string{"", "AA", "BB", "CC", "ZZ"}
	return rules.Features{
		Count1s:  rng.Int64N(120),
		Count10s: rng.Int64N(600),
		Count60s: rng.Int64N(2400),
		Country:  countries[rng.IntN(len(countries))],
	}
}

// checkResult asserts the invariants every result must hold.
func checkResult(t *testing.T, r rules.Result, ctx ...any) bool {
	t.Helper()
	ok := assert.GreaterOrEqual(t, r.Score, 0.0, ctx...) &&
		assert.LessOrEqual(t, r.Score, 1.0, ctx...)

	names := make([]string, 0, len(r.Reasons))
	sum := 0.0
	for _, rs := range r.Reasons {
		names = append(names, rs.Feature)
		sum += rs.Contribution
		ok = assert.GreaterOrEqual(t, rs.Contribution, 0.0, ctx...) && ok
	}
	ok = assert.InDelta(t, r.Score, sum, 1e-3, ctx...) && ok
	ok = assert.ElementsMatch(t, rules.FeatureNames, names, ctx...) && ok
	sorted := slices.IsSortedFunc(r.Reasons, func(a, b wire.Reason) int {
		switch {
		case a.Contribution > b.Contribution:
			return -1
		case a.Contribution < b.Contribution:
			return 1
		default:
			return cmpString(a.Feature, b.Feature)
		}
	})
	ok = assert.True(t, sorted, "reasons sorted: %+v %v", r.Reasons, ctx) && ok
	return ok
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func TestScoreProperties(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	def := rules.DefaultConfig()
	def.CountryRisk = map[string]float64{"AA": 0.3, "BB": 1}

	for i := range 5000 {
		cfg := def
		if i%2 == 1 {
			cfg = randomConfig(rng)
		}
		f := randomFeatures(rng)
		base := rules.Score(&cfg, f)
		if !checkResult(t, base, "config", cfg, "features", f) {
			return
		}

		// Determinism: the same input gives the same output.
		require.Equal(t, base, rules.Score(&cfg, f))

		// Monotonicity: growing any one count never lowers the score.
		step := 1 + rng.Int64N(40)
		grown := []rules.Features{f, f, f}
		grown[0].Count1s += step
		grown[1].Count10s += step
		grown[2].Count60s += step
		for j, g := range grown {
			s := rules.Score(&cfg, g)
			checkResult(t, s, "features", g)
			if !assert.GreaterOrEqual(t, s.Score, base.Score, "feature %s grew: %+v → %+v", rules.FeatureNames[j], f, g) {
				return
			}
		}

		// Monotonicity in geo: a riskier country never lowers the score.
		if f.Country != "" {
			riskier := cfg
			riskier.CountryRisk = map[string]float64{}
			for k, v := range cfg.CountryRisk {
				riskier.CountryRisk[k] = v
			}
			riskier.CountryRisk[f.Country] = min(1, cfg.CountryRisk[f.Country]+rng.Float64())
			s := rules.Score(&riskier, f)
			checkResult(t, s)
			if !assert.GreaterOrEqual(t, s.Score, base.Score, "country %s riskier", f.Country) {
				return
			}
		}
	}
}

// TestScoreMonotoneSweep walks each count from 0 upwards with the others
// fixed and checks the score never falls.
func TestScoreMonotoneSweep(t *testing.T) {
	cfg := rules.DefaultConfig()
	fixed := []rules.Features{{}, {Count1s: 12, Count10s: 40, Count60s: 150}, {Count1s: 50, Count10s: 200, Count60s: 900}}
	for _, f := range fixed {
		for feature, set := range map[string]func(*rules.Features, int64){
			"burst":    func(f *rules.Features, n int64) { f.Count1s = n },
			"rate":     func(f *rules.Features, n int64) { f.Count10s = n },
			"rate_60s": func(f *rules.Features, n int64) { f.Count60s = n },
		} {
			prev := -1.0
			for n := int64(0); n <= 1000; n++ {
				g := f
				set(&g, n)
				s := rules.Score(&cfg, g).Score
				require.GreaterOrEqual(t, s, prev, "%s=%d from %+v", feature, n, f)
				prev = s
			}
		}
	}
}

func BenchmarkScore(b *testing.B) {
	cfg := rules.DefaultConfig()
	cfg.CountryRisk = map[string]float64{"KP": 1, "RU": 0.4, "CN": 0.3}
	inputs := make([]rules.Features, 1024)
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range inputs {
		inputs[i] = randomFeatures(rng)
		inputs[i].Country = []string{"", "GB", "KP", "RU", "CN"}[i%5]
	}
	b.ReportAllocs()
	var sink float64
	i := 0
	for b.Loop() {
		sink += rules.Score(&cfg, inputs[i&1023]).Score
		i++
	}
	b.ReportMetric(float64(i)/b.Elapsed().Seconds(), "scores/s")
	_ = sink
}
