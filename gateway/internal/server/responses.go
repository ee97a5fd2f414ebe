package server

import (
	"context"
	"net/netip"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/bulwarkgw/bulwark/gateway/internal/proxy"
)

// ResponseRecorder counts the upstream's answers per client: a Traffic
// that implements it feeds the error-ratio and auth-failure features.
type ResponseRecorder interface {
	RecordResponse(ctx context.Context, ip netip.Addr, now time.Time, status int) error
}

// PrincipalRecorder remembers where a verified principal was last used: a
// Traffic that implements it feeds impossible travel.
type PrincipalRecorder interface {
	Remember(ctx context.Context, principal string, ip netip.Addr, now time.Time) error
}

// outcome runs after the proxy has answered and records the
// upstream's status for the client: every 4xx toward the error ratio
// (scanning), 401 and 403 also as auth failures. The gateway's own refusals
// never get here (they are returned before the proxy), nor do proxy errors
// (502/504: no penalty for the client when the upstream is down). Neither
// does a request the client abandoned before the upstream answered (the
// proxy's 499): giving up is not an error of the client's, and a client
// whose requests time out under load must not be throttled for it. A body
// cut at max_body_size (the proxy's 413) is the gateway's own answer, not
// counted, like the 413 to a declared length. Nor is the answer to a page
// asset: a browser's missing icon (iOS asks every site for
// apple-touch-icon.png) is not an error, and assets are counted apart.
func (p *pipeline) outcome(next echo.HandlerFunc) echo.HandlerFunc {
	rec, _ := p.d.Traffic.(ResponseRecorder)
	return func(c echo.Context) error {
		err := next(c)
		v := verdictOf(c)
		status := c.Response().Status
		if err != nil || v == nil || v.bypass || v.obs.Asset || status < 400 || status > 499 {
			return err
		}
		if status == proxy.StatusClientClosed && c.Request().Context().Err() != nil || v.bodyOver.Load() {
			return nil // the client left, or its body was cut at the limit: not an error of its own
		}
		if v.local {
			p.d.Fallback.RecordResponse(v.id, p.d.Now(), status)
			return nil
		}
		if rec == nil {
			return nil
		}
		ctx, cancel := context.WithTimeout(context.WithoutCancel(c.Request().Context()), v.rt.cfg.Redis.Timeout)
		defer cancel()
		if rerr := rec.RecordResponse(ctx, v.id, p.d.Now(), status); rerr != nil {
			p.redisDown("response not recorded", rerr, "ip", v.ip, "status", status)
		}
		return nil
	}
}
