package server

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bulwarkgw/bulwark/shared/wire"
)

// warmer sends the scorer, off the request path, the first request of a
// client whose user agent claims a crawler the scorer verifies by reverse
// DNS, when the fast path forwarded it without asking: the scorer starts
// its lookup then, so the claim is verified (or refuted) long before the
// client's behaviour could need the scorer's verdict. Without it a real
// crawler on a cloud network doing nothing abusive would never be looked
// up, and the first time its behaviour (a run of neighbouring ids as it
// walks a catalogue) lifts its bound, it would be scored unverified.
//
// At most warmInFlight calls run at once (more are skipped: the next
// request tries again), and a client is sent at most once per warmEvery.
type warmer struct {
	inflight atomic.Int32
	mu       sync.Mutex
	sent     map[string]time.Time
}

const (
	warmInFlight = 4
	warmEvery    = time.Minute
	warmClients  = 4096 // remembered; past that the memory is cleared
)

// start sends req in the background unless its client was sent within
// warmEvery or warmInFlight calls are running; it reports whether it did.
func (w *warmer) start(s Scorer, req wire.ScoreRequest, timeout time.Duration, now time.Time) bool {
	w.mu.Lock()
	if w.sent == nil || len(w.sent) >= warmClients {
		w.sent = make(map[string]time.Time)
	}
	if at, ok := w.sent[req.IP]; ok && now.Sub(at) < warmEvery {
		w.mu.Unlock()
		return false
	}
	if w.inflight.Add(1) > warmInFlight {
		w.inflight.Add(-1)
		w.mu.Unlock()
		return false
	}
	w.sent[req.IP] = now
	w.mu.Unlock()
	go func() {
		defer w.inflight.Add(-1)
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		_, _ = s.Score(ctx, req) // the answer is the scorer's cache's and the score cache's
	}()
	return true
}
