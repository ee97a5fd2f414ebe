// Package server assembles the gateway: an echo instance whose routes.go
// shows the whole protection chain in the order a request travels, the
// middlewares that make up that chain, and the one error handler that
// renders every failure as JSON.
package server

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/netip"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/bulwarkgw/bulwark/gateway/internal/realip"
	"github.com/bulwarkgw/bulwark/gateway/internal/stats"
	"github.com/bulwarkgw/bulwark/gateway/internal/traffic"
	"github.com/bulwarkgw/bulwark/shared/wire"
)

// Traffic counts requests and holds bans in shared state.
type Traffic interface {
	Observe(ctx context.Context, ip netip.Addr, now time.Time, req traffic.Request) (traffic.Observation, error)
	Ban(ctx context.Context, ip netip.Addr, ttl time.Duration, reason string) error
}

// Scorer scores a client's observed behaviour.
type Scorer interface {
	Score(ctx context.Context, req wire.ScoreRequest) (wire.ScoreResponse, error)
}

// Publisher takes events off the request path.
type Publisher interface {
	Publish(wire.Event)
}

// Stats counts decisions per second.
type Stats interface {
	Request(now time.Time, d stats.Decision)
	Ban(now time.Time)
}

// Ready reports whether a dependency needed to serve is reachable.
type Ready func(ctx context.Context) error

// Deps are the gateway's collaborators.
type Deps struct {
	IPs     *realip.Resolver
	Traffic Traffic
	Scorer  Scorer
	Events  Publisher
	Stats   Stats
	Proxy   http.Handler
	Ready   Ready
	Log     *slog.Logger
	Now     func() time.Time
}

func (d Deps) validate() error {
	if d.IPs == nil || d.Traffic == nil || d.Scorer == nil || d.Events == nil || d.Stats == nil || d.Proxy == nil || d.Log == nil {
		return errors.New("server: missing dependency")
	}
	return nil
}

// httpError renders every error as {"error": "...", "request_id": "..."}.
func httpError(log *slog.Logger) echo.HTTPErrorHandler {
	return func(err error, c echo.Context) {
		if c.Response().Committed {
			return
		}
		code, msg := http.StatusInternalServerError, "Internal Server Error"
		var he *echo.HTTPError
		if errors.As(err, &he) {
			code = he.Code
			if m, ok := he.Message.(string); ok {
				msg = m
			} else {
				msg = http.StatusText(code)
			}
		} else {
			log.Error("request failed", "err", err, "path", c.Request().URL.Path)
		}
		body := map[string]string{"error": msg}
		if id := c.Response().Header().Get(echo.HeaderXRequestID); id != "" {
			body["request_id"] = id
		}
		if c.Request().Method == http.MethodHead {
			_ = c.NoContent(code)
			return
		}
		_ = c.JSON(code, body)
	}
}
