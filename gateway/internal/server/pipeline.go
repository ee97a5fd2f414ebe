package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/bulwarkgw/bulwark/gateway/internal/config"
	"github.com/bulwarkgw/bulwark/gateway/internal/events"
	"github.com/bulwarkgw/bulwark/gateway/internal/fallback"
	"github.com/bulwarkgw/bulwark/gateway/internal/scoreclient"
	"github.com/bulwarkgw/bulwark/gateway/internal/stats"
	"github.com/bulwarkgw/bulwark/gateway/internal/traffic"
	"github.com/bulwarkgw/bulwark/shared/wire"
)

// Messages the client sees.
const (
	msgBlocked   = "Suspicious behavior detected. Connection dropped."
	msgBanned    = "Client banned"
	msgThrottled = "Too many requests, slow down"
	msgDegraded  = "Service temporarily unavailable"
)

// verdict is what the chain learned about a request; it travels on the
// request context under a typed key.
type verdict struct {
	ip       netip.Addr
	start    time.Time
	obs      traffic.Observation
	score    wire.ScoreResponse
	degraded bool
}

type verdictKey struct{}

func verdictOf(c echo.Context) *verdict {
	v, _ := c.Request().Context().Value(verdictKey{}).(*verdict)
	return v
}

type pipeline struct {
	cfg *config.Config
	d   Deps
}

func (p *pipeline) accessLog(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := p.d.Now()
		err := next(c)
		if err != nil {
			c.Error(err)
		}
		r := c.Request()
		p.d.Log.Info("request",
			"method", r.Method, "path", r.URL.Path, "status", c.Response().Status,
			"ip", c.RealIP(), "duration_ms", float64(time.Since(start).Microseconds())/1000,
			"request_id", c.Response().Header().Get(echo.HeaderXRequestID))
		return nil
	}
}

// observe refuses banned clients before any other work and counts the rest.
func (p *pipeline) observe(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		now := p.d.Now()
		v := &verdict{ip: p.d.IPs.IP(c.Request()), start: now}
		if !v.ip.IsValid() {
			return echo.NewHTTPError(http.StatusBadRequest, "unknown client address")
		}
		ctx, cancel := context.WithTimeout(c.Request().Context(), p.cfg.Redis.Timeout)
		obs, err := p.d.Traffic.Observe(ctx, v.ip, now, traffic.DescribeRequest(c.Request(), p.cfg.Scoring.SensitivePaths, p.cfg.Scoring.VisitWindow))
		cancel()
		switch {
		case err != nil:
			p.d.Log.Warn("traffic store unavailable", "err", err, "fail_mode", p.cfg.Redis.FailMode)
			if p.cfg.Redis.FailMode == config.FailClosed {
				p.d.Stats.Request(now, stats.Blocked)
				return echo.NewHTTPError(http.StatusServiceUnavailable, msgDegraded)
			}
			v.degraded = true
		case obs.Banned:
			p.d.Stats.Request(now, stats.Blocked)
			if obs.BanTTL > 0 {
				c.Response().Header().Set("Retry-After", strconv.Itoa(int((obs.BanTTL+time.Second-1)/time.Second)))
			}
			return echo.NewHTTPError(http.StatusForbidden, msgBanned)
		}
		v.obs = obs
		c.SetRequest(c.Request().WithContext(context.WithValue(c.Request().Context(), verdictKey{}, v)))
		return next(c)
	}
}

// score asks the scorer (through the score cache) with everything the
// traffic store observed. When the scorer fails, fail_mode closed answers
// 503; open scores locally with the same documented rule on the counts the
// gateway has (package fallback) and marks the request degraded.
func (p *pipeline) score(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		v := verdictOf(c)
		r := c.Request()
		o := &v.obs
		req := wire.ScoreRequest{
			IP: v.ip.String(), Count1s: o.Count1s, Count10s: o.Count10s, Count60s: o.Count60s,
			Method: r.Method, Path: r.URL.Path, UserAgent: r.UserAgent(),
			Visits: o.Visits, Sensitive: o.Sensitive, SensitiveHits: o.SensitiveHits,
			AuthFailures: o.AuthFailures, Errors4xx: o.Errors4xx,
			DistinctPaths: o.DistinctPaths, SequentialIDs: o.SequentialIDs,
			Intervals: o.Intervals, IntervalCV: o.IntervalCV,
		}
		if o.PrevIP.IsValid() {
			req.PrevIP, req.PrevSeconds = o.PrevIP.String(), o.PrevAge.Seconds()
		}
		res, err := p.d.Scorer.Score(r.Context(), req)
		if err != nil {
			level := slog.LevelWarn
			if errors.Is(err, scoreclient.ErrCircuitOpen) {
				level = slog.LevelDebug // the breaker opening was logged already
			}
			p.d.Log.Log(r.Context(), level, "scorer unavailable", "err", err, "fail_mode", p.cfg.Scorer.FailMode)
			if p.cfg.Scorer.FailMode == config.FailClosed {
				p.d.Stats.Request(p.d.Now(), stats.Blocked)
				return echo.NewHTTPError(http.StatusServiceUnavailable, msgDegraded)
			}
			v.degraded = true
			res = fallback.Score(req, p.cfg.BlockAt, p.cfg.ThrottleAt)
		}
		v.score = res
		err = next(c)
		p.countRefusal(c, v, err)
		return err
	}
}

// countRefusal records the gateway's own 429 or 403 to the client as a 4xx
// answer: a client that keeps coming while refused raises its error ratio
// (and so its score) instead of diluting it.
func (p *pipeline) countRefusal(c echo.Context, v *verdict, err error) {
	var he *echo.HTTPError
	rec, ok := p.d.Traffic.(ResponseRecorder)
	if !ok || v.degraded || !errors.As(err, &he) || he.Code != http.StatusTooManyRequests && he.Code != http.StatusForbidden {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(c.Request().Context()), p.cfg.Redis.Timeout)
	defer cancel()
	// Recorded as 429 either way: a refusal is not an auth failure.
	if rerr := rec.RecordResponse(ctx, v.ip, p.d.Now(), http.StatusTooManyRequests); rerr != nil {
		p.d.Log.Warn("refusal not recorded", "ip", v.ip, "err", rerr)
	}
}

// enforce turns the score into a decision. In shadow mode it records what it
// would have done and lets the request through.
func (p *pipeline) enforce(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		v := verdictOf(c)
		now := p.d.Now()
		switch s := v.score.Score; {
		case s >= p.cfg.BlockAt && p.cfg.Shadow:
			p.publish(c, v, wire.EventShadowBlock, http.StatusOK)
		case s >= p.cfg.BlockAt:
			ctx, cancel := context.WithTimeout(c.Request().Context(), p.cfg.Redis.Timeout)
			err := p.d.Traffic.Ban(ctx, v.ip, p.cfg.BanTTL, fmt.Sprintf("score %.2f", s))
			cancel()
			if err != nil {
				p.d.Log.Warn("ban not stored", "ip", v.ip, "err", err)
			}
			p.d.Stats.Request(now, stats.Blocked)
			p.d.Stats.Ban(now)
			p.publish(c, v, wire.EventBan, http.StatusForbidden)
			return echo.NewHTTPError(http.StatusForbidden, msgBlocked)
		case s >= p.cfg.ThrottleAt && !p.cfg.Shadow:
			p.d.Stats.Request(now, stats.Throttled)
			p.publish(c, v, wire.EventThrottle, http.StatusTooManyRequests)
			c.Response().Header().Set("Retry-After", "1")
			return echo.NewHTTPError(http.StatusTooManyRequests, msgThrottled)
		}
		p.d.Stats.Request(now, stats.Allowed)
		return next(c)
	}
}

func (p *pipeline) publish(c echo.Context, v *verdict, typ wire.EventType, status int) {
	r := c.Request()
	now := p.d.Now()
	p.d.Events.Publish(wire.Event{
		ID: events.NewID(now), TS: now.UTC(), Type: typ,
		IP: v.ip.String(), Geo: v.score.Geo,
		Method: r.Method, Host: r.Host, Path: r.URL.Path, Status: status,
		Score: v.score.Score, Reasons: v.score.Reasons,
		UserAgent: r.UserAgent(), Gateway: p.cfg.GatewayID,
		RequestID: c.Response().Header().Get(echo.HeaderXRequestID),
		Shadow:    p.cfg.Shadow, Degraded: v.degraded,
	})
}
