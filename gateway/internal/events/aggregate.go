package events

import (
	"net/netip"
	"sync"
	"time"

	"github.com/bulwarkgw/bulwark/shared/clientid"
	"github.com/bulwarkgw/bulwark/shared/wire"
)

// folds reports whether repeats of an event type are folded into one event
// with a count. These are the answers a client can make the gateway give
// on every request (refusals, failures, shadow decisions). Bans, unbans,
// issued keys and admin actions change state or leave an audit trail: each
// one is kept, and so is any type not listed here.
func folds(t wire.EventType) bool {
	switch t {
	case wire.EventBlock, wire.EventThrottle, wire.EventDenyList, wire.EventAuthFailure,
		wire.EventBruteforceBlock, wire.EventKeyInvalid, wire.EventShadowBlock:
		return true
	}
	return false
}

// foldKey is what makes two events repeats of each other: the client (an
// IPv6 client by its /64, as the limits count it), the type, the route and
// the status.
type foldKey struct {
	client netip.Addr // clientid.Identity
	raw    string     // the IP field when it is not an address
	typ    wire.EventType
	route  string
	status int
}

func keyOf(ev wire.Event) foldKey {
	k := foldKey{typ: ev.Type, route: ev.Route, status: ev.Status}
	ip, err := netip.ParseAddr(ev.IP)
	if err != nil {
		k.raw = ev.IP
		return k
	}
	k.client = clientid.Identity(ip)
	return k
}

// window is one key's open aggregation window.
type window struct {
	key   foldKey
	until time.Time  // when the window closes
	n     int        // repeats folded into it so far
	first time.Time  // the first repeat's time
	last  wire.Event // the newest repeat
}

// aggregator folds repeats. The first event of a key is not folded: it goes
// out at once and opens a window; repeats within the window are counted,
// and when it closes they leave as one event (the newest repeat with Count
// and FirstTS) and a new window opens. A window that closes with no repeats
// is forgotten, so the next event of its key goes out at once again. A
// client can therefore cause at most one event per key per window, plus
// the first. At most maxKeys windows are open; beyond that events are not
// folded (never dropped).
type aggregator struct {
	every   time.Duration
	maxKeys int

	mu    sync.Mutex
	open  map[foldKey]*window
	order []*window // by until, oldest first (windows open in time order)
}

func newAggregator(every time.Duration, maxKeys int) *aggregator {
	return &aggregator{every: every, maxKeys: maxKeys, open: map[foldKey]*window{}}
}

// fold reports whether ev, published at now, was folded into an open
// window; if not, the caller sends it on.
func (a *aggregator) fold(ev wire.Event, now time.Time) bool {
	if !folds(ev.Type) {
		return false
	}
	k := keyOf(ev)
	a.mu.Lock()
	defer a.mu.Unlock()
	if w := a.open[k]; w != nil {
		if w.n == 0 {
			w.first = ev.TS
		}
		w.n++
		w.last = ev
		return true
	}
	if len(a.open) < a.maxKeys {
		w := &window{key: k, until: now.Add(a.every)}
		a.open[k] = w
		a.order = append(a.order, w)
	}
	return false
}

// due closes the windows that end by now and returns their folded events.
func (a *aggregator) due(now time.Time) []wire.Event {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []wire.Event
	i := 0
	for ; i < len(a.order) && !a.order[i].until.After(now); i++ {
		w := a.order[i]
		if w.n == 0 {
			delete(a.open, w.key)
			continue
		}
		out = append(out, w.folded())
		w.n, w.last = 0, wire.Event{}
		w.until = now.Add(a.every)
		a.order = append(a.order, w)
	}
	a.order = append(a.order[:0], a.order[i:]...)
	return out
}

// all closes every window (at shutdown) and returns their folded events.
func (a *aggregator) all() []wire.Event {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []wire.Event
	for _, w := range a.order {
		if w.n > 0 {
			out = append(out, w.folded())
		}
	}
	a.open, a.order = map[foldKey]*window{}, nil
	return out
}

// folded is the event a window's repeats leave as.
func (w *window) folded() wire.Event {
	ev := w.last
	if w.n > 1 {
		ev.Count, ev.FirstTS = w.n, w.first
	}
	return ev
}
