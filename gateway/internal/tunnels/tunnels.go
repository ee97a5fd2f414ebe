// Package tunnels keeps the connections the gateway has handed over to
// another protocol (a WebSocket, after a 101): whose each one is, how many
// each client holds, and it closes them when their client is banned or
// deny-listed, which a tunnel would otherwise outlive: once switched, a
// connection carries no more requests for the chain to refuse.
//
// A tunnel is reserved (Reserve) before its handshake is forwarded, with
// the per-client cap checked then; the ResponseWriter handed to the
// reverse proxy (Writer) registers the connection the proxy hijacks for
// the switch, and closing that connection (the proxy does when either side
// ends) deregisters it. CloseID (a ban) and ClosePrefix (a deny-list
// addition) close every matching tunnel at once, which ends the proxy's
// copy loops; a tunnel still being set up is refused when it tries to
// switch. A ban or deny that arrives while a handshake is still in the
// chain, after its checks, is remembered for a minute, so the handshake is
// refused too (Reserve's since).
//
// Tunnels are kept under their client's identities (package clientid):
// the address's (an IPv4 address, an IPv6 /64) and, for a request with a
// verified credential, the principal's, so a ban of either closes them.
// Nothing here does I/O; Watch (watch.go) feeds the registry the bans and
// deny-list additions every gateway announces.
package tunnels

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bulwarkgw/bulwark/shared/clientid"
)

// Errors of Reserve and of a refused switch.
var (
	ErrLimit  = errors.New("tunnels: too many open tunnels for this client")
	ErrBanned = errors.New("tunnels: client banned")
	ErrDenied = errors.New("tunnels: client deny-listed")
)

// remember is how long a ban or deny is kept for Reserve's since: longer
// than any handshake spends in the chain before it is forwarded.
const remember = time.Minute

// Owner is whose a tunnel is, as the chain decided.
type Owner struct {
	Addr netip.Addr // the client's address: deny-listed networks are matched against it
	// ID is whom the tunnel is counted (and capped) for: the address's
	// identity, or the principal's (clientid.Principal).
	ID netip.Addr
	// Exempt is an allow-listed client: no cap applies, and neither bans
	// nor deny-list entries close its tunnels (the allow list wins over
	// both, for requests too).
	Exempt bool
}

// Stats are the registry's counts.
type Stats struct {
	Open       int64  // tunnels switched and not closed yet
	ClosedBan  uint64 // closed because their client was banned
	ClosedDeny uint64 // closed because a deny-listed network holds their client
}

// Registry tracks the open tunnels. It is safe for concurrent use.
type Registry struct {
	now func() time.Time

	mu     sync.Mutex
	byKey  map[netip.Addr]map[*Tunnel]struct{} // by each identity of the owner
	all    map[*Tunnel]struct{}
	count  map[netip.Addr]int         // by Owner.ID: reserved or open
	banned map[netip.Addr]time.Time   // identities closed lately, and when
	denied map[netip.Prefix]time.Time // networks closed lately, and when
	pruned time.Time

	open                  atomic.Int64
	closedBan, closedDeny atomic.Uint64
}

// New returns an empty registry reading the time from now (time.Now when
// nil): the same clock as the request starts given to Reserve.
func New(now func() time.Time) *Registry {
	if now == nil {
		now = time.Now
	}
	return &Registry{now: now, byKey: map[netip.Addr]map[*Tunnel]struct{}{}, all: map[*Tunnel]struct{}{},
		count: map[netip.Addr]int{}, banned: map[netip.Addr]time.Time{}, denied: map[netip.Prefix]time.Time{}}
}

// Stats returns the counts.
func (r *Registry) Stats() Stats {
	return Stats{Open: r.open.Load(), ClosedBan: r.closedBan.Load(), ClosedDeny: r.closedDeny.Load()}
}

// Tunnel is one tunnel, from its reservation until it is released.
type Tunnel struct {
	r     *Registry
	owner Owner
	keys  [2]netip.Addr // the address's identity, and ID (maybe the same)

	mu       sync.Mutex
	conn     net.Conn // the hijacked connection, once switched
	shut     error    // why it was closed by a ban or deny
	released bool
}

// Reserve takes a place for a tunnel of o before its handshake is
// forwarded. It fails with ErrLimit when o.ID holds max tunnels already
// (max 0: no cap), and with ErrBanned or ErrDenied when one of o's
// identities was banned, or a network holding o.Addr deny-listed, at since
// or later (since is when the request's checks began: the ban arrived
// after they looked). An exempt owner is never refused. Release the
// tunnel when the request ends.
func (r *Registry) Reserve(o Owner, since time.Time, max int) (*Tunnel, error) {
	o.Addr = o.Addr.WithZone("").Unmap()
	o.ID = clientid.Identity(o.ID)
	t := &Tunnel{r: r, owner: o, keys: [2]netip.Addr{clientid.Identity(o.Addr), o.ID}}
	r.mu.Lock()
	defer r.mu.Unlock()
	if !o.Exempt {
		for _, k := range t.keys {
			if at, ok := r.banned[k]; ok && !at.Before(since) {
				return nil, ErrBanned
			}
		}
		for p, at := range r.denied {
			if !at.Before(since) && p.Contains(o.Addr) {
				return nil, ErrDenied
			}
		}
		if max > 0 && r.count[o.ID] >= max {
			return nil, ErrLimit
		}
	}
	r.count[o.ID]++
	r.all[t] = struct{}{}
	for _, k := range t.keys {
		m := r.byKey[k]
		if m == nil {
			m = map[*Tunnel]struct{}{}
			r.byKey[k] = m
		}
		m[t] = struct{}{}
	}
	return t, nil
}

// Release gives the tunnel's place back; it closes nothing. Calling it
// again, or after the tunnel's connection closed, does nothing.
func (t *Tunnel) Release() {
	t.mu.Lock()
	if t.released {
		t.mu.Unlock()
		return
	}
	t.released = true
	open := t.conn != nil
	t.mu.Unlock()
	if open {
		t.r.open.Add(-1)
	}
	r := t.r
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.all, t)
	for _, k := range t.keys {
		if m := r.byKey[k]; m != nil {
			delete(m, t)
			if len(m) == 0 {
				delete(r.byKey, k)
			}
		}
	}
	if r.count[t.owner.ID]--; r.count[t.owner.ID] <= 0 {
		delete(r.count, t.owner.ID)
	}
}

// Switched reports whether the tunnel's connection was handed over.
func (t *Tunnel) Switched() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.conn != nil
}

// attach hijacks the connection for the switch, unless a ban or deny came
// first, and returns it wrapped: closing it releases the tunnel.
func (t *Tunnel) attach(hijack func() (net.Conn, *bufio.ReadWriter, error)) (net.Conn, *bufio.ReadWriter, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.shut != nil {
		return nil, nil, t.shut
	}
	if t.released {
		return nil, nil, errors.New("tunnels: switch after release")
	}
	c, brw, err := hijack()
	if err != nil {
		return nil, nil, err
	}
	t.conn = c
	t.r.open.Add(1)
	return &conn{Conn: c, t: t}, brw, nil
}

// close closes the tunnel for why (ErrBanned, ErrDenied) and reports
// whether it had switched (a reserved one is refused when it tries).
func (t *Tunnel) close(why error) bool {
	t.mu.Lock()
	if t.released || t.shut != nil {
		t.mu.Unlock()
		return false
	}
	t.shut = why
	c := t.conn
	t.mu.Unlock()
	if c == nil {
		return false
	}
	_ = c.Close() // the proxy's copy loops end; it closes the wrapper, which releases
	return true
}

// CloseID closes the tunnels of the client id (a ban: an address, an
// IPv6 /64 or a principal, as clientid.Identity spells it) and remembers
// the ban for Reserve. It returns how many switched tunnels it closed.
func (r *Registry) CloseID(id netip.Addr) int {
	id = clientid.Identity(id)
	if !id.IsValid() {
		return 0
	}
	now := r.now()
	r.mu.Lock()
	r.prune(now)
	r.banned[id] = now
	var ts []*Tunnel
	for t := range r.byKey[id] {
		if !t.owner.Exempt {
			ts = append(ts, t)
		}
	}
	r.mu.Unlock()
	n := closeAll(ts, ErrBanned)
	r.closedBan.Add(uint64(n))
	return n
}

// ClosePrefix closes the tunnels of every client whose address p holds (a
// deny-list addition) and remembers p for Reserve. It returns how many
// switched tunnels it closed.
func (r *Registry) ClosePrefix(p netip.Prefix) int {
	if !p.IsValid() {
		return 0
	}
	p = p.Masked()
	now := r.now()
	r.mu.Lock()
	r.prune(now)
	r.denied[p] = now
	var ts []*Tunnel
	for t := range r.all {
		if !t.owner.Exempt && p.Contains(t.owner.Addr) {
			ts = append(ts, t)
		}
	}
	r.mu.Unlock()
	n := closeAll(ts, ErrDenied)
	r.closedDeny.Add(uint64(n))
	return n
}

// CloseDenied closes the tunnels of every client denied says is
// deny-listed (for a catch-up after missed announcements), without
// remembering anything. It returns how many switched tunnels it closed.
func (r *Registry) CloseDenied(denied func(netip.Addr) bool) int {
	r.mu.Lock()
	var ts []*Tunnel
	for t := range r.all {
		if !t.owner.Exempt && denied(t.owner.Addr) {
			ts = append(ts, t)
		}
	}
	r.mu.Unlock()
	n := closeAll(ts, ErrDenied)
	r.closedDeny.Add(uint64(n))
	return n
}

// IDs returns the identities tunnels are kept under now (for a catch-up:
// which of them are banned).
func (r *Registry) IDs() []netip.Addr {
	r.mu.Lock()
	defer r.mu.Unlock()
	ids := make([]netip.Addr, 0, len(r.byKey))
	for k := range r.byKey {
		ids = append(ids, k)
	}
	return ids
}

func closeAll(ts []*Tunnel, why error) int {
	n := 0
	for _, t := range ts {
		if t.close(why) {
			n++
		}
	}
	return n
}

// prune forgets bans and denies older than remember, at most once a
// second. Call it with r.mu held.
func (r *Registry) prune(now time.Time) {
	if now.Sub(r.pruned) < time.Second {
		return
	}
	r.pruned = now
	for k, at := range r.banned {
		if now.Sub(at) > remember {
			delete(r.banned, k)
		}
	}
	for p, at := range r.denied {
		if now.Sub(at) > remember {
			delete(r.denied, p)
		}
	}
}

// conn is a tunnel's hijacked connection: closing it releases the tunnel.
type conn struct {
	net.Conn
	t *Tunnel
}

func (c *conn) Close() error {
	err := c.Conn.Close()
	c.t.Release()
	return err
}

// CloseWrite half-closes the connection (the proxy does when the upstream
// has finished sending), where the connection underneath can.
func (c *conn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return errors.New("tunnels: connection cannot half-close")
}

// ReadFrom keeps the connection's own copy path (splice on TCP).
func (c *conn) ReadFrom(r io.Reader) (int64, error) {
	if rf, ok := c.Conn.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return io.Copy(struct{ io.Writer }{c.Conn}, r)
}

// Writer returns w for the reverse proxy to answer t's handshake with:
// the connection it hijacks to switch protocols (through
// http.NewResponseController) is t's, and is refused if t was closed
// meanwhile. Everything else goes to w.
func (t *Tunnel) Writer(w http.ResponseWriter) http.ResponseWriter {
	return &writer{ResponseWriter: w, t: t}
}

type writer struct {
	http.ResponseWriter
	t *Tunnel
}

func (w *writer) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	return w.t.attach(http.NewResponseController(w.ResponseWriter).Hijack)
}

func (w *writer) Unwrap() http.ResponseWriter { return w.ResponseWriter }
