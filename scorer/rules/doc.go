// Package rules turns what the gateway observed about one client into a
// score in [0, 1], a level (allow, throttle, block) and the reasons for it.
// It is pure: no I/O, no clock, no randomness; the same Config and Features
// always give the same Result.
//
// # Features
//
// Each feature has a raw value, computed from the gateway's observations,
// and a curve that maps the value to a risk in [0, 1]. Page assets (GETs of
// stylesheets, scripts, images, fonts, media: the gateway's
// scoring.asset_extensions) are counted apart: they feed asset_rate only,
// so a browser fetching a page's 150 images is neither a burst nor a
// walk over many paths, and its missing icons are not errors. Every other
// count below is of the client's other requests.
//
//	feature           value
//	burst             requests in the last second
//	rate              requests in the last 10 s / 10 (req/s)
//	rate_60s          requests in the last 60 s / 60 (req/s)
//	visits            requests in the current fixed window (seed 002's counter)
//	sensitive_visits  visits, when the current path is sensitive; else 0
//	sensitive_hits    requests to sensitive paths (login, checkout, ...) in 60 s
//	regularity        1 − coefficient of variation of the inter-arrival times
//	                  of the client's recent requests (1 = a metronome), 0 until
//	                  MinIntervals gaps are known
//	auth_failures     upstream 401/403 answers to the client in 60 s
//	error_ratio       4xx answers / requests in 60 s, smoothed for small
//	                  counts: (errors + ErrorPrior·ErrorPriorRatio) /
//	                  (requests + ErrorPrior), the mean of a Beta posterior
//	                  (0 below MinRequests)
//	path_diversity    distinct paths in 60 s
//	enumeration       length of the current run of neighbouring numeric ids
//	                  (/products/41, /products/42, ... one way, step 1)
//	user_agent        1 for an empty user agent or a tool's (curl, python,
//	                  headless browsers, scanners), BotUARisk for a
//	                  self-declared crawler, else 0
//	geo               the configured risk of the client's country
//	hosting           1 when the client's ASN is a hosting/datacenter one
//	travel            impossible travel: the speed (km/h) at which the
//	                  request's principal (API key or login) would have moved from
//	                  where it was last seen, when that is at least
//	                  MinTravelKm away (time floored at MinTravelSeconds)
//	probing           requests in 60 s to well-known exploit and admin paths
//	                  of software the upstream does not run (the gateway's
//	                  scoring.probe_paths: /wp-login.php, /.env, /.git, ...)
//	asset_rate        page assets in the last 10 s / 10 (req/s)
//	bare_pages        HTML pages in 60 s / (1 + page assets in 60 s), for
//	                  every client but a crawler whose claim is being
//	                  verified (a verified one is allowed; "bot" in a user
//	                  agent proves nothing). People
//	                  load a page's assets with it and read a few pages a
//	                  minute; a scraper, with a browser's user agent or a
//	                  tool's, takes the pages alone
//
// user_agent, geo, hosting and regularity are circumstantial (Circumstantial):
// they say what a client is and where it comes from, not what it does.
// Every other feature is behavioural.
//
// A principal (Features.Principal: the request carried a verified
// credential, an API key or a JWT's subject) is judged by its own behaviour
// alone: its circumstantial features and bare_pages read 0, and under the
// Amplified rule so do its volume features (burst, rate, rate_60s, visits,
// sensitive_visits, asset_rate: its rate limits govern how much it sends;
// the other rules keep them, as seed 002's profile is nothing but volume);
// failed authorisations, errors, enumeration, probes, travel and the rest
// still count.
//
// A curve is either a ramp (risk 0 at or below Low, 1 at or above High,
// linear between) or a step function (the risk of the highest step whose
// Above the value strictly exceeds). Both never decrease as the value grows.
// Local and unknown addresses have no country and no ASN, hence no geo or
// hosting risk.
//
// An allow rule gives a verified client score 0: its user agent contains
// the rule's substring AND either its address is in one of the rule's
// networks or one of its forward-confirmed reverse DNS names
// (Features.Hostnames: a PTR name whose own A/AAAA records contain the
// address) is one of the rule's domains or below one, on a label boundary
// (crawl-1.googlebot.com is in googlebot.com, evilgooglebot.com is not). A
// user agent string alone is never enough. The package does no DNS: the
// caller resolves, off the request path, only for clients whose user agent
// a rule with domains claims (Config.WantsHostnames), and passes the names
// in; while they are unknown only the networks can verify.
//
// # Combination
//
// With w_i the weight and r_i the risk of feature i (both in [0, 1]), and A
// the profile's amplify (Config.Amplify; a negative one counts as 0):
//
//	noisy_or:    score = 1 − Π (1 − w_i · r_i)
//	capped_sum:  score = min(1, Σ w_i · r_i)
//	amplified:   b     = 1 − Π over behavioural i of (1 − w_i · r_i)
//	             c     = 1 − Π over circumstantial i of (1 − w_i · r_i)
//	             score = 1 − (1 − b)^(1 + A · c)
//
// noisy_or and capped_sum treat every feature alike. amplified is the
// principle "no refusal without abusive behaviour; circumstance may
// strengthen behavioural evidence, never replace it": b = 0 gives score 0
// whatever c is; c = 0 gives b; the worst circumstances (c = 1) raise
// what behaviour leaves, 1 − b, to the power 1 + A, so with A = 2.5
// behaviour worth 0.4 alone scores 1 − 0.6^3.5 = 0.83. The score is rounded
// to 4 decimals. Every rule is bounded to [0, 1] and never decreases when
// any one risk grows.
//
// Each Reason's Contribution is the feature's share of the score (rounded
// to 4 decimals), so the contributions sum to the score up to rounding.
// Under noisy_or and capped_sum it is the feature's proportional share,
//
//	contribution_i = w_i · r_i / Σ_j w_j · r_j × score
//
// Under amplified behaviour explains b and circumstance what it added:
//
//	behavioural i:    w_i · r_i / Σ_behavioural w_j · r_j × min(b, score)
//	circumstantial i: w_i · r_i / Σ_circumstantial w_j · r_j × (score − min(b, score))
//
// Reasons list every feature, also those contributing nothing, sorted by
// contribution (largest first) then by feature name; a Reason's Value is
// the raw value (rounded to 4 decimals).
//
// Level: score ≥ Block → block; score ≥ Throttle → throttle; else allow.
//
// # Defaults
//
// DefaultConfig (the "default" profile) uses amplified with amplify 3 and:
//
//	feature          low    high   weight
//	burst            40     120    1.0
//	rate             5      15     0.9
//	rate_60s         6      15     0.6
//	sensitive_hits   0      4      0.4
//	regularity       0.6    0.85   0.6    (at least 8 gaps; circumstantial)
//	auth_failures    0      8      0.9
//	error_ratio      0.2    0.7    0.6    (at least 4 requests; prior 8 at 5 %)
//	path_diversity   30     100    0.5
//	enumeration      4      10     0.9
//	user_agent       0      1      0.45   (circumstantial)
//	geo              0      1      0.5    (circumstantial; country risk map empty)
//	hosting          0      1      0.45   (circumstantial)
//	travel           1000   5000   0.9    (km/h; at least 500 km, 60 s)
//	probing          0.8    5      1.0    (3rd probe 0.52, 5th 1.0)
//	asset_rate       50     120    0.7
//	bare_pages       10     30     0.75
//	visits, sensitive_visits              0 (off)
//
// and block 0.8, throttle 0.5. Circumstance never refuses, alone or
// together: a tool's user agent from a hosting network on a metronome
// scores 0 until it does something, and then raises 1 − b to at most the
// power 4. A principal's circumstances and volume never count; it is
// refused for what it does. Where the numbers come from (make detect; the
// README has the table): the ramps start where the simulator's people and
// API clients stop, so a webhook sender's burst of 50 in a second passes
// (0.27 from its cloud), and so does a server integration polling at 5
// req/s on a timer for hours (0). Enumeration starts above a run of 4: an
// API client picking among a few resources at random makes runs of 3 and 4
// neighbouring ids by chance, while a scraper walking ids is throttled at a
// run of 8 and blocked at 10 (with a tool's user agent, throttled at 6 and
// blocked at 8). The sneaker bot (50 checkouts a second, evenly spaced) is
// caught by its checkout pressure (0.4) amplified by its metronome,
// throttled from about its 9th request, blocked from its 45th; the
// low-and-slow botnet by its failed logins amplified by its hosting
// network, each member throttled at its 2nd login and blocked at its 4th
// (from a residential network it would be its 4th and 7th).
package rules
