package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"
)

// errorBody is how every error is rendered.
type errorBody struct {
	Error     string `json:"error"`
	RequestID string `json:"request_id,omitempty"`
}

// handleError renders err as JSON. Errors that are not *echo.HTTPError are
// bugs or failures, shown only as "internal error"; logRequests logs them.
func (s *server) handleError(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	code, msg := http.StatusInternalServerError, "internal error"
	var he *echo.HTTPError
	if errors.As(err, &he) {
		code = he.Code
		if m, ok := he.Message.(string); ok {
			msg = m
		} else {
			msg = fmt.Sprint(he.Message)
		}
		if msg == http.StatusText(code) {
			msg = strings.ToLower(msg) // echo's own errors: "Not Found"
		}
	}
	var werr error
	if c.Request().Method == http.MethodHead {
		werr = c.NoContent(code)
	} else {
		werr = c.JSON(code, errorBody{Error: msg, RequestID: c.Request().Header.Get(echo.HeaderXRequestID)})
	}
	if werr != nil {
		s.logger.Debug("error response not written", "err", werr)
	}
}

// decodeJSON reads exactly one JSON value from r into v and turns every
// failure into a 400 (or 413) naming the problem.
func decodeJSON(r io.Reader, v any) error {
	dec := json.NewDecoder(r)
	if err := dec.Decode(v); err != nil {
		return jsonError(err)
	}
	var extra json.RawMessage
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		if err != nil {
			return jsonError(err)
		}
		return badRequest("request body must hold a single JSON object")
	}
	return nil
}

func jsonError(err error) error {
	var (
		maxBytes *http.MaxBytesError
		syntax   *json.SyntaxError
		typ      *json.UnmarshalTypeError
	)
	switch {
	case errors.As(err, &maxBytes):
		return echo.NewHTTPError(http.StatusRequestEntityTooLarge,
			fmt.Sprintf("request body is larger than %d bytes", maxBytes.Limit))
	case errors.Is(err, io.EOF):
		return badRequest("request body is empty: want a JSON object")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return badRequest("invalid JSON: body ends too early")
	case errors.As(err, &syntax):
		return badRequest(fmt.Sprintf("invalid JSON at byte %d: %v", syntax.Offset, syntax))
	case errors.As(err, &typ):
		if typ.Field == "" {
			return badRequest(fmt.Sprintf("request body must be a JSON object, got %s", typ.Value))
		}
		return badRequest(fmt.Sprintf("field %s: want %s, got %s", typ.Field, jsonType(typ.Type.Kind().String()), typ.Value))
	default:
		return badRequest(fmt.Sprintf("invalid JSON: %v", err))
	}
}

// jsonType names a Go kind the way a JSON author thinks of it.
func jsonType(kind string) string {
	switch {
	case strings.HasPrefix(kind, "int"), strings.HasPrefix(kind, "uint"), strings.HasPrefix(kind, "float"):
		return "a number"
	case kind == "string":
		return "a string"
	case kind == "bool":
		return "true or false"
	default:
		return kind
	}
}
