package admin

import (
	"errors"
	"net/http"

	"github.com/labstack/echo/v4"
)

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
	if e.Unavailable != nil && e.Unavailable(err) {
		// The cause (addresses included) goes to the log, not the client.
		return echo.NewHTTPError(http.StatusServiceUnavailable, "state store unavailable: try again").SetInternal(err)
	}
	return err
}

// badRequest is a 400 naming the offending field.
func badRequest(field, problem string) error {
	return echo.NewHTTPError(http.StatusBadRequest, field+": "+problem)
}
