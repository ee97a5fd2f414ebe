// Package server assembles the dashboard's HTTP surface: health, the live
// websocket, the event history API and the embedded UI.
package server

import (
	"context"
	"errors"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/gorilla/websocket"
	"github.com/labstack/echo/v4"

	"github.com/bulwarkgw/bulwark/dashboard/internal/history"
	"github.com/bulwarkgw/bulwark/dashboard/internal/hub"
	"github.com/bulwarkgw/bulwark/shared/wire"
)

// Events answers history queries.
type Events interface {
	Events(ctx context.Context, q history.Query) ([]wire.Event, error)
}

// Snapshot returns the encoded frame a newly connected browser receives.
type Snapshot func() []byte

// Deps are the dashboard's collaborators.
type Deps struct {
	Hub      *hub.Hub
	Snapshot Snapshot
	Events   Events
	UI       fs.FS
	Log      *slog.Logger
	// AllowedOrigins lists extra websocket origins (scheme://host[:port])
	// besides the dashboard's own host.
	AllowedOrigins []string
}

// New returns the dashboard's handler.
func New(d Deps) (*echo.Echo, error) {
	if d.Hub == nil || d.Snapshot == nil || d.Events == nil || d.UI == nil || d.Log == nil {
		return nil, errors.New("server: missing dependency")
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

	e.GET("/healthz", func(c echo.Context) error {
		return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
	})
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
	e.GET("/api/events", func(c echo.Context) error {
		q := history.Query{Type: wire.EventType(c.QueryParam("type")), IP: c.QueryParam("ip"), Limit: 50}
		if s := c.QueryParam("limit"); s != "" {
			n, err := strconv.Atoi(s)
			if err != nil || n < 1 || n > history.MaxLimit {
				return echo.NewHTTPError(http.StatusBadRequest, "limit must be an integer in [1, "+strconv.Itoa(history.MaxLimit)+"]")
			}
			q.Limit = n
		}
		evs, err := d.Events.Events(c.Request().Context(), q)
		if err != nil {
			d.Log.Warn("event history unavailable", "err", err)
			return echo.NewHTTPError(http.StatusServiceUnavailable, "event history unavailable")
		}
		return c.JSON(http.StatusOK, map[string]any{"events": evs})
	})
	e.GET("/*", echo.WrapHandler(http.FileServerFS(d.UI)))
	return e, nil
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
