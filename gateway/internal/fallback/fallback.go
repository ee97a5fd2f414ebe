// Package fallback scores a client inside the gateway when the scorer
// cannot: it applies the scorer's documented rule (noisy-OR of weighted
// ramps, see scorer/rules) with the default profile's ramps and
// weights to the features the gateway has without the scorer: the Redis
// counts and the user agent (no geo, no ASN, no allow rules). Its scores
// are therefore never higher than the scorer's default profile would give
// for the same request, so a scorer outage never makes the gateway
// stricter. Responses carry Profile "fallback".
package fallback

import (
	"math"
	"strings"

	"github.com/bulwarkgw/bulwark/shared/wire"
)

// Profile is the name fallback responses carry.
const Profile = "fallback"

// ramp is one feature: risk 0 at or below low, 1 at or above high.
type ramp struct {
	name              string
	low, high, weight float64
}

func (r ramp) risk(v float64) float64 {
	switch {
	case v <= r.low:
		return 0
	case v >= r.high:
		return 1
	default:
		return (v - r.low) / (r.high - r.low)
	}
}

// The default profile's ramps (scorer/profile/profiles/default.yaml)
// for the features the gateway can compute itself.
var ramps = [...]ramp{
	{"burst", 15, 40, 1.0},
	{"rate", 5, 15, 0.9},
	{"rate_60s", 3, 8, 0.6},
	{"sensitive_hits", 0, 4, 0.45},
	{"regularity", 0.6, 0.85, 0.6},
	{"auth_failures", 2, 8, 0.9},
	{"error_ratio", 0.25, 0.75, 0.6},
	{"path_diversity", 30, 100, 0.5},
	{"enumeration", 2, 5, 0.9},
	{"user_agent", 0, 1, 0.45},
}

// Minimum evidence, as in the default profile.
const (
	minIntervals = 8
	minRequests  = 4
)

// automationUA are the default profile's tool user agents (lower case).
var automationUA = []string{
	"curl/", "wget/", "python-requests", "python-urllib", "python-httpx", "aiohttp",
	"go-http-client", "java/", "okhttp", "apache-httpclient", "libwww-perl", "scrapy",
	"node-fetch", "axios/", "postmanruntime", "headlesschrome", "phantomjs", "selenium",
	"puppeteer", "playwright", "sqlmap", "nikto", "nmap", "masscan", "zgrab", "httpie",
}

// Score scores req locally; block and throttle are the gateway's
// thresholds, used for the level.
func Score(req wire.ScoreRequest, block, throttle float64) wire.ScoreResponse {
	vals := [len(ramps)]float64{
		float64(max(req.Count1s, 0)),
		float64(max(req.Count10s, 0)) / 10,
		float64(max(req.Count60s, 0)) / 60,
		float64(max(req.SensitiveHits, 0)),
		0,
		float64(max(req.AuthFailures, 0)),
		0,
		float64(max(req.DistinctPaths, 0)),
		float64(max(req.SequentialIDs, 0)),
		uaRisk(req.UserAgent),
	}
	if req.Intervals >= minIntervals {
		vals[4] = min(max(1-req.IntervalCV, 0), 1)
	}
	if req.Count60s >= minRequests {
		vals[6] = min(float64(max(req.Errors4xx, 0))/float64(req.Count60s), 1)
	}
	var wr [len(ramps)]float64
	keep, sum := 1.0, 0.0
	for i, r := range ramps {
		wr[i] = r.weight * r.risk(vals[i])
		keep *= 1 - wr[i]
		sum += wr[i]
	}
	score := round4(min(max(1-keep, 0), 1))
	reasons := make([]wire.Reason, len(ramps))
	for i, r := range ramps {
		var c float64
		if sum > 0 {
			c = round4(wr[i] / sum * score)
		}
		reasons[i] = wire.Reason{Feature: r.name, Value: round4(vals[i]), Contribution: c}
	}
	sortReasons(reasons)
	level := wire.LevelAllow
	switch {
	case score >= block:
		level = wire.LevelBlock
	case score >= throttle:
		level = wire.LevelThrottle
	}
	return wire.ScoreResponse{Score: score, Reasons: reasons, Level: level, Profile: Profile}
}

func uaRisk(ua string) float64 {
	if strings.TrimSpace(ua) == "" {
		return 1
	}
	lower := strings.ToLower(ua)
	for _, s := range automationUA {
		if strings.Contains(lower, s) {
			return 1
		}
	}
	return 0
}

// sortReasons orders by contribution descending, then feature name.
func sortReasons(rs []wire.Reason) {
	for i := 1; i < len(rs); i++ {
		for j := i; j > 0 && (rs[j].Contribution > rs[j-1].Contribution ||
			rs[j].Contribution == rs[j-1].Contribution && rs[j].Feature < rs[j-1].Feature); j-- {
			rs[j], rs[j-1] = rs[j-1], rs[j]
		}
	}
}

func round4(x float64) float64 { return math.Round(x*1e4) / 1e4 }
