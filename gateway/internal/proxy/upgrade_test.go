package proxy_test

import (
	"bufio"
	"crypto/sha1"
	"encoding/base64"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulwarkgw/bulwark/gateway/internal/proxy"
)

const wsKey = "dGhlIHNhbXBsZSBub25jZQ==" // RFC 6455's sample: 16 bytes

// wsAccept is RFC 6455 §4.2.2's answer to wsKey.
func wsAccept(key string) string {
	h := sha1.Sum([]byte(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	return base64.StdEncoding.EncodeToString(h[:])
}

func handshake() *http.Request {
	r := httptest.NewRequest(http.MethodGet, "/ws", nil)
	r.Header.Set("Connection", "Upgrade")
	r.Header.Set("Upgrade", "websocket")
	r.Header.Set("Sec-WebSocket-Key", wsKey)
	r.Header.Set("Sec-WebSocket-Version", "13")
	return r
}

func TestWebSocketUpgrade(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		change func(r *http.Request)
		want   bool
	}{
		{"a browser's handshake", func(*http.Request) {}, true},
		{"cases and lists as RFC 6455 allows", func(r *http.Request) {
			r.Header.Set("Connection", "keep-alive, UPGRADE")
			r.Header.Set("Upgrade", "WebSocket")
		}, true},
		{"Connection: upgrade on a second line", func(r *http.Request) {
			r.Header.Set("Connection", "keep-alive")
			r.Header.Add("Connection", "upgrade")
		}, true},
		{"subprotocols and extensions pass", func(r *http.Request) {
			r.Header.Set("Sec-WebSocket-Protocol", "chat")
			r.Header.Set("Sec-WebSocket-Extensions", "permessage-deflate")
		}, true},
		{"no Upgrade", func(r *http.Request) { r.Header.Del("Upgrade") }, false},
		{"h2c", func(r *http.Request) { r.Header.Set("Upgrade", "h2c") }, false},
		{"a list of protocols", func(r *http.Request) { r.Header.Set("Upgrade", "websocket, h2c") }, false},
		{"two Upgrade lines", func(r *http.Request) { r.Header.Add("Upgrade", "h2c") }, false},
		{"Connection does not say upgrade", func(r *http.Request) { r.Header.Set("Connection", "keep-alive") }, false},
		{"no Connection", func(r *http.Request) { r.Header.Del("Connection") }, false},
		{"POST", func(r *http.Request) { r.Method = http.MethodPost }, false},
		{"HTTP/1.0", func(r *http.Request) { r.Proto, r.ProtoMajor, r.ProtoMinor = "HTTP/1.0", 1, 0 }, false},
		{"a body by length", func(r *http.Request) { r.ContentLength = 5 }, false},
		{"a chunked body", func(r *http.Request) { r.TransferEncoding = []string{"chunked"} }, false},
		{"no key", func(r *http.Request) { r.Header.Del("Sec-WebSocket-Key") }, false},
		{"two keys", func(r *http.Request) { r.Header.Add("Sec-WebSocket-Key", wsKey) }, false},
		{"a key that is not base64", func(r *http.Request) { r.Header.Set("Sec-WebSocket-Key", "not base64 at all!!!!!!!") }, false},
		{"a key of 15 bytes", func(r *http.Request) {
			r.Header.Set("Sec-WebSocket-Key", base64.StdEncoding.EncodeToString(make([]byte, 15)))
		}, false},
		{"no version", func(r *http.Request) { r.Header.Del("Sec-WebSocket-Version") }, false},
		{"version 8", func(r *http.Request) { r.Header.Set("Sec-WebSocket-Version", "8") }, false},
	}
	for _, tc := range tests {
		r := handshake()
		tc.change(r)
		assert.Equal(t, tc.want, proxy.WebSocketUpgrade(r), tc.name)
	}
}

// upgradeUpstream records the headers it gets and answers with answer:
// "" for a plain 200, else raw bytes written on the hijacked connection
// ({{accept}} is replaced with the handshake's Sec-WebSocket-Accept).
func upgradeUpstream(t *testing.T, answer string, got chan<- http.Header) *url.URL {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.Header.Clone()
		if answer == "" {
			_, _ = io.WriteString(w, "plain")
			return
		}
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		_, _ = brw.WriteString(strings.ReplaceAll(answer, "{{accept}}", wsAccept(r.Header.Get("Sec-WebSocket-Key"))))
		_ = brw.Flush()
		_, _ = io.Copy(conn, brw) // echo until the other side closes
	}))
	t.Cleanup(srv.Close)
	u, err := url.Parse(srv.URL)
	require.NoError(t, err)
	return u
}

// gateway serves the proxy to one upstream; allow says whether it marks
// WebSocket handshakes with AllowUpgrade, as the gateway's chain does.
func gateway(t *testing.T, u *url.URL, allow bool) string {
	p, err := proxy.New([]proxy.Route{{Path: "/", Upstream: u}},
		func(*http.Request) proxy.Origin { return proxy.Origin{Client: "203.0.113.9", Chain: "203.0.113.9"} }, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	gw := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if allow && proxy.WebSocketUpgrade(r) {
			r = r.WithContext(proxy.AllowUpgrade(r.Context()))
		}
		p.ServeHTTP(w, r)
	}))
	t.Cleanup(gw.Close)
	return gw.Listener.Addr().String()
}

// exchange sends head on a new connection and reads the answer's head.
func exchange(t *testing.T, addr, head string) (*http.Response, *bufio.Reader, net.Conn) {
	c, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	require.NoError(t, c.SetDeadline(time.Now().Add(5*time.Second)))
	_, err = io.WriteString(c, head)
	require.NoError(t, err)
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	require.NoError(t, err)
	return resp, br, c
}

const (
	h2cRequest = "GET /x HTTP/1.1\r\nHost: gw\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n"
	wsRequest  = "GET /ws HTTP/1.1\r\nHost: gw\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: " + wsKey + "\r\nSec-WebSocket-Version: 13\r\n\r\n"
)

// h2c, and HTTP2-Settings however it is sent, never reach the upstream:
// the request arrives as a plain one.
func TestUpgradesOtherThanCheckedWebSocketsAreDropped(t *testing.T) {
	t.Parallel()
	got := make(chan http.Header, 8)
	addr := gateway(t, upgradeUpstream(t, "", got), true)
	for name, head := range map[string]string{
		"h2c":                              h2cRequest,
		"HTTP2-Settings not in Connection": "GET /x HTTP/1.1\r\nHost: gw\r\nConnection: Upgrade\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n",
		"HTTP2-Settings alone":             "GET /x HTTP/1.1\r\nHost: gw\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n",
		"websocket offered with h2c":       strings.Replace(wsRequest, "Upgrade: websocket", "Upgrade: websocket, h2c", 1),
		"a WebSocket handshake on a POST":  strings.Replace(wsRequest, "GET", "POST", 1),
		"TLS/1.0":                          "GET /x HTTP/1.1\r\nHost: gw\r\nConnection: Upgrade\r\nUpgrade: TLS/1.0\r\n\r\n",
	} {
		resp, _, _ := exchange(t, addr, head)
		assert.Equal(t, http.StatusOK, resp.StatusCode, name)
		h := <-got
		for _, k := range []string{"Upgrade", "Connection", "Http2-Settings"} {
			assert.Empty(t, h.Values(k), "%s: %s reached the upstream", name, k)
		}
	}
}

// A WebSocket handshake the caller allowed is forwarded as it came, and
// the upstream's 101 relayed; without AllowUpgrade it is a plain request.
func TestCheckedWebSocketHandshakeIsForwarded(t *testing.T) {
	t.Parallel()
	got := make(chan http.Header, 2)
	u := upgradeUpstream(t, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Accept: {{accept}}\r\n\r\n", got)
	resp, br, c := exchange(t, gateway(t, u, true), wsRequest)
	require.Equal(t, http.StatusSwitchingProtocols, resp.StatusCode)
	assert.Equal(t, wsAccept(wsKey), resp.Header.Get("Sec-WebSocket-Accept"))
	h := <-got
	assert.Equal(t, "websocket", h.Get("Upgrade"))
	assert.Equal(t, wsKey, h.Get("Sec-WebSocket-Key"))
	// The tunnel carries bytes both ways (the upstream echoes).
	_, err := io.WriteString(c, "ping")
	require.NoError(t, err)
	b := make([]byte, 4)
	_, err = io.ReadFull(br, b)
	require.NoError(t, err)
	assert.Equal(t, "ping", string(b))

	p := upgradeUpstream(t, "", got)
	resp, _, _ = exchange(t, gateway(t, p, false), wsRequest)
	assert.Equal(t, http.StatusOK, resp.StatusCode, "not allowed: forwarded plain")
	assert.Empty(t, (<-got).Values("Upgrade"))
}

// An upstream that switches protocols for anything but the WebSocket
// handshake it was sent (h2c, a bare 101, a wrong Sec-WebSocket-Accept)
// gets no tunnel: the client gets 502 JSON.
func TestUnaskedSwitchIsA502(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, answer, request string }{
		{"h2c to an h2c request", "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n", h2cRequest},
		{"a bare 101 to a plain request", "HTTP/1.1 101 Switching Protocols\r\n\r\n", "GET /x HTTP/1.1\r\nHost: gw\r\n\r\n"},
		{"h2c to a WebSocket handshake", "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n", wsRequest},
		{"a wrong Sec-WebSocket-Accept", "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Accept: " + wsAccept("x") + "\r\n\r\n", wsRequest},
		{"no Sec-WebSocket-Accept", "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n", wsRequest},
	}
	for _, tc := range tests {
		got := make(chan http.Header, 1)
		resp, br, _ := exchange(t, gateway(t, upgradeUpstream(t, tc.answer, got), true), tc.request)
		assert.Equal(t, http.StatusBadGateway, resp.StatusCode, tc.name)
		assert.Equal(t, "application/json", resp.Header.Get("Content-Type"), tc.name)
		b, _ := io.ReadAll(io.LimitReader(br, resp.ContentLength))
		assert.JSONEq(t, `{"error":"Bad Gateway"}`, string(b), tc.name)
	}
}
