package main

// Deadlines on body reads (issue 19, item 2): a body the gateway waits for
// itself must arrive within read_header_timeout, or the request is answered
// 408 and its connection closed. The finding: a login to /login,
// /api/login or /auth (login routes that are also sensitive paths) had its
// first 16 KiB read, to name the login, with no deadline at all, so clients
// sending a byte a second held their connections for hours. SECURITY.md
// ("Deadlines on body reads").

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// deadlinesConfig: /api/login is a guarded login route and one of the
// default sensitive paths; /api/signin is a login route only; /checkout a
// sensitive path only; 127.0.0.159 is deny-listed.
const deadlinesConfig = `
routes:
  - {path: /, upstream: "{{U1}}"}
scorer: {enabled: false}
admin: {username: admin, password: s3cret}
api_key: {auth_upstream: "{{U1}}", invalid_threshold: 1000}
login_protection:
  routes: [{path: /api/login}, {path: /api/signin}]
lists: {deny: [127.0.0.159/32]}
read_header_timeout: 1s
`

// drip sends head and then the body one byte every 200 ms (a space: JSON
// stays valid), never all of it in the test's time, until the connection
// fails or the test ends.
type drip struct {
	c       net.Conn
	stop    chan struct{}
	stopped sync.WaitGroup
}

func (s *stack) drip(addr, ip, head string) *drip {
	t := s.t
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", addr)
	require.NoError(t, err)
	_, err = io.WriteString(c, head)
	require.NoError(t, err)
	dr := &drip{c: c, stop: make(chan struct{})}
	dr.stopped.Go(func() {
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-dr.stop:
				return
			case <-tick.C:
				if _, err := c.Write([]byte(" ")); err != nil {
					return
				}
			}
		}
	})
	t.Cleanup(func() { close(dr.stop); dr.stopped.Wait(); c.Close() })
	return dr
}

// answer reads the gateway's answer (the body is 1,000 bytes at a byte
// each 200 ms: more than three minutes) and whether the gateway then closed
// the connection. It gives up after 8 s: code 0, a gateway still waiting.
func (dr *drip) answer(t *testing.T) (code int, msg string, closed bool) {
	t.Helper()
	require.NoError(t, dr.c.SetReadDeadline(time.Now().Add(8*time.Second)))
	br := bufio.NewReader(dr.c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return 0, "", false
	}
	body, _ := io.ReadAll(resp.Body)
	var m struct{ Error string }
	_ = json.Unmarshal(body, &m)
	_, err = br.ReadByte()
	var ne net.Error
	closed = err != nil && !(errors.As(err, &ne) && ne.Timeout())
	return resp.StatusCode, m.Error, closed
}

const slowBody = "Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"username\":\"carol\""

// (b) The finding: a login route that is also a sensitive path.
func TestSlowLoginBodyToASensitiveLoginRouteGets408(t *testing.T) {
	t.Parallel()
	s := startStack(t, deadlinesConfig)
	start := time.Now()
	dr := s.drip(s.gw, "127.0.0.150", "POST /api/login HTTP/1.1\r\nHost: gw\r\n"+slowBody)
	code, msg, closed := dr.answer(t)
	assert.Equal(t, http.StatusRequestTimeout, code, "answered while the body still trickles in")
	assert.Equal(t, "request body not received in time", msg)
	assert.True(t, closed, "and the connection closed")
	t.Logf("answered after %v (read_header_timeout 1s)", time.Since(start).Round(time.Millisecond))
	assert.Zero(t, s.u1.count("/api/login"), "nothing reached the upstream")
}

// (c) Every other body the gateway reads itself.
func TestSlowBodiesTheGatewayReadsGet408(t *testing.T) {
	t.Parallel()
	s := startStack(t, deadlinesConfig)
	for i, tc := range []struct {
		name, head string
	}{
		// A login route only: the 408 came, but the connection stayed open
		// while Go's server read the rest of the body.
		{"login route", "POST /api/signin HTTP/1.1\r\nHost: gw\r\n" + slowBody},
		// The gateway's own login endpoint (api_key.auth_path), also a
		// sensitive path.
		{"auth path", "POST /auth HTTP/1.1\r\nHost: gw\r\n" + slowBody},
		// A sensitive path only: its head is read to name the login.
		{"sensitive path", "POST /checkout HTTP/1.1\r\nHost: gw\r\n" + slowBody},
		// A chunked upload: read ahead up to body_buffer_size.
		{"chunked read-ahead", "POST /upload HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\n\r\n3e8\r\n"},
	} {
		dr := s.drip(s.gw, fmt.Sprintf("127.0.0.%d", 151+i), tc.head)
		code, msg, closed := dr.answer(t)
		assert.Equal(t, http.StatusRequestTimeout, code, tc.name)
		assert.Equal(t, "request body not received in time", msg, tc.name)
		assert.True(t, closed, "%s: the connection is closed", tc.name)
	}
	assert.Zero(t, len(s.u1.requests()), "nothing reached the upstream")
}

// (c) A refused request's body is not waited for: Go's server reads what
// is left of a body (up to 256 KiB) before it answers, so a refused client
// dripping its body got no answer and held its connection.
func TestRefusedRequestsDoNotWaitForTheirBody(t *testing.T) {
	t.Parallel()
	s := startStack(t, deadlinesConfig)
	dr := s.drip(s.gw, "127.0.0.159", "POST /api/orders HTTP/1.1\r\nHost: gw\r\n"+slowBody)
	code, _, closed := dr.answer(t)
	assert.Equal(t, http.StatusForbidden, code, "the deny list's answer")
	assert.True(t, closed)

	// A refused request whose body came whole keeps its connection.
	c := s.dialFrom("127.0.0.159")
	_, err := io.WriteString(c.c, "POST /api/orders HTTP/1.1\r\nHost: gw\r\nContent-Length: 2\r\n\r\n{}")
	require.NoError(t, err)
	code, _ = c.response()
	assert.Equal(t, http.StatusForbidden, code)
	assert.Equal(t, http.StatusForbidden, c.get("/api/orders"), "kept alive")

	// A client waiting for "100 Continue" is not asked for the body of a
	// request refused anyway: the answer comes first, and the connection is
	// closed.
	c = s.dialFrom("127.0.0.159")
	_, err = io.WriteString(c.c, "POST /api/orders HTTP/1.1\r\nHost: gw\r\nExpect: 100-continue\r\nContent-Length: 100000\r\n\r\n")
	require.NoError(t, err)
	code, _ = c.response()
	assert.Equal(t, http.StatusForbidden, code, "no 100 Continue first")
	assert.True(t, c.closedByServer())
}

// (c) The admin API reads JSON bodies, with its own deadline (5 s, as its
// read_header_timeout); a request it refuses does not wait for its body
// either.
func TestSlowAdminBodyGets408(t *testing.T) {
	t.Parallel()
	s := startStack(t, deadlinesConfig)
	authed := s.drip(s.admin, "127.0.0.1", "POST /v1/check HTTP/1.1\r\nHost: gw\r\nAuthorization: "+basic+"\r\n"+slowBody)
	refused := s.drip(s.admin, "127.0.0.1", "POST /v1/check HTTP/1.1\r\nHost: gw\r\n"+slowBody)
	code, msg, closed := authed.answer(t)
	assert.Equal(t, http.StatusRequestTimeout, code)
	assert.Equal(t, "request body not received in time", msg)
	assert.True(t, closed, "the connection is closed")
	code, _, closed = refused.answer(t)
	assert.Equal(t, http.StatusUnauthorized, code)
	assert.True(t, closed, "the connection is closed")
}

// A body that arrives in time is not affected: a login whose body comes in
// pieces within the deadline passes.
func TestBodiesInTimePass(t *testing.T) {
	t.Parallel()
	s := startStack(t, deadlinesConfig)
	loginBackend(s.u1)
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.158")}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", s.gw)
	require.NoError(t, err)
	defer c.Close()
	body := `{"username":"carol","password":"right"}`
	_, err = io.WriteString(c, "POST /api/login HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\nContent-Length: "+fmt.Sprint(len(body))+"\r\n\r\n")
	require.NoError(t, err)
	for _, piece := range []string{body[:10], body[10:25], body[25:]} {
		time.Sleep(200 * time.Millisecond) // 600 ms in all, within read_header_timeout (1 s)
		_, err = io.WriteString(c, piece)
		require.NoError(t, err)
	}
	require.NoError(t, c.SetReadDeadline(time.Now().Add(8*time.Second)))
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	require.NoError(t, err)
	_, _ = io.Copy(io.Discard, resp.Body)
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	// The connection is kept alive and its next request has no deadline
	// left over: a GET a second and a half later is served.
	time.Sleep(1500 * time.Millisecond)
	_, err = io.WriteString(c, "GET /api/x HTTP/1.1\r\nHost: gw\r\n\r\n")
	require.NoError(t, err)
	resp, err = http.ReadResponse(br, nil)
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.True(t, strings.Contains(s.out.String(), `"path":"/api/login","status":200`), "the login was forwarded")
}
