package main

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/bulwarkgw/bulwark/gateway/internal/testenv"
)

// Issue 12, item 13: connection limits, idle keep-alive bounded, refusals
// early, shutdown bounded.

const connConfig = `
routes:
  - {path: /, upstream: "{{U1}}"}
scorer: {enabled: false}
admin: {username: admin, password: s3cret}
read_header_timeout: 60s
connections: {max: 20, per_address: 4, idle_timeout: 60s}
`

// rawConn is a client connection from one loopback address that speaks
// HTTP/1.1 by hand, so the test decides what is kept alive.
type rawConn struct {
	t *testing.T
	c net.Conn
	r *bufio.Reader
}

func (s *stack) dialFrom(ip string) *rawConn {
	s.t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", s.gw)
	require.NoError(s.t, err)
	s.t.Cleanup(func() { _ = c.Close() })
	return &rawConn{t: s.t, c: c, r: bufio.NewReader(c)}
}

// get sends one keep-alive request; 0 means the connection was closed.
func (c *rawConn) get(path string) int {
	c.t.Helper()
	if _, err := io.WriteString(c.c, "GET "+path+" HTTP/1.1\r\nHost: gw\r\n\r\n"); err != nil {
		return 0
	}
	code, _ := c.response()
	return code
}

// response reads one answer; 0 means the connection was closed first.
func (c *rawConn) response() (int, string) {
	c.t.Helper()
	require.NoError(c.t, c.c.SetReadDeadline(time.Now().Add(20*time.Second)))
	resp, err := http.ReadResponse(c.r, nil)
	if err != nil {
		return 0, ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// closedByServer: a read ends in EOF or a reset, not in a timeout.
func (c *rawConn) closedByServer() bool {
	c.t.Helper()
	require.NoError(c.t, c.c.SetReadDeadline(time.Now().Add(20*time.Second)))
	_, err := c.r.ReadByte()
	var ne net.Error
	return err != nil && !(errors.As(err, &ne) && ne.Timeout())
}

// metric reads one sample from the admin /metrics (-1 when absent).
func (s *stack) metric(t *testing.T, name string) float64 {
	t.Helper()
	body := s.adminGet("/metrics").Body
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + ` (\S+)$`).FindStringSubmatch(body)
	if m == nil {
		return -1
	}
	v, err := strconv.ParseFloat(m[1], 64)
	require.NoError(t, err)
	return v
}

// The finding: idle keep-alive connections took every place and new
// clients timed out. With room for 20, twice as many keep-alive clients
// come one after another and stay idle: each is served, the longest-idle
// make room, the gateway never holds more than 20, and a new client still
// gets its 200.
func TestIdleKeepAliveConnectionsDoNotLockOutNewClients(t *testing.T) {
	t.Parallel()
	s := startStack(t, connConfig)
	var idle []*rawConn
	for i := range 40 {
		ip := "127.0.0." + strconv.Itoa(100+i/4) // 4 per address: the per-address limit is not what is tested
		c := s.dialFrom(ip)
		require.Equal(t, http.StatusOK, c.get("/idle"), "keep-alive client %d from %s", i, ip)
		idle = append(idle, c)
	}
	assert.Equal(t, http.StatusOK, s.dialFrom("127.0.0.120").get("/new"), "a new client gets in")
	assert.Equal(t, http.StatusOK, s.from("127.0.0.121").get("/new").Code, "and another, through net/http")

	assert.LessOrEqual(t, s.metric(t, "bulwark_gateway_connections_open"), 20.0, "never more than connections.max")
	assert.Equal(t, 20.0, s.metric(t, "bulwark_gateway_connections_max"))
	assert.GreaterOrEqual(t, s.metric(t, "bulwark_gateway_connections_reclaimed_total"), 23.0,
		"each of the 41 raw connections beyond the high-water mark (18, 90%% of 20) closed an idle one")
	assert.Equal(t, 0.0, s.metric(t, `bulwark_gateway_connections_refused_total{reason="global"}`), "nobody was refused")
	assert.True(t, idle[0].closedByServer(), "the longest-idle connection made room")
}

// One address holding its 4 places with connections that send nothing is
// refused a fifth at once (a 503, then the connection closes); another
// address still gets in.
func TestPerAddressConnectionLimit(t *testing.T) {
	t.Parallel()
	s := startStack(t, connConfig)
	for range 4 {
		s.dialFrom("127.0.0.130") // silent: not idle, not reclaimable
	}
	refused := s.dialFrom("127.0.0.130")
	code, body := refused.response()
	assert.Equal(t, http.StatusServiceUnavailable, code, "the fifth from one address")
	assert.JSONEq(t, `{"error":"too many connections"}`, body)
	assert.True(t, refused.closedByServer())

	assert.Equal(t, http.StatusOK, s.from("127.0.0.131").get("/other").Code, "another address gets in")
	assert.Equal(t, 1.0, s.metric(t, `bulwark_gateway_connections_refused_total{reason="per_address"}`))
	assert.Equal(t, 0.0, s.metric(t, `bulwark_gateway_connections_refused_total{reason="global"}`))
}

// A trusted proxy speaks for many clients: it meets only the global limit.
func TestTrustedProxyIsNotLimitedPerAddress(t *testing.T) {
	t.Parallel()
	s := startStack(t, connConfig+"trusted_proxies: [127.0.0.140/32]\n")
	var conns []*rawConn
	for range 6 {
		conns = append(conns, s.dialFrom("127.0.0.140"))
	}
	for i, c := range conns {
		assert.Equal(t, http.StatusOK, c.get("/lb"), "connection %d from the proxy", i)
	}
	assert.Equal(t, 0.0, s.metric(t, `bulwark_gateway_connections_refused_total{reason="per_address"}`))
}

// tcpProxy forwards to a real server until it is cut: then it closes every
// connection and refuses new ones, as a MongoDB that went down.
type tcpProxy struct {
	ln    net.Listener
	mu    sync.Mutex
	conns []net.Conn
}

func startProxy(t *testing.T, target string) *tcpProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	p := &tcpProxy{ln: ln}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			u, err := net.Dial("tcp", target)
			if err != nil {
				_ = c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, u)
			p.mu.Unlock()
			go func() { _, _ = io.Copy(u, c); _ = u.Close() }()
			go func() { _, _ = io.Copy(c, u); _ = c.Close() }()
		}
	}()
	t.Cleanup(p.cut)
	return p
}

func (p *tcpProxy) addr() string { return p.ln.Addr().String() }

func (p *tcpProxy) cut() {
	_ = p.ln.Close()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		_ = c.Close()
	}
	p.conns = nil
}

// MongoDB goes down while the gateway runs, with events and audit entries
// waiting to be written; the gateway is stopped. The shutdown respects
// shutdown_timeout (2 s here; before, a fixed 3 s flush plus up to 5 s of
// driver disconnect) and the listener stops accepting at once.
func TestShutdownWithMongoDownIsBounded(t *testing.T) {
	t.Parallel()
	const shutdownTimeout = 2 * time.Second
	mongoURI := testenv.MongoURI(t)
	u, err := url.Parse(mongoURI)
	require.NoError(t, err)
	proxy := startProxy(t, u.Host)
	u.Host = proxy.addr()
	s := startStack(t, `
routes:
  - {path: /, upstream: "{{U1}}"}
scorer: {enabled: false}
admin: {username: admin, password: s3cret}
lists: {deny: [127.0.0.150/32]}
events: {aggregate_window: 0s, flush_interval: 10ms}
audit: {requests: true}
shutdown_timeout: 2s
`, "BULWARK_MONGO_URI", u.String())

	denied := s.from("127.0.0.150")
	require.Equal(t, http.StatusForbidden, denied.get("/x").Code)
	mc, err := mongo.Connect(options.Client().ApplyURI(mongoURI))
	require.NoError(t, err)
	t.Cleanup(func() { _ = mc.Disconnect(context.Background()) })
	coll := mc.Database(s.env["BULWARK_MONGO_DB"]).Collection("events")
	require.Eventually(t, func() bool {
		n, err := coll.CountDocuments(context.Background(), bson.D{{Key: "ip", Value: "127.0.0.150"}})
		return err == nil && n >= 1
	}, 10*time.Second, 20*time.Millisecond, "the gateway writes to MongoDB through the proxy")

	proxy.cut()
	for range 20 {
		require.Equal(t, http.StatusForbidden, denied.get("/x").Code) // events that cannot be written
	}
	keptAlive := s.dialFrom("127.0.0.151")
	require.Equal(t, http.StatusOK, keptAlive.get("/y"))

	start := time.Now()
	require.NoError(t, s.stop())
	took := time.Since(start)
	assert.Less(t, took, 2*shutdownTimeout, "bounded by shutdown_timeout (2x slack for a loaded machine)")
	t.Logf("shutdown with MongoDB down took %s (shutdown_timeout %s)", took.Round(time.Millisecond), shutdownTimeout)

	assert.True(t, keptAlive.closedByServer(), "idle connections are closed at once")
	_, err = net.DialTimeout("tcp", s.gw, time.Second)
	assert.Error(t, err, "nothing listens any more")
	assert.Contains(t, s.out.String(), `"msg":"draining"`)
	assert.True(t, strings.Contains(s.out.String(), `"msg":"stopped"`))
}

// A request that does not finish is cut once its share of shutdown_timeout
// has passed (half of it), instead of holding the shutdown.
func TestShutdownCutsRequestsStillInFlight(t *testing.T) {
	t.Parallel()
	const shutdownTimeout = 2 * time.Second
	s := startStack(t, connConfig+"shutdown_timeout: 2s\n")
	arrived, release := make(chan struct{}), make(chan struct{})
	t.Cleanup(func() { close(release) })
	s.u1.handle(func(w http.ResponseWriter, r *http.Request, _ []byte) bool {
		if r.URL.Path != "/hang" {
			return false
		}
		close(arrived)
		select {
		case <-release:
		case <-r.Context().Done():
		}
		return true
	})
	c := s.dialFrom("127.0.0.160")
	answered := make(chan int, 1)
	go func() {
		_, _ = io.WriteString(c.c, "GET /hang HTTP/1.1\r\nHost: gw\r\n\r\n")
		code, _ := c.response()
		answered <- code
	}()
	<-arrived

	start := time.Now()
	require.NoError(t, s.stop(), "a cut request is not a failed shutdown")
	took := time.Since(start)
	assert.Less(t, took, 2*shutdownTimeout, "bounded by shutdown_timeout (2x slack for a loaded machine)")
	assert.Equal(t, 0, <-answered, "the connection was closed under the request")
	assert.Contains(t, s.out.String(), "requests still in flight at the drain deadline were cut")
}
