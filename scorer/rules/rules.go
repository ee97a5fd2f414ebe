package rules

import (
	"math"
	"net/netip"
	"strings"
	"unicode/utf8"

	"github.com/bulwarkgw/bulwark/shared/wire"
)

// Feature names, as they appear in wire.Reason.Feature.
const (
	FeatureBurst           = "burst"
	FeatureRate            = "rate"
	FeatureRate60s         = "rate_60s"
	FeatureVisits          = "visits"
	FeatureSensitiveVisits = "sensitive_visits"
	FeatureSensitiveHits   = "sensitive_hits"
	FeatureRegularity      = "regularity"
	FeatureAuthFailures    = "auth_failures"
	FeatureErrorRatio      = "error_ratio"
	FeaturePathDiversity   = "path_diversity"
	FeatureEnumeration     = "enumeration"
	FeatureUserAgent       = "user_agent"
	FeatureGeo             = "geo"
	FeatureHosting         = "hosting"
	FeatureTravel          = "travel"
	FeatureProbing         = "probing"
	FeatureAssetRate       = "asset_rate"
	FeatureBarePages       = "bare_pages"
)

// Feature indexes a feature in Config.Curves and in the order of
// FeatureNames.
type Feature int

// The features, in the fixed order of FeatureNames.
const (
	Burst Feature = iota
	Rate
	Rate60s
	Visits
	SensitiveVisits
	SensitiveHits
	Regularity
	AuthFailures
	ErrorRatio
	PathDiversity
	Enumeration
	UserAgent
	Geo
	Hosting
	Travel
	Probing
	AssetRate
	BarePages
	NumFeatures
)

// FeatureNames lists every feature's name, indexed by Feature.
var FeatureNames = [NumFeatures]string{
	FeatureBurst, FeatureRate, FeatureRate60s, FeatureVisits, FeatureSensitiveVisits,
	FeatureSensitiveHits, FeatureRegularity, FeatureAuthFailures, FeatureErrorRatio,
	FeaturePathDiversity, FeatureEnumeration, FeatureUserAgent, FeatureGeo, FeatureHosting,
	FeatureTravel, FeatureProbing, FeatureAssetRate, FeatureBarePages,
}

// Circumstantial reports whether feature i describes the client's
// circumstances (what it is and where it comes from: its user agent's
// class, its country, its network, the regularity of its timing) rather
// than what it does. Under the Amplified rule circumstance only
// strengthens behavioural evidence, and for a principal it never counts.
func Circumstantial(i Feature) bool {
	switch i {
	case UserAgent, Geo, Hosting, Regularity:
		return true
	}
	return false
}

// volume reports whether feature i measures how much a client sends. A
// principal's volume is governed by its rate limits (the gateway's per-key
// and per-client limits), not by these curves.
func volume(i Feature) bool {
	switch i {
	case Burst, Rate, Rate60s, Visits, SensitiveVisits, AssetRate:
		return true
	}
	return false
}

// Combine names a combination rule.
type Combine string

// The combination rules; see the package comment.
const (
	NoisyOR   Combine = "noisy_or"
	CappedSum Combine = "capped_sum"
	Amplified Combine = "amplified"
)

// Levels a score maps to.
const (
	LevelAllow    = wire.LevelAllow
	LevelThrottle = wire.LevelThrottle
	LevelBlock    = wire.LevelBlock
)

// Step is one rung of a step curve: a value strictly above Above has at
// least risk Risk.
type Step struct {
	Above float64
	Risk  float64
}

// Curve maps a feature's raw value to a risk in [0, 1] and weights it. With
// Steps it is a step function (the risk of the highest step whose Above
// the value exceeds, 0 below the first); without, a Ramp from Low to High.
type Curve struct {
	Low, High float64
	Steps     []Step
	Weight    float64
}

// Ramp returns a linear curve: risk 0 at or below low, 1 at or above high.
func Ramp(low, high, weight float64) Curve { return Curve{Low: low, High: high, Weight: weight} }

// Risk returns the curve's risk for value v, in [0, 1]. The profile
// package guarantees Low < High and steps sorted with non-decreasing risk,
// so Risk never decreases as v grows.
func (c *Curve) Risk(v float64) float64 {
	if len(c.Steps) > 0 {
		r := 0.0
		for _, s := range c.Steps {
			if v > s.Above {
				r = s.Risk
			}
		}
		return clamp01(r)
	}
	switch {
	case v <= c.Low:
		return 0
	case v >= c.High:
		return 1
	default:
		return (v - c.Low) / (c.High - c.Low)
	}
}

// AllowRule lets a verified client through with score 0: its user agent
// contains UserAgent (case-insensitive; "" matches any) AND either its
// address is inside one of Networks or one of its forward-confirmed reverse
// DNS names (Features.Hostnames) is one of Domains or below one. A user
// agent alone never qualifies.
type AllowRule struct {
	Name      string
	UserAgent string // lower case
	Networks  []netip.Prefix
	// Domains are the crawler's published DNS domains, lower case without
	// a trailing dot: "googlebot.com" verifies crawl-66-249-66-1.googlebot.com
	// but not evilgooglebot.com.
	Domains []string
}

// How an allow rule verified a client (Result.AllowVia).
const (
	AllowViaNetwork = "network"
	AllowViaDNS     = "dns"
)

// Config is a compiled profile. The profile package builds and validates
// it; Score assumes it is valid.
type Config struct {
	Name    string
	Combine Combine
	// Amplify is how strongly circumstance strengthens behaviour under
	// the Amplified rule (see the package comment); unused otherwise.
	Amplify float64
	Curves  [NumFeatures]Curve
	// MinIntervals is how many inter-arrival gaps regularity needs before
	// it says anything.
	MinIntervals int
	// MinRequests is how many requests in 60 s error_ratio needs;
	// ErrorPrior and ErrorPriorRatio smooth it (see errorRatio): that many
	// pseudo-requests at that error ratio are added to the client's own.
	MinRequests     int64
	ErrorPrior      float64
	ErrorPriorRatio float64
	// MinTravelKm is the shortest move travel considers: closer places
	// are within the databases' accuracy. MinTravelSeconds floors the
	// time between them.
	MinTravelKm      float64
	MinTravelSeconds float64
	// CountryRisk maps upper-case ISO 3166-1 alpha-2 codes to a risk in
	// [0, 1]; countries not listed carry none.
	CountryRisk map[string]float64
	// HostingASNs are hosting and datacenter autonomous systems.
	HostingASNs map[uint32]bool
	// AutomationUA are lower-case substrings of user agents sent by tools,
	// libraries and headless browsers.
	AutomationUA []string
	// BotUA are lower-case substrings of self-declared crawlers; an
	// unverified one gets BotUARisk.
	BotUA     []string
	BotUARisk float64
	Allow     []AllowRule
	// Block and Throttle are the level thresholds; Throttle == Block means
	// there is no throttle band.
	Block, Throttle float64
}

// Features is what the rules look at for one client and request.
type Features struct {
	// Requests counted in sliding windows ending now.
	Count1s, Count10s, Count60s int64
	// Visits in the current fixed window (seed 002's counter).
	Visits int64
	// Sensitive is true when the current path is a sensitive one;
	// SensitiveHits counts requests to sensitive paths in 60 s.
	Sensitive     bool
	SensitiveHits int64
	// Responses observed in 60 s: upstream 401/403, and all 4xx.
	AuthFailures, Errors4xx int64
	// DistinctPaths in 60 s; SequentialIDs is the length of the client's
	// current run of neighbouring numeric ids on one path pattern.
	DistinctPaths, SequentialIDs int64
	// Intervals gaps between the client's recent requests, with
	// coefficient of variation IntervalCV.
	Intervals  int
	IntervalCV float64
	UserAgent  string
	// Addr, Country (upper-case ISO code) and ASN of the client; Country
	// "" and ASN 0 when local or unknown.
	Addr    netip.Addr
	Country string
	ASN     uint32
	// TravelKm is the distance between where the request's principal (an
	// API key or a login) is now and where it was TravelSeconds ago; 0 when unknown.
	TravelKm, TravelSeconds float64
	// Asset is true when the current request is a page asset, Assets10s
	// the client's page-asset requests in 10 s (the counts above leave
	// them out; see wire.ScoreRequest).
	Asset     bool
	Assets10s int64
	// Probe is true when the current path is on the gateway's probe list,
	// Probes the client's such requests in 60 s.
	Probe  bool
	Probes int64
	// CrawlerPending is true while the forward-confirmed reverse DNS of a
	// client whose user agent an allow rule with domains claims is not
	// known yet (the lookup runs off the request path, for a few
	// milliseconds): the claim then counts neither for the client (no
	// allow by domain) nor against it (no self-declared-crawler risk), so a
	// real crawler's first request on a cloud network is not throttled
	// and a false one is scored as any browser until the answer comes.
	CrawlerPending bool
	// Pages60s counts the documents (HTML answers) the client fetched in
	// 60 s and Assets60s its page assets in 60 s: a client that reads
	// pages without loading what a browser loads with them, faster than
	// people read, is scraping (bare_pages), whatever user agent it
	// sends; only a crawler whose claim is being verified is spared.
	Pages60s, Assets60s int64
	// Refused60s counts the requests of Count60s the gateway refused
	// itself: error_ratio is taken over the others, the answered ones.
	Refused60s int64
	// Principal names the verified credential the request carried
	// ("key:...", "jwt:..."), "" for none. A principal is judged by its own
	// behaviour: no circumstantial feature applies to it, and its volume
	// is governed by its rate limits (under the Amplified rule the volume
	// features read 0).
	Principal string
	// Hostnames are Addr's forward-confirmed reverse DNS names: names its
	// PTR records give whose own A/AAAA records contain Addr again. Lower
	// case, no trailing dot; nil when unknown or none. The rules never
	// look anything up: the caller resolves (off the request path) and
	// passes the answer in.
	Hostnames []string
}

// Result is a score in [0, 1], its level, and one Reason per feature sorted
// by contribution (largest first), then by feature name. Allow names the
// allow rule that matched, if any, and AllowVia how it verified the client:
// AllowViaNetwork or AllowViaDNS.
type Result struct {
	Score    float64
	Level    string
	Allow    string
	AllowVia string
	Reasons  []wire.Reason
}

// Values returns every feature's raw value, indexed by Feature.
func (cfg *Config) Values(f *Features) [NumFeatures]float64 {
	var v [NumFeatures]float64
	v[Burst] = float64(max(f.Count1s, 0))
	v[Rate] = float64(max(f.Count10s, 0)) / 10
	v[Rate60s] = float64(max(f.Count60s, 0)) / 60
	v[Visits] = float64(max(f.Visits, 0))
	if f.Sensitive {
		v[SensitiveVisits] = v[Visits]
	}
	v[SensitiveHits] = float64(max(f.SensitiveHits, 0))
	if f.Intervals >= cfg.MinIntervals && f.Intervals > 0 && !math.IsNaN(f.IntervalCV) {
		v[Regularity] = clamp01(1 - f.IntervalCV)
	}
	v[AuthFailures] = float64(max(f.AuthFailures, 0))
	// Over the answered requests: the gateway's own refusals neither
	// raise the ratio nor dilute it.
	if answered := f.Count60s - min(max(f.Refused60s, 0), f.Count60s); answered >= cfg.MinRequests && answered > 0 {
		v[ErrorRatio] = cfg.errorRatio(f.Errors4xx, answered)
	}
	v[PathDiversity] = float64(max(f.DistinctPaths, 0))
	v[Enumeration] = float64(max(f.SequentialIDs, 0))
	v[UserAgent] = cfg.uaRisk(f.UserAgent, f.CrawlerPending)
	if f.Country != "" {
		v[Geo] = clamp01(cfg.CountryRisk[f.Country])
	}
	if f.ASN != 0 && cfg.HostingASNs[f.ASN] {
		v[Hosting] = 1
	}
	if f.TravelKm >= cfg.MinTravelKm && f.TravelKm > 0 {
		v[Travel] = f.TravelKm / max(f.TravelSeconds, cfg.MinTravelSeconds, 1) * 3600
	}
	v[Probing] = float64(max(f.Probes, 0))
	v[AssetRate] = float64(max(f.Assets10s, 0)) / 10
	// A crawler reads pages without their assets by trade: while its claim
	// is being verified (CrawlerPending) that counts neither way; verified,
	// an allow rule passes it; refuted or unverifiable ("bot" in a user
	// agent proves nothing), it is a scraper like any other.
	if f.Pages60s > 0 && !f.CrawlerPending {
		v[BarePages] = float64(f.Pages60s) / float64(1+max(f.Assets60s, 0))
	}
	if f.Principal != "" {
		// A principal's circumstances never count; under the Amplified
		// rule its volume is its rate limits' business too (other rules
		// keep volume: seed 002's profile is nothing but volume).
		for i := range NumFeatures {
			if Circumstantial(i) || i == BarePages || volume(i) && cfg.Combine == Amplified {
				v[i] = 0
			}
		}
	}
	return v
}

// errorRatio is the share of errors in n requests, smoothed towards
// ErrorPriorRatio as if ErrorPrior requests at that ratio had come first
// (the mean of a Beta posterior): 3 errors in 4 requests is weak evidence
// and reads 0.28 with the default prior (8 requests at 5 %), 30 in 40 is
// strong and reads 0.63. With ErrorPrior 0 it is the raw ratio.
func (cfg *Config) errorRatio(errors, n int64) float64 {
	e := float64(min(max(errors, 0), n))
	prior := max(cfg.ErrorPrior, 0)
	return clamp01((e + prior*clamp01(cfg.ErrorPriorRatio)) / (float64(n) + prior))
}

// uaRisk is 1 for an empty user agent or a tool's, BotUARisk for a
// self-declared crawler (0 while its claim is being verified: pending),
// else 0.
func (cfg *Config) uaRisk(ua string, pending bool) float64 {
	if strings.TrimSpace(ua) == "" {
		return 1
	}
	lower := strings.ToLower(ua)
	for _, s := range cfg.AutomationUA {
		if strings.Contains(lower, s) {
			return 1
		}
	}
	if pending {
		return 0
	}
	for _, s := range cfg.BotUA {
		if strings.Contains(lower, s) {
			return clamp01(cfg.BotUARisk)
		}
	}
	return 0
}

// allowed returns the name of the first allow rule f satisfies and how:
// by network or, failing that, by a verified DNS name.
func (cfg *Config) allowed(f *Features) (name, via string) {
	if len(cfg.Allow) == 0 || !f.Addr.IsValid() {
		return "", ""
	}
	addr := f.Addr.Unmap()
	var lower string
	for _, r := range cfg.Allow {
		if r.UserAgent != "" {
			if lower == "" {
				lower = strings.ToLower(f.UserAgent)
			}
			if !strings.Contains(lower, r.UserAgent) {
				continue
			}
		}
		for _, n := range r.Networks {
			if n.Contains(addr) {
				return r.Name, AllowViaNetwork
			}
		}
		for _, h := range f.Hostnames {
			if InDomains(h, r.Domains) {
				return r.Name, AllowViaDNS
			}
		}
	}
	return "", ""
}

// InDomains reports whether host (lower case, no trailing dot) is one of
// domains or below one, on a label boundary: "crawl-1.googlebot.com" and
// "googlebot.com" are in googlebot.com, "evilgooglebot.com" and
// "googlebot.com.evil.net" are not.
func InDomains(host string, domains []string) bool {
	for _, d := range domains {
		if host == d || (len(host) > len(d) && host[len(host)-len(d)-1] == '.' && host[len(host)-len(d):] == d) {
			return true
		}
	}
	return false
}

// WantsHostnames reports whether Score could use f.Hostnames: some allow
// rule with Domains claims ua (its UserAgent is in it). Only such clients
// are worth a DNS lookup; for every other user agent it costs one
// case-insensitive substring search per DNS rule and allocates nothing.
func (cfg *Config) WantsHostnames(ua string) bool {
	for i := range cfg.Allow {
		r := &cfg.Allow[i]
		if len(r.Domains) > 0 && r.UserAgent != "" && containsFold(ua, r.UserAgent) {
			return true
		}
	}
	return false
}

// containsFold reports whether s contains sub (lower case) ignoring case,
// without allocating when sub is ASCII. For a non-ASCII sub it lower-cases
// s as allowed does.
func containsFold(s, sub string) bool {
	for i := 0; i < len(sub); i++ {
		if sub[i] >= utf8.RuneSelf {
			return strings.Contains(strings.ToLower(s), sub)
		}
	}
	if sub == "" {
		return true
	}
	// Jump between the occurrences of sub's first byte, in either case, with
	// IndexByte; most user agents have few of them.
	first := [2]byte{sub[0], upperASCII(sub[0])}
	for k, c := range first {
		if k == 1 && c == first[0] {
			break
		}
		for off := 0; ; {
			i := strings.IndexByte(s[off:], c)
			if i < 0 || off+i+len(sub) > len(s) {
				break
			}
			if equalFoldASCII(s[off+i+1:off+i+len(sub)], sub[1:]) {
				return true
			}
			off += i + 1
		}
	}
	return false
}

// equalFoldASCII reports whether s equals lower (lower case) ignoring
// ASCII case.
func equalFoldASCII(s, lower string) bool {
	for i := 0; i < len(lower); i++ {
		if lowerASCII(s[i]) != lower[i] {
			return false
		}
	}
	return true
}

func upperASCII(c byte) byte {
	if 'a' <= c && c <= 'z' {
		return c - ('a' - 'A')
	}
	return c
}

func lowerASCII(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// Score combines the features by the configured rule; see the package
// comment.
func Score(cfg *Config, f Features) Result {
	name, via := cfg.allowed(&f)
	res := cfg.ScoreValues(cfg.Values(&f), name)
	res.AllowVia = via
	return res
}

// ScoreValues combines feature values (indexed by Feature) by the
// configured rule. A non-empty allow (the name of the allow rule the client
// matched) makes every risk 0.
func (cfg *Config) ScoreValues(vals [NumFeatures]float64, allow string) Result {
	var wr [NumFeatures]float64
	if allow == "" {
		wr = cfg.weighted(&vals)
	}
	score, share := cfg.combine(&wr)
	reasons := make([]wire.Reason, NumFeatures)
	for i := range NumFeatures {
		reasons[i] = wire.Reason{Feature: FeatureNames[i], Value: round4(vals[i]), Contribution: round4(share[i])}
	}
	sortReasons(reasons)
	return Result{Score: score, Level: cfg.Level(score), Allow: allow, Reasons: reasons}
}

// weighted returns each feature's weighted risk, w_i · r_i.
func (cfg *Config) weighted(vals *[NumFeatures]float64) [NumFeatures]float64 {
	var wr [NumFeatures]float64
	for i := range NumFeatures {
		wr[i] = clamp01(cfg.Curves[i].Weight) * cfg.Curves[i].Risk(vals[i])
	}
	return wr
}

// combine applies the combination rule to the weighted risks and returns
// the score (rounded) and each feature's share of it (unrounded).
func (cfg *Config) combine(wr *[NumFeatures]float64) (float64, [NumFeatures]float64) {
	var share [NumFeatures]float64
	if cfg.Combine == Amplified {
		keepB, keepC, sumB, sumC := 1.0, 1.0, 0.0, 0.0
		for i := range NumFeatures {
			if Circumstantial(i) {
				keepC *= 1 - wr[i]
				sumC += wr[i]
			} else {
				keepB *= 1 - wr[i]
				sumB += wr[i]
			}
		}
		b, c := 1-keepB, 1-keepC
		score := round4(clamp01(1 - math.Pow(keepB, 1+max(cfg.Amplify, 0)*c)))
		if score == 0 {
			return 0, share
		}
		// Behaviour explains b of the score, circumstance the rest.
		base := min(b, score)
		for i := range NumFeatures {
			switch {
			case Circumstantial(i) && sumC > 0:
				share[i] = wr[i] / sumC * (score - base)
			case !Circumstantial(i) && sumB > 0:
				share[i] = wr[i] / sumB * base
			}
		}
		return score, share
	}
	keep, sum := 1.0, 0.0
	for i := range NumFeatures {
		keep *= 1 - wr[i]
		sum += wr[i]
	}
	var score float64
	if cfg.Combine == CappedSum {
		score = round4(clamp01(sum))
	} else {
		score = round4(clamp01(1 - keep))
	}
	if sum > 0 {
		for i := range NumFeatures {
			share[i] = wr[i] / sum * score
		}
	}
	return score, share
}

// Level maps a score to allow, throttle or block.
func (cfg *Config) Level(score float64) string {
	switch {
	case score >= cfg.Block:
		return LevelBlock
	case score >= cfg.Throttle:
		return LevelThrottle
	default:
		return LevelAllow
	}
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
