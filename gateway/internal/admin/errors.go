package admin

import (
	"errors"
	"log/slog"
	"net/http"

	"github.com/labstack/echo/v4"
)

// httpError renders every error as {"error": "...", "request_id": "..."}.
// Errors that are not *echo.HTTPError are unexpected: logged, and a 500
// without their text.
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
			log.Error("admin request failed", "err", err, "method", c.Request().Method, "path", c.Request().URL.Path)
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

// domainError maps the domain packages' sentinel errors to status codes, in
// one table. Anything else passes through and becomes a logged 500.
func (e Errors) domainError(err error) error {
	table := []struct {
		target error
		code   int
	}{
		{e.Invalid, http.StatusBadRequest},
		{e.NotFound, http.StatusNotFound},
		{e.Exists, http.StatusConflict},
		{e.Conflict, http.StatusConflict},
		{e.Static, http.StatusConflict},
	}
	for _, m := range table {
		if m.target != nil && errors.Is(err, m.target) {
			return echo.NewHTTPError(m.code, err.Error())
		}
	}
	return err
}

// badRequest is a 400 naming the offending field.
func badRequest(field, problem string) error {
	return echo.NewHTTPError(http.StatusBadRequest, field+": "+problem)
}
