package jsonerr_test

import (
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/labstack/echo/v4"
	"github.com/stretchr/testify/assert"

	"github.com/bulwarkgw/bulwark/gateway/internal/jsonerr"
)

func TestHandler(t *testing.T) {
	e := echo.New()
	e.HTTPErrorHandler = jsonerr.Handler(slog.New(slog.DiscardHandler))
	known := func(c echo.Context) error {
		c.Response().Header().Set(echo.HeaderXRequestID, "r1")
		return echo.NewHTTPError(http.StatusConflict, "already exists")
	}
	e.GET("/known", known)
	e.HEAD("/known", known)
	e.GET("/internal", func(c echo.Context) error { return errors.New("db password is hunter2") })
	tests := []struct {
		method, path, body string
		code               int
	}{
		{"GET", "/known", `{"error":"already exists","request_id":"r1"}`, 409},
		{"GET", "/internal", `{"error":"Internal Server Error"}`, 500},
		{"GET", "/nowhere", `{"error":"Not Found"}`, 404},
		{"HEAD", "/known", ``, 409},
	}
	for _, tt := range tests {
		rec := httptest.NewRecorder()
		e.ServeHTTP(rec, httptest.NewRequest(tt.method, tt.path, nil))
		assert.Equal(t, tt.code, rec.Code, tt.path)
		if tt.body == "" {
			assert.Empty(t, rec.Body.String())
		} else {
			assert.JSONEq(t, tt.body, rec.Body.String(), tt.path)
		}
	}
}
