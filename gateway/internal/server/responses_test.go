package server_test

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/bulwarkgw/bulwark/gateway/internal/server"
)

// What a page asset's answer may be, and what shows it was none.
func TestAssetContentType(t *testing.T) {
	for _, ct := range []string{"", "image/png", "IMAGE/WEBP", "image/svg+xml", "font/woff2", "audio/mpeg", "video/mp4",
		"text/css; charset=utf-8", "text/javascript", "application/javascript; charset=UTF-8", "application/x-javascript",
		"application/wasm", "application/octet-stream", "text/vtt", "application/vnd.ms-fontobject", "application/font-woff"} {
		assert.True(t, server.AssetContentType(ct, "/static/x.png"), ct)
	}
	for _, ct := range []string{"application/json", "application/json; charset=utf-8", "text/html; charset=utf-8",
		"text/plain", "application/xml", "text/xml", "application/problem+json", "application/x-www-form-urlencoded"} {
		assert.False(t, server.AssetContentType(ct, "/api/products/7.png"), ct)
	}
	assert.True(t, server.AssetContentType("application/json", "/static/app.js.map"), "a source map is JSON")
}
