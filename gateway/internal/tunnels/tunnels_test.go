package tunnels_test

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulwarkgw/bulwark/gateway/internal/tunnels"
	"github.com/bulwarkgw/bulwark/shared/clientid"
)

// clock is a settable time source.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
	return c.t
}

func newRegistry() (*tunnels.Registry, *clock) {
	c := &clock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	return tunnels.New(c.now), c
}

func addr(s string) netip.Addr { return netip.MustParseAddr(s) }

func anon(ip string) tunnels.Owner {
	a := addr(ip)
	return tunnels.Owner{Addr: a, ID: clientid.Identity(a)}
}

// hijacker is a ResponseWriter whose connection is one end of a pipe.
type hijacker struct {
	http.ResponseWriter
	server, client net.Conn
	hijacked       bool
}

func newHijacker(t *testing.T) *hijacker {
	s, c := net.Pipe()
	t.Cleanup(func() { s.Close(); c.Close() })
	return &hijacker{ResponseWriter: httptest.NewRecorder(), server: s, client: c}
}

func (h *hijacker) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	h.hijacked = true
	return h.server, bufio.NewReadWriter(bufio.NewReader(h.server), bufio.NewWriter(h.server)), nil
}

// open reserves and switches a tunnel for o, as the reverse proxy does
// through the Writer; it returns the tunnel, the switched connection and
// the client's end of it.
func open(t *testing.T, r *tunnels.Registry, o tunnels.Owner, since time.Time) (*tunnels.Tunnel, net.Conn, net.Conn) {
	t.Helper()
	tun, err := r.Reserve(o, since, 0)
	require.NoError(t, err)
	h := newHijacker(t)
	c, _, err := http.NewResponseController(tun.Writer(h)).Hijack()
	require.NoError(t, err)
	require.True(t, tun.Switched())
	return tun, c, h.client
}

// closed reports whether the client's end of a pipe sees its tunnel
// closed: a write fails with io.ErrClosedPipe once the other end is
// closed, and with a deadline error (a deadline already past: no waiting)
// while it is open.
func closed(c net.Conn) bool {
	_ = c.SetWriteDeadline(time.Now())
	_, err := c.Write([]byte{1})
	return errors.Is(err, io.ErrClosedPipe)
}

func TestReserveCapsEachClient(t *testing.T) {
	t.Parallel()
	r, c := newRegistry()
	a, b := anon("192.0.2.1"), anon("192.0.2.2")
	var held []*tunnels.Tunnel
	for range 2 {
		tun, err := r.Reserve(a, c.now(), 2)
		require.NoError(t, err)
		held = append(held, tun)
	}
	_, err := r.Reserve(a, c.now(), 2)
	assert.ErrorIs(t, err, tunnels.ErrLimit)
	_, err = r.Reserve(b, c.now(), 2)
	assert.NoError(t, err, "another client has its own places")
	_, err = r.Reserve(a, c.now(), 0)
	assert.NoError(t, err, "0: no cap")
	held[0].Release()
	held[0].Release() // twice: one place back, not two
	_, err = r.Reserve(a, c.now(), 3)
	assert.NoError(t, err)
	_, err = r.Reserve(a, c.now(), 3)
	assert.ErrorIs(t, err, tunnels.ErrLimit)
	ex := a
	ex.Exempt = true
	_, err = r.Reserve(ex, c.now(), 1)
	assert.NoError(t, err, "an allow-listed client is not capped")

	// A principal is capped as itself, not as its address.
	p := tunnels.Owner{Addr: addr("192.0.2.1"), ID: clientid.Principal(clientid.KindKey, "acct:1")}
	_, err = r.Reserve(p, c.now(), 1)
	assert.NoError(t, err)
	_, err = r.Reserve(p, c.now(), 1)
	assert.ErrorIs(t, err, tunnels.ErrLimit)
}

func TestCloseIDClosesTheClientsTunnels(t *testing.T) {
	t.Parallel()
	r, c := newRegistry()
	key := clientid.Principal(clientid.KindKey, "acct:1")
	_, _, v4 := open(t, r, anon("192.0.2.1"), c.now())
	_, _, viaKey := open(t, r, tunnels.Owner{Addr: addr("192.0.2.1"), ID: key}, c.now())
	_, _, keyElsewhere := open(t, r, tunnels.Owner{Addr: addr("198.51.100.9"), ID: key}, c.now())
	_, _, other := open(t, r, anon("192.0.2.2"), c.now())
	_, _, v6 := open(t, r, anon("2001:db8:1:2::5"), c.now())
	ex := anon("192.0.2.3")
	ex.Exempt = true
	_, _, exempt := open(t, r, ex, c.now())
	assert.Equal(t, int64(6), r.Stats().Open)

	// The address's ban closes its anonymous tunnel and its principals'
	// tunnels from that address.
	assert.Equal(t, 2, r.CloseID(addr("192.0.2.1")))
	assert.True(t, closed(v4))
	assert.True(t, closed(viaKey))
	assert.False(t, closed(keyElsewhere))
	// The principal's ban closes its tunnels from every address.
	assert.Equal(t, 1, r.CloseID(key))
	assert.True(t, closed(keyElsewhere))
	// An IPv6 client is its /64.
	assert.Equal(t, 1, r.CloseID(addr("2001:db8:1:2::99")))
	assert.True(t, closed(v6))
	// Allow-listed: never closed.
	assert.Equal(t, 0, r.CloseID(addr("192.0.2.3")))
	assert.False(t, closed(exempt))
	assert.False(t, closed(other))
	assert.Equal(t, uint64(4), r.Stats().ClosedBan)
}

func TestClosePrefixClosesTheNetworksTunnels(t *testing.T) {
	t.Parallel()
	r, c := newRegistry()
	_, _, in1 := open(t, r, anon("10.1.2.3"), c.now())
	_, _, in2 := open(t, r, tunnels.Owner{Addr: addr("10.9.9.9"), ID: clientid.Principal(clientid.KindJWT, "sub")}, c.now())
	_, _, out := open(t, r, anon("11.0.0.1"), c.now())
	_, _, v6 := open(t, r, anon("2001:db8::1"), c.now())
	ex := anon("10.0.0.7")
	ex.Exempt = true
	_, _, exempt := open(t, r, ex, c.now())

	assert.Equal(t, 2, r.ClosePrefix(netip.MustParsePrefix("10.0.0.0/8")))
	assert.True(t, closed(in1))
	assert.True(t, closed(in2), "a principal's tunnel from a denied address")
	assert.False(t, closed(out))
	assert.False(t, closed(exempt))
	assert.Equal(t, 1, r.CloseDenied(func(a netip.Addr) bool { return a.Is6() }))
	assert.True(t, closed(v6))
	assert.Equal(t, uint64(3), r.Stats().ClosedDeny)
}

// Closing the switched connection (the proxy does when the tunnel ends)
// releases the tunnel: its place and the open count come back.
func TestClosingTheConnectionReleases(t *testing.T) {
	t.Parallel()
	r, c := newRegistry()
	a := anon("192.0.2.1")
	tun, conn, _ := open(t, r, a, c.now())
	_, err := r.Reserve(a, c.now(), 1)
	assert.ErrorIs(t, err, tunnels.ErrLimit)
	require.NoError(t, conn.Close())
	assert.Equal(t, int64(0), r.Stats().Open)
	tun.Release() // the request ends too: nothing more happens
	assert.Equal(t, int64(0), r.Stats().Open)
	_, err = r.Reserve(a, c.now(), 1)
	assert.NoError(t, err)
	assert.Equal(t, []netip.Addr{a.ID}, r.IDs(), "one identity left: the new reservation's")
}

// A ban that arrives while the handshake is on its way to the upstream
// refuses the switch: the connection is never hijacked.
func TestBanBeforeTheSwitchRefusesIt(t *testing.T) {
	t.Parallel()
	r, c := newRegistry()
	tun, err := r.Reserve(anon("192.0.2.1"), c.now(), 0)
	require.NoError(t, err)
	assert.Equal(t, 0, r.CloseID(addr("192.0.2.1")), "nothing had switched")
	h := newHijacker(t)
	_, _, err = http.NewResponseController(tun.Writer(h)).Hijack()
	assert.ErrorIs(t, err, tunnels.ErrBanned)
	assert.False(t, h.hijacked)
	assert.False(t, tun.Switched())
	tun.Release()
	assert.Empty(t, r.IDs())
}

// A ban or deny that arrived after a request's checks began (since) is
// remembered: its tunnel is refused. A request that began later was
// checked after it, and the memory lasts a minute.
func TestBansAfterTheChecksRefuseTheReservation(t *testing.T) {
	t.Parallel()
	r, c := newRegistry()
	key := clientid.Principal(clientid.KindKey, "acct:1")
	start := c.now()
	c.add(time.Millisecond)
	r.CloseID(addr("192.0.2.1"))
	r.CloseID(key)
	r.ClosePrefix(netip.MustParsePrefix("10.0.0.0/8"))

	_, err := r.Reserve(anon("192.0.2.1"), start, 0)
	assert.ErrorIs(t, err, tunnels.ErrBanned)
	_, err = r.Reserve(tunnels.Owner{Addr: addr("198.51.100.1"), ID: key}, start, 0)
	assert.ErrorIs(t, err, tunnels.ErrBanned, "the principal's ban")
	_, err = r.Reserve(tunnels.Owner{Addr: addr("192.0.2.1"), ID: clientid.Principal(clientid.KindKey, "acct:2")}, start, 0)
	assert.ErrorIs(t, err, tunnels.ErrBanned, "its address's ban")
	_, err = r.Reserve(anon("10.2.3.4"), start, 0)
	assert.ErrorIs(t, err, tunnels.ErrDenied)
	_, err = r.Reserve(anon("192.0.2.2"), start, 0)
	assert.NoError(t, err, "someone else")
	ex := anon("192.0.2.1")
	ex.Exempt = true
	_, err = r.Reserve(ex, start, 0)
	assert.NoError(t, err, "allow-listed")

	later := c.add(time.Millisecond)
	_, err = r.Reserve(anon("192.0.2.1"), later, 0)
	assert.NoError(t, err, "a request that began after the ban was checked after it")

	c.add(2 * time.Minute)
	r.CloseID(addr("203.0.113.1")) // prunes
	_, err = r.Reserve(anon("10.2.3.4"), start, 0)
	assert.NoError(t, err, "forgotten after a minute")
}

func TestIPv4MappedAddressesAreIPv4(t *testing.T) {
	t.Parallel()
	r, c := newRegistry()
	_, _, conn := open(t, r, tunnels.Owner{Addr: addr("::ffff:192.0.2.1"), ID: addr("::ffff:192.0.2.1")}, c.now())
	assert.Equal(t, 1, r.ClosePrefix(netip.MustParsePrefix("192.0.2.0/24")))
	assert.True(t, closed(conn))
}
