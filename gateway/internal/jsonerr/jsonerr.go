// Package jsonerr renders every error an echo handler returns as JSON
// {"error": "...", "request_id": "..."}: the one error format of the
// gateway's listeners. An *echo.HTTPError keeps its code and message; any
// other error is unexpected, logged, and answered 500 without its text. A
// 503 tells the client when to retry (Retry-After: 1) and logs its
// internal cause.
package jsonerr

import (
	"errors"
	"log/slog"
	"net/http"

	"github.com/labstack/echo/v4"
)

// Handler returns echo's error handler.
func Handler(log *slog.Logger) echo.HTTPErrorHandler {
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
			if code == http.StatusServiceUnavailable {
				if c.Response().Header().Get("Retry-After") == "" {
					c.Response().Header().Set("Retry-After", "1")
				}
				if he.Internal != nil {
					log.Warn("dependency unavailable", "err", he.Internal, "method", c.Request().Method, "path", c.Request().URL.Path)
				}
			}
		} else {
			log.Error("request failed", "err", err, "method", c.Request().Method, "path", c.Request().URL.Path)
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
