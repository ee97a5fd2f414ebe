package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/bulwarkgw/bulwark/gateway/internal/admin"
	"github.com/bulwarkgw/bulwark/gateway/internal/apikey"
	"github.com/bulwarkgw/bulwark/gateway/internal/audit"
	"github.com/bulwarkgw/bulwark/gateway/internal/bans"
	"github.com/bulwarkgw/bulwark/gateway/internal/bruteforce"
	"github.com/bulwarkgw/bulwark/gateway/internal/config"
	"github.com/bulwarkgw/bulwark/gateway/internal/events"
	"github.com/bulwarkgw/bulwark/gateway/internal/lists"
	"github.com/bulwarkgw/bulwark/gateway/internal/ratelimit"
	"github.com/bulwarkgw/bulwark/gateway/internal/realip"
	"github.com/bulwarkgw/bulwark/gateway/internal/redisbreaker"
	"github.com/bulwarkgw/bulwark/gateway/internal/server"
	"github.com/bulwarkgw/bulwark/gateway/internal/tunnels"
	"github.com/bulwarkgw/bulwark/shared/clientid"
	"github.com/bulwarkgw/bulwark/shared/wire"
)

// errNotFound is the one "nothing there" the admin API maps to 404; the
// adapters below translate each package's own sentinel into it.
var errNotFound = errors.New("not found")

func notFound(err error, sentinels ...error) error {
	for _, s := range sentinels {
		if errors.Is(err, s) {
			return errNotFound
		}
	}
	return err
}

type adminDeps struct {
	lists   *lists.Store
	bans    *bans.Store
	limiter *ratelimit.Limiter
	keys    *apikey.Store
	guard   *bruteforce.Guard
	events  *events.Sink
	audit   *audit.Log
	metrics *server.Metrics
	tunnels *tunnels.Registry
	log     *slog.Logger
}

// newAdmin builds the admin API on its own listener, or nothing when it is
// off (no address or no credentials).
// Limits of POST /v1/check's fields: a login is a name, not a payload.
const (
	maxCheckLogin    = 256
	maxCheckPassword = 1024
)

func newAdmin(cfg *config.Config, gw *server.Gateway, rl *reloader, d adminDeps) (*http.Server, net.Listener, error) {
	if !cfg.Admin.Enabled() {
		d.log.Warn("admin API disabled: set admin.token (BULWARK_ADMIN_TOKEN) or admin.username and admin.password")
		return nil, nil, nil
	}
	sink := auditSink{audit: d.audit, events: d.events, gatewayID: cfg.GatewayID}
	e, err := admin.New(admin.Deps{
		Auth: admin.Auth{Token: cfg.Admin.Token, Username: cfg.Admin.Username, Password: cfg.Admin.Password},
		Reload: func(ctx context.Context) (admin.Summary, error) {
			c, err := rl.reload()
			if err != nil {
				return admin.Summary{}, err
			}
			return admin.Summary{RoutesCount: len(c.Routes), RateLimit: c.RateLimit.RequestsPerMinute}, nil
		},
		Routes: func() []admin.Route {
			c := gw.Config()
			out := make([]admin.Route, len(c.Routes))
			for i, r := range c.Routes {
				out[i] = admin.Route{Path: r.Path, Target: r.Upstream.Redacted()}
			}
			return out
		},
		Config: func() any { return gw.Config().Redacted() },
		Status: func(ctx context.Context) admin.Status {
			c := gw.Config()
			return admin.Status{RoutesCount: len(c.Routes), RateLimit: admin.RateLimitStatus{
				RequestsPerMinute: c.RateLimit.RequestsPerMinute, WindowSize: int(c.RateLimit.Window.Seconds())}}
		},
		RateLimit: rateLimitAdmin{limiter: d.limiter, gw: gw},
		Lists:     listsAdmin{s: d.lists, tunnels: d.tunnels},
		Bans:      bansAdmin{store: d.bans, events: d.events, tunnels: d.tunnels, gatewayID: cfg.GatewayID},
		Buckets:   bucketsAdmin{d.guard},
		Keys:      keysAdmin{d.keys},
		Errors: admin.Errors{Invalid: lists.ErrInvalid, Exists: lists.ErrExists, Conflict: lists.ErrConflict,
			NotFound: errNotFound, Static: lists.ErrStatic, Unavailable: redisbreaker.Unavailable},
		Audit:    sink,
		AuditLog: auditQuery{d.audit},
		Metrics:  d.metrics.Handler(),
		BanTTL:   cfg.BanTTL,
		Log:      d.log.With("listener", "admin"),
	})
	if err != nil {
		return nil, nil, err
	}
	// The pre-auth check for servers (seed 003's SignIn), behind the same
	// credentials as the rest of the admin API.
	e.POST("/v1/check", func(c echo.Context) error {
		var req struct {
			Login    string `json:"login"`
			Password string `json:"password"`
			IP       string `json:"ip"`
		}
		if err := c.Bind(&req); err != nil {
			return echo.NewHTTPError(http.StatusBadRequest, "body must be JSON {\"login\",\"password\",\"ip\"}")
		}
		switch login := strings.TrimSpace(req.Login); {
		case login == "":
			return echo.NewHTTPError(http.StatusBadRequest, "login: required")
		case len(req.Login) > maxCheckLogin:
			return echo.NewHTTPError(http.StatusBadRequest, fmt.Sprintf("login: at most %d bytes", maxCheckLogin))
		case len(req.Password) > maxCheckPassword:
			return echo.NewHTTPError(http.StatusBadRequest, fmt.Sprintf("password: at most %d bytes", maxCheckPassword))
		}
		ip, err := netip.ParseAddr(req.IP)
		if err != nil {
			return echo.NewHTTPError(http.StatusBadRequest, "ip: not an IP address")
		}
		if ip.Zone() != "" { // a zone names a link, not a client: fe80::1%eth0 would be a second identity
			return echo.NewHTTPError(http.StatusBadRequest, "ip: an address with a zone is not a client address")
		}
		ok, err := gw.Check(c.Request().Context(), req.Login, req.Password, ip.Unmap())
		if errors.Is(err, bruteforce.ErrInvalid) {
			return echo.NewHTTPError(http.StatusBadRequest, "invalid login or ip")
		}
		if err != nil {
			d.log.Warn("check failed", "err", err)
			return echo.NewHTTPError(http.StatusServiceUnavailable, "check unavailable")
		}
		return c.JSON(http.StatusOK, map[string]bool{"ok": ok})
	})
	// Seed 002's threat log, from the audit log's request rows: newest 50,
	// and a summary over the whole store (not a 50-row window).
	e.GET("/api/logs", func(c echo.Context) error {
		rows, err := d.audit.Logs(c.Request().Context(), audit.Query{Limit: 50, EventType: audit.TypeRequest})
		if err != nil {
			d.log.Warn("threat log unavailable", "err", err)
			return echo.NewHTTPError(http.StatusServiceUnavailable, "Failed to fetch logs")
		}
		out := make([]map[string]any, len(rows))
		for i, r := range rows {
			out[i] = map[string]any{"ipAddress": r.ClientIP, "endpoint": r.Path, "actionTaken": r.ActionTaken,
				"riskScore": r.RiskScore, "location": r.Location, "timestamp": r.Timestamp, "degraded": r.Degraded}
		}
		return c.JSON(http.StatusOK, out)
	})
	e.GET("/api/logs/summary", func(c echo.Context) error {
		n, err := d.audit.Actions(c.Request().Context())
		if err != nil {
			return echo.NewHTTPError(http.StatusServiceUnavailable, "Failed to fetch logs")
		}
		total := n[audit.Allowed] + n[audit.Throttled] + n[audit.Blocked]
		return c.JSON(http.StatusOK, map[string]any{"total": total, "blocked": n[audit.Blocked], "allowed": n[audit.Allowed],
			"throttled": n[audit.Throttled], "money_saved": fmt.Sprintf("$%.2f", float64(n[audit.Blocked])*gw.Config().CostPerBlock)})
	})
	ln, err := net.Listen("tcp", cfg.Admin.Listen)
	if err != nil {
		return nil, nil, err
	}
	return &http.Server{Handler: e, ReadHeaderTimeout: admin.ReadTimeout, IdleTimeout: 60 * time.Second, MaxHeaderBytes: 64 << 10}, ln, nil
}

type rateLimitAdmin struct {
	limiter *ratelimit.Limiter
	gw      *server.Gateway
}

func (a rateLimitAdmin) key(ip netip.Addr) string { return wire.RateLimitKey("ip", ip) }

func (a rateLimitAdmin) Stats(ctx context.Context, ip netip.Addr) (int64, int64, error) {
	c := a.gw.Config()
	n, err := a.limiter.Count(ctx, a.key(ip), c.RateLimit.Window, time.Now())
	return n, c.RateLimit.RequestsPerMinute, err
}

func (a rateLimitAdmin) Clear(ctx context.Context, ip netip.Addr) (bool, error) {
	return a.limiter.Clear(ctx, a.key(ip))
}

// listsAdmin adapts package lists. A network added to the deny list
// closes the tunnels it covers here at once (the other gateways close
// theirs when the addition's announcement reaches them).
type listsAdmin struct {
	s       *lists.Store
	tunnels *tunnels.Registry
}

func (a listsAdmin) Add(ctx context.Context, kind admin.ListKind, cidr string) (string, error) {
	p, err := a.s.Add(ctx, lists.Kind(kind), cidr)
	if err != nil {
		return "", err
	}
	if lists.Kind(kind) == lists.KindDeny {
		a.tunnels.ClosePrefix(p)
	}
	return p.String(), nil
}

func (a listsAdmin) Remove(ctx context.Context, kind admin.ListKind, cidr string) error {
	return notFound(a.s.Remove(ctx, lists.Kind(kind), cidr), lists.ErrNotFound)
}

func (a listsAdmin) List(ctx context.Context, kind admin.ListKind) ([]admin.ListEntry, error) {
	entries, err := a.s.List(ctx, lists.Kind(kind))
	if err != nil {
		return nil, err
	}
	out := make([]admin.ListEntry, len(entries))
	for i, e := range entries {
		out[i] = admin.ListEntry{CIDR: e.Prefix.String(), Static: e.Source == lists.SourceConfig}
	}
	return out, nil
}

// bansAdmin adapts package bans. The admin API passes each client as its
// identity; the events it records name the client as people read it (an
// IPv6 /64 as "2001:db8:1:2::/64"). A ban closes the client's tunnels here
// at once (the other gateways close theirs when the ban's announcement
// reaches them).
type bansAdmin struct {
	store     *bans.Store
	events    *events.Sink
	tunnels   *tunnels.Registry
	gatewayID string
}

func (a bansAdmin) List(ctx context.Context) ([]admin.Ban, error) {
	list, err := a.store.List(ctx, time.Now())
	if err != nil {
		return nil, err
	}
	out := make([]admin.Ban, len(list))
	for i, b := range list {
		out[i] = admin.Ban{IP: b.IP, Reason: b.Reason, ExpiresAt: b.Until}
	}
	return out, nil
}

func (a bansAdmin) Add(ctx context.Context, ip netip.Addr, ttl time.Duration, reason string) error {
	now := time.Now()
	if err := a.store.Ban(ctx, ip, ttl, reason, now); err != nil {
		return err
	}
	a.tunnels.CloseID(ip)
	a.events.Publish(wire.Event{ID: events.NewID(now), TS: now.UTC(), Type: wire.EventBan, IP: clientid.Display(ip), Gateway: a.gatewayID,
		Reasons: []wire.Reason{{Feature: "admin", Value: ttl.Seconds(), Contribution: 0}}})
	return nil
}

func (a bansAdmin) Remove(ctx context.Context, ip netip.Addr) (bool, error) {
	lifted, err := a.store.Unban(ctx, ip)
	if err == nil && lifted {
		now := time.Now()
		a.events.Publish(wire.Event{ID: events.NewID(now), TS: now.UTC(), Type: wire.EventUnban, IP: clientid.Display(ip), Gateway: a.gatewayID})
	}
	return lifted, err
}

type bucketsAdmin struct{ g *bruteforce.Guard }

func (a bucketsAdmin) ResetLogin(ctx context.Context, login string) error {
	return notFound(a.g.ResetLogin(ctx, login), bruteforce.ErrNotFound)
}

func (a bucketsAdmin) ResetPassword(ctx context.Context, pw string) error {
	return notFound(a.g.ResetPassword(ctx, pw), bruteforce.ErrNotFound)
}

func (a bucketsAdmin) ResetIP(ctx context.Context, ip netip.Addr) error {
	return notFound(a.g.ResetIP(ctx, ip), bruteforce.ErrNotFound)
}

type keysAdmin struct{ k *apikey.Store }

func (a keysAdmin) Revoke(ctx context.Context, id string) error {
	return notFound(a.k.Revoke(ctx, id), apikey.ErrNotFound)
}

// auditSink writes each admin action to the audit log and, as an admin
// event, to the event history and the live stream.
type auditSink struct {
	audit     *audit.Log
	events    *events.Sink
	gatewayID string
}

func (s auditSink) Record(action, details string, r *http.Request) {
	ip := realip.New(nil).IP(r)
	now := time.Now()
	s.audit.Record(audit.Entry{Timestamp: now, EventType: audit.TypeAdminAction, ClientIP: ip.String(),
		Method: r.Method, Path: r.URL.Path, Action: action, Details: details, UserAgent: r.UserAgent()})
	s.events.Publish(wire.Event{ID: events.NewID(now), TS: now.UTC(), Type: wire.EventAdmin, IP: ip.String(),
		Method: r.Method, Path: r.URL.Path, Gateway: s.gatewayID, UserAgent: r.UserAgent(),
		Reasons: []wire.Reason{{Feature: action}}})
}

type auditQuery struct{ l *audit.Log }

func (q auditQuery) Logs(ctx context.Context, f admin.AuditFilter) ([]admin.AuditEntry, error) {
	rows, err := q.l.Logs(ctx, audit.Query{Limit: f.Limit, Offset: f.Offset, EventType: f.EventType, ClientIP: f.ClientIP, ClientPattern: f.ClientPattern})
	if err != nil {
		return nil, err
	}
	out := make([]admin.AuditEntry, len(rows))
	for i, e := range rows {
		out[i] = admin.AuditEntry{ID: e.ID, Timestamp: e.Timestamp, EventType: e.EventType, ClientIP: e.ClientIP,
			Method: e.Method, Path: e.Path, StatusCode: e.StatusCode, DurationMS: e.DurationMS,
			Action: e.Action, Details: e.Details, UserAgent: e.UserAgent}
	}
	return out, nil
}

func (q auditQuery) Stats(ctx context.Context) (admin.AuditStats, error) {
	s, err := q.l.Stats(ctx)
	return admin.AuditStats{TotalEntries: s.Total, RequestCount: s.Requests, AdminActionCount: s.AdminActions}, err
}
