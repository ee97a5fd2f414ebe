// Package locallimit is the in-process stand-in for the Redis rate limiter
// while Redis is unreachable: the same sliding-log semantics (refused
// requests are not recorded), per gateway instance, with a hard cap on the
// number of clients it remembers so an outage cannot grow memory without
// bound.
package locallimit

import (
	"errors"
	"sync"
	"time"

	"github.com/bulwarkgw/bulwark/gateway/internal/ratelimit"
)

// Limiter is safe for concurrent use.
type Limiter struct {
	max int

	mu   sync.Mutex
	logs map[string][]time.Time // oldest first, at most limit entries
}

// New remembers at most maxKeys clients; when full, a key whose window has
// passed is evicted, or else an arbitrary one.
func New(maxKeys int) (*Limiter, error) {
	if maxKeys < 1 {
		return nil, errors.New("locallimit: maxKeys must be positive")
	}
	return &Limiter{max: maxKeys, logs: map[string][]time.Time{}}, nil
}

// Allow records a request for key at now if fewer than limit requests lie
// in (now-window, now].
func (l *Limiter) Allow(key string, limit int64, window time.Duration, now time.Time) ratelimit.Result {
	l.mu.Lock()
	defer l.mu.Unlock()
	log := l.logs[key]
	cut := 0
	for cut < len(log) && !log[cut].After(now.Add(-window)) {
		cut++
	}
	log = log[cut:]
	res := ratelimit.Result{Limit: limit}
	if int64(len(log)) >= limit {
		res.RetryAfter = log[0].Add(window).Sub(now)
		res.Reset = res.RetryAfter
		l.logs[key] = log
		return res
	}
	if _, known := l.logs[key]; !known && len(l.logs) >= l.max {
		l.evict(now, window)
	}
	log = append(log, now)
	l.logs[key] = log
	res.Allowed = true
	res.Remaining = limit - int64(len(log))
	res.Reset = log[0].Add(window).Sub(now)
	return res
}

// evict drops one idle key, or any key when none is idle. l.mu is held.
func (l *Limiter) evict(now time.Time, window time.Duration) {
	var any string
	for k, log := range l.logs {
		if len(log) == 0 || !log[len(log)-1].After(now.Add(-window)) {
			delete(l.logs, k)
			return
		}
		any = k
	}
	delete(l.logs, any)
}

// Len is the number of clients remembered.
func (l *Limiter) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.logs)
}
