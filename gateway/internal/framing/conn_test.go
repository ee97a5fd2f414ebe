package framing_test

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulwarkgw/bulwark/gateway/internal/framing"
)

// server is a real http.Server behind Listen and Guard whose handler
// records the requests it is handed.
type server struct {
	addr    string
	entered chan string // told each request's path before its body is read
	mu      sync.Mutex
	seen    []string
	refused []framing.Reason
	parsed  []int // field lines of each refused request as the server parsed it
}

// maxFields bounds the test server's header fields.
const maxFields = 8

func (s *server) paths() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.seen...)
}

func startServer(t *testing.T) *server {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	s := &server{addr: ln.Addr().String(), entered: make(chan string, 1000)}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.entered <- r.URL.Path
		_, err := io.Copy(io.Discard, r.Body)
		s.mu.Lock()
		s.seen = append(s.seen, r.Method+" "+r.RequestURI)
		s.mu.Unlock()
		if err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		if r.URL.Path == "/checked" {
			// A handler that read the body whole asks before it acts.
			if status, msg, refused := framing.Refused(r.Context()); refused {
				w.WriteHeader(status)
				fmt.Fprint(w, msg)
				return
			}
		}
		fmt.Fprint(w, r.RequestURI)
	})
	srv := &http.Server{
		Handler: framing.Guard(h, func(r *http.Request, why framing.Reason) {
			s.mu.Lock()
			s.refused = append(s.refused, why)
			s.parsed = append(s.parsed, fieldLines(r))
			s.mu.Unlock()
		}),
		ConnContext:                  framing.ConnContext,
		DisableGeneralOptionsHandler: true,
		ReadHeaderTimeout:            5 * time.Second,
	}
	go func() { _ = srv.Serve(framing.Listen(ln, framing.Options{MaxFields: maxFields})) }()
	t.Cleanup(func() { _ = srv.Close() })
	return s
}

type answer struct {
	code  int
	body  string
	hdr   http.Header
	close bool // Connection: close
}

// exchange writes raw in one piece, then reads answers until the server
// closes the connection; closed is false when it did not within 5 s.
func exchange(t *testing.T, addr, raw string) (answers []answer, closed bool) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, c.SetDeadline(time.Now().Add(5*time.Second)))
	_, err = io.WriteString(c, raw)
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
		answers = append(answers, answer{resp.StatusCode, string(b), resp.Header, resp.Close})
	}
}

const get = "GET /%d HTTP/1.1\r\nHost: a\r\n\r\n"

// Go's server reads ahead of the request it serves; the verdicts stay
// with their requests.
func TestPipelinedRequestsKeepTheirVerdicts(t *testing.T) {
	s := startServer(t)
	var raw strings.Builder
	for i := range 200 {
		fmt.Fprintf(&raw, get, i)
	}
	raw.WriteString("POST /bad HTTP/1.1\r\nHost: a\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
	fmt.Fprintf(&raw, get, 999)
	answers, closed := exchange(t, s.addr, raw.String())
	require.Len(t, answers, 201)
	for i := range 200 {
		assert.Equal(t, http.StatusOK, answers[i].code, "request %d", i)
		assert.Equal(t, fmt.Sprintf("/%d", i), answers[i].body)
	}
	last := answers[200]
	assert.Equal(t, http.StatusBadRequest, last.code)
	assert.Equal(t, "application/json", last.hdr.Get("Content-Type"))
	assert.True(t, last.close, "Connection: close")
	assert.JSONEq(t, `{"error":"Bad request framing: both Content-Length and Transfer-Encoding"}`, last.body)
	assert.True(t, closed, "the connection is closed after the refusal")
	assert.Len(t, s.paths(), 200, "neither the refused request nor the one after it reached the handler")
	assert.Equal(t, []framing.Reason{framing.BothLengths}, s.refused)
}

func TestSmuggledRequestNeverReachesTheHandler(t *testing.T) {
	s := startServer(t)
	for _, te := range []string{"chunked", "\tchunked", "CHUNKED"} {
		answers, closed := exchange(t, s.addr, "POST /a HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: "+te+
			"\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n")
		require.Len(t, answers, 1, te)
		assert.Equal(t, http.StatusBadRequest, answers[0].code, te)
		assert.True(t, closed, te)
	}
	answers, closed := exchange(t, s.addr, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"+fmt.Sprintf(get, 1))
	require.Len(t, answers, 1, "the HTTP/2 preface")
	assert.Equal(t, http.StatusBadRequest, answers[0].code)
	assert.True(t, closed)
	assert.Empty(t, s.paths())
}

// "OPTIONS *" reaches the handler like any request (the server would
// answer it itself otherwise, and the count of requests would slip).
func TestOptionsStarIsCounted(t *testing.T) {
	s := startServer(t)
	answers, closed := exchange(t, s.addr, "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n"+fmt.Sprintf(get, 1)+
		"GET /2 HTTP/1.1\r\nHost: a\r\nX: a\r\n folded\r\n\r\n")
	require.Len(t, answers, 3)
	assert.Equal(t, []int{200, 200, 400}, []int{answers[0].code, answers[1].code, answers[2].code})
	assert.Equal(t, "/1", answers[1].body)
	assert.True(t, closed)
	assert.Equal(t, []string{"OPTIONS *", "GET /1"}, s.paths())
}

// A body that breaks the chunked framing after its head was accepted:
// whatever the server makes of the rest, no later request is served.
func TestBrokenChunkedBodyEndsTheConnection(t *testing.T) {
	s := startServer(t)
	answers, closed := exchange(t, s.addr, "POST /a HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"+
		"5 \r\nhello\r\n0\r\n\r\n"+fmt.Sprintf(get, 1)+fmt.Sprintf(get, 2))
	assert.True(t, closed)
	assert.NotContains(t, s.paths(), "GET /1")
	assert.NotContains(t, s.paths(), "GET /2")
	for _, a := range answers {
		assert.NotEqual(t, http.StatusOK, a.code)
	}
}

// The same, when the broken chunk arrives after the server handed the
// request over: that request was served, the next one is not.
func TestBrokenChunkedBodyArrivingLate(t *testing.T) {
	s := startServer(t)
	c, err := net.Dial("tcp", s.addr)
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, c.SetDeadline(time.Now().Add(5*time.Second)))
	_, err = io.WriteString(c, "POST /a HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n")
	require.NoError(t, err)
	assert.Equal(t, "/a", <-s.entered)
	_, err = io.WriteString(c, "5 \r\nhello\r\n0\r\n\r\n"+fmt.Sprintf(get, 1))
	require.NoError(t, err)
	br := bufio.NewReader(c)
	var codes []int
	for {
		if _, err := br.Peek(1); err != nil {
			assert.True(t, errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET), "closed: %v", err)
			break
		}
		resp, err := http.ReadResponse(br, nil)
		require.NoError(t, err)
		_, _ = io.Copy(io.Discard, resp.Body)
		codes = append(codes, resp.StatusCode)
	}
	assert.Equal(t, []int{200, 400}, codes, "Go reads \"5 \" as 5; the request after it is refused")
	assert.Equal(t, []string{"POST /a"}, s.paths())
}

// Where Go's parser refuses first, its own plain-text answer is sent and
// the connection is closed all the same.
func TestGoRefusalsCloseTheConnection(t *testing.T) {
	s := startServer(t)
	for _, raw := range []string{
		"POST /a HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity\r\n\r\n" + fmt.Sprintf(get, 1),
		"POST /a HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + fmt.Sprintf(get, 1),
		"POST /a HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 6\r\n\r\nhello" + fmt.Sprintf(get, 1),
		"GET /a HTTP/1.1\r\nHost : a\r\n\r\n" + fmt.Sprintf(get, 1),
	} {
		answers, closed := exchange(t, s.addr, raw)
		require.Len(t, answers, 1, raw)
		assert.Contains(t, []int{400, 501}, answers[0].code, raw)
		assert.True(t, closed, raw)
	}
	assert.Empty(t, s.paths())
}

// fieldLines counts the field lines the server parsed into r: its header
// values, the Host it moved out of them and the trailer's values.
func fieldLines(r *http.Request) int {
	n := 0
	for _, h := range []http.Header{r.Header, r.Trailer} {
		for _, vv := range h {
			n += len(vv)
		}
	}
	if r.Host != "" {
		n++
	}
	return n
}

// head is a GET with n field lines, Host first.
func head(path string, n int) string {
	var b strings.Builder
	b.WriteString("GET " + path + " HTTP/1.1\r\nHost: a\r\n")
	for i := 1; i < n; i++ {
		fmt.Fprintf(&b, "X-F%d: %d\r\n", i, i)
	}
	b.WriteString("\r\n")
	return b.String()
}

// A request with more header fields than the bound is answered 431 JSON
// naming the bound, never reaches the handler, and the server parses no
// more than the bound of them: the head is ended where the field over it
// begins. At the bound a request passes.
func TestTooManyHeaderFields(t *testing.T) {
	s := startServer(t)
	answers, _ := exchange(t, s.addr, head("/at-bound", maxFields)+"GET /close HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
	require.Len(t, answers, 2)
	assert.Equal(t, http.StatusOK, answers[0].code)
	for _, n := range []int{maxFields + 1, 5000} {
		answers, closed := exchange(t, s.addr, head("/a", 3)+head("/over", n)+head("/after", 1))
		require.Len(t, answers, 2, "%d fields", n)
		assert.Equal(t, http.StatusOK, answers[0].code, "the request before is served")
		last := answers[1]
		assert.Equal(t, http.StatusRequestHeaderFieldsTooLarge, last.code, "%d fields", n)
		assert.Equal(t, "application/json", last.hdr.Get("Content-Type"))
		assert.True(t, last.close, "Connection: close")
		assert.JSONEq(t, `{"error":"Too many header fields: at most 8"}`, last.body)
		assert.True(t, closed, "the connection is closed after the refusal")
	}
	assert.Equal(t, []string{"GET /at-bound", "GET /close", "GET /a", "GET /a"}, s.paths())
	assert.Equal(t, []framing.Reason{framing.TooManyFields, framing.TooManyFields}, s.refused)
	assert.Equal(t, []int{maxFields, maxFields}, s.parsed, "the server parsed the bound's worth of fields, not the 5000 sent")
}

// A chunked body's trailer counts toward the bound. Read with its head,
// the request is refused before it is handed over; arriving after the
// head, the request was already handed over: a handler that has read the
// body whole learns of the refusal (Refused), and no later request on the
// connection is served.
func TestTrailerFieldsCount(t *testing.T) {
	s := startServer(t)
	trailer := ""
	for i := range maxFields - 2 { // Host and Transfer-Encoding are the other two
		trailer += fmt.Sprintf("X-T%d: %d\r\n", i, i)
	}
	const chunkedHead = "POST /checked HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
	body := func(trailer string) string { return "5\r\nhello\r\n0\r\n" + trailer + "\r\n" }
	answers, _ := exchange(t, s.addr, chunkedHead+body(trailer)+"GET /close HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
	require.Len(t, answers, 2)
	assert.Equal(t, []int{200, 200}, []int{answers[0].code, answers[1].code}, "at the bound")

	answers, closed := exchange(t, s.addr, chunkedHead+body(trailer+"X-Over: 1\r\n")+fmt.Sprintf(get, 1))
	require.Len(t, answers, 1)
	assert.Equal(t, http.StatusRequestHeaderFieldsTooLarge, answers[0].code, "refused with its head")
	assert.True(t, closed)
	assert.Equal(t, []string{"POST /checked", "GET /close"}, s.paths())

	s = startServer(t) // its handler tells when the request was handed over
	c, err := net.Dial("tcp", s.addr)
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, c.SetDeadline(time.Now().Add(5*time.Second)))
	_, err = io.WriteString(c, chunkedHead)
	require.NoError(t, err)
	assert.Equal(t, "/checked", <-s.entered)
	_, err = io.WriteString(c, body(trailer+"X-Over: 1\r\n")+fmt.Sprintf(get, 1))
	require.NoError(t, err)
	br := bufio.NewReader(c)
	var codes []int
	for {
		if _, err := br.Peek(1); err != nil {
			break
		}
		resp, err := http.ReadResponse(br, nil)
		require.NoError(t, err)
		_, _ = io.Copy(io.Discard, resp.Body)
		codes = append(codes, resp.StatusCode)
	}
	assert.Equal(t, []int{431, 431}, codes, "the handler asked; the next request is refused")
	assert.NotContains(t, s.paths(), "GET /1")
}

// BenchmarkServe is the cost per request of a keep-alive connection
// through a real http.Server, without and with the scanner and Guard.
func BenchmarkServe(b *testing.B) {
	for _, guarded := range []bool{false, true} {
		name := "plain"
		if guarded {
			name = "framing"
		}
		b.Run(name, func(b *testing.B) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			require.NoError(b, err)
			var h http.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})
			srv := &http.Server{Handler: h, DisableGeneralOptionsHandler: true}
			served := ln
			if guarded {
				srv.Handler, srv.ConnContext, served = framing.Guard(h, nil), framing.ConnContext, framing.Listen(ln, framing.Options{MaxFields: 100})
			}
			go func() { _ = srv.Serve(served) }()
			defer srv.Close()
			c, err := net.Dial("tcp", ln.Addr().String())
			require.NoError(b, err)
			defer c.Close()
			req := []byte("GET /api/v1/products/12345?include=reviews HTTP/1.1\r\nHost: shop.example.com\r\n" +
				"User-Agent: Mozilla/5.0 (X11; Linux x86_64) Chrome/126.0\r\nAccept: application/json\r\n" +
				"Cookie: session=0123456789abcdef0123456789abcdef\r\n\r\n")
			br := bufio.NewReader(c)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.Write(req); err != nil {
					b.Fatal(err)
				}
				resp, err := http.ReadResponse(br, nil)
				if err != nil {
					b.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		})
	}
}
