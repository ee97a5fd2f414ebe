package server

import (
	"errors"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/bulwarkgw/bulwark/gateway/internal/proxy"
	"github.com/bulwarkgw/bulwark/gateway/internal/tunnels"
)

// tunnel forwards a WebSocket handshake the proxy accepts
// (proxy.WebSocketUpgrade) as a tracked tunnel. The handshake went through
// the whole chain like any request (counted, limited, scored); here it
// takes one of its client's places (max_tunnels_per_client, 429 when
// none is left), unless a ban or deny-list entry for the client arrived
// after the chain's checks (403). The proxy then switches protocols on a
// connection the registry holds, so a ban or deny closes it: this
// gateway's own at once (banAs, the admin API), every other gateway's when
// the announcement reaches it. The tunnel's answer is recorded as 101.
func (p *pipeline) tunnel(c echo.Context, v *verdict, r *http.Request) error {
	owner := tunnels.Owner{Addr: v.ip, ID: v.id, Exempt: v.bypass}
	t, err := p.g.tunnels.Reserve(owner, v.start, v.rt.cfg.Edge.MaxTunnelsPerClient)
	switch {
	case errors.Is(err, tunnels.ErrLimit):
		return stop(v, decisionTunnelLimit, http.StatusTooManyRequests, msgTunnels)
	case errors.Is(err, tunnels.ErrDenied):
		return stop(v, decisionDenyListed, http.StatusForbidden, msgDenied)
	case err != nil:
		return stop(v, decisionBanned, http.StatusForbidden, msgBanned)
	}
	defer t.Release()
	v.rt.proxy.ServeHTTP(t.Writer(c.Response()), r.WithContext(proxy.AllowUpgrade(r.Context())))
	if t.Switched() {
		// The proxy wrote the 101 on the hijacked connection itself.
		c.Response().Status = http.StatusSwitchingProtocols
	}
	return nil
}
