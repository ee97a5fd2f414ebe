package server

import (
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/bulwarkgw/bulwark/gateway/internal/config"
)

// New returns the gateway's HTTP handler. Read it top to bottom: health
// first (never protected), then the protection chain in the order a request
// travels, then the proxy.
func New(cfg *config.Config, d Deps) (*echo.Echo, error) {
	if err := d.validate(); err != nil {
		return nil, err
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = httpError(d.Log)
	// The client address is decided in one place, from configuration.
	e.IPExtractor = d.IPs.Extractor

	e.GET("/healthz", func(c echo.Context) error {
		return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
	})
	e.GET("/readyz", func(c echo.Context) error {
		if d.Ready != nil {
			if err := d.Ready(c.Request().Context()); err != nil {
				return echo.NewHTTPError(http.StatusServiceUnavailable, "not ready")
			}
		}
		return c.JSON(http.StatusOK, map[string]string{"status": "ready"})
	})

	p := &pipeline{cfg: cfg, d: d}
	protected := e.Group("",
		requestID,   // 1. X-Request-ID, echoed to the client and the upstream
		p.accessLog, // 2. one log line per request
		p.observe,   // 3. bans, then one Redis round trip for the counts
		p.score,     // 4. the scorer's verdict (or the fail-mode fallback)
		p.enforce,   // 5. block and ban / throttle / pass (shadow mode only records)
		p.outcome,   // 7. after the proxy: upstream 4xx, 401/403 → per-IP counters
	)
	protected.Any("/*", echo.WrapHandler(d.Proxy)) // 6. route and forward
	protected.Any("", echo.WrapHandler(d.Proxy))
	return e, nil
}
