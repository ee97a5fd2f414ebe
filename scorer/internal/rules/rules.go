package rules

import (
	"math"

	"github.com/bulwarkgw/bulwark/shared/wire"
)

// Feature names, as they appear in wire.Reason.Feature.
const (
	FeatureBurst   = "burst"
	FeatureRate    = "rate"
	FeatureRate60s = "rate_60s"
	FeatureGeo     = "geo"
)

// FeatureNames lists every feature in a fixed order.
var FeatureNames = []string{FeatureBurst, FeatureRate, FeatureRate60s, FeatureGeo}

// Ramp maps a raw value to a risk: 0 at or below Low, 1 at or above High,
// linear in between. Weight, in [0, 1], scales the risk in the combination.
type Ramp struct {
	Low    float64
	High   float64
	Weight float64
}

// Risk returns the ramp's risk for value v, in [0, 1].
func (r Ramp) Risk(v float64) float64 {
	switch {
	case v <= r.Low:
		return 0
	case v >= r.High:
		return 1
	default:
		return (v - r.Low) / (r.High - r.Low)
	}
}

// Config holds the weights and ramps of every feature. The profile package
// loads and validates it; Score assumes Low < High and weights in [0, 1].
type Config struct {
	Burst   Ramp
	Rate    Ramp
	Rate60s Ramp
	// GeoWeight scales the country risk.
	GeoWeight float64
	// CountryRisk maps upper-case ISO 3166-1 alpha-2 codes to a risk in
	// [0, 1]. Countries not listed carry no risk.
	CountryRisk map[string]float64
}

// DefaultConfig returns the defaults documented in the package comment.
func DefaultConfig() Config {
	return Config{
		Burst:       Ramp{Low: 10, High: 30, Weight: 1.0},
		Rate:        Ramp{Low: 3, High: 10, Weight: 0.9},
		Rate60s:     Ramp{Low: 2, High: 6, Weight: 0.6},
		GeoWeight:   0.5,
		CountryRisk: map[string]float64{},
	}
}

// Features is what the rules look at for one client.
type Features struct {
	// Requests counted in sliding windows ending now.
	Count1s  int64
	Count10s int64
	Count60s int64
	// Country is the client's upper-case ISO country code; "" when the
	// address is local or not in the GeoIP database.
	Country string
}

// Result is a score in [0, 1] and one Reason per feature, sorted by
// contribution (largest first), then by feature name.
type Result struct {
	Score   float64
	Reasons []wire.Reason
}

// part is one feature's raw value and its weighted risk.
type part struct {
	name  string
	value float64
	wr    float64 // weight × risk, in [0, 1]
}

// Score combines the features with noisy-OR; see the package comment.
func Score(cfg *Config, f Features) Result {
	burst := float64(max(f.Count1s, 0))
	rate := float64(max(f.Count10s, 0)) / 10
	rate60 := float64(max(f.Count60s, 0)) / 60
	var geo float64
	if f.Country != "" {
		geo = clamp01(cfg.CountryRisk[f.Country])
	}
	parts := [...]part{
		{FeatureBurst, burst, clamp01(cfg.Burst.Weight) * cfg.Burst.Risk(burst)},
		{FeatureRate, rate, clamp01(cfg.Rate.Weight) * cfg.Rate.Risk(rate)},
		{FeatureRate60s, rate60, clamp01(cfg.Rate60s.Weight) * cfg.Rate60s.Risk(rate60)},
		{FeatureGeo, geo, clamp01(cfg.GeoWeight) * geo},
	}

	keep, sum := 1.0, 0.0
	for _, p := range parts {
		keep *= 1 - p.wr
		sum += p.wr
	}
	score := round4(clamp01(1 - keep))

	reasons := make([]wire.Reason, len(parts))
	for i, p := range parts {
		var c float64
		if sum > 0 {
			c = round4(p.wr / sum * score)
		}
		reasons[i] = wire.Reason{Feature: p.name, Value: round4(p.value), Contribution: c}
	}
	sortReasons(reasons)
	return Result{Score: score, Reasons: reasons}
}

// sortReasons orders by contribution descending, then feature name. An
// insertion sort: there are only a handful of reasons and it allocates
// nothing.
func sortReasons(rs []wire.Reason) {
	for i := 1; i < len(rs); i++ {
		for j := i; j > 0 && less(rs[j], rs[j-1]); j-- {
			rs[j], rs[j-1] = rs[j-1], rs[j]
		}
	}
}

func less(a, b wire.Reason) bool {
	if a.Contribution != b.Contribution {
		return a.Contribution > b.Contribution
	}
	return a.Feature < b.Feature
}

func clamp01(x float64) float64 {
	switch {
	case x > 1:
		return 1
	case x >= 0:
		return x
	default: // negative or NaN
		return 0
	}
}

func round4(x float64) float64 { return math.Round(x*1e4) / 1e4 }
