package main

// Protocol upgrades through the real gateway, over raw sockets (issue 19,
// item 1): h2c smuggling. SECURITY.md, "Upgrades and tunnels"; policy in
// gateway/internal/proxy/upgrade.go.

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/h2c"
	"golang.org/x/net/http2/hpack"
)

// h2cUpstream is an upstream that serves h2c upgrades (x/net's h2c
// handler). It records every HTTP/1.1 request as it arrived on the wire
// (arrived) and every request its handler served, HTTP/1.1 or, after an
// upgrade, HTTP/2 (served). It is lenient the way many h2c servers are:
// it upgrades a request that says Upgrade: h2c and carries HTTP2-Settings
// even when Connection does not list HTTP2-Settings (RFC 7540 §3.2.1 asks
// for it; x/net checks).
type h2cUpstream struct {
	srv             *httptest.Server
	mu              sync.Mutex
	arrived, served []h2cSeen
}

type h2cSeen struct {
	Proto, Path string
	Header      http.Header
}

func newH2CUpstream(t *testing.T) *h2cUpstream {
	u := &h2cUpstream{}
	serve := h2c.NewHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.record(&u.served, r)
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"path":"`+r.URL.Path+`","proto":"`+r.Proto+`"}`)
	}), &http2.Server{})
	u.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.record(&u.arrived, r)
		if r.Header.Get("Http2-Settings") != "" && strings.EqualFold(r.Header.Get("Upgrade"), "h2c") {
			r.Header.Add("Connection", "HTTP2-Settings") // lenient: see the type's comment
		}
		serve.ServeHTTP(w, r)
	}))
	t.Cleanup(u.srv.Close)
	return u
}

func (u *h2cUpstream) record(to *[]h2cSeen, r *http.Request) {
	u.mu.Lock()
	defer u.mu.Unlock()
	*to = append(*to, h2cSeen{r.Proto, r.URL.Path, r.Header.Clone()})
}

// seen returns what arrived and what was served.
func (u *h2cUpstream) seen() (arrived, served []h2cSeen) {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]h2cSeen(nil), u.arrived...), append([]h2cSeen(nil), u.served...)
}

// rogueUpstream answers every request with a 101 of its own choosing,
// asked for or not.
func rogueUpstream(t *testing.T) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		if r.Header.Get("Upgrade") == "" {
			_, _ = brw.WriteString("HTTP/1.1 101 Switching Protocols\r\n\r\n")
		} else {
			_, _ = brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n")
		}
		_ = brw.Flush()
		_, _ = io.Copy(io.Discard, conn)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// upgradeConfig routes /api/ to an h2c upstream, /rogue/ to an upstream
// that switches protocols unasked and /ws/ to U1 (a WebSocket echo where a
// test makes it one); /admin/ is nobody's route, so the gateway answers it
// 404 and never forwards it.
const upgradeConfig = `
routes:
  - {path: /api/, upstream: "{{H2C}}"}
  - {path: /rogue/, upstream: "{{ROGUE}}"}
  - {path: /ws/, upstream: "{{U1}}"}
scorer: {enabled: false}
`

// The h2c request as an attacker writes it: Upgrade: h2c with its
// settings, and Connection naming only Upgrade, so that a proxy that
// strips what Connection lists keeps HTTP2-Settings.
const (
	h2cSettings     = "AAMAAABkAARAAAAAAAIAAAAA"
	h2cSmuggle      = "GET /api/x HTTP/1.1\r\nHost: gw\r\nConnection: Upgrade\r\nUpgrade: h2c\r\nHTTP2-Settings: " + h2cSettings + "\r\n\r\n"
	h2cByTheBook    = "GET /api/x HTTP/1.1\r\nHost: gw\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: " + h2cSettings + "\r\n\r\n"
	h2cSettingsOnly = "GET /api/x HTTP/1.1\r\nHost: gw\r\nHTTP2-Settings: " + h2cSettings + "\r\n\r\n"
)

// sendHTTP2 speaks HTTP/2 on c as a client after an h2c upgrade would
// have switched it: the preface, SETTINGS, and a GET of path on stream 3.
// It reports whether a response to that GET came back (reading until the
// connection fails or closes, or 3 s pass).
func sendHTTP2(t *testing.T, c net.Conn, br *bufio.Reader, path string) bool {
	t.Helper()
	require.NoError(t, c.SetDeadline(time.Now().Add(3*time.Second)))
	if _, err := io.WriteString(c, http2.ClientPreface); err != nil {
		return false
	}
	fr := http2.NewFramer(c, br)
	if fr.WriteSettings() != nil {
		return false
	}
	var hb bytes.Buffer
	enc := hpack.NewEncoder(&hb)
	for _, f := range [][2]string{{":method", "GET"}, {":scheme", "http"}, {":authority", "gw"}, {":path", path}} {
		require.NoError(t, enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]}))
	}
	if fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 3, BlockFragment: hb.Bytes(), EndStream: true, EndHeaders: true}) != nil {
		return false
	}
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			return false // the gateway refused or closed: no HTTP/2 here
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				_ = fr.WriteSettingsAck()
			}
		case *http2.HeadersFrame:
			if f.StreamID == 3 {
				return true
			}
		}
	}
}

// (a) the upstream never sees Upgrade: h2c nor HTTP2-Settings, (b) the
// client never gets a 101 for h2c, (c) a path the gateway refuses (no
// route: 404) cannot be reached by an HTTP/2 stream through a tunnel.
func TestH2CUpgradeIsNeverForwarded(t *testing.T) {
	t.Parallel()
	up := newH2CUpstream(t)
	rogue := rogueUpstream(t)
	s := startStack(t, strings.NewReplacer("{{H2C}}", up.srv.URL, "{{ROGUE}}", rogue.URL).Replace(upgradeConfig))

	// The gateway itself refuses /admin/secret: no route.
	r := s.from("127.0.9.1").get("/admin/secret")
	require.Equal(t, http.StatusNotFound, r.Code)

	for name, head := range map[string]string{"smuggling": h2cSmuggle, "by the book": h2cByTheBook, "settings only": h2cSettingsOnly} {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.9.1")}, Timeout: 5 * time.Second}
		c, err := d.Dial("tcp", s.gw)
		require.NoError(t, err)
		require.NoError(t, c.SetDeadline(time.Now().Add(5*time.Second)))
		_, err = io.WriteString(c, head)
		require.NoError(t, err)
		br := bufio.NewReader(c)
		resp, err := http.ReadResponse(br, nil)
		require.NoError(t, err, name)
		assert.NotEqual(t, http.StatusSwitchingProtocols, resp.StatusCode, "%s: (b) no 101 for h2c", name)
		if resp.StatusCode != http.StatusSwitchingProtocols {
			assert.Equal(t, http.StatusOK, resp.StatusCode, "%s: served as the plain request it is", name)
			body, _ := io.ReadAll(resp.Body)
			assert.Contains(t, string(body), `"proto":"HTTP/1.1"`, name)
		}
		// Whatever the answer, try HTTP/2 on the connection: through a
		// tunnel it would reach the upstream; on an HTTP/1.1 connection
		// the gateway refuses the preface (400) and closes.
		assert.False(t, sendHTTP2(t, c, br, "/admin/secret"), "%s: (c) an HTTP/2 stream was answered through the gateway", name)
		c.Close()
	}
	arrived, served := up.seen()
	for _, seen := range arrived {
		assert.Equal(t, "HTTP/1.1", seen.Proto)
		for _, k := range []string{"Upgrade", "Http2-Settings"} {
			assert.Empty(t, seen.Header.Values(k), "(a) %s reached the upstream for %s", k, seen.Path)
		}
		assert.False(t, strings.Contains(strings.ToLower(strings.Join(seen.Header.Values("Connection"), ",")), "upgrade"),
			"(a) Connection: upgrade reached the upstream")
	}
	for _, seen := range served {
		assert.Equal(t, "HTTP/1.1", seen.Proto, "(c) the upstream served HTTP/2 for %s", seen.Path)
		assert.NotEqual(t, "/admin/secret", seen.Path, "(c) the refused path reached the upstream")
	}
	assert.Len(t, served, 3, "the three plain requests were served")
}

// An upstream that switches protocols anyway (to h2c, or with a bare 101
// to a plain request) gets no tunnel: the client gets 502 JSON.
func TestUnaskedSwitchingProtocolsIsNotRelayed(t *testing.T) {
	t.Parallel()
	up := newH2CUpstream(t)
	rogue := rogueUpstream(t)
	s := startStack(t, strings.NewReplacer("{{H2C}}", up.srv.URL, "{{ROGUE}}", rogue.URL).Replace(upgradeConfig))
	// The h2c request is followed by a plain one on the same connection:
	// after the refused switch it is still an HTTP/1.1 connection.
	closeAfter := "GET /api/after HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n"
	for name, tc := range map[string]struct {
		head  string
		codes []int
	}{
		"h2c":   {strings.Replace(h2cSmuggle, "/api/x", "/rogue/x", 1) + closeAfter, []int{http.StatusBadGateway, http.StatusOK}},
		"plain": {"GET /rogue/x HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n", []int{http.StatusBadGateway}},
	} {
		answers, closed := s.rawExchange("127.0.9.2", tc.head)
		require.Len(t, answers, len(tc.codes), name)
		for i, code := range tc.codes {
			assert.Equal(t, code, answers[i].Code, "%s: answer %d", name, i+1)
		}
		assert.Equal(t, "application/json", answers[0].ContentType, name)
		assert.JSONEq(t, `{"error":"Bad Gateway"}`, stripRequestID(t, answers[0].Body), name)
		assert.True(t, closed, name)
	}
	_, served := up.seen()
	assert.Equal(t, []string{"/api/after"}, paths(served))
}

func paths(seen []h2cSeen) []string {
	var out []string
	for _, s := range seen {
		out = append(out, s.Path)
	}
	return out
}

// HTTP/2 with prior knowledge on the plain port keeps its clean 400: the
// preface is no HTTP/1.1 request line.
func TestHTTP2PriorKnowledgeIsRefused(t *testing.T) {
	t.Parallel()
	up := newH2CUpstream(t)
	s := startStack(t, strings.NewReplacer("{{H2C}}", up.srv.URL, "{{ROGUE}}", "http://127.0.0.1:1").Replace(upgradeConfig))
	answers, closed := s.rawExchange("127.0.9.3", http2.ClientPreface)
	require.Len(t, answers, 1)
	assert.Equal(t, http.StatusBadRequest, answers[0].Code)
	assert.Equal(t, "application/json", answers[0].ContentType)
	assert.Contains(t, answers[0].Body, `{"error":"Bad request framing: `)
	assert.True(t, closed)
	arrived, _ := up.seen()
	assert.Empty(t, arrived)
}

// wsEcho makes u a WebSocket echo server on every path.
func wsEcho(u *upstream) {
	up := websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}
	u.handle(func(w http.ResponseWriter, r *http.Request, _ []byte) bool {
		if !websocket.IsWebSocketUpgrade(r) {
			return false
		}
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return true
		}
		defer c.Close()
		for {
			typ, msg, err := c.ReadMessage()
			if err != nil {
				return true
			}
			if c.WriteMessage(typ, msg) != nil {
				return true
			}
		}
	})
}

// dialWS opens a WebSocket through the gateway from ip; hdr is a list of
// header name, value pairs. It returns the connection (nil when refused)
// and the handshake's answer.
func (s *stack) dialWS(ip, path string, hdr ...string) (*websocket.Conn, *http.Response, error) {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	wd := websocket.Dialer{NetDialContext: d.DialContext, HandshakeTimeout: 5 * time.Second}
	h := http.Header{}
	for i := 0; i+1 < len(hdr); i += 2 {
		h.Set(hdr[i], hdr[i+1])
	}
	c, resp, err := wd.Dial("ws://"+s.gw+path, h)
	if c != nil {
		s.t.Cleanup(func() { c.Close() })
	}
	return c, resp, err
}

// wsRoundTrip sends msg on c and reads it back.
func wsRoundTrip(t *testing.T, c *websocket.Conn, msg string) {
	t.Helper()
	require.NoError(t, c.SetReadDeadline(time.Now().Add(5*time.Second)))
	require.NoError(t, c.WriteMessage(websocket.TextMessage, []byte(msg)))
	_, got, err := c.ReadMessage()
	require.NoError(t, err)
	require.Equal(t, msg, string(got))
	require.NoError(t, c.SetReadDeadline(time.Time{}))
}

// A browser's WebSocket, the one upgrade the gateway forwards, works
// through it; the upstream sees the handshake.
func TestWebSocketThroughTheGateway(t *testing.T) {
	t.Parallel()
	up := newH2CUpstream(t)
	s := startStack(t, strings.NewReplacer("{{H2C}}", up.srv.URL, "{{ROGUE}}", "http://127.0.0.1:1").Replace(upgradeConfig))
	wsEcho(s.u1)
	c, resp, err := s.dialWS("127.0.9.4", "/ws/chat")
	require.NoError(t, err)
	assert.Equal(t, http.StatusSwitchingProtocols, resp.StatusCode)
	wsRoundTrip(t, c, "hello")
	wsRoundTrip(t, c, strings.Repeat("x", 100_000))
	got := s.u1.requests()
	require.Len(t, got, 1)
	assert.Equal(t, "websocket", got[0].Header.Get("Upgrade"))
	assert.Equal(t, "13", got[0].Header.Get("Sec-Websocket-Version"))
}
