package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/bulwarkgw/bulwark/gateway/internal/audit"
	"github.com/bulwarkgw/bulwark/gateway/internal/config"
	"github.com/bulwarkgw/bulwark/gateway/internal/pathnorm"
	"github.com/bulwarkgw/bulwark/gateway/internal/proxy"
	"github.com/bulwarkgw/bulwark/shared/clientid"
	"github.com/bulwarkgw/bulwark/shared/wire"
)

// edge does what every protected request needs first: an id, the timing
// headers, the body limit, one access-log line and the metrics.
func (p *pipeline) edge(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := p.d.Now()
		rt := p.g.rt.load()
		req, res := c.Request(), c.Response()

		id := req.Header.Get(echo.HeaderXRequestID)
		if !validID(id) {
			id = newRequestID()
		}
		req.Header.Set(echo.HeaderXRequestID, id)
		res.Header().Set(echo.HeaderXRequestID, id)
		res.Before(func() {
			h := res.Header()
			h.Set("X-Proxy-By", "Bulwark")
			h.Set("X-Process-Time", strconv.FormatFloat(float64(time.Since(start).Microseconds())/1000, 'f', 2, 64)+"ms")
			// One Date and one Server: the upstream's win, ours are not added.
		})

		v := &verdict{start: start, rt: rt, decision: decisionForwarded, ip: rt.ips.IP(req)}
		v.id = clientid.Identity(v.ip)
		// The path is normalised and routed once, here; later steps read
		// the normalised path from the request and the route from v.
		ctx := normalizePath(withVerdict(req.Context(), v), req, v)
		ak := rt.cfg.APIKey
		v.login = v.pathErr == nil && ak.AuthUpstream != nil && ak.AuthPath != "" && req.Method == http.MethodPost && v.key == v.paths.authPath
		c.SetRequest(req.WithContext(ctx))

		if err := next(c); err != nil {
			// A refusal: what is left of the body is not waited for
			// beyond its deadline (drainBody).
			drainBody(c, v, req.Body)
			c.Error(err)
		}
		status := res.Status
		elapsed := time.Since(start)
		p.d.Metrics.observe(v.routePath, v.decision, status, elapsed)
		ip := ""
		if v.ip.IsValid() {
			ip = v.ip.String()
		}
		if rt.cfg.AuditRequests && p.d.Audit != nil {
			p.d.Audit.Record(audit.Entry{
				Timestamp: start, EventType: audit.TypeRequest, ClientIP: ip,
				Method: req.Method, Path: req.URL.Path, StatusCode: status,
				DurationMS: float64(elapsed.Microseconds()) / 1000, UserAgent: req.UserAgent(),
				ActionTaken: actionTaken(v.decision), RiskScore: v.score.Score,
				Location: location(v.score.Geo), Degraded: v.degraded,
			})
		}
		p.d.Log.LogAttrs(req.Context(), slog.LevelInfo, "request",
			slog.String("method", req.Method), slog.String("path", req.URL.Path), slog.Int("status", status),
			slog.String("decision", v.decision), slog.String("ip", ip),
			slog.Float64("duration_ms", float64(elapsed.Microseconds())/1000), slog.String("request_id", id))
		return nil
	}
}

// normalizePath applies the path policy (package pathnorm) and routes the
// request. An accepted path replaces the request's URL path, so routing and
// every protection after this see only the normalised one; a route in raw
// mode gets the path as sent (kept on the context for the proxy). A refused
// path is left in v for the route step to answer 400, after the lists and
// the ban check.
func normalizePath(ctx context.Context, req *http.Request, v *verdict) context.Context {
	sent := req.URL.RawPath
	if sent == "" {
		sent = req.URL.EscapedPath() // the path as sent: Go keeps RawPath only when it differs
	}
	path, err := pathnorm.Normalize(sent, pathnorm.Strict)
	var route config.Route
	routed := false
	if err == nil {
		route, routed = v.rt.route(path)
	} else if pathnorm.RawAccepts(err) {
		// Encoded slashes and double encoding pass on raw routes only;
		// what even those refuse is the reason to report.
		if p, rerr := pathnorm.Normalize(sent, pathnorm.Raw); rerr != nil {
			err = rerr
		} else if r, ok := v.rt.route(p); ok && r.RawPath {
			path, err, route, routed = p, nil, r, true
		}
	}
	if err != nil {
		v.pathErr = err
		eq := v.rt.equivalence(config.Route{})
		v.key, v.paths = eq.Key(pathnorm.Clean(req.URL.Path)), v.rt.paths[eq] // for counting: nothing routes it
		return ctx
	}
	if routed {
		v.route, v.routePath = route, route.Path
		if route.RawPath {
			ctx = proxy.WithSentPath(ctx, req.URL.Path, req.URL.RawPath)
		}
	}
	eq := v.rt.equivalence(route)
	v.key, v.paths = eq.Key(path), v.rt.paths[eq]
	req.URL.Path, req.URL.RawPath = path, ""
	return ctx
}

// actionTaken folds a decision into the threat log's three actions.
func actionTaken(decision string) string {
	switch decision {
	case decisionBlocked, decisionBanned, decisionDenyListed:
		return audit.Blocked
	case decisionThrottled, decisionRateLimited:
		return audit.Throttled
	}
	return audit.Allowed
}

// location is "City, CC", or "CC" without a city, or "Local Network" for
// private and loopback clients and when nothing is known (seed 002).
func location(g *wire.Geo) string {
	switch {
	case g == nil || g.Local || g.Country == "":
		return "Local Network"
	case g.City == "":
		return g.Country
	}
	return g.City + ", " + g.Country
}

// Request ids: 8 random bytes drawn once per process, then a counter, as
// 24 hex digits: unique across gateways and requests without a getrandom(2)
// per request.
var (
	idPrefix  = func() [8]byte { var b [8]byte; _, _ = rand.Read(b[:]); return b }()
	idCounter atomic.Uint64
)

func newRequestID() string {
	var b [12]byte
	copy(b[:8], idPrefix[:])
	n := idCounter.Add(1)
	b[8], b[9], b[10], b[11] = byte(n>>24), byte(n>>16), byte(n>>8), byte(n)
	if n>>32 != 0 { // past 2^32 requests: mix the high half into the prefix
		h := n >> 32
		b[0] ^= byte(h >> 24)
		b[1] ^= byte(h >> 16)
		b[2] ^= byte(h >> 8)
		b[3] ^= byte(h)
	}
	return hex.EncodeToString(b[:])
}

func validID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for _, r := range id {
		ok := r == '-' || r == '_' || r == '.' || (r >= '0' && r <= '9') || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z')
		if !ok {
			return false
		}
	}
	return true
}

// cors answers from the configured origins only. With no origins configured
// no CORS header is ever sent; "*" is refused with credentials at config
// load, and an origin is echoed only when it is listed.
func (p *pipeline) cors(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		cfg := verdictOf(c).rt.cfg.Edge.CORS
		origin := c.Request().Header.Get("Origin")
		if origin == "" || len(cfg.AllowOrigins) == 0 {
			return next(c)
		}
		// The gateway answers CORS for this origin: the upstream's own
		// Access-Control-* headers are dropped, not merged.
		c.SetRequest(c.Request().WithContext(proxy.OwnCORS(c.Request().Context())))
		h := c.Response().Header()
		h.Add("Vary", "Origin")
		allowed := slices.Contains(cfg.AllowOrigins, origin) || (slices.Contains(cfg.AllowOrigins, "*") && !cfg.AllowCredentials)
		preflight := c.Request().Method == http.MethodOptions && c.Request().Header.Get("Access-Control-Request-Method") != ""
		if !allowed {
			if preflight {
				verdictOf(c).decision = decisionCORS
				return c.NoContent(http.StatusNoContent)
			}
			return next(c)
		}
		h.Set("Access-Control-Allow-Origin", origin)
		if cfg.AllowCredentials {
			h.Set("Access-Control-Allow-Credentials", "true")
		}
		if !preflight {
			return next(c)
		}
		verdictOf(c).decision = decisionCORS
		h.Set("Access-Control-Allow-Methods", strings.Join(cfg.AllowMethods, ", "))
		if len(cfg.AllowHeaders) > 0 {
			h.Set("Access-Control-Allow-Headers", strings.Join(cfg.AllowHeaders, ", "))
		} else if rh := c.Request().Header.Get("Access-Control-Request-Headers"); rh != "" {
			h.Set("Access-Control-Allow-Headers", rh)
		}
		if cfg.MaxAge > 0 {
			h.Set("Access-Control-Max-Age", strconv.Itoa(int(cfg.MaxAge.Seconds())))
		}
		return c.NoContent(http.StatusNoContent)
	}
}
