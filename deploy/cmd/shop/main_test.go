package main

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestShop(t *testing.T) {
	h := newShop().routes()
	do := func(method, path, ctype, body string) (int, string) {
		r := httptest.NewRequest(method, path, strings.NewReader(body))
		if ctype != "" {
			r.Header.Set("Content-Type", ctype)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w.Code, strings.TrimSpace(w.Body.String())
	}
	code, body := do("POST", "/auth", "application/json", `{"username":"alice","password":"wonderland"}`)
	assert.Equal(t, 200, code)
	assert.JSONEq(t, `{"success":true,"role":"user"}`, body)
	code, body = do("POST", "/auth", "application/x-www-form-urlencoded", `username=admin&password=admin-pass`)
	assert.Equal(t, 200, code)
	assert.JSONEq(t, `{"success":true,"role":"admin"}`, body)
	code, body = do("POST", "/auth", "application/json", `{"username":"alice","password":"nope"}`)
	assert.Equal(t, 401, code)
	assert.JSONEq(t, `{"success":false}`, body)
	code, _ = do("POST", "/auth", "application/json", `not json`)
	assert.Equal(t, 401, code)

	code, body = do("GET", "/api/products", "", "")
	assert.Equal(t, 200, code)
	assert.Contains(t, body, `"Trail runner"`)
	code, body = do("GET", "/api/products/2", "", "")
	assert.Equal(t, 200, code)
	assert.Contains(t, body, `"id":2`)
	code, _ = do("GET", "/api/products/99", "", "")
	assert.Equal(t, 404, code)

	code, body = do("POST", "/api/checkout", "application/json", `{"product_id":3,"quantity":2}`)
	assert.Equal(t, 200, code)
	assert.Contains(t, body, `"status":"confirmed"`)
	code, _ = do("POST", "/api/checkout", "application/json", `{"product_id":0}`)
	assert.Equal(t, 400, code)
	code, _ = do("GET", "/healthz", "", "")
	assert.Equal(t, http.StatusOK, code)

	code, body = do("POST", "/auth", "application/json", `{"username":"customer042","password":"pw-042"}`)
	assert.Equal(t, 200, code)
	assert.JSONEq(t, `{"success":true,"role":"user"}`, body)

	code, body = do("GET", "/assets/img/3.jpg", "", "")
	assert.Equal(t, 200, code)
	assert.Contains(t, body, "img/3.jpg")

	// What the simulator's browsers and crawlers load.
	code, body = do("GET", "/products/3", "", "")
	assert.Equal(t, 200, code)
	assert.Contains(t, body, "<title>Limited drop</title>")
	code, _ = do("GET", "/products/0", "", "")
	assert.Equal(t, 404, code)
	code, body = do("GET", "/collections/sale", "", "")
	assert.Equal(t, 200, code)
	assert.Contains(t, body, "Collection sale")
	code, _ = do("GET", "/favicon.ico", "", "")
	assert.Equal(t, 200, code)
	code, body = do("GET", "/robots.txt", "", "")
	assert.Equal(t, 200, code)
	assert.Contains(t, body, "User-agent: *")
	// Like the real shop: no home-screen icons, and nothing for scanners.
	for _, p := range []string{"/apple-touch-icon.png", "/apple-touch-icon-precomposed.png", "/wp-login.php", "/.env", "/.git/config"} {
		code, _ = do("GET", p, "", "")
		assert.Equal(t, 404, code, p)
	}
}
