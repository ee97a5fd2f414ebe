// Package server assembles the dashboard's HTTP surface: health, the live
// websocket, the history API over MongoDB, the per-client detail, the admin
// unban and the embedded UI, behind an optional basic-auth login. The
// dashboard is read-only unless an admin token is configured; the token is
// never sent to the browser (the operator types it).
package server

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"io/fs"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"github.com/gorilla/websocket"
	"github.com/labstack/echo/v4"

	"github.com/bulwarkgw/bulwark/dashboard/internal/history"
	"github.com/bulwarkgw/bulwark/dashboard/internal/hub"
	"github.com/bulwarkgw/bulwark/dashboard/internal/traffic"
	"github.com/bulwarkgw/bulwark/shared/wire"
)

// Events pages through the event history.
type Events interface {
	Events(ctx context.Context, q history.Query) (history.Page, error)
}

// Summaries sums the history up: over a time range, or for one client.
type Summaries interface {
	Stats(ctx context.Context, from, to time.Time, top int) (history.Stats, error)
	Client(ctx context.Context, ip string, limit int) (history.Client, error)
}

// Clients reads and lifts bans in Redis, for ip's client (an IPv6 /64
// whichever address of it is given).
type Clients interface {
	Client(ctx context.Context, ip netip.Addr, now time.Time) (traffic.Client, error)
	Unban(ctx context.Context, ip netip.Addr, now time.Time) (wire.Event, error)
}

var (
	_ Events    = (*history.Store)(nil)
	_ Summaries = (*history.Store)(nil)
	_ Clients   = (*traffic.Store)(nil)
)

// Snapshot returns the encoded frame a newly connected browser receives.
type Snapshot func() []byte

// Deps are the dashboard's collaborators and its security settings.
type Deps struct {
	Hub       *hub.Hub
	Snapshot  Snapshot
	Events    Events
	Summaries Summaries
	Clients   Clients
	UI        fs.FS
	Log       *slog.Logger
	Now       func() time.Time
	// AllowedOrigins lists extra websocket origins (scheme://host[:port])
	// besides the dashboard's own host.
	AllowedOrigins []string
	// AdminToken, when set, allows unbanning with "Authorization: Bearer
	// <token>". Empty: the dashboard is read-only.
	AdminToken string
	// User and Password, when set, require HTTP basic auth for everything
	// but /healthz.
	User, Password string
	// Unbanned, when set, is told of every ban lifted here, with the client
	// as bans are listed (clientid.Display).
	Unbanned func(ip string)
}

// New returns the dashboard's handler.
func New(d Deps) (*echo.Echo, error) {
	if d.Hub == nil || d.Snapshot == nil || d.Events == nil || d.Summaries == nil || d.Clients == nil || d.UI == nil || d.Log == nil {
		return nil, errors.New("server: missing dependency")
	}
	if (d.User == "") != (d.Password == "") {
		return nil, errors.New("server: login needs both a user and a password")
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = func(err error, c echo.Context) {
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
			d.Log.Error("request failed", "err", err, "path", c.Request().URL.Path)
		}
		_ = c.JSON(code, map[string]string{"error": msg})
	}
	// The dashboard reads no forwarding headers: nothing here depends on
	// the client address, and echo's default would trust them blindly.
	e.IPExtractor = echo.ExtractIPDirect()
	e.Use(securityHeaders)

	e.GET("/healthz", func(c echo.Context) error {
		return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
	})

	if d.User != "" {
		e.Use(basicAuth(d.User, d.Password))
	}
	a := &api{d: d}
	up := websocket.Upgrader{
		ReadBufferSize: 1024, WriteBufferSize: 16 << 10,
		CheckOrigin: func(r *http.Request) bool { return originAllowed(r, d.AllowedOrigins) },
	}
	e.GET("/ws", func(c echo.Context) error {
		conn, err := up.Upgrade(c.Response(), c.Request(), nil)
		if err != nil {
			return nil // the upgrader has answered
		}
		_ = d.Hub.Join(conn, d.Snapshot())
		return nil
	})
	e.GET("/api/config", func(c echo.Context) error {
		return c.JSON(http.StatusOK, map[string]bool{"admin": d.AdminToken != ""})
	})
	e.GET("/api/events", a.events)
	e.GET("/api/stats", a.stats)
	e.GET("/api/ip/:ip", a.client)
	e.POST("/api/bans/:ip/unban", a.unban, adminOnly(d.AdminToken))
	e.GET("/*", echo.WrapHandler(http.FileServerFS(d.UI)))
	return e, nil
}

// securityHeaders keeps the UI out of frames and its data out of other
// sites' hands.
func securityHeaders(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		h := c.Response().Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Content-Security-Policy", "default-src 'self'; connect-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'")
		return next(c)
	}
}

// equal compares secrets in constant time, whatever their lengths.
func equal(a, b string) bool {
	ha, hb := sha256.Sum256([]byte(a)), sha256.Sum256([]byte(b))
	return subtle.ConstantTimeCompare(ha[:], hb[:]) == 1
}

func basicAuth(user, password string) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			if c.Path() == "/healthz" {
				return next(c)
			}
			u, p, ok := c.Request().BasicAuth()
			// Evaluate both comparisons: no early exit on the user name.
			okUser, okPass := equal(u, user), equal(p, password)
			if !ok || !okUser || !okPass {
				c.Response().Header().Set("WWW-Authenticate", `Basic realm="Bulwark dashboard", charset="UTF-8"`)
				return echo.NewHTTPError(http.StatusUnauthorized, "login required")
			}
			return next(c)
		}
	}
}

func adminOnly(token string) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			if token == "" {
				return echo.NewHTTPError(http.StatusForbidden, "the dashboard is read-only: no admin token is configured")
			}
			got, ok := strings.CutPrefix(c.Request().Header.Get("Authorization"), "Bearer ")
			if !ok || !equal(strings.TrimSpace(got), token) {
				return echo.NewHTTPError(http.StatusUnauthorized, "admin token required")
			}
			return next(c)
		}
	}
}

// originAllowed accepts requests without an Origin (not a browser), from
// the dashboard's own host, or from a configured origin.
func originAllowed(r *http.Request, extra []string) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	u, err := url.Parse(origin)
	if err != nil {
		return false
	}
	if strings.EqualFold(u.Host, r.Host) {
		return true
	}
	for _, o := range extra {
		if strings.EqualFold(strings.TrimSuffix(o, "/"), origin) {
			return true
		}
	}
	return false
}
