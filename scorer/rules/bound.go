package rules

import (
	"math"
	"net/netip"

	"github.com/bulwarkgw/bulwark/shared/wire"
)

// Version names this rules engine's semantics. The scorer publishes it
// with its profile and a gateway bounds scores only with the same version:
// bump it whenever a change could make Score return more for the same
// profile and features.
const Version = "3"

// Observed maps what a gateway observed (a score request) to the features
// that need no geo lookup; Country, ASN and travel stay unknown.
func Observed(req *wire.ScoreRequest, addr netip.Addr) Features {
	return Features{
		Count1s: req.Count1s, Count10s: req.Count10s, Count60s: req.Count60s,
		Visits: req.Visits, Sensitive: req.Sensitive, SensitiveHits: req.SensitiveHits,
		AuthFailures: req.AuthFailures, Errors4xx: req.Errors4xx,
		Pages60s: req.Pages60s, Assets60s: req.Assets60s, Refused60s: req.Refused60s, Principal: req.Principal,
		DistinctPaths: req.DistinctPaths, SequentialIDs: req.SequentialIDs,
		Intervals: req.Intervals, IntervalCV: req.IntervalCV,
		UserAgent: req.UserAgent, Addr: addr,
		Asset: req.Asset, Assets10s: req.Assets10s, Probe: req.Probe, Probes: req.Probes,
	}
}

// UpperBound is the highest score f can get whatever its geo features turn
// out to be: f's own features as they are, geo at the profile's riskiest
// country, hosting on, travel at its maximum when travel is possible (the
// request names a principal last seen elsewhere), and no allow rule. Every
// combination rule is monotone in every risk, so Score never exceeds it for
// any Country, ASN or travel distance.
func (cfg *Config) UpperBound(f *Features, travel bool) float64 {
	bound, _ := cfg.Bounds(f, travel)
	return bound
}

// Bounds returns UpperBound and, from the same evaluation, the score of f
// as it is (its geo features as f has them, no allow rule): the gateway's
// own estimate, never above the bound.
func (cfg *Config) Bounds(f *Features, travel bool) (upper, known float64) {
	vals := cfg.Values(f)
	known = cfg.Combined(vals)
	if travel {
		vals[Travel] = math.Inf(1)
	}
	if f.Principal == "" { // a principal's circumstances never count
		vals[Geo] = 0
		for _, r := range cfg.CountryRisk {
			vals[Geo] = max(vals[Geo], clamp01(r))
		}
		if len(cfg.HostingASNs) > 0 {
			vals[Hosting] = 1
		}
	}
	return cfg.Combined(vals), known
}

// Combined is ScoreValues' score alone (no allow rule), without building
// the reasons.
func (cfg *Config) Combined(vals [NumFeatures]float64) float64 {
	wr := cfg.weighted(&vals)
	score, _ := cfg.combine(&wr)
	return score
}
