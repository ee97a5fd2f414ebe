// Package server is the scorer's HTTP API on labstack/echo: POST /v1/score
// turns a wire.ScoreRequest into a wire.ScoreResponse with the rules
// package and the geo lookup, POST /v1/score/batch does the same for many
// clients, GET /v1/profile shows the active profile, GET /healthz answers
// liveness probes and GET /metrics serves Prometheus metrics (scores by
// level, scoring latency). A client whose user agent claims a crawler is
// also verified by forward-confirmed reverse DNS (Config.Crawlers), from a
// cache filled off the request path. The profile can be swapped at run time
// (Handler.SetProfile) without dropping a request. Every error is rendered
// as JSON {"error": "..."}.
package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/bulwarkgw/bulwark/scorer/internal/geo"
	"github.com/bulwarkgw/bulwark/scorer/profile"
	"github.com/bulwarkgw/bulwark/scorer/rules"
	"github.com/bulwarkgw/bulwark/shared/wire"
	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
)

// MaxBodyBytes bounds a request body; larger bodies get 413.
const MaxBodyBytes = 64 << 10

// MaxBatch bounds the number of requests in one batch.
const MaxBatch = 1000

// Locator finds where an address is: Local for local addresses, nil when
// unknown.
type Locator interface {
	Lookup(addr netip.Addr) (*wire.Geo, error)
}

// Crawlers verifies crawlers by forward-confirmed reverse DNS
// (crawlerdns.Verifier): Hostnames never waits, answering known == false
// until a lookup it starts has finished; SetDomains tells it which domains
// the active profile's allow rules verify.
type Crawlers interface {
	Hostnames(addr netip.Addr) (names []string, known bool)
	SetDomains(domains []string)
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
	// Registry receives the scorer's metrics; nil makes a private one.
	Registry *prometheus.Registry
	// Crawlers may be nil: then allow rules verify by network only.
	Crawlers Crawlers
}

// active is a profile, its compiled rules and the JSON GET /v1/profile
// serves for it (hash names it in every score), swapped as one.
type active struct {
	profile *profile.Profile
	rules   rules.Config
	body    []byte
	hash    string
}

type server struct {
	active   atomic.Pointer[active]
	locator  Locator
	crawlers Crawlers
	logger   *slog.Logger
	registry *prometheus.Registry
	scores   *prometheus.CounterVec
	latency  prometheus.Histogram
}

// Handler is the scorer's HTTP handler.
type Handler struct {
	*echo.Echo
	s *server
}

// SetProfile makes p (already valid) the active profile for every request
// that starts after it returns.
func (h *Handler) SetProfile(p *profile.Profile) {
	body, err := json.Marshal(p)
	if err != nil { // a Profile is plain data; this cannot fail
		panic(fmt.Sprintf("server: encode profile: %v", err))
	}
	a := &active{profile: p, rules: p.Rules(), body: body, hash: wire.ProfileHashOf(body)}
	if h.s.crawlers != nil {
		var domains []string
		for _, r := range a.rules.Allow {
			domains = append(domains, r.Domains...)
		}
		h.s.crawlers.SetDomains(domains)
	}
	h.s.active.Store(a)
}

// New returns the scorer's HTTP handler.
func New(cfg Config) (*Handler, error) {
	if cfg.Profile == nil {
		return nil, errors.New("server: no profile")
	}
	if cfg.Logger == nil {
		return nil, errors.New("server: no logger")
	}
	reg := cfg.Registry
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	s := &server{
		locator:  cfg.Locator,
		crawlers: cfg.Crawlers,
		logger:   cfg.Logger,
		registry: reg,
		scores: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bulwark_scorer_scores_total", Help: "Scores computed, by level.",
		}, []string{"level"}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "bulwark_scorer_score_seconds",
			Help:    "Time to score one client (geo lookup and rules).",
			Buckets: []float64{1e-6, 2.5e-6, 5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 1e-3, 1e-2},
		}),
	}
	if err := reg.Register(s.scores); err != nil {
		return nil, fmt.Errorf("server: register metrics: %w", err)
	}
	if err := reg.Register(s.latency); err != nil {
		return nil, fmt.Errorf("server: register metrics: %w", err)
	}
	for _, l := range []string{wire.LevelAllow, wire.LevelThrottle, wire.LevelBlock} {
		s.scores.WithLabelValues(l)
	}
	h := &Handler{Echo: s.routes(), s: s}
	h.SetProfile(cfg.Profile)
	return h, nil
}

func (s *server) health(c echo.Context) error {
	return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
}

// showProfile serves the active profile and the version of the rules
// engine it runs on: what a gateway needs to bound scores exactly as this
// scorer makes them.
func (s *server) showProfile(c echo.Context) error {
	c.Response().Header().Set(wire.RulesVersionHeader, rules.Version)
	return c.Blob(http.StatusOK, echo.MIMEApplicationJSON, s.active.Load().body)
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
	return c.JSON(http.StatusOK, s.scoreOne(s.active.Load(), &req, addr))
}

func (s *server) scoreBatch(c echo.Context) error {
	var batch wire.ScoreBatchRequest
	if err := decodeJSON(c.Request().Body, &batch); err != nil {
		return err
	}
	if len(batch.Requests) > MaxBatch {
		return badRequest(fmt.Sprintf("at most %d requests per batch, got %d", MaxBatch, len(batch.Requests)))
	}
	addrs := make([]netip.Addr, len(batch.Requests))
	for i := range batch.Requests {
		addr, err := validate(&batch.Requests[i])
		if err != nil {
			var he *echo.HTTPError
			if errors.As(err, &he) {
				return badRequest(fmt.Sprintf("requests[%d]: %v", i, he.Message))
			}
			return err
		}
		addrs[i] = addr
	}
	a := s.active.Load() // one profile for the whole batch
	out := wire.ScoreBatchResponse{Responses: make([]wire.ScoreResponse, len(batch.Requests))}
	for i := range batch.Requests {
		out.Responses[i] = s.scoreOne(a, &batch.Requests[i], addrs[i])
	}
	return c.JSON(http.StatusOK, out)
}

// scoreOne looks the client (and, for impossible travel, where its
// principal was last seen) up and applies the rules.
func (s *server) scoreOne(a *active, req *wire.ScoreRequest, addr netip.Addr) wire.ScoreResponse {
	start := time.Now()
	g := s.lookup(addr)
	var prev *wire.Geo
	if p, err := netip.ParseAddr(req.PrevIP); err == nil && g != nil && !g.Local {
		prev = s.lookup(p)
	}
	f := Features(req, addr, g, prev)
	// Only a client whose user agent claims a crawler with domains is
	// worth its DNS; a cache miss is scored with the networks alone, its
	// claim neither trusted nor held against it (rules.CrawlerPending).
	if s.crawlers != nil && a.rules.WantsHostnames(f.UserAgent) {
		var known bool
		f.Hostnames, known = s.crawlers.Hostnames(addr)
		f.CrawlerPending = !known
	}
	res := rules.Score(&a.rules, f)
	s.latency.Observe(time.Since(start).Seconds())
	s.scores.WithLabelValues(res.Level).Inc()
	return wire.ScoreResponse{
		Score: res.Score, Reasons: res.Reasons, Geo: g,
		Level: res.Level, Profile: a.rules.Name, Allow: res.Allow, AllowVia: res.AllowVia, ProfileHash: a.hash,
	}
}

// lookup returns addr's geo, or nil when unknown or the lookup failed:
// scoring without geo beats failing the gateway's request.
func (s *server) lookup(addr netip.Addr) *wire.Geo {
	if s.locator == nil {
		return nil
	}
	g, err := s.locator.Lookup(addr)
	if err != nil {
		s.logger.Warn("geo lookup failed", "ip", addr.String(), "err", err)
		return nil
	}
	return g
}

// Features maps a score request, the client's geo and the geo of the
// address its principal was last seen from to the rules' features.
func Features(req *wire.ScoreRequest, addr netip.Addr, g, prev *wire.Geo) rules.Features {
	f := rules.Observed(req, addr)
	if g != nil && !g.Local {
		f.Country, f.ASN = g.Country, uint32(g.ASN) // AS numbers are 32-bit
	}
	if km, ok := geo.DistanceKm(prev, g); ok {
		f.TravelKm, f.TravelSeconds = km, req.PrevSeconds
	}
	return f
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
	}{
		{"count_1s", req.Count1s}, {"count_10s", req.Count10s}, {"count_60s", req.Count60s},
		{"visits", req.Visits}, {"sensitive_hits", req.SensitiveHits}, {"auth_failures", req.AuthFailures},
		{"errors_4xx", req.Errors4xx}, {"distinct_paths", req.DistinctPaths},
		{"sequential_ids", req.SequentialIDs}, {"intervals", int64(req.Intervals)},
		{"assets_10s", req.Assets10s}, {"probes", req.Probes},
	} {
		if c.n < 0 {
			return netip.Addr{}, badRequest(fmt.Sprintf("%s must not be negative, got %d", c.name, c.n))
		}
	}
	if req.PrevIP != "" {
		if _, err := netip.ParseAddr(req.PrevIP); err != nil {
			return netip.Addr{}, badRequest(fmt.Sprintf("prev_ip %q is not an IP address", req.PrevIP))
		}
	}
	if req.PrevSeconds < 0 || req.PrevSeconds != req.PrevSeconds {
		return netip.Addr{}, badRequest(fmt.Sprintf("prev_seconds must be a number >= 0, got %v", req.PrevSeconds))
	}
	if req.IntervalCV < 0 || req.IntervalCV != req.IntervalCV {
		return netip.Addr{}, badRequest(fmt.Sprintf("interval_cv must be a number >= 0, got %v", req.IntervalCV))
	}
	return addr, nil
}

func badRequest(msg string) error { return echo.NewHTTPError(http.StatusBadRequest, msg) }
