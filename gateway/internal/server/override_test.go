package server_test

import (
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/bulwarkgw/bulwark/gateway/internal/server"
)

// Which bodies are read for _method: a POST's, as the frameworks would
// read it as a form; no other.
func TestFormBody(t *testing.T) {
	const mp = "multipart/form-data; boundary=x"
	for _, tc := range []struct {
		name, method string
		cts          []string // nil: no Content-Type header
		body         string
		urlencoded   bool
		multipart    string
		read         bool
	}{
		{"urlencoded", "POST", []string{"application/x-www-form-urlencoded"}, "a=1", true, "", true},
		{"any case, parameters", "POST", []string{" Application/X-WWW-Form-Urlencoded ; charset=utf-8"}, "a=1", true, "", true},
		{"no Content-Type: Rack reads a form", "POST", nil, "a=1", true, "", true},
		{"empty Content-Type", "POST", []string{""}, "a=1", true, "", true},
		{"multipart", "POST", []string{mp}, "--x--", false, mp, true},
		{"multipart/mixed: Rack reads it", "POST", []string{"multipart/mixed; boundary=x"}, "--x--", false, "multipart/mixed; boundary=x", true},
		{"a list: Rack takes the first", "POST", []string{"application/x-www-form-urlencoded, application/json"}, "a=1", true, "", true},
		{"a list: any element", "POST", []string{"application/json, application/x-www-form-urlencoded"}, "a=1", true, "", true},
		{"two headers", "POST", []string{"application/json", mp}, "{}", false, mp, true},
		{"JSON is never read", "POST", []string{"application/json"}, `{"_method":"DELETE"}`, false, "", false},
		{"text/plain is never read", "POST", []string{"text/plain"}, "_method=DELETE", false, "", false},
		{"not a POST", "PUT", []string{"application/x-www-form-urlencoded"}, "a=1", false, "", false},
		{"no body", "POST", []string{"application/x-www-form-urlencoded"}, "", false, "", false},
	} {
		r := httptest.NewRequest(tc.method, "/app/items", strings.NewReader(tc.body))
		for _, ct := range tc.cts {
			r.Header.Add("Content-Type", ct)
		}
		urlencoded, multipart, read := server.FormBody(r)
		assert.Equal(t, tc.read, read, tc.name)
		assert.Equal(t, tc.urlencoded, urlencoded, tc.name)
		assert.Equal(t, tc.multipart, multipart, tc.name)
	}
}
