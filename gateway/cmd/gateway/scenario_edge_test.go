package main

// The edge of the gateway against hostile bytes, spoken raw over TCP:
// request smuggling, i.e. ambiguous framing (issue 12, item 1). Policy:
// gateway/internal/framing; SECURITY.md ("The gateway's edge").

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const edgeConfig = `
routes:
  - {path: /api/, upstream: "{{U1}}"}
scorer: {enabled: false}
`

type rawAnswer struct {
	Code        int
	ContentType string
	Body        string
	Close       bool // Connection: close
}

// rawExchange writes payload as is on a new connection from ip, then reads
// answers until the gateway closes the connection; closed is false when
// it did not within 5 s.
func (s *stack) rawExchange(ip, payload string) (answers []rawAnswer, closed bool) {
	t := s.t
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", s.gw)
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, c.SetDeadline(time.Now().Add(5*time.Second)))
	_, err = io.WriteString(c, payload)
	require.NoError(t, err)
	br := bufio.NewReader(c)
	for {
		if _, err := br.Peek(1); err != nil {
			return answers, errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET)
		}
		resp, err := http.ReadResponse(br, nil)
		require.NoError(t, err)
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		answers = append(answers, rawAnswer{resp.StatusCode, resp.Header.Get("Content-Type"), string(b), resp.Close})
	}
}

const smuggled = "GET /api/smuggled HTTP/1.1\r\nHost: x\r\n\r\n"

// post is a request with the given framing headers whose body (a last
// chunk) hides a second request.
func post(proto, headers string) string {
	return "POST /api/a " + proto + "\r\nHost: x\r\n" + headers + "\r\n0\r\n\r\n" + smuggled
}

// cl is the Content-Length of post's body as a front proxy framing by
// length reads it: the last chunk and the hidden request.
var cl = "Content-Length: " + strconv.Itoa(len("0\r\n\r\n"+smuggled)) + "\r\n"

func TestSmugglingIsRefusedAndTheConnectionClosed(t *testing.T) {
	t.Parallel()
	s := startStack(t, edgeConfig)
	tests := []struct {
		name    string
		payload string
		code    int
		ours    bool // answered by framing.Guard (400 JSON); else by Go's parser (plain text)
	}{
		{"Content-Length and chunked", post("HTTP/1.1", cl+"Transfer-Encoding: chunked\r\n"), 400, true},
		{"chunked and Content-Length", post("HTTP/1.1", "Transfer-Encoding: chunked\r\n"+cl), 400, true},
		{"Content-Length and tab chunked", post("HTTP/1.1", cl+"Transfer-Encoding:\tchunked\r\n"), 400, true},
		{"Content-Length and CHUNKED", post("HTTP/1.1", cl+"Transfer-Encoding: CHUNKED\r\n"), 400, true},
		{"chunked on HTTP/1.0", post("HTTP/1.0", "Transfer-Encoding: chunked\r\n"), 400, true},
		{"duplicate Content-Length", post("HTTP/1.1", cl+cl), 400, true},
		{"obs-fold", post("HTTP/1.1", cl+"X-Note: a\r\n folded\r\n"), 400, true},
		{"bare LF", "POST /api/a HTTP/1.1\nHost: x\n" + cl + "\n0\r\n\r\n" + smuggled, 400, true},
		{"HTTP/1.2", post("HTTP/1.2", cl), 400, true},
		{"space after chunk size", "POST /api/a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n1 \r\nx\r\n0\r\n\r\n" + smuggled, 400, true},
		{"chunked, identity", post("HTTP/1.1", "Transfer-Encoding: chunked, identity\r\n"), 501, false},
		{"identity", post("HTTP/1.1", cl+"Transfer-Encoding: identity\r\n"), 501, false},
		{"x-chunked", post("HTTP/1.1", cl+"Transfer-Encoding: x-chunked\r\n"), 501, false},
		{"chunked;foo", post("HTTP/1.1", "Transfer-Encoding: chunked;foo\r\n"), 501, false},
		{"two Transfer-Encodings", post("HTTP/1.1", "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n"), 501, false},
		{"vertical tab", post("HTTP/1.1", cl+"Transfer-Encoding: \vchunked\r\n"), 400, false},
		{"NUL", post("HTTP/1.1", cl+"Transfer-Encoding: chunked\x00\r\n"), 400, false},
		{"signed length", post("HTTP/1.1", "Content-Length: +5\r\n"), 400, false},
		{"length list", post("HTTP/1.1", "Content-Length: 5, 6\r\n"), 400, false},
		{"two numbers", post("HTTP/1.1", "Content-Length:  5 5\r\n"), 400, false},
		{"space before colon", post("HTTP/1.1", "Transfer-Encoding : chunked\r\n"+cl), 400, false},
		{"bare CR", post("HTTP/1.1", cl+"X-Note: a\rb\r\n"), 400, false},
	}
	for _, tc := range tests {
		answers, closed := s.rawExchange("127.0.0.120", tc.payload)
		require.Len(t, answers, 1, "%s: one answer, then nothing", tc.name)
		a := answers[0]
		assert.Equal(t, tc.code, a.Code, tc.name)
		assert.True(t, a.Close, "%s: Connection: close", tc.name)
		assert.True(t, closed, "%s: the gateway closes the connection", tc.name)
		if tc.ours {
			assert.Equal(t, "application/json", a.ContentType, tc.name)
			assert.Contains(t, a.Body, `{"error":"Bad request framing: `, tc.name)
		}
	}
	assert.Empty(t, s.u1.requests(), "no request, smuggled or not, reached the upstream")
	assert.Eventually(t, func() bool { return strings.Contains(s.out.String(), `"msg":"request framing refused"`) },
		5*time.Second, 20*time.Millisecond, "each refusal is logged")
}

// The guard costs well-framed traffic nothing: keep-alive, pipelining and
// chunked uploads pass.
func TestWellFramedTrafficPasses(t *testing.T) {
	t.Parallel()
	s := startStack(t, edgeConfig)
	answers, closed := s.rawExchange("127.0.0.121",
		"GET /api/one HTTP/1.1\r\nHost: x\r\n\r\n"+
			"POST /api/two HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"+
			"POST /api/three HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc\r\n"+
			"GET /api/four HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	require.Len(t, answers, 4)
	for i, a := range answers {
		assert.Equal(t, http.StatusOK, a.Code, "request %d", i+1)
	}
	assert.True(t, closed)
	got := s.u1.requests()
	require.Len(t, got, 4)
	assert.Equal(t, []string{"/api/one", "/api/two", "/api/three", "/api/four"}, []string{got[0].URI, got[1].URI, got[2].URI, got[3].URI})
	assert.Equal(t, "hello", string(got[1].Body))
	assert.Equal(t, "abc", string(got[2].Body))
}
