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

// TestAPIClientEndpoints: what the simulator's API clients call.
func TestAPIClientEndpoints(t *testing.T) {
	h := newShop().routes()
	do := func(method, path, body string) (int, string, string) {
		r := httptest.NewRequest(method, path, strings.NewReader(body))
		if body != "" {
			r.Header.Set("Content-Type", "application/json")
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w.Code, strings.TrimSpace(w.Body.String()), w.Header().Get("Content-Type")
	}
	code, body, _ := do("POST", "/api/orders", `{"product_id":2,"quantity":3}`)
	assert.Equal(t, 201, code)
	assert.Contains(t, body, `"order_id":1`)
	assert.Contains(t, body, `"status":"created"`)
	code, _, _ = do("POST", "/api/orders", `{"product_id":9,"quantity":1}`)
	assert.Equal(t, 400, code)

	code, body, _ = do("GET", "/api/orders/7", "")
	assert.Equal(t, 403, code)
	assert.JSONEq(t, `{"error":"not your order"}`, body)
	code, body, _ = do("GET", "/api/orders/50", "")
	assert.Equal(t, 200, code, "every 50th order is the caller's")
	assert.Contains(t, body, `"order_id":50`)
	code, _, _ = do("GET", "/api/orders/x", "")
	assert.Equal(t, 404, code)

	code, body, _ = do("POST", "/webhooks/stripe", `{"id":"evt_1","type":"payment_intent.succeeded"}`)
	assert.Equal(t, 200, code)
	assert.JSONEq(t, `{"received":true,"provider":"stripe"}`, body)

	code, body, _ = do("GET", "/api/status", "")
	assert.Equal(t, 200, code)
	assert.Contains(t, body, `"status":"ok"`)

	// The page list still answers with a page parameter.
	code, body, _ = do("GET", "/api/products?page=7", "")
	assert.Equal(t, 200, code)
	assert.Contains(t, body, `"Trail runner"`)

	failed := 0
	for range 1000 {
		code, body, _ = do("GET", "/api/flaky", "")
		switch code {
		case 503:
			failed++
			assert.Contains(t, body, flakyMarker)
		default:
			assert.Equal(t, 200, code)
		}
	}
	assert.InDelta(t, 300, failed, 50, "about 30 %% fail")
	// Deterministic: the same calls fail on every new shop.
	var runs [2][]int
	for k := range runs {
		h = newShop().routes()
		for range 20 {
			code, _, _ = do("GET", "/api/flaky", "")
			runs[k] = append(runs[k], code)
		}
	}
	assert.Equal(t, runs[0], runs[1])
	assert.Contains(t, runs[0], 503)
	h = newShop().routes()

	code, body, _ = do("POST", "/graphql", `{"operationName":"Product","query":"query Product($id: ID!) { product(id: $id) { id name } }","variables":{"id":"3"}}`)
	assert.Equal(t, 200, code)
	assert.Contains(t, body, `"data":{"product":{"id":3,"name":"Limited drop"`)
	code, body, _ = do("POST", "/graphql", `{"operationName":"Products","query":"query Products { products { id } }"}`)
	assert.Equal(t, 200, code)
	assert.Contains(t, body, `"data":{"products":[`)
	code, body, _ = do("POST", "/graphql", `{"operationName":"AddToCart","query":"mutation AddToCart { addToCart { id } }"}`)
	assert.Equal(t, 200, code)
	assert.JSONEq(t, `{"data":{"addToCart":{"id":"cart-1"}}}`, body)
	code, body, _ = do("POST", "/graphql", `{}`)
	assert.Equal(t, 400, code)
	assert.Contains(t, body, `"errors"`)

	// Thumbnails without an extension: pictures by Content-Type.
	code, body, ctype := do("GET", "/image/60844/productModel/200x200", "")
	assert.Equal(t, 200, code)
	assert.Equal(t, "image/jpeg", ctype)
	assert.True(t, strings.HasPrefix(body, "\xff\xd8\xff"))

	// The HTML catalogue: the API's products and the archive, as HTML.
	code, body, ctype = do("GET", "/products/734", "")
	assert.Equal(t, 200, code)
	assert.Contains(t, ctype, "text/html")
	assert.Contains(t, body, "Archive model 734")
	code, _, _ = do("GET", "/products/1001", "")
	assert.Equal(t, 404, code)
	code, _, _ = do("GET", "/api/products/734", "")
	assert.Equal(t, 404, code, "the API has only its 8 products")
}
