package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/labstack/echo/v4"
	"github.com/redis/go-redis/v9"

	"github.com/bulwarkgw/bulwark/gateway/internal/config"
	"github.com/bulwarkgw/bulwark/gateway/internal/events"
	"github.com/bulwarkgw/bulwark/gateway/internal/lists"
	"github.com/bulwarkgw/bulwark/gateway/internal/localscore"
	"github.com/bulwarkgw/bulwark/gateway/internal/ratelimit"
	"github.com/bulwarkgw/bulwark/gateway/internal/redisbreaker"
	"github.com/bulwarkgw/bulwark/gateway/internal/scoreclient"
	"github.com/bulwarkgw/bulwark/gateway/internal/stats"
	"github.com/bulwarkgw/bulwark/gateway/internal/traffic"
	"github.com/bulwarkgw/bulwark/shared/clientid"
	"github.com/bulwarkgw/bulwark/shared/wire"
)

// Messages the client sees (the seeds' wording where they had one).
const (
	msgNoRoute     = "No matching route found"
	msgDenied      = "Access denied"
	msgBlocked     = "Suspicious behavior detected. Connection dropped."
	msgBanned      = "Client banned"
	msgThrottled   = "Too many requests, slow down"
	msgRateLimited = "Rate limit exceeded"
	msgDegraded    = "Service temporarily unavailable"
	msgTunnels     = "Too many open tunnels"
)

// Decisions, for metrics and logs.
const (
	decisionForwarded    = "forwarded"
	decisionAllowListed  = "allow_listed"
	decisionDenyListed   = "deny_listed"
	decisionBanned       = "banned"
	decisionBlocked      = "blocked"
	decisionThrottled    = "throttled"
	decisionRateLimited  = "rate_limited"
	decisionUnauthorized = "unauthorized"
	decisionForbidden    = "forbidden"
	decisionNotFound     = "no_route"
	decisionBadPath      = "bad_path"
	decisionDegraded     = "degraded"
	decisionTooLarge     = "too_large"
	decisionOverloaded   = "overloaded"       // body_buffer_memory is full
	decisionBodyLate     = "body_timeout"     // a body the gateway waited for missed read_header_timeout
	decisionBadFraming   = "bad_framing"      // a chunked body's framing, seen once the gateway had read it
	decisionTooManyHeads = "too_many_headers" // likewise, its trailer's fields
	decisionCORS         = "cors_preflight"
	decisionLogin        = "login"
	decisionTunnelLimit  = "tunnel_limit" // max_tunnels_per_client
)

// verdict is what the chain learned about a request; it travels on the
// request context under a typed key.
type verdict struct {
	rt        *runtime
	start     time.Time
	ip        netip.Addr // the client, for geo, events and the upstream
	id        netip.Addr // whom counts, bans and failures are kept for: ip, or its /64 for IPv6
	route     config.Route
	routePath string // "" when no route matched
	pathErr   error  // why the path policy refused the path (package pathnorm)
	// key is the path as its route's equivalence keys it, and paths the
	// configured paths under that equivalence: every check that names a
	// path compares key with them ("" and nil when the path was refused).
	key       string
	paths     *pathSet
	login     bool // a POST to api_key.auth_path, answered by the gateway
	bypass    bool // allow-listed: no protection layer applies
	obs       traffic.Observation
	desc      traffic.Request // what obs counted, at seen: for Reclassify
	seen      time.Time
	score     wire.ScoreResponse
	degraded  bool
	local     bool // counted in this gateway's memory: Redis was unreachable
	stored    bool // counted in the traffic store (Redis)
	keyID     string
	role      string
	principal string // the API key or login the request names, unverified (impossible travel)
	// The verified credential (step credential): the principal's identity
	// as clientid.Display spells it. With one, id is the principal's
	// identity.
	principalName string
	cred          credState
	credErr       error // why a presented credential was refused
	decision      string
	limits        []queuedLimit // rate limits already sent with the observe round trip
	bodyOver      atomic.Bool   // the body passed max_body_size while it streamed
	bodyBy        time.Time     // the deadline of the gateway's waits for the body (awaitBody); zero before the first
	bodyDone      bool          // the body was read to its end, or handed to the upstream: not waited for again
	answered      bool          // the upstream's verdict was recorded (recordAnswer)
}

// queuedLimit is a rate limit checked in the observe pipeline, read in the
// rate-limit step.
type queuedLimit struct {
	key    string
	n      int64
	window time.Duration
	result func(context.Context) (ratelimit.Result, error)
}

type verdictKey struct{}

func withVerdict(ctx context.Context, v *verdict) context.Context {
	return context.WithValue(ctx, verdictKey{}, v)
}

func verdictOf(c echo.Context) *verdict {
	v, _ := c.Request().Context().Value(verdictKey{}).(*verdict)
	return v
}

type pipeline struct {
	g     *Gateway
	d     Deps
	local LocalScorer
}

// redisDown logs a failed Redis call: a warning, or only at debug level
// when the open circuit breaker refused it (the breaker logged its opening
// once; a log line per request would flood during an outage).
func (p *pipeline) redisDown(msg string, err error, args ...any) {
	level := slog.LevelWarn
	if errors.Is(err, redisbreaker.ErrOpen) {
		level = slog.LevelDebug
	}
	p.d.Log.Log(context.Background(), level, msg, append(args, "err", err)...)
}

// stop records why the chain ended here and returns the error to render.
func stop(v *verdict, decision string, code int, msg string) error {
	v.decision = decision
	return echo.NewHTTPError(code, msg)
}

// route answers 400 when the path policy refused the path and 404 when the
// request matched no route (edge normalised and matched it, once). The
// login path needs no route: the gateway answers it itself.
func (p *pipeline) route(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		v := verdictOf(c)
		if !v.ip.IsValid() {
			return stop(v, decisionForbidden, http.StatusBadRequest, "unknown client address")
		}
		if v.pathErr != nil {
			return stop(v, decisionBadPath, http.StatusBadRequest, "Ambiguous path: "+v.pathErr.Error())
		}
		if v.routePath == "" && !v.login {
			return stop(v, decisionNotFound, http.StatusNotFound, msgNoRoute)
		}
		return next(c)
	}
}

// lists refuses deny-listed clients on every route and lets allow-listed
// ones skip every protection layer.
func (p *pipeline) lists(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		v := verdictOf(c)
		if p.d.Lists == nil || !v.ip.IsValid() {
			return next(c)
		}
		switch p.d.Lists.Match(v.ip) {
		case lists.Deny:
			p.d.Stats.Request(p.d.Now(), stats.Blocked)
			p.publish(c, v, wire.EventDenyList, http.StatusForbidden, "")
			return stop(v, decisionDenyListed, http.StatusForbidden, msgDenied)
		case lists.Allow:
			v.bypass = true
			v.decision = decisionAllowListed
		}
		return next(c)
	}
}

// observe refuses banned clients before any other work and counts the rest.
// While Redis is unreachable fail_mode closed answers 503; open counts the
// request in this gateway's memory (Deps.Fallback), so scoring and banning
// go on: the bans Redis held that this gateway has seen still refuse, and
// the bans it makes meanwhile hold until Redis has them.
func (p *pipeline) observe(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		v := verdictOf(c)
		if v.bypass {
			return next(c)
		}
		cfg := v.rt.cfg
		// Before the deadline starts: reading a login's head waits for the
		// client, and a slow client must not turn its own count into a
		// Redis timeout.
		desc, release, late := p.describe(c, v)
		defer release()
		now := p.d.Now()
		fb := p.d.Fallback
		if fb != nil {
			if ttl, banned := fb.Banned(v.id, now); banned {
				return p.refuseBanned(c, v, now, ttl)
			}
		}
		parent := c.Request().Context()
		if late != nil {
			// The late read ended the request's context; the request is
			// counted all the same (a banned client is refused as such),
			// then answered 408.
			parent = context.WithoutCancel(parent)
		}
		ctx, cancel := context.WithTimeout(parent, cfg.Redis.Timeout)
		v.principal = desc.Principal
		t0 := time.Now()
		obs, err := p.observeAndQueueLimits(ctx, c, v, now, desc)
		p.d.Metrics.dependencyTime("redis", time.Since(t0))
		cancel()
		switch {
		case err != nil:
			p.d.Metrics.dependencyError("redis")
			p.redisDown("traffic store unavailable", err, "fail_mode", cfg.Redis.FailMode)
			if cfg.Redis.FailMode == config.FailClosed {
				p.d.Stats.Request(now, stats.Blocked)
				return stop(v, decisionDegraded, http.StatusServiceUnavailable, msgDegraded)
			}
			v.degraded = true
			if fb != nil {
				// Looked at again: this gateway may have banned the client
				// while this request waited for Redis.
				if ttl, banned := fb.Banned(v.id, now); banned {
					return p.refuseBanned(c, v, now, ttl)
				}
				if ttl, banned := fb.BannedInRedis(v.id, now); banned {
					return p.refuseBanned(c, v, now, ttl)
				}
				obs, v.local = fb.Observe(v.id, now, desc), true
			}
		case obs.Banned:
			if fb != nil {
				fb.Seen(v.id, obs.BanTTL, now)
			}
			return p.refuseBanned(c, v, now, obs.BanTTL)
		case fb != nil:
			fb.Lifted(v.id)
		}
		v.stored = err == nil
		obs.Asset, obs.Probe = desc.Asset, desc.Probe // also when nothing could count it
		v.obs, v.desc, v.seen = obs, desc, now
		if err = late; err == nil {
			err = next(c)
		}
		p.countRefusal(c, v, err)
		return err
	}
}

// countRefusal records that the gateway itself refused a request it had
// counted (a later step's 429, 403, 401, 413, 503...): the refusal is
// nobody's answer, so it is neither the client's error (a throttle must
// never turn itself into a ban) nor may it dilute the client's error ratio
// (a client throttled for its errors that keeps coming would otherwise
// fall under the line, get through, err again, and oscillate). The rules
// take error_ratio over the requests that were answered: Count60s −
// Refused60s. Page assets are counted apart and never in that ratio.
//
// A refused GET that asks for a document (its Accept names text/html, as
// every browser's navigation does) still counts as a page fetched: a
// scraper taking pages without their assets is throttled once its pages
// outrun people's reading, and if only the pages it got counted, its
// count would fall back under the line while it is refused, and it would
// get through again (an equilibrium at the throttle line). Counted, the
// pages it keeps asking for hold it refused. The header is the client's
// own claim, so it can only count against it: a scraper that hides it is
// judged by the pages it gets, which keeps it near the throttle line.
func (p *pipeline) countRefusal(c echo.Context, v *verdict, err error) {
	var he *echo.HTTPError
	if err == nil || v.answered || v.obs.Asset || !errors.As(err, &he) {
		return
	}
	now := p.d.Now()
	page := asksForDocument(c.Request())
	rec, _ := p.d.Traffic.(RefusalRecorder)
	ar, _ := p.d.Traffic.(AnswerRecorder)
	la, _ := p.d.Fallback.(localAnswerRecorder)
	p.recordWhereCounted(c, v, "refusal", func() {
		p.d.Fallback.RecordRefusal(v.id, now)
		if la != nil && page {
			la.RecordPage(v.id, v.seen)
		}
	}, func(ctx context.Context) error {
		if rec == nil {
			return nil
		}
		err := rec.RecordRefusal(ctx, v.id, now)
		if ar != nil && page && err == nil {
			err = ar.RecordPage(ctx, v.id, v.seen)
		}
		return err
	})
}

// recordWhereCounted records something learned after the fact about the
// client a request was counted for, where it was counted: with local in
// this gateway's memory while Redis was unreachable, with stored in the
// traffic store (the Redis timeout, never cut short by the client
// leaving), and nowhere when nothing counted it. A failure is logged as
// "<what> not recorded".
func (p *pipeline) recordWhereCounted(c echo.Context, v *verdict, what string, local func(), stored func(context.Context) error) {
	switch {
	case v.local:
		local()
	case v.stored:
		ctx, cancel := context.WithTimeout(context.WithoutCancel(c.Request().Context()), v.rt.cfg.Redis.Timeout)
		defer cancel()
		if err := stored(ctx); err != nil {
			p.redisDown(what+" not recorded", err, "ip", v.ip, "path", v.desc.Path)
		}
	}
}

// asksForDocument reports whether r is a GET whose Accept names an HTML
// document.
func asksForDocument(r *http.Request) bool {
	if r.Method != http.MethodGet {
		return false
	}
	a := strings.ToLower(r.Header.Get("Accept"))
	return strings.Contains(a, "text/html") || strings.Contains(a, "application/xhtml+xml")
}

// addressBanned reports whether the address of a request that carries a
// credential is banned, before the credential costs a lookup. A banned
// address is refused first, whatever credential it shows (seed 000: a key
// guesser's address stays shut to its valid keys too); a principal's own
// ban is checked by Observe, and never bans the address. One Redis read
// (the memory's bans first); while Redis cannot answer, the bans this
// gateway holds and has seen still refuse. An anonymous request's address
// ban is checked by Observe, in its one round trip.
func (p *pipeline) addressBanned(c echo.Context, v *verdict, now time.Time) (time.Duration, bool) {
	addr := clientid.Identity(v.ip)
	if fb := p.d.Fallback; fb != nil {
		if ttl, banned := fb.Banned(addr, now); banned {
			return ttl, true
		}
	}
	ctx, cancel := context.WithTimeout(c.Request().Context(), v.rt.cfg.Redis.Timeout)
	ttl, err := p.d.Bans.Left(ctx, addr)
	cancel()
	if err != nil {
		p.redisDown("address ban not read", err, "ip", v.ip)
		if fb := p.d.Fallback; fb != nil {
			return fb.BannedInRedis(addr, now)
		}
		return 0, false
	}
	return ttl, ttl > 0
}

// refuseBanned answers a banned client: 403 with the ban's time left.
func (p *pipeline) refuseBanned(c echo.Context, v *verdict, now time.Time, ttl time.Duration) error {
	p.d.Stats.Request(now, stats.Blocked)
	if ttl > 0 {
		c.Response().Header().Set("Retry-After", strconv.Itoa(int((ttl+time.Second-1)/time.Second)))
	}
	return stop(v, decisionBanned, http.StatusForbidden, msgBanned)
}

// describe is traffic.DescribeRequest with the login's head (read from a
// POST to a sensitive path, at most traffic.MaxLoginBody) charged to
// body_buffer_memory, within the half uploads may use; while that is full
// the login is not named. The head must arrive within the body's deadline
// (awaitBody): late is the 408 to answer when it did not.
func (p *pipeline) describe(c echo.Context, v *verdict) (desc traffic.Request, release func(), late error) {
	r := c.Request()
	cfg := v.rt.cfg
	desc = traffic.DescribeAs(v.rt.equivalence(v.route), r.URL.Path, v.paths.sensitive, cfg.Scoring.VisitWindow)
	desc.Classify(r.Method, cfg.Scoring.AssetExtensions, cfg.Scoring.ProbePaths)
	if !desc.Asset && !desc.Probe && !desc.Sensitive && (r.Method == http.MethodGet || r.Method == http.MethodHead) && p.g.assets.has(desc.Pattern) {
		desc.Asset = true // the upstream answers this pattern with assets (learnedAssets)
	}
	desc.Principal = traffic.PrincipalOf(r)
	if desc.Principal != "" || !desc.Sensitive || r.Method != http.MethodPost || r.Body == nil || r.Body == http.NoBody {
		return desc, noRelease, nil
	}
	n := int64(traffic.MaxLoginBody)
	if r.ContentLength >= 0 {
		n = min(n, r.ContentLength)
	}
	// Within the half of body_buffer_memory uploads share: heads that
	// stall here must not take the memory logins are read with.
	if n == 0 || !p.g.bodies.reserve(n, cfg.Edge.BodyBufferMemory/2) {
		return desc, noRelease, nil
	}
	awaitBody(c, v)
	login, whole, err := traffic.LoginOf(r, cfg.Login.Duplicates)
	if bodyLate(err) {
		p.g.bodies.release(n)
		return desc, noRelease, lateBody(c, v)
	}
	liftBody(c, v, whole)
	desc.Principal = login
	return desc, func() { p.g.bodies.release(n) }, nil
}

// pipelinedObserver and queuingLimiter let observe send the client's rate
// limits in its own round trip; both are optional.
type pipelinedObserver interface {
	ObserveWith(ctx context.Context, ip netip.Addr, now time.Time, req traffic.Request, extra func(redis.Pipeliner)) (traffic.Observation, error)
}

type queuingLimiter interface {
	Queue(ctx context.Context, pipe redis.Pipeliner, key string, limit int64, window time.Duration, now time.Time) func(context.Context) (ratelimit.Result, error)
}

// observeAndQueueLimits counts the request and, in the same Redis round
// trip, checks the client's rate limits (per client and per route; the
// route is matched here for its limit). The rate-limit step reads the
// results. Without pipelining support it only observes, and the rate-limit
// step asks Redis itself.
func (p *pipeline) observeAndQueueLimits(ctx context.Context, c echo.Context, v *verdict, now time.Time, desc traffic.Request) (traffic.Observation, error) {
	po, ok1 := p.d.Traffic.(pipelinedObserver)
	ql, ok2 := p.d.Limiter.(queuingLimiter)
	wanted := p.limitsFor(c, v)
	if !ok1 || !ok2 || len(wanted) == 0 {
		return p.d.Traffic.Observe(ctx, v.id, now, desc)
	}
	obs, err := po.ObserveWith(ctx, v.id, now, desc, func(pipe redis.Pipeliner) {
		for _, l := range wanted {
			l.result = ql.Queue(ctx, pipe, l.key, l.n, l.window, now)
			v.limits = append(v.limits, l)
		}
	})
	if err != nil {
		v.limits = nil // the rate-limit step falls back on its own
	}
	return obs, err
}

// limitsFor lists the rate limits that apply to the request. A request
// that matches no route is answered 404 before the limits and does not
// count toward them.
func (p *pipeline) limitsFor(c echo.Context, v *verdict) []queuedLimit {
	if p.d.Limiter == nil {
		return nil
	}
	routed := v.routePath != ""
	if !routed && !v.login {
		return nil
	}
	cfg := v.rt.cfg
	var out []queuedLimit // a principal's own limits (v.id), not its address's
	if n := cfg.RateLimit.RequestsPerMinute; n > 0 {
		out = append(out, queuedLimit{key: wire.RateLimitKey("ip", v.id), n: n, window: cfg.RateLimit.Window})
	}
	if r := v.route; routed && r.RateLimit.Requests > 0 {
		out = append(out, queuedLimit{key: wire.RateLimitKey("route:"+r.Path, v.id), n: r.RateLimit.Requests, window: r.RateLimit.Window})
	}
	// A principal's own limit, on every route (rate_limit.per_key): for
	// it, volume is this limit's business, not the score's.
	if l := cfg.RateLimit.PerKey; l.Requests > 0 && v.principalName != "" {
		out = append(out, queuedLimit{key: wire.RateLimitKey("key", v.id), n: l.Requests, window: l.Window})
	}
	return out
}

// rateLimit applies the per-client limit over all routes and the route's
// own limit. IPv6 clients are limited by their /64, so rotating addresses
// inside one prefix does not escape. Refused requests are not counted.
func (p *pipeline) rateLimit(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		v := verdictOf(c)
		if v.bypass || p.d.Limiter == nil {
			return next(c)
		}
		limits := v.limits
		if limits == nil {
			limits = p.limitsFor(c, v)
		}
		for _, l := range limits {
			if err := p.limit(c, v, l); err != nil {
				return err
			}
		}
		return next(c)
	}
}

// limit checks one sliding window and sets the RateLimit headers.
func (p *pipeline) limit(c echo.Context, v *verdict, l queuedLimit) error {
	key, n, window := l.key, l.n, l.window
	cfg := v.rt.cfg
	now := p.d.Now()
	var res ratelimit.Result
	var err error
	ctx, cancel := context.WithTimeout(c.Request().Context(), cfg.Redis.Timeout)
	if l.result != nil {
		res, err = l.result(ctx)
	} else {
		res, err = p.d.Limiter.Allow(ctx, key, n, window, now)
	}
	cancel()
	if err != nil {
		p.d.Metrics.dependencyError("redis")
		p.redisDown("rate limiter unavailable", err, "fail_mode", cfg.Redis.FailMode)
		if cfg.Redis.FailMode == config.FailClosed {
			return stop(v, decisionDegraded, http.StatusServiceUnavailable, msgDegraded)
		}
		// Fail open, but not unlimited: this instance enforces the limit on
		// its own until Redis is back.
		v.degraded = true
		res = p.g.local.Allow(key, n, window, now)
	}
	ratelimit.Headers(c.Response().Header(), res)
	if !res.Allowed {
		p.d.Stats.Request(now, stats.Throttled)
		p.publish(c, v, wire.EventThrottle, http.StatusTooManyRequests, "")
		return stop(v, decisionRateLimited, http.StatusTooManyRequests, msgRateLimited)
	}
	return nil
}

// score asks the scorer (through the score cache) with everything the
// traffic store observed, unless the request cannot reach the throttle
// threshold whatever the scorer finds: the gateway evaluates the scorer's
// own rules with geo, hosting and travel at their worst (package
// localscore) and forwards a request whose bound is under the threshold
// without waiting. When the scorer fails, fail_mode closed answers 503;
// open scores locally with the same rules on what the gateway has and marks
// the request degraded.
func (p *pipeline) score(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		v := verdictOf(c)
		if v.bypass || !v.rt.cfg.Scorer.Enabled {
			return next(c)
		}
		cfg := v.rt.cfg
		r := c.Request()
		o := &v.obs
		req := wire.ScoreRequest{
			IP: v.ip.String(), Count1s: o.Count1s, Count10s: o.Count10s, Count60s: o.Count60s,
			Method: r.Method, Path: truncate(r.URL.Path, maxPathBytes), UserAgent: truncate(r.UserAgent(), maxUABytes),
			Visits: o.Visits, Sensitive: o.Sensitive, SensitiveHits: o.SensitiveHits,
			AuthFailures: o.AuthFailures, Errors4xx: o.Errors4xx,
			DistinctPaths: o.DistinctPaths, SequentialIDs: o.SequentialIDs,
			Intervals: o.Intervals, IntervalCV: o.IntervalCV,
			Asset: o.Asset, Assets10s: o.Assets10s, Probe: o.Probe, Probes: o.Probes,
			Pages60s: o.Pages60s, Assets60s: o.Assets60s, Refused60s: o.Refused60s,
			Principal: v.principalName,
		}
		if o.PrevIP.IsValid() {
			req.PrevIP, req.PrevSeconds = o.PrevIP.String(), o.PrevAge.Seconds()
		}
		var bound, local float64
		known := false
		// The request audit log (seed 001's threat log) records every
		// request's location, which only the scorer knows: with it on,
		// every request is scored.
		if cfg.Scoring.FastPath && !(cfg.AuditRequests && p.d.Audit != nil) {
			bound, local, known = p.local.Bound(&req, v.ip)
		}
		if known && bound < cfg.ThrottleAt && bound < cfg.BlockAt {
			p.d.Metrics.scored("bound")
			if p.local.Verifies(req.UserAgent) && p.g.warm.start(p.d.Scorer, req, cfg.Scorer.Timeout, p.d.Now()) {
				p.d.Metrics.scored("warm")
			}
			// What the audit log records: the rules' score on what the
			// gateway knows (geo unknown), without reasons.
			v.score = wire.ScoreResponse{Score: local, Level: wire.LevelAllow, Profile: localscore.EstimateProfile}
		} else {
			res, err := p.askScorer(c, v, req)
			if err != nil {
				return err
			}
			v.score = res
		}
		// The gateway's own refusals (this step's, and any later step's
		// 403 or 429) are never counted as the client's errors: only the
		// upstream's answers are (outcome). A throttled client that keeps
		// coming is judged by what it sends, never by what it was refused.
		return next(c)
	}
}

// askScorer returns the scorer's answer (through the score cache). When
// the scorer fails, fail_mode closed stops the request with 503; open
// scores it locally with the same rules and marks it degraded.
func (p *pipeline) askScorer(c echo.Context, v *verdict, req wire.ScoreRequest) (wire.ScoreResponse, error) {
	cfg := v.rt.cfg
	ctx := c.Request().Context()
	t0 := time.Now()
	res, err := p.d.Scorer.Score(ctx, req)
	p.d.Metrics.dependencyTime("scorer", time.Since(t0))
	if err == nil {
		p.d.Metrics.scored("scorer")
		p.local.Check(res.ProfileHash) // another profile than the bound's: stop bounding
		return res, nil
	}
	p.d.Metrics.dependencyError("scorer")
	level := slog.LevelWarn
	if errors.Is(err, scoreclient.ErrCircuitOpen) {
		level = slog.LevelDebug // the breaker opening was logged already
	}
	p.d.Log.Log(ctx, level, "scorer unavailable", "err", err, "fail_mode", cfg.Scorer.FailMode)
	if cfg.Scorer.FailMode == config.FailClosed {
		p.d.Stats.Request(p.d.Now(), stats.Blocked)
		return res, stop(v, decisionDegraded, http.StatusServiceUnavailable, msgDegraded)
	}
	v.degraded = true
	p.d.Metrics.scored("fallback")
	return p.local.Fallback(req, v.ip, cfg.BlockAt, cfg.ThrottleAt), nil
}

// remember records a principal once it is verified (the key accepted, the
// login confirmed by the upstream), for impossible travel.
func (p *pipeline) remember(c echo.Context, v *verdict, kind string) {
	rec, ok := p.d.Traffic.(PrincipalRecorder)
	if !ok || !strings.HasPrefix(v.principal, kind+":") {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(c.Request().Context()), v.rt.cfg.Redis.Timeout)
	defer cancel()
	if err := rec.Remember(ctx, v.principal, v.ip, p.d.Now()); err != nil {
		p.redisDown("principal not remembered", err)
	}
}

// What the scorer, the event history and the live stream get of a client's
// free-form fields: enough to read, never a lever to make a message huge.
const (
	maxPathBytes = 512
	maxUABytes   = 256
)

// truncate cuts s to at most n bytes on a rune boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// enforce turns the score into a decision. In shadow mode it records what it
// would have done and lets the request through.
func (p *pipeline) enforce(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		v := verdictOf(c)
		if v.bypass {
			p.d.Stats.Request(p.d.Now(), stats.Allowed)
			return next(c)
		}
		cfg := v.rt.cfg
		now := p.d.Now()
		switch s := v.score.Score; {
		case s >= cfg.BlockAt && cfg.Shadow:
			p.publish(c, v, wire.EventShadowBlock, http.StatusOK, "")
		case s >= cfg.BlockAt:
			p.ban(c, v, cfg.BanTTL, fmt.Sprintf("score %.2f", s))
			p.d.Stats.Request(now, stats.Blocked)
			p.publish(c, v, wire.EventBan, http.StatusForbidden, "")
			return stop(v, decisionBlocked, http.StatusForbidden, msgBlocked)
		case s >= cfg.ThrottleAt && !cfg.Shadow:
			p.d.Stats.Request(now, stats.Throttled)
			p.publish(c, v, wire.EventThrottle, http.StatusTooManyRequests, "")
			c.Response().Header().Set("Retry-After", "1")
			return stop(v, decisionThrottled, http.StatusTooManyRequests, msgThrottled)
		}
		p.d.Stats.Request(now, stats.Allowed)
		return next(c)
	}
}

// ban stores a ban; the response is the same whether it is stored or not.
// When Redis cannot take it, this gateway holds it (Deps.Fallback) and it
// is written back once Redis is reachable again.
func (p *pipeline) ban(c echo.Context, v *verdict, ttl time.Duration, reason string) {
	p.banAs(c, v, v.id, ttl, reason)
}

// banAs bans id: the client (v.id) or, for bad credentials, its address.
func (p *pipeline) banAs(c echo.Context, v *verdict, id netip.Addr, ttl time.Duration, reason string) {
	ctx, cancel := context.WithTimeout(c.Request().Context(), v.rt.cfg.Redis.Timeout)
	defer cancel()
	now := p.d.Now()
	if err := p.d.Bans.Ban(ctx, id, ttl, reason, now); err != nil {
		p.d.Metrics.dependencyError("redis")
		if p.d.Fallback != nil {
			p.d.Fallback.Ban(id, ttl, reason, now)
		}
		p.redisDown("ban not stored in redis", err, "ip", v.ip, "held_locally", p.d.Fallback != nil)
	}
	// Its open tunnels close here at once; the other gateways close theirs
	// when the ban's announcement reaches them (package tunnels).
	p.g.tunnels.CloseID(id)
	p.d.Stats.Ban(now)
}

func (p *pipeline) publish(c echo.Context, v *verdict, typ wire.EventType, status int, login string) {
	r := c.Request()
	now := p.d.Now()
	p.d.Events.Publish(wire.Event{
		ID: events.NewID(now), TS: now.UTC(), Type: typ,
		IP: v.ip.String(), Geo: v.score.Geo,
		Method: r.Method, Host: truncate(r.Host, maxUABytes), Path: truncate(r.URL.Path, maxPathBytes), Route: v.routePath, Status: status,
		Score: v.score.Score, Reasons: v.score.Reasons, KeyID: v.keyID, Login: truncate(login, maxUABytes),
		UserAgent: truncate(r.UserAgent(), maxUABytes), Gateway: v.rt.cfg.GatewayID,
		RequestID: r.Header.Get(echo.HeaderXRequestID),
		Shadow:    v.rt.cfg.Shadow, Degraded: v.degraded,
	})
}
