package rules_test

import (
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/bulwarkgw/bulwark/scorer/rules"
	"github.com/bulwarkgw/bulwark/shared/wire"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestCurveRisk(t *testing.T) {
	ramp := rules.Ramp(10, 30, 1)
	for _, tt := range []struct{ v, want float64 }{
		{-5, 0}, {0, 0}, {10, 0}, {15, 0.25}, {20, 0.5}, {29, 0.95}, {30, 1}, {1e9, 1},
	} {
		assert.InDelta(t, tt.want, ramp.Risk(tt.v), 1e-12, "ramp v=%v", tt.v)
	}
	steps := rules.Curve{Weight: 1, Steps: []rules.Step{{Above: 3, Risk: 0.3}, {Above: 6, Risk: 0.8}}}
	for _, tt := range []struct{ v, want float64 }{
		{0, 0}, {3, 0}, {3.5, 0.3}, {4, 0.3}, {6, 0.3}, {7, 0.8}, {1e9, 0.8},
	} {
		assert.Equal(t, tt.want, steps.Risk(tt.v), "steps v=%v", tt.v)
	}
}

// value returns one feature's value for f under the default config.
func value(f rules.Features, feature rules.Feature) float64 {
	cfg := rules.DefaultConfig()
	return cfg.Values(&f)[feature]
}

func TestFeatureValues(t *testing.T) {
	tests := []struct {
		name    string
		in      rules.Features
		feature rules.Feature
		want    float64
	}{
		{"burst", rules.Features{Count1s: 42}, rules.Burst, 42},
		{"negative burst", rules.Features{Count1s: -3}, rules.Burst, 0},
		{"rate", rules.Features{Count10s: 31}, rules.Rate, 3.1},
		{"rate_60s", rules.Features{Count60s: 90}, rules.Rate60s, 1.5},
		{"visits", rules.Features{Visits: 7}, rules.Visits, 7},
		{"sensitive visits on a normal path", rules.Features{Visits: 7}, rules.SensitiveVisits, 0},
		{"sensitive visits", rules.Features{Visits: 7, Sensitive: true}, rules.SensitiveVisits, 7},
		{"sensitive hits", rules.Features{SensitiveHits: 4}, rules.SensitiveHits, 4},
		{"regularity: metronome", rules.Features{Intervals: 10, IntervalCV: 0.05}, rules.Regularity, 0.95},
		{"regularity: human", rules.Features{Intervals: 10, IntervalCV: 1.4}, rules.Regularity, 0},
		{"regularity: too few gaps", rules.Features{Intervals: 7, IntervalCV: 0}, rules.Regularity, 0},
		{"auth failures", rules.Features{AuthFailures: 5}, rules.AuthFailures, 5},
		{"error ratio, smoothed by 8 requests at 5 %", rules.Features{Count60s: 10, Errors4xx: 4}, rules.ErrorRatio, 4.4 / 18},
		{"error ratio: strong evidence", rules.Features{Count60s: 200, Errors4xx: 200}, rules.ErrorRatio, 200.4 / 208},
		{"error ratio: too few requests", rules.Features{Count60s: 3, Errors4xx: 3}, rules.ErrorRatio, 0},
		{"error ratio: errors capped at the requests", rules.Features{Count60s: 4, Errors4xx: 9}, rules.ErrorRatio, 4.4 / 12},
		{"probing", rules.Features{Probes: 3}, rules.Probing, 3},
		{"asset rate", rules.Features{Assets10s: 150, Asset: true}, rules.AssetRate, 15},
		{"path diversity", rules.Features{DistinctPaths: 77}, rules.PathDiversity, 77},
		{"enumeration", rules.Features{SequentialIDs: 6}, rules.Enumeration, 6},
		{"geo: unknown country", rules.Features{Country: "GB"}, rules.Geo, 0},
		{"hosting", rules.Features{ASN: 16509}, rules.Hosting, 1},
		{"not hosting", rules.Features{ASN: 3320}, rules.Hosting, 0},
		{"travel: London to Tokyo in an hour", rules.Features{TravelKm: 9560, TravelSeconds: 3600}, rules.Travel, 9560},
		{"travel: time floored at a minute", rules.Features{TravelKm: 1000, TravelSeconds: 2}, rules.Travel, 60000},
		{"travel: nearby places are noise", rules.Features{TravelKm: 300, TravelSeconds: 1}, rules.Travel, 0},
		{"travel: a day's flight", rules.Features{TravelKm: 9560, TravelSeconds: 86400}, rules.Travel, 9560.0 / 24},
	}
	for _, tt := range tests {
		assert.InDelta(t, tt.want, value(tt.in, tt.feature), 1e-9*max(1, tt.want), tt.name)
	}
}

func TestUserAgent(t *testing.T) {
	tests := []struct {
		ua   string
		want float64
	}{
		{"", 1},
		{"   ", 1},
		{"curl/8.5.0", 1},
		{"python-requests/2.31.0", 1},
		{"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/120.0.0.0 Safari/537.36", 1},
		{"Go-http-client/1.1", 1},
		{"Scrapy/2.11 (+https://scrapy.org)", 1},
		{"Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", 0.5},
		{"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36", 0},
		{"Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1", 0},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, value(rules.Features{UserAgent: tt.ua}, rules.UserAgent), tt.ua)
	}
}

func TestGeoAndHosting(t *testing.T) {
	cfg := rules.DefaultConfig()
	cfg.CountryRisk = map[string]float64{"KP": 1, "RU": 0.4}
	v := cfg.Values(&rules.Features{Country: "RU", ASN: 14061})
	assert.Equal(t, 0.4, v[rules.Geo])
	assert.Equal(t, 1.0, v[rules.Hosting])
	// Local and unknown addresses come without country and ASN.
	v = cfg.Values(&rules.Features{})
	assert.Zero(t, v[rules.Geo])
	assert.Zero(t, v[rules.Hosting])
}

const googlebotUA = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"

func TestAllowRuleNeedsUserAgentAndNetwork(t *testing.T) {
	cfg := rules.DefaultConfig()
	busy := rules.Features{Count1s: 60, Count10s: 300, Count60s: 900, SequentialIDs: 50, UserAgent: googlebotUA}

	verified := busy
	verified.Addr = netip.MustParseAddr("66.249.66.1")
	r := rules.Score(&cfg, verified)
	assert.Equal(t, "googlebot", r.Allow)
	assert.Zero(t, r.Score)
	assert.Equal(t, rules.LevelAllow, r.Level)
	checkResult(t, r)

	// The same claim from elsewhere is only a claim.
	spoofed := busy
	spoofed.Addr = netip.MustParseAddr("45.2.0.9")
	r = rules.Score(&cfg, spoofed)
	assert.Empty(t, r.Allow)
	assert.Equal(t, rules.LevelBlock, r.Level)

	// Google's network without the crawler's user agent is not the crawler.
	other := busy
	other.UserAgent = "curl/8.0"
	other.Addr = netip.MustParseAddr("66.249.66.1")
	assert.Empty(t, rules.Score(&cfg, other).Allow)
}

func TestAllowRuleByVerifiedHostname(t *testing.T) {
	cfg := rules.DefaultConfig()
	const bingUA = "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)"
	// A busy crawler outside the rule's networks, on a hosting ASN.
	busy := rules.Features{Count1s: 60, Count10s: 300, Count60s: 900, SequentialIDs: 50,
		UserAgent: bingUA, Addr: netip.MustParseAddr("52.167.144.20"), ASN: 8075}

	r := rules.Score(&cfg, busy)
	require.Empty(t, r.Allow, "outside the networks and no hostname yet: only a claim")
	assert.Equal(t, rules.LevelBlock, r.Level)

	verified := busy
	verified.Hostnames = []string{"msnbot-52-167-144-20.search.msn.com"}
	r = rules.Score(&cfg, verified)
	assert.Equal(t, "bingbot", r.Allow)
	assert.Equal(t, rules.AllowViaDNS, r.AllowVia)
	assert.Zero(t, r.Score)
	assert.Equal(t, rules.LevelAllow, r.Level)
	checkResult(t, r)

	// The domain itself counts too.
	verified.Hostnames = []string{"search.msn.com"}
	assert.Equal(t, "bingbot", rules.Score(&cfg, verified).Allow)

	// Names outside the rule's domains verify nothing: a lookalike, the
	// domain as a mere prefix, another crawler's domain.
	for _, h := range []string{"evilsearch.msn.com.example.net", "badsearch.msn.com", "search.msn.com.evil.net",
		"crawl-66-249-66-1.googlebot.com", "msn.com"} {
		f := busy
		f.Hostnames = []string{h}
		assert.Empty(t, rules.Score(&cfg, f).Allow, h)
	}

	// A verified hostname without the crawler's user agent is not the
	// crawler: the rule still needs both.
	other := verified
	other.UserAgent = "curl/8.0"
	assert.Empty(t, rules.Score(&cfg, other).Allow)

	// Inside the networks the network answers first.
	inNet := verified
	inNet.Addr = netip.MustParseAddr("157.55.39.7")
	r = rules.Score(&cfg, inNet)
	assert.Equal(t, "bingbot", r.Allow)
	assert.Equal(t, rules.AllowViaNetwork, r.AllowVia)
}

func TestInDomains(t *testing.T) {
	doms := []string{"googlebot.com", "google.com"}
	for host, want := range map[string]bool{
		"googlebot.com": true, "crawl-66-249-66-1.googlebot.com": true, "rate-limited-proxy-66-249-90-77.google.com": true,
		"evilgooglebot.com": false, "googlebot.com.evil.net": false, "xgoogle.com": false, "com": false, "": false,
		"google.co": false, "oogle.com": false,
	} {
		assert.Equal(t, want, rules.InDomains(host, doms), host)
	}
	assert.False(t, rules.InDomains("googlebot.com", nil))
}

func TestWantsHostnames(t *testing.T) {
	cfg := rules.DefaultConfig()
	for ua, want := range map[string]bool{
		googlebotUA:                                     true,
		"Mozilla/5.0 (compatible; BINGBOT/2.0)":         true,
		"Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0": false,
		"": false, "Googlebo": false, "ÄGooglebot": true,
	} {
		assert.Equal(t, want, cfg.WantsHostnames(ua), ua)
	}
	// The allocation-free search agrees with lower-casing on ASCII.
	rng := rand.New(rand.NewPCG(1, 2))
	const alphabet = "gGoOlLeEbBiInNtT /"
	noise := func() string {
		b := make([]byte, rng.IntN(6))
		for i := range b {
			b[i] = alphabet[rng.IntN(len(alphabet))]
		}
		return string(b)
	}
	positives := 0
	for range 20000 {
		// Noise around a randomly cased crawler name, whole or missing a
		// byte: hits and near misses.
		name := []byte([]string{"googlebot", "bingbot"}[rng.IntN(2)])
		for i := range name {
			if rng.IntN(2) == 0 {
				name[i] -= 'a' - 'A'
			}
		}
		if rng.IntN(2) == 0 {
			i := rng.IntN(len(name))
			name = append(name[:i], name[i+1:]...)
		}
		ua := noise() + string(name) + noise()
		lower := strings.ToLower(ua)
		want := strings.Contains(lower, "googlebot") || strings.Contains(lower, "bingbot")
		if want {
			positives++
		}
		require.Equal(t, want, cfg.WantsHostnames(ua), "%q", ua)
	}
	require.Greater(t, positives, 5000)
	// A rule without domains never wants a lookup.
	cfg.Allow = []rules.AllowRule{{Name: "x", UserAgent: "googlebot", Networks: cfg.Allow[0].Networks}}
	assert.False(t, cfg.WantsHostnames(googlebotUA))
	// A non-ASCII rule string folds as allowed folds it.
	cfg.Allow = []rules.AllowRule{{Name: "x", UserAgent: "crawlér", Domains: []string{"example.com"}}}
	assert.True(t, cfg.WantsHostnames("CRAWLÉR/1.0"))
}

func BenchmarkWantsHostnamesBrowser(b *testing.B) {
	cfg := rules.DefaultConfig()
	ua := "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36"
	b.ReportAllocs()
	for b.Loop() {
		if cfg.WantsHostnames(ua) {
			b.Fatal("a browser is no crawler")
		}
	}
}

func TestCombinationRules(t *testing.T) {
	var cfg rules.Config
	cfg.Block, cfg.Throttle = 0.8, 0.5
	for i := range rules.NumFeatures {
		cfg.Curves[i] = rules.Ramp(0, 1, 0)
	}
	cfg.Curves[rules.Burst] = rules.Ramp(0, 1, 0.5)
	cfg.Curves[rules.Rate] = rules.Ramp(0, 1, 0.4)
	var vals [rules.NumFeatures]float64
	vals[rules.Burst], vals[rules.Rate] = 1, 1

	cfg.Combine = rules.NoisyOR
	r := cfg.ScoreValues(vals, "")
	assert.Equal(t, 0.7, r.Score) // 1 − 0.5 · 0.6
	assert.Equal(t, rules.LevelThrottle, r.Level)
	assert.Equal(t, wire.Reason{Feature: "burst", Value: 1, Contribution: 0.3889}, r.Reasons[0])
	assert.Equal(t, wire.Reason{Feature: "rate", Value: 1, Contribution: 0.3111}, r.Reasons[1])
	checkResult(t, r)

	cfg.Combine = rules.CappedSum
	r = cfg.ScoreValues(vals, "")
	assert.Equal(t, 0.9, r.Score)
	assert.Equal(t, rules.LevelBlock, r.Level)
	assert.Equal(t, 0.5, r.Reasons[0].Contribution)
	checkResult(t, r)

	cfg.Curves[rules.Rate].Weight = 0.9
	r = cfg.ScoreValues(vals, "")
	assert.Equal(t, 1.0, r.Score, "capped")
	checkResult(t, r)
}

// TestErrorRatioNeedsEvidence: with the default profile no client of up
// to a handful of requests reaches the throttle threshold by its error
// ratio alone, however many of them failed; a sustained share does.
func TestErrorRatioNeedsEvidence(t *testing.T) {
	cfg := rules.DefaultConfig()
	for n := int64(1); n <= 10; n++ {
		for e := int64(0); e <= n; e++ {
			var vals [rules.NumFeatures]float64
			vals[rules.ErrorRatio] = cfg.Values(&rules.Features{Count60s: n, Errors4xx: e})[rules.ErrorRatio]
			r := cfg.ScoreValues(vals, "")
			assert.Less(t, r.Score, cfg.Throttle, "%d errors in %d requests", e, n)
		}
	}
	var vals [rules.NumFeatures]float64
	vals[rules.ErrorRatio] = cfg.Values(&rules.Features{Count60s: 60, Errors4xx: 60})[rules.ErrorRatio]
	assert.GreaterOrEqual(t, cfg.ScoreValues(vals, "").Score, cfg.Throttle, "60 errors in 60 requests")
}

func TestDefaultCalibration(t *testing.T) {
	cfg := rules.DefaultConfig()
	const chrome = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36"
	tests := []struct {
		name  string
		in    rules.Features
		level string
	}{
		{"human: a page with its assets", rules.Features{Count1s: 8, Count10s: 9, Count60s: 30, DistinctPaths: 14, Intervals: 11, IntervalCV: 1.8, UserAgent: chrome}, rules.LevelAllow},
		{"human: a login and a checkout", rules.Features{Count1s: 2, Count10s: 10, Count60s: 40, SensitiveHits: 3, AuthFailures: 1, Errors4xx: 1, DistinctPaths: 20, Intervals: 11, IntervalCV: 1.1, UserAgent: chrome}, rules.LevelAllow},
		{"curl alone", rules.Features{Count1s: 1, Count10s: 1, Count60s: 1, UserAgent: "curl/8"}, rules.LevelAllow},
		{"hosting alone", rules.Features{Count1s: 1, Count10s: 1, Count60s: 1, UserAgent: chrome, ASN: 16509}, rules.LevelAllow},
		{"curl from hosting", rules.Features{Count1s: 1, Count10s: 1, Count60s: 1, UserAgent: "curl/8", ASN: 16509}, rules.LevelAllow},
		{"python from hosting at 5 req/s on a timer, for minutes", rules.Features{Count1s: 5, Count10s: 51, Count60s: 300, DistinctPaths: 9, Intervals: 11, IntervalCV: 0.01, UserAgent: "python-requests/2.32.3", ASN: 16509, Country: "US"}, rules.LevelAllow},
		{"okhttp polling 3 req/s on a timer", rules.Features{Count1s: 3, Count10s: 30, Count60s: 180, DistinctPaths: 3, Intervals: 11, IntervalCV: 0, UserAgent: "okhttp/4.12.0"}, rules.LevelAllow},
		{"a webhook sender's burst of 50 from a cloud", rules.Features{Count1s: 50, Count10s: 50, Count60s: 100, DistinctPaths: 1, Intervals: 11, IntervalCV: 2.5, UserAgent: "Stripe/1.0 (+https://stripe.com/docs/webhooks)", ASN: 16509}, rules.LevelAllow},
		{"a principal at 80 req/s", rules.Features{Count1s: 80, Count10s: 800, Count60s: 4800, DistinctPaths: 2, Intervals: 11, IntervalCV: 0, UserAgent: "Go-http-client/1.1", ASN: 16509, Principal: "key:0123456789ab"}, rules.LevelAllow},
		{"a principal enumerating ids and refused", rules.Features{Count1s: 5, Count10s: 40, Count60s: 40, SequentialIDs: 40, AuthFailures: 38, Errors4xx: 38, UserAgent: "python-requests/2", Principal: "key:0123456789ab"}, rules.LevelBlock},
		{"okhttp scraping random ids: 404s, many paths", rules.Features{Count1s: 8, Count10s: 60, Count60s: 60, DistinctPaths: 60, Errors4xx: 59, Intervals: 11, IntervalCV: 0.2, UserAgent: "okhttp/4.12.0"}, rules.LevelBlock},
		{"a browser's user agent taking 40 pages a minute without assets", rules.Features{Count1s: 1, Count10s: 7, Count60s: 40, DistinctPaths: 40, Pages60s: 40, UserAgent: chrome}, rules.LevelThrottle},
		{"a person reading 8 pages a minute with their assets", rules.Features{Count1s: 1, Count10s: 2, Count60s: 8, DistinctPaths: 8, Pages60s: 8, Assets60s: 200, UserAgent: chrome}, rules.LevelAllow},
		{"a person reading 12 pages a minute, assets cached", rules.Features{Count1s: 1, Count10s: 2, Count60s: 12, DistinctPaths: 12, Pages60s: 12, Assets60s: 3, UserAgent: chrome}, rules.LevelAllow},
		{"a tool taking 40 pages a minute without assets", rules.Features{Count1s: 1, Count10s: 7, Count60s: 40, DistinctPaths: 40, Pages60s: 40, UserAgent: "curl/8"}, rules.LevelBlock},
		{"an unverifiable self-declared crawler taking 40 pages a minute", rules.Features{Count1s: 1, Count10s: 7, Count60s: 40, DistinctPaths: 40, Pages60s: 40, UserAgent: "Mozilla/5.0 (compatible; SomeBot/1.0)"}, rules.LevelBlock},
		{"a crawler taking 40 pages a minute while its claim is verified", rules.Features{Count1s: 1, Count10s: 7, Count60s: 40, DistinctPaths: 40, Pages60s: 40, CrawlerPending: true, UserAgent: "Mozilla/5.0 (compatible; bingbot/2.0)"}, rules.LevelAllow},
		{"a monitor fetching the home page every 10 s", rules.Features{Count1s: 1, Count10s: 1, Count60s: 6, DistinctPaths: 1, Pages60s: 6, Intervals: 11, IntervalCV: 0, UserAgent: "curl/8.5.0", ASN: 16509}, rules.LevelAllow},
		{"hosting on a login", rules.Features{Count1s: 1, Count10s: 1, Count60s: 1, Sensitive: true, SensitiveHits: 1, UserAgent: chrome, ASN: 14061}, rules.LevelAllow},
		{"hosting, a second login after a failed one", rules.Features{Count1s: 1, Count10s: 2, Count60s: 2, Sensitive: true, SensitiveHits: 2, AuthFailures: 1, Errors4xx: 1, UserAgent: chrome, ASN: 14061}, rules.LevelThrottle},
		{"residential, a second login after a typo", rules.Features{Count1s: 1, Count10s: 2, Count60s: 2, Sensitive: true, SensitiveHits: 2, AuthFailures: 1, Errors4xx: 1, UserAgent: chrome}, rules.LevelAllow},
		{"50 rps at its 30th request", rules.Features{Count1s: 30, Count10s: 30, Count60s: 30, UserAgent: chrome}, rules.LevelAllow},
		{"50 rps for 2 s", rules.Features{Count1s: 50, Count10s: 100, Count60s: 100, UserAgent: chrome}, rules.LevelThrottle},
		{"50 rps for 3 s", rules.Features{Count1s: 50, Count10s: 150, Count60s: 150, UserAgent: chrome}, rules.LevelBlock},
		{"50 rps checkout at its 30th request", rules.Features{Count1s: 30, Count10s: 30, Count60s: 30, Sensitive: true, SensitiveHits: 30, UserAgent: chrome}, rules.LevelAllow},
		{"50 rps checkout at its 60th request", rules.Features{Count1s: 50, Count10s: 60, Count60s: 60, Sensitive: true, SensitiveHits: 60, UserAgent: chrome}, rules.LevelThrottle},
		{"50 rps checkout, evenly spaced, at its 20th request", rules.Features{Count1s: 20, Count10s: 20, Count60s: 20, Sensitive: true, SensitiveHits: 20, Intervals: 11, IntervalCV: 0.1, UserAgent: chrome}, rules.LevelThrottle},
		{"enumerating ids", rules.Features{Count1s: 4, Count10s: 8, Count60s: 8, SequentialIDs: 8, UserAgent: chrome}, rules.LevelThrottle},
		{"enumerating ids with a tool", rules.Features{Count1s: 4, Count10s: 8, Count60s: 8, SequentialIDs: 8, UserAgent: "python-requests/2"}, rules.LevelBlock},
		// An API client picking among a few resources at random makes runs
		// of 3 and 4 neighbouring ids by chance.
		{"an API client's run of 4 neighbouring ids by chance", rules.Features{Count1s: 2, Count10s: 10, Count60s: 40, DistinctPaths: 6, SequentialIDs: 4, UserAgent: "python-requests/2.32.3", ASN: 16509}, rules.LevelAllow},
		{"an iPhone: three icon 404s in four requests are no evidence", rules.Features{Count1s: 3, Count10s: 4, Count60s: 4, Errors4xx: 3, UserAgent: chrome}, rules.LevelAllow},
		{"a page of 150 assets", rules.Features{Count1s: 1, Count10s: 1, Count60s: 1, Asset: true, Assets10s: 150, UserAgent: chrome}, rules.LevelAllow},
		{"two pages of 150 assets in 10 s", rules.Features{Count1s: 1, Count10s: 2, Count60s: 2, Asset: true, Assets10s: 300, UserAgent: chrome}, rules.LevelAllow},
		{"an asset flood", rules.Features{Count1s: 0, Count10s: 0, Count60s: 1, Asset: true, Assets10s: 1200, UserAgent: chrome}, rules.LevelThrottle},
		{"scanning: 30 404s in 40", rules.Features{Count1s: 3, Count10s: 20, Count60s: 40, Errors4xx: 30, UserAgent: chrome}, rules.LevelThrottle},
		{"scanning with a tool", rules.Features{Count1s: 3, Count10s: 6, Count60s: 6, Errors4xx: 6, UserAgent: "python-requests/2"}, rules.LevelThrottle},
		{"2nd probe, a browser's user agent", rules.Features{Count1s: 1, Count10s: 2, Count60s: 2, Probe: true, Probes: 2, Errors4xx: 1, UserAgent: chrome}, rules.LevelAllow},
		{"3rd probe, a browser's user agent", rules.Features{Count1s: 1, Count10s: 3, Count60s: 3, Probe: true, Probes: 3, Errors4xx: 2, UserAgent: chrome}, rules.LevelThrottle},
		{"5th probe, a browser's user agent", rules.Features{Count1s: 1, Count10s: 5, Count60s: 5, Probe: true, Probes: 5, Errors4xx: 4, UserAgent: chrome}, rules.LevelBlock},
		{"bingbot's claim from Azure while its DNS is checked", rules.Features{Count1s: 1, Count10s: 1, Count60s: 1, ASN: 8075, CrawlerPending: true, UserAgent: "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)"}, rules.LevelAllow},
		{"bingbot's claim from Azure, refuted, doing nothing abusive", rules.Features{Count1s: 1, Count10s: 1, Count60s: 1, ASN: 8075, UserAgent: "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)"}, rules.LevelAllow},
		{"a tool claiming a crawler, probing", rules.Features{Count1s: 1, Count10s: 2, Count60s: 2, ASN: 8075, CrawlerPending: true, Probe: true, Probes: 2, UserAgent: "curl/8 bingbot"}, rules.LevelThrottle},
		{"2nd probe, no user agent", rules.Features{Count1s: 1, Count10s: 2, Count60s: 2, Probe: true, Probes: 2, Errors4xx: 1}, rules.LevelThrottle},
		{"a metronome doing nothing else", rules.Features{Count1s: 1, Count10s: 4, Count60s: 20, Intervals: 11, IntervalCV: 0.03, UserAgent: chrome}, rules.LevelAllow},
		{"an API key in Berlin, then London 2 hours later", rules.Features{Count1s: 1, Count10s: 1, Count60s: 1, TravelKm: 930, TravelSeconds: 7200, UserAgent: chrome}, rules.LevelAllow},
		{"an API key in Berlin, then London 10 minutes later", rules.Features{Count1s: 1, Count10s: 1, Count60s: 1, TravelKm: 930, TravelSeconds: 600, UserAgent: chrome}, rules.LevelBlock},
		{"an API key in London, then Tokyo 5 minutes later", rules.Features{Count1s: 1, Count10s: 1, Count60s: 1, TravelKm: 9560, TravelSeconds: 300, UserAgent: chrome}, rules.LevelBlock},
		{"credential stuffing", rules.Features{Count1s: 5, Count10s: 20, Count60s: 20, SensitiveHits: 20, AuthFailures: 8, UserAgent: chrome}, rules.LevelBlock},
	}
	for _, tt := range tests {
		r := rules.Score(&cfg, tt.in)
		checkResult(t, r, tt.name)
		assert.Equal(t, tt.level, r.Level, "%s: score %v %+v", tt.name, r.Score, r.Reasons)
	}
}

// randomConfig returns a valid config: weights in [0, 1], ramps low < high,
// steps rising.
func randomConfig(rng *rand.Rand) rules.Config {
	cfg := rules.DefaultConfig()
	cfg.Combine = []rules.Combine{rules.NoisyOR, rules.CappedSum, rules.Amplified}[rng.IntN(3)]
	cfg.Amplify = rng.Float64() * 10
	for i := range rules.NumFeatures {
		if rng.IntN(4) == 0 {
			above, risk := rng.Float64()*5, 0.0
			var steps []rules.Step
			for range 1 + rng.IntN(3) {
				risk = min(1, risk+rng.Float64()/2)
				steps = append(steps, rules.Step{Above: above, Risk: risk})
				above += 0.5 + rng.Float64()*5
			}
			cfg.Curves[i] = rules.Curve{Steps: steps, Weight: rng.Float64()}
			continue
		}
		low := rng.Float64() * 3
		cfg.Curves[i] = rules.Ramp(low, low+0.1+rng.Float64()*20, rng.Float64())
	}
	cfg.Throttle = rng.Float64()
	cfg.Block = cfg.Throttle + (1-cfg.Throttle)*rng.Float64()
	return cfg
}

func randomValues(rng *rand.Rand) [rules.NumFeatures]float64 {
	var v [rules.NumFeatures]float64
	for i := range v {
		switch rng.IntN(3) {
		case 0: // zero
		case 1:
			v[i] = rng.Float64()
		default:
			v[i] = rng.Float64() * 40
		}
	}
	return v
}

// checkResult asserts the invariants every result must hold: bounded,
// every feature listed once, contributions non-negative, summing to the
// score (up to rounding), sorted.
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
	ok = assert.ElementsMatch(t, rules.FeatureNames[:], names, ctx...) && ok
	sorted := slices.IsSortedFunc(r.Reasons, func(a, b wire.Reason) int {
		switch {
		case a.Contribution > b.Contribution:
			return -1
		case a.Contribution < b.Contribution:
			return 1
		case a.Feature < b.Feature:
			return -1
		case a.Feature > b.Feature:
			return 1
		}
		return 0
	})
	return assert.True(t, sorted, "reasons sorted: %+v %v", r.Reasons, ctx) && ok
}

func TestScoreProperties(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	def := rules.DefaultConfig()
	for i := range 5000 {
		cfg := def
		if i%2 == 1 {
			cfg = randomConfig(rng)
		}
		vals := randomValues(rng)
		base := cfg.ScoreValues(vals, "")
		if !checkResult(t, base, "config", cfg, "values", vals) {
			return
		}
		require.Equal(t, base, cfg.ScoreValues(vals, ""), "deterministic")
		switch {
		case base.Score >= cfg.Block:
			require.Equal(t, rules.LevelBlock, base.Level)
		case base.Score >= cfg.Throttle:
			require.Equal(t, rules.LevelThrottle, base.Level)
		default:
			require.Equal(t, rules.LevelAllow, base.Level)
		}

		// Monotone: growing any one feature's value never lowers the score.
		for f := range rules.NumFeatures {
			grown := vals
			grown[f] += rng.Float64() * 10
			s := cfg.ScoreValues(grown, "")
			if !assert.GreaterOrEqual(t, s.Score, base.Score, "feature %s grew: %v → %v", rules.FeatureNames[f], vals[f], grown[f]) {
				return
			}
		}
	}
}

// TestNoRefusalWithoutBehaviour is the scoring principle under the
// Amplified rule: whatever a client's circumstances (user agent class,
// country, hosting network, regular timing, all at their worst, with any
// weights and any amplification), it scores 0 while every behavioural
// feature is at rest; and a principal's circumstances and volume never
// count at all.
func TestNoRefusalWithoutBehaviour(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	for range 2000 {
		cfg := randomConfig(rng)
		cfg.Combine = rules.Amplified
		var vals [rules.NumFeatures]float64
		for f := range rules.NumFeatures {
			if rules.Circumstantial(f) {
				vals[f] = rng.Float64() * 40
			}
		}
		require.Zero(t, cfg.ScoreValues(vals, "").Score, "circumstance alone: %v", vals)
	}
	cfg := rules.DefaultConfig()
	worst := rules.Features{Count1s: 1, Count10s: 1, Count60s: 1, UserAgent: "", ASN: 16509, Country: "KP",
		Intervals: 11, IntervalCV: 0, Addr: netip.MustParseAddr("3.80.0.1")}
	cfg.CountryRisk = map[string]float64{"KP": 1}
	assert.Zero(t, rules.Score(&cfg, worst).Score, "no user agent, a hosting network, the riskiest country, a metronome")
	assert.Zero(t, cfg.UpperBound(&worst, false), "and so no scorer call is needed")

	// A principal: circumstance and volume read 0, behaviour still counts.
	flood := rules.Features{Count1s: 500, Count10s: 5000, Count60s: 30000, Visits: 30000, Assets10s: 5000,
		UserAgent: "curl/8", ASN: 16509, Country: "KP", Intervals: 11, IntervalCV: 0, Principal: "key:0123456789ab"}
	assert.Zero(t, rules.Score(&cfg, flood).Score, "a principal's volume is its rate limits' business")
	flood.Probes = 5
	assert.GreaterOrEqual(t, rules.Score(&cfg, flood).Score, cfg.Block, "a principal that probes is blocked")
}

// TestRefusalsNeitherRaiseNorDiluteTheErrorRatio: error_ratio is taken
// over the requests the upstream answered; the gateway's own refusals
// (Refused60s) are left out of it.
func TestRefusalsNeitherRaiseNorDiluteTheErrorRatio(t *testing.T) {
	cfg := rules.DefaultConfig()
	errs := rules.Features{Count60s: 20, Errors4xx: 18}
	refusedToo := errs
	refusedToo.Count60s, refusedToo.Refused60s = 60, 40 // 40 more, all refused
	assert.Equal(t, cfg.Values(&errs)[rules.ErrorRatio], cfg.Values(&refusedToo)[rules.ErrorRatio])
	diluted := refusedToo
	diluted.Refused60s = 0 // as if the refused 40 had been answered well
	assert.Less(t, cfg.Values(&diluted)[rules.ErrorRatio], cfg.Values(&errs)[rules.ErrorRatio])
	all := rules.Features{Count60s: 10, Refused60s: 25, Errors4xx: 3} // refusals past the count: clamped
	assert.Zero(t, cfg.Values(&all)[rules.ErrorRatio], "nothing answered: no ratio")
}

// TestAmplifiedExplains checks that behaviour's contributions sum to the
// behavioural score and circumstance's to what it added.
func TestAmplifiedExplains(t *testing.T) {
	cfg := rules.DefaultConfig()
	f := rules.Features{Count1s: 8, Count10s: 60, Count60s: 60, DistinctPaths: 60, Errors4xx: 59, UserAgent: "okhttp/4.12.0", ASN: 16509}
	r := rules.Score(&cfg, f)
	alone := f
	alone.UserAgent, alone.ASN = "Mozilla/5.0 Chrome/131.0", 0
	b := rules.Score(&cfg, alone).Score
	circ := 0.0
	for _, rs := range r.Reasons {
		if rs.Feature == rules.FeatureUserAgent || rs.Feature == rules.FeatureHosting {
			circ += rs.Contribution
			assert.Positive(t, rs.Contribution, rs.Feature)
		}
	}
	assert.Greater(t, r.Score, b)
	assert.InDelta(t, r.Score-b, circ, 2e-3)
}

// TestScoreMonotoneSweep walks each count from 0 upwards with the others
// fixed and checks the default score never falls.
func TestScoreMonotoneSweep(t *testing.T) {
	cfg := rules.DefaultConfig()
	fixed := []rules.Features{
		{},
		{Count1s: 12, Count10s: 40, Count60s: 150, SensitiveHits: 2, Errors4xx: 10, DistinctPaths: 20},
		{Count1s: 50, Count10s: 200, Count60s: 900, Intervals: 11, IntervalCV: 0.3, ASN: 16509},
	}
	setters := map[string]func(*rules.Features, int64){
		"burst":          func(f *rules.Features, n int64) { f.Count1s = n },
		"rate":           func(f *rules.Features, n int64) { f.Count10s = n },
		"sensitive_hits": func(f *rules.Features, n int64) { f.SensitiveHits = n },
		"auth_failures":  func(f *rules.Features, n int64) { f.AuthFailures = n },
		"errors_4xx":     func(f *rules.Features, n int64) { f.Errors4xx = n },
		"distinct_paths": func(f *rules.Features, n int64) { f.DistinctPaths = n },
		"sequential_ids": func(f *rules.Features, n int64) { f.SequentialIDs = n },
	}
	for _, f := range fixed {
		for feature, set := range setters {
			prev := -1.0
			for n := int64(0); n <= 300; n++ {
				g := f
				set(&g, n)
				s := rules.Score(&cfg, g).Score
				require.GreaterOrEqual(t, s, prev, "%s=%d from %+v", feature, n, f)
				prev = s
			}
		}
		// Regularity grows as the coefficient of variation falls.
		prev := -1.0
		for cv := 2.0; cv >= 0; cv -= 0.01 {
			g := f
			g.Intervals, g.IntervalCV = 11, cv
			s := rules.Score(&cfg, g).Score
			require.GreaterOrEqual(t, s, prev, "cv=%v", cv)
			prev = s
		}
	}
}

func BenchmarkScore(b *testing.B) {
	cfg := rules.DefaultConfig()
	cfg.CountryRisk = map[string]float64{"KP": 1, "RU": 0.4, "CN": 0.3}
	rng := rand.New(rand.NewPCG(3, 4))
	uas := []string{"", "curl/8.5.0", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36", googlebotUA}
	inputs := make([]rules.Features, 1024)
	for i := range inputs {
		inputs[i] = rules.Features{
			Count1s: rng.Int64N(120), Count10s: rng.Int64N(600), Count60s: rng.Int64N(2400),
			SensitiveHits: rng.Int64N(10), AuthFailures: rng.Int64N(10), Errors4xx: rng.Int64N(50),
			DistinctPaths: rng.Int64N(100), SequentialIDs: rng.Int64N(10),
			Intervals: 11, IntervalCV: rng.Float64() * 2,
			UserAgent: uas[i%len(uas)],
			Addr:      netip.AddrFrom4([4]byte{66, 249, byte(rng.IntN(256)), byte(rng.IntN(256))}),
			Country:   []string{"", "GB", "KP", "RU", "CN"}[i%5],
			ASN:       []uint32{0, 3320, 16509}[i%3],
		}
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
