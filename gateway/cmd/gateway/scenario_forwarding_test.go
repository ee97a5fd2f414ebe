package main

// What the upstream is told about where a request came from (issue 12,
// item 5): the trusted chain appended to, every client-address header
// rebuilt by the gateway, TE: trailers kept, no empty X-Forwarded-Host.

import (
	"bufio"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// clientAddressHeaders are the headers some proxy or CDN names the client
// in; a client can send any of them.
var clientAddressHeaders = []string{
	"True-Client-IP", "CF-Connecting-IP", "X-Client-IP", "Forwarded", "X-Cluster-Client-IP",
	"Fastly-Client-IP", "X-Original-Forwarded-For", "X-Originating-IP", "X-Remote-IP", "X-Remote-Addr",
	"X-Forwarded", "Forwarded-For", "X-ProxyUser-IP", "X-Envoy-External-Address", "X-Azure-ClientIP",
}

func (u *upstream) last(t *testing.T) recorded {
	t.Helper()
	got := u.requests()
	require.NotEmpty(t, got)
	return got[len(got)-1]
}

func TestForwardedForChainFromATrustedProxy(t *testing.T) {
	t.Parallel()
	s := startStack(t, proxyConfig)
	proxy := s.from("127.0.0.2") // trusted_proxies: [127.0.0.2/32]

	require.Equal(t, http.StatusOK, proxy.get("/api/a", "X-Forwarded-For", "9.9.9.9").Code)
	got := s.u1.last(t)
	assert.Equal(t, "9.9.9.9, 127.0.0.2", got.XFF, "the proxy that handed the request over is appended, as nginx does")
	assert.Equal(t, "9.9.9.9", got.Header.Get("X-Real-IP"))

	// A chain through two proxies: both stay, the peer is appended.
	require.Equal(t, http.StatusOK, proxy.get("/api/b", "X-Forwarded-For", "9.9.9.8, 127.0.0.2").Code)
	assert.Equal(t, "9.9.9.8, 127.0.0.2, 127.0.0.2", s.u1.last(t).XFF)

	// What the client wrote left of itself is its own claim, checked by
	// nobody: it is not passed on, so an application that reads the
	// left-most entry finds the client the gateway counted.
	require.Equal(t, http.StatusOK, proxy.get("/api/c", "X-Forwarded-For", "6.6.6.6, 9.9.9.7").Code)
	got = s.u1.last(t)
	assert.Equal(t, "9.9.9.7, 127.0.0.2", got.XFF)
	assert.Equal(t, "9.9.9.7", got.Header.Get("X-Real-IP"))

	// A TLS-terminating proxy's scheme is believed; a client's is not.
	require.Equal(t, http.StatusOK, proxy.get("/api/d", "X-Forwarded-For", "9.9.9.9", "X-Forwarded-Proto", "https").Code)
	assert.Equal(t, "https", s.u1.last(t).Header.Get("X-Forwarded-Proto"))

	// From an untrusted peer the chain is the peer alone: a spoofer
	// cannot inject an address.
	c := s.from("127.0.0.87")
	require.Equal(t, http.StatusOK, c.get("/api/e", "X-Forwarded-For", "9.9.9.9", "X-Forwarded-Proto", "https").Code)
	got = s.u1.last(t)
	assert.Equal(t, "127.0.0.87", got.XFF)
	assert.Equal(t, "127.0.0.87", got.Header.Get("X-Real-IP"))
	assert.Equal(t, "http", got.Header.Get("X-Forwarded-Proto"))
}

func TestClientAddressHeadersAreRebuilt(t *testing.T) {
	t.Parallel()
	s := startStack(t, proxyConfig)
	spoof := func(extra ...string) []string {
		var hdr []string
		for _, h := range clientAddressHeaders {
			hdr = append(hdr, h, "6.6.6.6")
		}
		return append(hdr, extra...)
	}
	for _, tc := range []struct {
		name, from, client, chain string
		extra                     []string
	}{
		{"untrusted peer", "127.0.0.88", "127.0.0.88", "127.0.0.88", []string{"X-Real-IP", "6.6.6.6", "X-Forwarded-For", "6.6.6.6"}},
		// A trusted proxy may pass a client's header through untouched
		// (nginx does, for every header it does not set): the gateway
		// cannot tell, so it rebuilds from its own decision there too.
		{"trusted proxy", "127.0.0.2", "9.9.9.9", "9.9.9.9, 127.0.0.2", []string{"X-Forwarded-For", "9.9.9.9"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := s.from(tc.from)
			require.Equal(t, http.StatusOK, c.get("/api/"+tc.from, spoof(tc.extra...)...).Code)
			got := s.u1.last(t)
			require.Equal(t, "/api/"+tc.from, got.URI)
			for _, h := range clientAddressHeaders {
				assert.Empty(t, got.Header.Values(h), h)
			}
			assert.Equal(t, []string{tc.client}, got.Header.Values("X-Real-IP"))
			assert.Equal(t, []string{tc.chain}, got.Header.Values("X-Forwarded-For"))
		})
	}

	// CGI-style servers read X_Real_IP as X-Real-IP.
	req, err := http.NewRequest("GET", "http://"+s.gw+"/api/underscore", nil)
	require.NoError(t, err)
	req.Header["X_Real_IP"] = []string{"6.6.6.6"}
	req.Header["True_Client_IP"] = []string{"6.6.6.6"}
	resp, err := s.from("127.0.0.89").hc.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	got := s.u1.last(t)
	for k, v := range got.Header {
		assert.NotContains(t, v, "6.6.6.6", k)
	}
	assert.Equal(t, "127.0.0.89", got.Header.Get("X-Real-IP"))
}

// The login endpoint builds its own request to the auth upstream: the
// same headers, rebuilt the same way.
func TestLoginForwardingHeadersAreRebuilt(t *testing.T) {
	t.Parallel()
	s := startStack(t, keysConfig)
	loginAs(s.u1, "alice", "pw", "user")
	var hdr []string
	for _, h := range clientAddressHeaders {
		hdr = append(hdr, h, "6.6.6.6")
	}
	hdr = append(hdr, "X-Forwarded-For", "9.9.9.9")
	r := s.from("127.0.0.2").postJSON("/auth", `{"username":"alice","password":"pw"}`, hdr...)
	require.Equal(t, http.StatusOK, r.Code, r.Body)
	got := s.u1.last(t)
	require.Equal(t, "/auth", got.URI)
	for _, h := range clientAddressHeaders {
		assert.Empty(t, got.Header.Values(h), h)
	}
	assert.Equal(t, "9.9.9.9, 127.0.0.2", got.XFF)
	assert.Equal(t, "9.9.9.9", got.Header.Get("X-Real-IP"))
}

// TE is hop-by-hop: only its "trailers" token is passed on, which says
// the client accepts trailers (gRPC requires it; the gateway relays
// trailers). Transfer codings the gateway would have to apply are not.
func TestTEOnlyTrailersPassesThrough(t *testing.T) {
	t.Parallel()
	s := startStack(t, proxyConfig)
	c := s.from("127.0.0.90")
	for _, tc := range []struct{ sent, want string }{
		{"trailers", "trailers"},
		{"gzip;q=0.5, trailers", "trailers"},
		{"trailers;q=1", ""}, // RFC 9110: trailers takes no weight
		{"gzip, deflate", ""},
	} {
		require.Equal(t, http.StatusOK, c.get("/api/te", "TE", tc.sent).Code)
		assert.Equal(t, tc.want, strings.Join(s.u1.last(t).Header.Values("Te"), ","), "TE: %s", tc.sent)
	}
}

// HTTP/1.0 allows a request without Host: the upstream gets no
// X-Forwarded-Host at all, not an empty one.
func TestNoHostNoForwardedHost(t *testing.T) {
	t.Parallel()
	s := startStack(t, proxyConfig)
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.91")}, Timeout: 5 * time.Second}
	conn, err := d.Dial("tcp", s.gw)
	require.NoError(t, err)
	defer conn.Close()
	require.NoError(t, conn.SetDeadline(time.Now().Add(10*time.Second)))
	_, err = conn.Write([]byte("GET /api/nohost HTTP/1.0\r\n\r\n"))
	require.NoError(t, err)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	got := s.u1.last(t)
	require.Equal(t, "/api/nohost", got.URI)
	_, present := got.Header["X-Forwarded-Host"]
	assert.False(t, present, "no X-Forwarded-Host: %q", got.Header.Values("X-Forwarded-Host"))
	assert.Equal(t, "127.0.0.91", got.XFF)

	// With a Host it is passed on as the client asked for it.
	require.Equal(t, http.StatusOK, s.from("127.0.0.91").get("/api/host").Code)
	assert.Equal(t, s.gw, s.u1.last(t).Header.Get("X-Forwarded-Host"))
}
