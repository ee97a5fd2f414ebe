// Package locallimit is the in-process stand-in for the Redis rate limiter
// while Redis is unreachable: the same sliding-log semantics (refused
// requests are not recorded), per gateway instance, with a hard cap on the
// number of clients it remembers so an outage cannot grow memory without
// bound.
package locallimit

import (
	"container/list"
	"errors"
	"sync"
	"time"

	"github.com/bulwarkgw/bulwark/gateway/internal/ratelimit"
)

// Limiter is safe for concurrent use.
type Limiter struct {
	max int

	mu      sync.Mutex
	logs    map[string]*list.Element // of *entry
	recency *list.List               // most recently used at the front
}

type entry struct {
	key string
	log []time.Time // oldest first, at most limit entries
}

// New remembers at most maxKeys clients; when full, the least recently
// seen one is forgotten (in constant time).
func New(maxKeys int) (*Limiter, error) {
	if maxKeys < 1 {
		return nil, errors.New("locallimit: maxKeys must be positive")
	}
	return &Limiter{max: maxKeys, logs: map[string]*list.Element{}, recency: list.New()}, nil
}

// Allow records a request for key at now if fewer than limit requests lie
// in (now-window, now].
func (l *Limiter) Allow(key string, limit int64, window time.Duration, now time.Time) ratelimit.Result {
	l.mu.Lock()
	defer l.mu.Unlock()
	el, known := l.logs[key]
	if !known {
		if l.recency.Len() >= l.max {
			oldest := l.recency.Back()
			delete(l.logs, oldest.Value.(*entry).key)
			l.recency.Remove(oldest)
		}
		el = l.recency.PushFront(&entry{key: key})
		l.logs[key] = el
	}
	l.recency.MoveToFront(el)
	e := el.Value.(*entry)
	cut := 0
	for cut < len(e.log) && !e.log[cut].After(now.Add(-window)) {
		cut++
	}
	e.log = e.log[cut:]
	res := ratelimit.Result{Limit: limit}
	if int64(len(e.log)) >= limit {
		res.RetryAfter = e.log[0].Add(window).Sub(now)
		res.Reset = res.RetryAfter
		return res
	}
	e.log = append(e.log, now)
	res.Allowed = true
	res.Remaining = limit - int64(len(e.log))
	res.Reset = e.log[0].Add(window).Sub(now)
	return res
}

// Len is the number of clients remembered.
func (l *Limiter) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.logs)
}
