// Package connlimit bounds the client connections an HTTP server holds open:
// a global maximum and a maximum per client address (the TCP peer, IPv6
// peers grouped by their /64), like nginx's limit_conn. It wraps the
// server's net.Listener and watches each connection's state through
// http.Server.ConnState, so it knows which connections sit idle between
// keep-alive requests. Under pressure those go first: above a high-water
// mark, and whenever a limit is reached, the longest-idle keep-alive
// connections are closed to make room (nginx does the same when it runs out
// of connections), so a flood of idle connections cannot lock new clients
// out. Only when no idle connection can be reclaimed is a new connection
// refused, and it is refused at once, in the accept loop, with a minimal 503
// and Connection: close, rather than left waiting in the kernel's backlog.
//
// Per address means the TCP peer: forwarding headers are not read at accept
// time. Peers listed as exempt (the gateway passes its trusted proxies) are
// held only to the global limit, since one load balancer speaks for many
// clients.
package connlimit

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// Config sets the limits.
type Config struct {
	// Max is the most client connections open at once; at least 1.
	Max int
	// PerAddress is the most connections open at once from one client
	// address (an IPv4 address or an IPv6 /64); 0 disables it.
	PerAddress int
	// HighWater is the number of open connections above which each new
	// connection closes the longest-idle keep-alive connections to keep
	// headroom; 0 means 90 % of Max.
	HighWater int
	// Exempt peers are held only to the global limit.
	Exempt []netip.Prefix
}

// Refusal is what a refused connection is sent before it is closed. It is
// written only if the socket takes it at once; a client whose request
// already arrived may see a reset instead.
const Refusal = "HTTP/1.1 503 Service Unavailable\r\n" +
	"Content-Type: application/json\r\n" +
	"Retry-After: 1\r\n" +
	"Connection: close\r\n" +
	"Content-Length: 33\r\n" +
	"\r\n" +
	`{"error":"too many connections"}` + "\n"

// reclaimBatch bounds the idle connections one accept closes to get back
// under the high-water mark (nginx drains 32 at a time).
const reclaimBatch = 32

// Reasons a connection is refused.
const (
	ReasonGlobal     = "global"
	ReasonPerAddress = "per_address"
)

// Stats is a snapshot of the limiter.
type Stats struct {
	Open, Idle int   // connections open now, and how many of them are idle
	Max        int   // the global limit
	Refused    int64 // connections refused at the global limit
	RefusedPer int64 // connections refused at the per-address limit
	Reclaimed  int64 // idle keep-alive connections closed to make room
}

// Limiter tracks the open connections. Use Listen to wrap the listener and
// ConnState as (or inside) the server's ConnState hook.
type Limiter struct {
	max, perAddr, highWater int
	exempt                  atomic.Pointer[[]netip.Prefix]

	mu     sync.Mutex
	open   int
	idle   ring // every idle connection, longest-idle first
	nidle  int
	groups map[netip.Addr]*group // by address key; only with a per-address limit
	all    map[*Conn]struct{}

	refused, refusedPer, reclaimed atomic.Int64
}

// group is one client address's connections.
type group struct {
	open int
	idle ring
}

// New returns a limiter for cfg.
func New(cfg Config) (*Limiter, error) {
	switch {
	case cfg.Max < 1:
		return nil, fmt.Errorf("connlimit: Max must be at least 1, got %d", cfg.Max)
	case cfg.PerAddress < 0:
		return nil, fmt.Errorf("connlimit: PerAddress must not be negative, got %d", cfg.PerAddress)
	case cfg.HighWater < 0 || cfg.HighWater > cfg.Max:
		return nil, fmt.Errorf("connlimit: HighWater must be in [0, Max], got %d", cfg.HighWater)
	}
	hw := cfg.HighWater
	if hw == 0 {
		hw = max(cfg.Max*9/10, 1)
	}
	l := &Limiter{max: cfg.Max, perAddr: cfg.PerAddress, highWater: hw, groups: map[netip.Addr]*group{}, all: map[*Conn]struct{}{}}
	l.SetExempt(cfg.Exempt)
	return l, nil
}

// SetExempt replaces the peers held only to the global limit (on a config
// reload); connections already open keep their accounting.
func (l *Limiter) SetExempt(prefixes []netip.Prefix) {
	p := append([]netip.Prefix(nil), prefixes...)
	l.exempt.Store(&p)
}

// HighWater is the number of open connections above which idle ones are
// reclaimed.
func (l *Limiter) HighWater() int { return l.highWater }

// Stats returns the current counts.
func (l *Limiter) Stats() Stats {
	l.mu.Lock()
	open, idle := l.open, l.nidle
	l.mu.Unlock()
	return Stats{Open: open, Idle: idle, Max: l.max,
		Refused: l.refused.Load(), RefusedPer: l.refusedPer.Load(), Reclaimed: l.reclaimed.Load()}
}

// Listen wraps ln: Accept returns only connections within the limits and
// refuses the others itself.
func (l *Limiter) Listen(ln net.Listener) net.Listener { return &listener{Listener: ln, l: l} }

type listener struct {
	net.Listener
	l *Limiter
}

func (ln *listener) Accept() (net.Conn, error) {
	for {
		c, err := ln.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if tc := ln.l.admit(c); tc != nil {
			return tc, nil
		}
		refuse(c)
	}
}

// own finds the connection this limiter accepted under c and the wrappers
// other listeners put around it (each exposes NetConn, as tls.Conn does).
func (l *Limiter) own(c net.Conn) *Conn {
	for range 8 {
		if tc, ok := c.(*Conn); ok {
			if tc.l == l {
				return tc
			}
			return nil
		}
		u, ok := c.(interface{ NetConn() net.Conn })
		if !ok {
			return nil
		}
		c = u.NetConn()
	}
	return nil
}

// refuse answers 503 if the socket takes it without waiting, and closes.
func refuse(c net.Conn) {
	_ = c.SetWriteDeadline(time.Now().Add(10 * time.Millisecond))
	_, _ = io.WriteString(c, Refusal)
	_ = c.Close()
}

// Key is the address a peer is counted under: IPv4 (and IPv4-mapped IPv6)
// as it is, IPv6 by its /64.
func Key(a netip.Addr) netip.Addr {
	a = a.Unmap()
	if a.Is6() {
		a = netip.PrefixFrom(a.WithZone(""), 64).Masked().Addr()
	}
	return a
}

func peer(c net.Conn) netip.Addr {
	if ta, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		return ta.AddrPort().Addr().Unmap()
	}
	ap, err := netip.ParseAddrPort(c.RemoteAddr().String())
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}

func (l *Limiter) isExempt(a netip.Addr) bool {
	for _, p := range *l.exempt.Load() {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// admit counts c in, closing idle connections to make room, or returns nil
// when c must be refused.
func (l *Limiter) admit(c net.Conn) *Conn {
	tc := &Conn{Conn: c, l: l}
	tc.link.conn, tc.glink.conn = tc, tc
	a := peer(c)
	perAddr := l.perAddr > 0 && a.IsValid() && !l.isExempt(a)
	var victims []*Conn
	defer func() {
		for _, v := range victims {
			_ = v.Conn.Close()
		}
	}()

	l.mu.Lock()
	defer l.mu.Unlock()
	if perAddr {
		tc.key = Key(a)
		if g := l.groups[tc.key]; g != nil && g.open >= l.perAddr {
			v := g.idle.front()
			if v == nil {
				l.refusedPer.Add(1)
				return nil
			}
			victims = append(victims, l.reclaimLocked(v))
		}
	}
	// Keep headroom: above the high-water mark the longest-idle
	// connections make room, a few per accept.
	for n := 0; l.open >= l.highWater && n < reclaimBatch; n++ {
		v := l.idle.front()
		if v == nil {
			break
		}
		victims = append(victims, l.reclaimLocked(v))
	}
	if l.open >= l.max {
		l.refused.Add(1)
		return nil
	}
	if perAddr {
		g := l.groups[tc.key]
		if g == nil {
			g = &group{}
			l.groups[tc.key] = g
		}
		g.open++
		tc.g = g
	}
	l.open++
	l.all[tc] = struct{}{}
	return tc
}

// reclaimLocked takes an idle connection out of the counts and returns it
// for the caller to close once the lock is released.
func (l *Limiter) reclaimLocked(v *Conn) *Conn {
	l.releaseLocked(v)
	l.reclaimed.Add(1)
	return v
}

// releaseLocked takes c out of every count, once.
func (l *Limiter) releaseLocked(c *Conn) {
	if c.released {
		return
	}
	c.released = true
	l.unidleLocked(c)
	l.open--
	delete(l.all, c)
	if g := c.g; g != nil {
		g.open--
		if g.open == 0 {
			delete(l.groups, c.key)
		}
	}
}

func (l *Limiter) unidleLocked(c *Conn) {
	if c.link.linked() {
		c.link.unlink()
		l.nidle--
	}
	if c.glink.linked() {
		c.glink.unlink()
	}
}

// ConnState records the server's view of a connection: idle connections can
// be reclaimed, active, new and hijacked ones cannot, closed ones are
// released. Set it as http.Server.ConnState (or call it from there).
func (l *Limiter) ConnState(c net.Conn, s http.ConnState) {
	tc := l.own(c)
	if tc == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if tc.released {
		return
	}
	switch s {
	case http.StateIdle:
		if !tc.link.linked() {
			l.idle.pushBack(&tc.link)
			l.nidle++
			if tc.g != nil {
				tc.g.idle.pushBack(&tc.glink)
			}
		}
	case http.StateActive, http.StateHijacked, http.StateNew:
		l.unidleLocked(tc)
	case http.StateClosed:
		l.releaseLocked(tc)
	}
}

// CloseAll closes every connection still open, hijacked ones included (the
// server's Close leaves those alone), and returns how many it closed.
func (l *Limiter) CloseAll() int {
	l.mu.Lock()
	conns := make([]*Conn, 0, len(l.all))
	for c := range l.all {
		l.releaseLocked(c)
		conns = append(conns, c)
	}
	l.mu.Unlock()
	for _, c := range conns {
		_ = c.Conn.Close()
	}
	return len(conns)
}

// Conn is an admitted connection; closing it releases its place.
type Conn struct {
	net.Conn
	l *Limiter

	// Guarded by l.mu.
	key      netip.Addr
	g        *group
	released bool
	link     link // in l.idle while idle
	glink    link // in g.idle while idle
}

// Close releases the connection's place and closes it.
func (c *Conn) Close() error {
	c.l.mu.Lock()
	c.l.releaseLocked(c)
	c.l.mu.Unlock()
	return c.Conn.Close()
}

// CloseWrite half-closes the connection when the underlying one can: the
// HTTP server uses it to send an error answer before closing without a
// reset.
func (c *Conn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return errors.ErrUnsupported
}

// ReadFrom keeps the underlying connection's zero-copy path (splice,
// sendfile) for response bodies.
func (c *Conn) ReadFrom(r io.Reader) (int64, error) {
	if rf, ok := c.Conn.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return io.Copy(writerOnly{c.Conn}, r)
}

type writerOnly struct{ io.Writer }

// link is an intrusive doubly linked list node: moving a connection in and
// out of the idle lists on every request allocates nothing. The zero link
// is in no list.
type link struct {
	prev, next *link
	conn       *Conn
}

func (k *link) linked() bool { return k.next != nil }

func (k *link) unlink() {
	k.prev.next = k.next
	k.next.prev = k.prev
	k.prev, k.next = nil, nil
}

// ring is a list head, the sentinel of a circular list; the zero ring is
// empty.
type ring struct{ head link }

func (r *ring) pushBack(k *link) {
	if r.head.next == nil {
		r.head.prev, r.head.next = &r.head, &r.head
	}
	k.prev = r.head.prev
	k.next = &r.head
	r.head.prev.next = k
	r.head.prev = k
}

func (r *ring) front() *Conn {
	if r.head.next == nil || r.head.next == &r.head {
		return nil
	}
	return r.head.next.conn
}
