package admin

import (
	"fmt"
	"net/http"
	"net/http/pprof"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/bulwarkgw/bulwark/gateway/internal/jsonerr"
)

// New returns the admin API. Every route, the seeds' aliases included, sits
// behind authentication; the client IP used for the lockout is the TCP peer.
func New(d Deps) (*echo.Echo, error) {
	if err := d.validate(); err != nil {
		return nil, err
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.BanTTL == 0 {
		d.BanTTL = 24 * time.Hour
	}
	h := &handlers{d: d}

	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = jsonerr.Handler(d.Log)
	// The lockout counts per TCP peer: a header can never pick the IP here.
	e.IPExtractor = echo.ExtractIPDirect()
	e.Use(
		recoverPanic,              // a panicking handler is a logged 500, not a dropped connection
		bodyDeadline(ReadTimeout), // a body that takes longer is answered 408; a refused one is not waited for
		authenticate(newChecker(d.Auth), newFailures(d.Lockout.withDefaults()), d.Audit, d.Now),
	)

	// Configuration and status.
	e.POST("/v1/admin/reload", h.reload)
	e.GET("/v1/admin/routes", h.routes)
	e.GET("/v1/admin/config", h.config)
	e.GET("/v1/admin/status", h.status)

	// Proxy rate limit, per client IP.
	e.GET("/v1/admin/ratelimit/:ip", h.rateLimitStats)
	e.DELETE("/v1/admin/ratelimit/:ip", h.rateLimitClear)

	// Allow and deny lists.
	e.GET("/v1/admin/lists/:kind", h.listEntries)
	e.POST("/v1/admin/lists/:kind", h.listAdd)
	e.DELETE("/v1/admin/lists/:kind", h.listRemove)

	// Bans.
	e.GET("/v1/admin/bans", h.bans)
	e.POST("/v1/admin/bans", h.banAdd)
	e.DELETE("/v1/admin/bans/:ip", h.banRemove)

	// Login limiter buckets and API keys.
	e.POST("/v1/admin/buckets/reset", h.bucketReset)
	e.DELETE("/v1/admin/keys/:id", h.keyRevoke)

	// Audit log.
	e.GET("/v1/admin/audit", h.auditLogs)
	e.GET("/v1/admin/audit/stats", h.auditStats)

	if d.Metrics != nil {
		e.GET("/metrics", echo.WrapHandler(d.Metrics))
	}

	// Profiles of the live gateway (go tool pprof), behind the same
	// authentication as everything here: a profile shows paths and timing.
	e.GET("/debug/pprof/", echo.WrapHandler(http.HandlerFunc(pprofHandler)))
	e.GET("/debug/pprof/:profile", echo.WrapHandler(http.HandlerFunc(pprofHandler)))

	// Seed 001 (FastProxy) aliases, with its response shapes.
	e.POST("/admin/reload", h.reload)
	e.GET("/admin/routes", h.routes)
	e.GET("/admin/config", h.seedConfig)
	e.GET("/admin/status", h.status)
	e.POST("/admin/ratelimit/clear/:ip", h.seedRateLimitClear)
	e.GET("/admin/ratelimit/stats/:ip", h.rateLimitStats)
	e.GET("/audit/logs", h.auditLogs)
	e.GET("/audit/stats", h.seedAuditStats)

	// Seed 003 (antibruteforce) aliases: POST with JSON, 200 {} on success.
	e.POST("/admin/reset_bucket_by_login", h.seedReset("login"))
	e.POST("/admin/reset_bucket_by_password", h.seedReset("password"))
	e.POST("/admin/reset_bucket_by_ip", h.seedReset("ip"))
	e.POST("/admin/add_in_blacklist", h.seedListAdd(Deny))
	e.POST("/admin/remove_from_blacklist", h.seedListRemove(Deny))
	e.POST("/admin/add_in_whitelist", h.seedListAdd(Allow))
	e.POST("/admin/remove_from_whitelist", h.seedListRemove(Allow))
	return e, nil
}

// recoverPanic turns a panic into an error for the error handler. (echo's
// middleware package is avoided: it would add golang.org/x/time to go.mod.)
func recoverPanic(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) (err error) {
		defer func() {
			if r := recover(); r != nil {
				if r == http.ErrAbortHandler {
					panic(r)
				}
				err = fmt.Errorf("panic: %v", r)
			}
		}()
		return next(c)
	}
}

// pprofHandler serves net/http/pprof's index, profiles and traces under
// /debug/pprof/ without registering them on http.DefaultServeMux.
func pprofHandler(w http.ResponseWriter, r *http.Request) {
	switch name := strings.TrimPrefix(r.URL.Path, "/debug/pprof/"); name {
	case "":
		pprof.Index(w, r)
	case "cmdline":
		pprof.Cmdline(w, r)
	case "profile":
		pprof.Profile(w, r)
	case "symbol":
		pprof.Symbol(w, r)
	case "trace":
		pprof.Trace(w, r)
	default:
		pprof.Handler(name).ServeHTTP(w, r)
	}
}
