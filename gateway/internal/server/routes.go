package server

import (
	"fmt"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/bulwarkgw/bulwark/gateway/internal/config"
	"github.com/bulwarkgw/bulwark/gateway/internal/jsonerr"
	"github.com/bulwarkgw/bulwark/gateway/internal/locallimit"
	"github.com/bulwarkgw/bulwark/gateway/internal/localscore"
	"github.com/bulwarkgw/bulwark/gateway/internal/tunnels"
)

// Gateway is the gateway's HTTP handler plus its reloadable runtime.
type Gateway struct {
	*echo.Echo
	rt      holder
	d       Deps
	local   *locallimit.Limiter // rate limits while Redis is down
	bodies  bodyBudget          // request bodies held in memory, all requests together
	warm    warmer              // crawler claims sent to the scorer off the request path
	assets  learnedAssets       // extensionless path patterns the upstream answers with assets
	tunnels *tunnels.Registry   // open WebSocket tunnels, closed when their client is banned
}

// New returns the gateway. Read it top to bottom: health first (never
// protected), then the protection chain in the order a request travels,
// then the handlers at its end.
func New(cfg *config.Config, d Deps) (*Gateway, error) {
	if err := d.validate(); err != nil {
		return nil, err
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	local, err := locallimit.New(cfg.Redis.FallbackClients)
	if err != nil {
		return nil, err
	}
	if d.Tunnels == nil {
		d.Tunnels = tunnels.New(d.Now)
	}
	g := &Gateway{Echo: echo.New(), d: d, local: local, tunnels: d.Tunnels}
	if err := g.Reload(cfg); err != nil {
		return nil, err
	}
	e := g.Echo
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = jsonerr.Handler(d.Log)
	// The client address is decided in one place, from configuration.
	e.IPExtractor = func(r *http.Request) string { return g.rt.load().ips.Extractor(r) }

	e.GET("/healthz", func(c echo.Context) error {
		return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
	})
	e.GET("/health", func(c echo.Context) error { // seed 001's path and body
		return c.JSON(http.StatusOK, map[string]string{"status": "healthy", "service": "bulwark"})
	})
	e.GET("/readyz", func(c echo.Context) error {
		if d.Ready != nil {
			if err := d.Ready(c.Request().Context()); err != nil {
				return echo.NewHTTPError(http.StatusServiceUnavailable, "not ready")
			}
		}
		return c.JSON(http.StatusOK, map[string]string{"status": "ready"})
	})

	p := &pipeline{g: g, d: d, local: d.Local}
	if p.local == nil {
		// No profile from the scorer: no fast path, the default profile's
		// fallback.
		if p.local, err = localscore.New(localscore.NoProfile, d.Log); err != nil {
			return nil, err
		}
	}
	protected := e.Group("",
		p.edge,       // 1. X-Request-ID, timing headers, access log, metrics, audit; the path normalised (pathnorm) and routed
		p.cors,       // 2. CORS from config, strict by default; preflights end here
		p.lists,      // 3. deny list → 403 on every path; allow list → skips every layer below
		p.credential, // 3b. a valid API key or JWT makes the request its principal's: counted, limited, scored and banned as that principal
		p.observe,    // 4. a ban stops the client; one Redis round trip counts it
		p.route,      // 5. an ambiguous path → 400; no longest-prefix route on the normalised path → 404
		p.rateLimit,  // 6. per-client and per-route sliding windows → 429
		p.bodyLimit,  // 7. 413 over max_body_size (chunked bodies too), only for clients let this far
		p.apiKey,     // 8. a verified key or JWT required on routes with auth, RBAC, per-key limit; bad credentials → ban
		p.score,      // 9. the scorer's verdict, unless the bound says it cannot throttle (or the fail-mode fallback)
		p.enforce,    // 10. block and ban / throttle / pass (shadow mode only records)
		p.outcome,    // 11. after the upstream answered: its 4xx and 401/403 feed the client's counters
	)
	protected.Any("/*", p.forward) // 12. login, guarded login routes, the proxy, or a tracked WebSocket tunnel (tunnel.go)
	protected.Any("", p.forward)
	// Methods echo's Any leaves out (WebDAV, cache purges) are proxied too.
	protected.Match(extraMethods, "/*", p.forward)
	protected.Match(extraMethods, "", p.forward)
	return g, nil
}

var extraMethods = []string{"PURGE", "MKCOL", "COPY", "MOVE", "LOCK", "UNLOCK", "PROPPATCH", "SEARCH", "LINK", "UNLINK", "QUERY"}

// Reload swaps in a validated configuration; requests in flight finish on
// the one they started with. Routes, trusted proxies, lists, limits, keys'
// rules, login protection, thresholds, CORS and body limits reload; the
// caller refuses changes to what needs a restart (listeners, Redis, MongoDB,
// the scorer client, admin credentials, key TTL, the event pipeline).
func (g *Gateway) Reload(cfg *config.Config) error {
	rt, err := newRuntime(cfg, g.d)
	if err != nil {
		return fmt.Errorf("reload: %w", err)
	}
	g.rt.p.Store(rt)
	return nil
}

// Config returns the active configuration.
func (g *Gateway) Config() *config.Config { return g.rt.load().cfg }
