package main

// Header fields (issue 19, item 1): 5,000 small header fields fit under
// max_header_bytes, and each was parsed into a map and forwarded; a request
// held in flight by an unfinished body pinned about 0.8 MiB. At most
// max_header_count (100) field lines now reach the server's parser; a
// request with more is answered 431 JSON and its connection closed, and a
// chunked body's trailer counts toward the same bound. SECURITY.md
// ("Header count").

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const headersConfig = `
routes:
  - {path: /api/, upstream: "{{U1}}"}
scorer: {enabled: false}
admin: {username: admin, password: s3cret}
`

// fields is a request head with n field lines: Host, Connection: close,
// what extra holds, then small fields P2, P3, …
func fields(method, path string, n int, extra string) string {
	var b strings.Builder
	b.WriteString(method + " " + path + " HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n" + extra)
	for i := 2 + strings.Count(extra, "\r\n"); i < n; i++ {
		fmt.Fprintf(&b, "P%d: x\r\n", i)
	}
	b.WriteString("\r\n")
	return b.String()
}

// forwardedFields counts the P fields the upstream got with its last
// request.
func forwardedFields(u *upstream) int {
	got := u.requests()
	n := 0
	for k := range got[len(got)-1].Header {
		if len(k) > 1 && k[0] == 'P' && k[1] >= '0' && k[1] <= '9' {
			n++
		}
	}
	return n
}

func TestTooManyHeaderFieldsAre431(t *testing.T) {
	t.Parallel()
	s := startStack(t, headersConfig)

	answers, closed := s.rawExchange("127.0.0.140", fields("GET", "/api/at-bound", 100, ""))
	require.Len(t, answers, 1)
	assert.Equal(t, http.StatusOK, answers[0].Code, "100 fields (the default bound) pass")
	assert.True(t, closed)
	require.Equal(t, 1, s.u1.count("/api/at-bound"))
	assert.Equal(t, 98, forwardedFields(s.u1), "all of them forwarded")

	for _, n := range []int{101, 5000} {
		head := fields("GET", "/api/over", n, "")
		require.Less(t, len(head), 64<<10, "under max_header_bytes")
		answers, closed := s.rawExchange("127.0.0.141", head)
		require.Len(t, answers, 1, "%d fields", n)
		a := answers[0]
		assert.Equal(t, http.StatusRequestHeaderFieldsTooLarge, a.Code, "%d fields", n)
		assert.Equal(t, "application/json", a.ContentType)
		assert.JSONEq(t, `{"error":"Too many header fields: at most 100"}`, a.Body)
		assert.True(t, a.Close, "Connection: close")
		assert.True(t, closed, "%d fields: the gateway closes the connection", n)
	}
	// Also with a body announced and never sent, the way the finding held
	// requests in flight.
	answers, closed = s.rawExchange("127.0.0.142", fields("POST", "/api/over", 5000, "Content-Length: 1000\r\n")+"x")
	require.Len(t, answers, 1)
	assert.Equal(t, http.StatusRequestHeaderFieldsTooLarge, answers[0].Code)
	assert.True(t, closed)
	assert.Zero(t, s.u1.count("/api/over"), "the upstream never sees a request over the bound")

	assert.Eventually(t, func() bool {
		return strings.Contains(s.out.String(), `"reason":"too many header fields"`)
	}, 5*time.Second, 20*time.Millisecond, "each refusal is logged")
	assert.Contains(t, s.adminGet("/metrics").Body, `bulwark_gateway_requests_total{code="431",decision="too_many_headers",route="none"} 3`)
}

// A chunked body's trailer counts toward the bound, head and trailer
// together: in one piece with the head, Guard refuses the request; arriving
// after the head was handed to the chain, the gateway refuses it once it
// has read the body (before forwarding it). The upstream never sees it.
func TestTrailerFieldsCountTowardTheBound(t *testing.T) {
	t.Parallel()
	s := startStack(t, headersConfig)
	chunkedHead := "POST /api/trailer HTTP/1.1\r\nHost: gw\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n"
	body := func(trailerFields int) string {
		var b strings.Builder
		b.WriteString("5\r\nhello\r\n0\r\n")
		for i := range trailerFields {
			fmt.Fprintf(&b, "T%d: %d\r\n", i, i)
		}
		b.WriteString("\r\n")
		return b.String()
	}
	// Three fields in the head: 97 in the trailer is the bound.
	answers, _ := s.rawExchange("127.0.0.143", chunkedHead+body(97))
	require.Len(t, answers, 1)
	assert.Equal(t, http.StatusOK, answers[0].Code, "100 fields, trailer included")
	require.Equal(t, 1, s.u1.count("/api/trailer"))

	answers, closed := s.rawExchange("127.0.0.143", chunkedHead+body(98))
	require.Len(t, answers, 1)
	assert.Equal(t, http.StatusRequestHeaderFieldsTooLarge, answers[0].Code, "refused with its head")
	assert.True(t, closed)

	// The trailer after the head: the request is in the chain by then.
	c := s.dialFrom("127.0.0.144")
	_, err := io.WriteString(c.c, chunkedHead)
	require.NoError(t, err)
	time.Sleep(300 * time.Millisecond) // for the head to be handed over (a wait, not a speed bound)
	_, err = io.WriteString(c.c, body(98))
	require.NoError(t, err)
	code, msg := c.response()
	assert.Equal(t, http.StatusRequestHeaderFieldsTooLarge, code, "refused once the gateway has read the body")
	assert.Equal(t, "Too many header fields: at most 100", jsonError(t, msg))
	assert.True(t, c.closedByServer())
	assert.Equal(t, 1, s.u1.count("/api/trailer"), "the upstream never saw a request over the bound")
}

// TestHeaderMemoryInFlight measures what a request in flight holds: N
// requests with H header fields each are sent with a body announced and
// not sent, to an upstream that accepts the connection and never answers,
// and the live heap and the goroutine stacks (after a GC) are compared with
// before. The gateway, its clients' sockets and the upstream's all live in
// this process, but the clients and the upstream hold no heap: the growth
// is the gateway's. It reports numbers and asserts none; run it alone:
//
//	BULWARK_MEASURE_HEADERS=1 go test -run TestHeaderMemoryInFlight -v ./cmd/gateway
func TestHeaderMemoryInFlight(t *testing.T) {
	if os.Getenv("BULWARK_MEASURE_HEADERS") == "" {
		t.Skip("a measurement: set BULWARK_MEASURE_HEADERS=1")
	}
	hold, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer hold.Close()
	held := make(chan net.Conn, 4096)
	go func() {
		for {
			c, err := hold.Accept()
			if err != nil {
				return
			}
			held <- c // never read, never answered
		}
	}()
	s := startStack(t, "routes:\n  - {path: /api/, upstream: \"http://"+hold.Addr().String()+"\", timeout: 2m}\nscorer: {enabled: false}\n")
	// settle lets what the last case held go and reads the live heap and
	// the stacks.
	settle := func() (heap, stack int64) {
		var m runtime.MemStats
		for range 5 {
			time.Sleep(200 * time.Millisecond)
			runtime.GC()
		}
		runtime.ReadMemStats(&m)
		return int64(m.HeapAlloc), int64(m.StackInuse)
	}
	const n = 200
	for _, tc := range []struct {
		name   string
		fields int
		value  int // bytes of each P value
	}{
		{"20 fields (a browser's)", 20, 20},
		{"100 small fields", 100, 1},
		{"100 fields of 600 B (62 KB)", 100, 600},
		{"5000 small fields (49 KB)", 5000, 1},
	} {
		var b strings.Builder
		b.WriteString("POST /api/hold HTTP/1.1\r\nHost: gw\r\nContent-Length: 1000\r\n")
		for i := 2; i < tc.fields; i++ {
			fmt.Fprintf(&b, "P%d: %s\r\n", i, strings.Repeat("v", tc.value))
		}
		b.WriteString("\r\nx")
		payload := b.String()

		heap0, stack0 := settle()
		conns := make([]net.Conn, 0, n)
		for i := range n {
			d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(fmt.Sprintf("127.0.3.%d", 1+i%250))}}
			c, err := d.Dial("tcp", s.gw)
			require.NoError(t, err)
			_, err = io.WriteString(c, payload)
			require.NoError(t, err)
			conns = append(conns, c)
		}
		var upstream []net.Conn
	wait:
		for len(upstream) < n {
			select {
			case c := <-held:
				upstream = append(upstream, c)
			case <-time.After(2 * time.Second):
				break wait // refused at the edge: nothing more reaches the upstream
			}
		}
		heap1, stack1 := settle()
		heap, stack := heap1-heap0, stack1-stack0
		t.Logf("%-28s %d requests of %5d B, %3d at the upstream: heap +%6.1f MiB (%6.1f KiB each, %4.1f× the bytes sent), stacks +%4.1f MiB (%4.1f KiB each)",
			tc.name, n, len(payload), len(upstream), float64(heap)/(1<<20), float64(heap)/n/1024, float64(heap)/n/float64(len(payload)),
			float64(stack)/(1<<20), float64(stack)/n/1024)
		for _, c := range conns {
			c.Close()
		}
		for _, c := range upstream {
			c.Close()
		}
	}
}

// jsonError is the "error" of a JSON answer.
func jsonError(t *testing.T, body string) string {
	t.Helper()
	var m struct{ Error string }
	require.NoError(t, jsonUnmarshal([]byte(body), &m), "body: %s", body)
	return m.Error
}
