// Package server is the scorer's HTTP API on labstack/echo: POST /v1/score
// turns a wire.ScoreRequest into a wire.ScoreResponse with the rules
// package and the geo lookup, GET /v1/profile shows the active profile and
// GET /healthz answers liveness probes. Every error is rendered as JSON
// {"error": "..."}.
package server

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"

	"github.com/bulwarkgw/bulwark/scorer/internal/profile"
	"github.com/bulwarkgw/bulwark/scorer/internal/rules"
	"github.com/bulwarkgw/bulwark/shared/wire"
	"github.com/labstack/echo/v4"
)

// MaxBodyBytes bounds a request body; larger bodies get 413.
const MaxBodyBytes = 64 << 10

// Locator finds where an address is: Local for local addresses, nil when
// unknown.
type Locator interface {
	Lookup(addr netip.Addr) (*wire.Geo, error)
}

// Config is what New needs.
type Config struct {
	// Profile is the active scoring profile; required and already valid.
	Profile *profile.Profile
	// Locator may be nil: then only local addresses get a geo.
	Locator Locator
	// Logger receives one line per request at most (/v1/score and /healthz
	// only at debug level) and the errors the handlers do not return.
	Logger *slog.Logger
}

type server struct {
	profile *profile.Profile
	rules   rules.Config
	locator Locator
	logger  *slog.Logger
}

// New returns the scorer's HTTP handler.
func New(cfg Config) (*echo.Echo, error) {
	if cfg.Profile == nil {
		return nil, errors.New("server: no profile")
	}
	if cfg.Logger == nil {
		return nil, errors.New("server: no logger")
	}
	s := &server{
		profile: cfg.Profile,
		rules:   cfg.Profile.Rules(),
		locator: cfg.Locator,
		logger:  cfg.Logger,
	}
	return s.routes(), nil
}

func (s *server) health(c echo.Context) error {
	return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
}

func (s *server) showProfile(c echo.Context) error {
	return c.JSON(http.StatusOK, s.profile)
}

func (s *server) score(c echo.Context) error {
	var req wire.ScoreRequest
	if err := decodeJSON(c.Request().Body, &req); err != nil {
		return err
	}
	addr, err := validate(&req)
	if err != nil {
		return err
	}

	var g *wire.Geo
	if s.locator != nil {
		g, err = s.locator.Lookup(addr)
		if err != nil {
			// Score without geo rather than fail the gateway's request.
			s.logger.Warn("geo lookup failed", "ip", req.IP, "err", err)
			g = nil
		}
	}
	f := rules.Features{Count1s: req.Count1s, Count10s: req.Count10s, Count60s: req.Count60s}
	if g != nil && !g.Local {
		f.Country = g.Country
	}
	res := rules.Score(&s.rules, f)
	return c.JSON(http.StatusOK, wire.ScoreResponse{Score: res.Score, Reasons: res.Reasons, Geo: g})
}

// validate checks the request's fields and returns the parsed address.
func validate(req *wire.ScoreRequest) (netip.Addr, error) {
	if req.IP == "" {
		return netip.Addr{}, badRequest("ip is required")
	}
	addr, err := netip.ParseAddr(req.IP)
	if err != nil {
		return netip.Addr{}, badRequest(fmt.Sprintf("ip %q is not an IP address", req.IP))
	}
	if addr.Zone() != "" {
		return netip.Addr{}, badRequest(fmt.Sprintf("ip %q must not carry a zone", req.IP))
	}
	for _, c := range []struct {
		name string
		n    int64
	}{{"count_1s", req.Count1s}, {"count_10s", req.Count10s}, {"count_60s", req.Count60s}} {
		if c.n < 0 {
			return netip.Addr{}, badRequest(fmt.Sprintf("%s must not be negative, got %d", c.name, c.n))
		}
	}
	return addr, nil
}

func badRequest(msg string) error { return echo.NewHTTPError(http.StatusBadRequest, msg) }
