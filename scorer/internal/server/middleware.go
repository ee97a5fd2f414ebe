package server

import (
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
)

// logRequests renders any error and then writes one line per request; a
// 5xx line carries the error.
// /v1/score, /v1/score/batch, /healthz and /metrics are hot or noisy: they log at debug level unless
// they fail with a 5xx.
func (s *server) logRequests(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		err := next(c)
		if err != nil {
			c.Error(err)
		}
		status := c.Response().Status
		level := slog.LevelInfo
		switch {
		case status >= http.StatusInternalServerError:
			level = slog.LevelError
		case c.Path() == "/v1/score" || c.Path() == "/v1/score/batch" || c.Path() == "/healthz" || c.Path() == "/metrics":
			level = slog.LevelDebug
		}
		ctx := c.Request().Context()
		if !s.logger.Enabled(ctx, level) {
			return nil
		}
		attrs := []slog.Attr{
			slog.String("method", c.Request().Method),
			slog.String("path", c.Request().URL.Path),
			slog.Int("status", status),
			slog.Int64("bytes", c.Response().Size),
			slog.Float64("duration_ms", float64(time.Since(start).Microseconds())/1000),
			slog.String("remote_ip", c.RealIP()),
		}
		if err != nil && status >= http.StatusInternalServerError {
			attrs = append(attrs, slog.String("err", err.Error()))
		}
		s.logger.LogAttrs(ctx, level, "request", attrs...)
		return nil
	}
}

// limitBody rejects bodies larger than limit with 413: at once when the
// Content-Length says so, otherwise when the handler reads past the limit.
func limitBody(limit int64) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			req := c.Request()
			if req.ContentLength > limit {
				return echo.NewHTTPError(http.StatusRequestEntityTooLarge, fmt.Sprintf("request body is larger than %d bytes", limit))
			}
			// The underlying writer lets net/http close the connection
			// after a too-large body.
			req.Body = http.MaxBytesReader(c.Response().Writer, req.Body, limit)
			return next(c)
		}
	}
}
