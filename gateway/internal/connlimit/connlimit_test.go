package connlimit_test

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulwarkgw/bulwark/gateway/internal/connlimit"
)

// server is a real http.Server on a loopback port behind a limiter. Every
// state change the limiter sees is also sent on states, so a test waits for
// the server's view instead of sleeping.
type server struct {
	t      *testing.T
	l      *connlimit.Limiter
	addr   string
	srv    *http.Server
	states chan http.ConnState
}

func newServer(t *testing.T, cfg connlimit.Config, h http.Handler) *server {
	t.Helper()
	l, err := connlimit.New(cfg)
	require.NoError(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	if h == nil {
		h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ok") })
	}
	s := &server{t: t, l: l, addr: ln.Addr().String(), states: make(chan http.ConnState, 4096)}
	s.srv = &http.Server{Handler: h, ReadHeaderTimeout: time.Minute, IdleTimeout: time.Minute,
		ConnState: func(c net.Conn, st http.ConnState) {
			l.ConnState(c, st)
			select {
			case s.states <- st:
			default: // a test that awaits stays far below the buffer
			}
		}}
	go func() { _ = s.srv.Serve(l.Listen(ln)) }()
	t.Cleanup(func() { _ = s.srv.Close() })
	return s
}

// await waits for the server to report n connections reaching state st
// (other states on the way are skipped).
func (s *server) await(st http.ConnState, n int) {
	s.t.Helper()
	timeout := time.After(30 * time.Second) // a hang, not a speed bound
	for n > 0 {
		select {
		case got := <-s.states:
			if got == st {
				n--
			}
		case <-timeout:
			s.t.Fatalf("server did not report %d more %v connections", n, st)
		}
	}
}

// conn is a raw client connection from a chosen loopback address.
type conn struct {
	t *testing.T
	c net.Conn
	r *bufio.Reader
}

func (s *server) dial(from string) *conn {
	s.t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
	c, err := d.Dial("tcp", s.addr)
	require.NoError(s.t, err)
	s.t.Cleanup(func() { _ = c.Close() })
	return &conn{t: s.t, c: c, r: bufio.NewReader(c)}
}

// get sends one keep-alive request and returns the status code, or 0 when
// the connection was refused or closed.
func (c *conn) get() int {
	c.t.Helper()
	if _, err := io.WriteString(c.c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		return 0
	}
	return c.status()
}

func (c *conn) status() int {
	c.t.Helper()
	require.NoError(c.t, c.c.SetReadDeadline(time.Now().Add(30*time.Second)))
	resp, err := http.ReadResponse(c.r, nil)
	if err != nil {
		return 0
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	return resp.StatusCode
}

// closed reports whether the server closed the connection (a read ends with
// EOF or a reset, not a timeout).
func (c *conn) closed() bool {
	c.t.Helper()
	require.NoError(c.t, c.c.SetReadDeadline(time.Now().Add(30*time.Second)))
	_, err := c.r.ReadByte()
	var ne net.Error
	return err != nil && !(errors.As(err, &ne) && ne.Timeout())
}

// The finding: idle keep-alive connections filled every place and new
// clients timed out. Here they make room, longest-idle first, and every new
// client is served.
func TestIdleConnectionsMakeRoomForNewClients(t *testing.T) {
	t.Parallel()
	s := newServer(t, connlimit.Config{Max: 4}, nil)
	require.Equal(t, 3, s.l.HighWater(), "90% of 4")

	var conns []*conn
	for i := range 10 {
		c := s.dial("127.0.0.1")
		require.Equal(t, http.StatusOK, c.get(), "client %d gets in", i)
		s.await(http.StateIdle, 1)
		conns = append(conns, c)
		st := s.l.Stats()
		assert.LessOrEqual(t, st.Open, 4, "never above the limit")
	}
	st := s.l.Stats()
	assert.Equal(t, int64(7), st.Reclaimed, "every client after the third closed the longest-idle one")
	assert.Equal(t, 3, st.Open)
	assert.Equal(t, 3, st.Idle)
	assert.Zero(t, st.Refused)
	for i, c := range conns[:7] {
		assert.True(t, c.closed(), "connection %d, among the longest idle, was closed", i)
	}
	for i, c := range conns[7:] {
		assert.Equal(t, http.StatusOK, c.get(), "connection %d is still kept alive", i+7)
	}
}

// With every place held by connections that are not idle, a new connection
// is answered 503 and closed at once; a place freed is a place for the next.
func TestRefusedAtOnceWhenNothingIsIdle(t *testing.T) {
	t.Parallel()
	s := newServer(t, connlimit.Config{Max: 2}, nil)
	a, b := s.dial("127.0.0.1"), s.dial("127.0.0.1") // new: no request yet
	s.await(http.StateNew, 2)

	c := s.dial("127.0.0.1")
	assert.Equal(t, http.StatusServiceUnavailable, c.status(), "a minimal 503 before anything is sent")
	assert.True(t, c.closed(), "and the connection is closed")
	st := s.l.Stats()
	assert.Equal(t, int64(1), st.Refused)
	assert.Equal(t, 2, st.Open)

	require.NoError(t, a.c.Close())
	s.await(http.StateClosed, 1)
	assert.Equal(t, http.StatusOK, s.dial("127.0.0.1").get(), "the freed place is taken")
	assert.Equal(t, http.StatusOK, b.get(), "the other connection was never touched")
}

func TestRefusalIsAnHTTPAnswer(t *testing.T) {
	resp, err := http.ReadResponse(bufio.NewReader(strings.NewReader(connlimit.Refusal)), nil)
	require.NoError(t, err)
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	assert.True(t, resp.Close, "Connection: close")
	assert.Equal(t, "1", resp.Header.Get("Retry-After"))
	assert.JSONEq(t, `{"error":"too many connections"}`, string(body))
	assert.Equal(t, resp.ContentLength, int64(len(body)))
}

// One address cannot take more than its share; others still get in.
func TestPerAddressLimit(t *testing.T) {
	t.Parallel()
	s := newServer(t, connlimit.Config{Max: 100, PerAddress: 2}, nil)
	s.dial("127.0.0.2")
	s.dial("127.0.0.2")
	s.await(http.StateNew, 2)

	c := s.dial("127.0.0.2")
	assert.Equal(t, http.StatusServiceUnavailable, c.status(), "a third from the same address")
	assert.True(t, c.closed())
	assert.Equal(t, http.StatusOK, s.dial("127.0.0.3").get(), "another address gets in")
	st := s.l.Stats()
	assert.Equal(t, int64(1), st.RefusedPer)
	assert.Zero(t, st.Refused)
}

// At its limit an address's own idle connections make room; nobody else's.
func TestPerAddressReclaimsItsOwnIdleConnections(t *testing.T) {
	t.Parallel()
	s := newServer(t, connlimit.Config{Max: 100, PerAddress: 2}, nil)
	other := s.dial("127.0.0.5")
	require.Equal(t, http.StatusOK, other.get())
	s.await(http.StateIdle, 1)
	var mine []*conn
	for range 3 {
		c := s.dial("127.0.0.4")
		require.Equal(t, http.StatusOK, c.get())
		s.await(http.StateIdle, 1)
		mine = append(mine, c)
	}
	assert.True(t, mine[0].closed(), "the address's longest-idle connection made room")
	assert.Equal(t, http.StatusOK, mine[1].get())
	assert.Equal(t, http.StatusOK, mine[2].get())
	assert.Equal(t, http.StatusOK, other.get(), "another address's idle connection was left alone")
	assert.Equal(t, int64(1), s.l.Stats().Reclaimed)
}

// A load balancer speaks for many clients: exempt peers meet only the
// global limit.
func TestExemptPeers(t *testing.T) {
	t.Parallel()
	s := newServer(t, connlimit.Config{Max: 100, PerAddress: 1, Exempt: []netip.Prefix{netip.MustParsePrefix("127.0.0.6/32")}}, nil)
	a, b := s.dial("127.0.0.6"), s.dial("127.0.0.6")
	assert.Equal(t, http.StatusOK, a.get())
	assert.Equal(t, http.StatusOK, b.get())
	assert.Zero(t, s.l.Stats().RefusedPer)

	s.l.SetExempt(nil) // a reload that removes the proxy
	s.dial("127.0.0.7")
	s.await(http.StateNew, 3)
	c := s.dial("127.0.0.7")
	assert.Equal(t, http.StatusServiceUnavailable, c.status())
}

func TestKey(t *testing.T) {
	for in, want := range map[string]string{
		"192.0.2.1":                 "192.0.2.1",
		"::ffff:192.0.2.1":          "192.0.2.1",
		"2001:db8:1:2:3:4:5:6":      "2001:db8:1:2::",
		"2001:db8:1:2:ffff::1":      "2001:db8:1:2::",
		"fe80::1%eth0":              "fe80::",
		"2001:db8:1:3::1":           "2001:db8:1:3::",
		"::1":                       "::",
		"2001:db8:ffff:ffff:1::abc": "2001:db8:ffff:ffff::",
	} {
		assert.Equal(t, want, connlimit.Key(netip.MustParseAddr(in)).String(), in)
	}
}

// A hijacked connection (an upgrade the proxy tunnels) keeps its place until
// it is closed; CloseAll, at the end of a drain, closes it too.
func TestHijackedConnectionsAreCountedAndClosedByCloseAll(t *testing.T) {
	t.Parallel()
	hijacked := make(chan net.Conn, 1)
	s := newServer(t, connlimit.Config{Max: 10}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _, err := http.NewResponseController(w).Hijack()
		if err != nil {
			panic(err)
		}
		_, _ = io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\nConnection: Upgrade\r\n\r\n")
		hijacked <- c
	}))
	c := s.dial("127.0.0.1")
	assert.Equal(t, http.StatusSwitchingProtocols, c.get())
	<-hijacked
	assert.Equal(t, 1, s.l.Stats().Open, "still counted after the hijack")
	assert.Equal(t, 1, s.l.CloseAll())
	assert.True(t, c.closed())
	assert.Zero(t, s.l.Stats().Open)
}

// Many clients at once, some refused, all gone: the counts return to zero.
func TestAccountingReturnsToZero(t *testing.T) {
	t.Parallel()
	s := newServer(t, connlimit.Config{Max: 8, PerAddress: 3}, nil)
	var wg sync.WaitGroup
	for i := range 40 {
		wg.Go(func() {
			from := []string{"127.0.0.8", "127.0.0.9", "127.0.0.10", "127.0.0.11"}[i%4]
			d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
			hc := &http.Client{Transport: &http.Transport{DialContext: d.DialContext}}
			defer hc.CloseIdleConnections()
			for range 5 {
				if resp, err := hc.Get("http://" + s.addr + "/"); err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					_ = resp.Body.Close()
				}
			}
		})
	}
	wg.Wait()
	require.NoError(t, s.srv.Close())
	st := s.l.Stats()
	assert.Zero(t, st.Open, "every place released")
	assert.Zero(t, st.Idle)
}

func TestNewRejectsBadConfig(t *testing.T) {
	for _, cfg := range []connlimit.Config{{Max: 0}, {Max: 10, PerAddress: -1}, {Max: 10, HighWater: 11}, {Max: 10, HighWater: -1}} {
		_, err := connlimit.New(cfg)
		assert.Error(t, err, "%+v", cfg)
	}
}

func TestDefaultMax(t *testing.T) {
	for nofile, want := range map[uint64]int{
		0:       1,
		16:      4,
		1024:    256, // (1024 - 512) / 2
		20000:   9744,
		65536:   connlimit.DefaultMaxCap,
		1 << 20: connlimit.DefaultMaxCap,
	} {
		assert.Equal(t, want, connlimit.DefaultMax(nofile), "nofile %d", nofile)
	}
}

func TestRaiseFileLimit(t *testing.T) {
	soft, hard, err := connlimit.RaiseFileLimit()
	require.NoError(t, err)
	assert.Equal(t, hard, soft, "the soft limit is raised to the hard one")
	assert.NotZero(t, soft)
}

// The wrapper keeps what the HTTP server looks for on a *net.TCPConn.
var (
	_ interface{ CloseWrite() error } = (*connlimit.Conn)(nil)
	_ io.ReaderFrom                   = (*connlimit.Conn)(nil)
)

// wrapped is another listener's wrapper around the limiter's connections
// (the gateway's framing scanner): ConnState must see through it.
type wrapped struct{ net.Conn }

func (w wrapped) NetConn() net.Conn { return w.Conn }

type wrapListener struct{ net.Listener }

func (l wrapListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return wrapped{c}, nil
}

func TestConnStateSeesThroughWrappers(t *testing.T) {
	t.Parallel()
	l, err := connlimit.New(connlimit.Config{Max: 4})
	require.NoError(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	idle := make(chan struct{}, 16)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}), ReadHeaderTimeout: time.Minute,
		ConnState: func(c net.Conn, st http.ConnState) {
			l.ConnState(c, st)
			if st == http.StateIdle {
				idle <- struct{}{}
			}
		}}
	go func() { _ = srv.Serve(wrapListener{l.Listen(ln)}) }()
	t.Cleanup(func() { _ = srv.Close() })

	s := &server{t: t, l: l, addr: ln.Addr().String()}
	c := s.dial("127.0.0.1")
	require.Equal(t, http.StatusOK, c.get())
	select {
	case <-idle:
	case <-time.After(30 * time.Second):
		t.Fatal("no idle state")
	}
	assert.Equal(t, 1, l.Stats().Idle, "the idle connection was found under the wrapper, so it can be reclaimed")
}
