package wire

import (
	"crypto/sha256"
	"encoding/hex"
)

// ScoreRequest carries what the gateway observed about one client, gathered
// from Redis in the request's single round trip. The scorer is stateless:
// everything it needs is in here. Every count is per client IP.
//
// Page assets (a stylesheet, script, image, font or media file a browser
// fetches for a page: Asset) are counted apart, in Assets10s only: the
// windows, distinct paths, sequential ids, gaps and upstream answers below
// are about the client's other requests, so a browser loading a page of
// 150 images is not a burst and its missing icons are not errors.
type ScoreRequest struct {
	IP string `json:"ip"`
	// Requests other than page assets counted in sliding windows ending now.
	Count1s  int64 `json:"count_1s"`
	Count10s int64 `json:"count_10s"`
	Count60s int64 `json:"count_60s"`
	// Optional context about the current request.
	Method    string `json:"method,omitempty"`
	Path      string `json:"path,omitempty"`
	UserAgent string `json:"user_agent,omitempty"`

	// Visits in the current fixed window (seed 002's counter).
	Visits int64 `json:"visits,omitempty"`
	// Sensitive is true when the current path is one of the gateway's
	// sensitive paths; SensitiveHits counts such requests in 60 s.
	Sensitive     bool  `json:"sensitive,omitempty"`
	SensitiveHits int64 `json:"sensitive_hits,omitempty"`
	// Upstream answers in 60 s: 401/403 (auth failures) and every 4xx.
	AuthFailures int64 `json:"auth_failures,omitempty"`
	Errors4xx    int64 `json:"errors_4xx,omitempty"`
	// DistinctPaths requested in 60 s.
	DistinctPaths int64 `json:"distinct_paths,omitempty"`
	// SequentialIDs is the length of the current run of neighbouring
	// numeric ids on one path pattern (/products/41, /products/42, ...).
	SequentialIDs int64 `json:"sequential_ids,omitempty"`
	// Intervals is how many gaps between recent requests were measured and
	// IntervalCV their coefficient of variation (stddev / mean).
	Intervals  int     `json:"intervals,omitempty"`
	IntervalCV float64 `json:"interval_cv,omitempty"`
	// PrevIP is the other address the request's principal (an API key or a login)
	// was last seen from, PrevSeconds how long ago; empty when the
	// principal is new or was last seen from this address.
	PrevIP      string  `json:"prev_ip,omitempty"`
	PrevSeconds float64 `json:"prev_seconds,omitempty"`

	// Asset is true when the current request is a page asset; Assets10s
	// counts the client's page-asset requests in 10 s, this one included.
	Asset     bool  `json:"asset,omitempty"`
	Assets10s int64 `json:"assets_10s,omitempty"`
	// Probe is true when the current path is a well-known exploit or admin
	// path of software the upstream does not run (the gateway's probe
	// list: /wp-login.php, /.env, /.git/config, ...); Probes counts such
	// requests in 60 s, this one included.
	Probe  bool  `json:"probe,omitempty"`
	Probes int64 `json:"probes,omitempty"`

	// Pages60s counts the documents (answers with an HTML Content-Type)
	// the client fetched in 60 s, Assets60s its page assets in 60 s (by
	// path or by the answer's Content-Type): a client that claims a
	// browser yet fetches pages without the assets a browser loads shows
	// it (the rules' bare_pages feature).
	Pages60s  int64 `json:"pages_60s,omitempty"`
	Assets60s int64 `json:"assets_60s,omitempty"`
	// Refused60s counts the requests in Count60s the gateway refused
	// itself (429, 403, ...): nobody answered them, so error_ratio is taken
	// over Count60s − Refused60s.
	Refused60s int64 `json:"refused_60s,omitempty"`

	// Principal names the verified credential the request carried, as
	// clientid.Display spells its identity ("key:0123456789ab" for a
	// Bulwark API key, "jwt:..." for a verified bearer token); "" for
	// none. A principal is judged by its own behaviour, counted under the
	// principal: circumstance (user agent, network, country, timing) never
	// applies to it, and its volume is governed by its rate limits.
	Principal string `json:"principal,omitempty"`
}

// Score levels: what the gateway should do.
const (
	LevelAllow    = "allow"
	LevelThrottle = "throttle"
	LevelBlock    = "block"
)

// ScoreResponse is the scorer's verdict: a score in [0, 1], every feature's
// part in it sorted by contribution (largest first), and the client's geo.
type ScoreResponse struct {
	Score   float64  `json:"score"`
	Reasons []Reason `json:"reasons"`
	Geo     *Geo     `json:"geo,omitempty"`
	// Level is allow, throttle or block by the profile's thresholds.
	Level string `json:"level,omitempty"`
	// Profile names the profile that scored; Allow the allow rule that
	// matched (a verified crawler), if any.
	Profile string `json:"profile,omitempty"`
	Allow   string `json:"allow,omitempty"`
	// AllowVia says how the allow rule verified the client: "network"
	// (its address is in the rule's networks) or "dns" (its
	// forward-confirmed reverse DNS name is in the rule's domains).
	AllowVia string `json:"allow_via,omitempty"`
	// ProfileHash names the exact profile that scored: ProfileHashOf the
	// body the scorer serves at GET /v1/profile. A gateway that bounds
	// scores with another profile stops until it has read this one.
	ProfileHash string `json:"profile_hash,omitempty"`
}

// ScoreBatchRequest scores many clients in one call.
type ScoreBatchRequest struct {
	Requests []ScoreRequest `json:"requests"`
}

// ScoreBatchResponse holds one response per request, in order.
type ScoreBatchResponse struct {
	Responses []ScoreResponse `json:"responses"`
}

// RulesVersionHeader is the response header of GET /v1/profile naming the
// version of the rules engine (scorer/rules.Version) the profile is
// evaluated with; a gateway that runs another version must not bound
// scores with it.
const RulesVersionHeader = "X-Bulwark-Rules-Version"

// ProfileHashOf names a profile by the bytes the scorer serves for it: the
// first 16 hex digits of their SHA-256.
func ProfileHashOf(body []byte) string {
	sum := sha256.Sum256(body)
	return hex.EncodeToString(sum[:8])
}
