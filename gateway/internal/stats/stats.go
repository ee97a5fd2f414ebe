// Package stats counts the gateway's decisions per second in memory and
// flushes the deltas to Redis twice a second (HINCRBY, so any number of
// gateways sum into the same per-second hashes the dashboard reads). The
// request path only takes a short mutex; Redis is never on it.
package stats

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/bulwarkgw/bulwark/shared/wire"
)

// Decision is what happened to one request.
type Decision int

// Decisions.
const (
	Allowed Decision = iota
	Throttled
	Blocked
)

// counts is one second of deltas: requests, allowed, throttled, blocked, bans.
type counts [5]int64

var fields = [5]string{wire.StatRequests, wire.StatAllowed, wire.StatThrottled, wire.StatBlocked, wire.StatBans}

// Counter accumulates per-second deltas until the next flush.
type Counter struct {
	rdb    redis.UniversalClient
	prefix string
	log    *slog.Logger

	mu      sync.Mutex
	pending map[int64]*counts
}

// New returns a Counter writing under prefix.
func New(rdb redis.UniversalClient, prefix string, log *slog.Logger) (*Counter, error) {
	if rdb == nil || log == nil {
		return nil, errors.New("stats: nil redis client or logger")
	}
	return &Counter{rdb: rdb, prefix: prefix, log: log, pending: map[int64]*counts{}}, nil
}

func (c *Counter) bucket(now time.Time) *counts {
	sec := now.Unix()
	b := c.pending[sec]
	if b == nil {
		b = &counts{}
		c.pending[sec] = b
	}
	return b
}

// Request counts one request and its decision.
func (c *Counter) Request(now time.Time, d Decision) {
	c.mu.Lock()
	b := c.bucket(now)
	b[0]++
	b[1+int(d)]++
	c.mu.Unlock()
}

// Ban counts one ban.
func (c *Counter) Ban(now time.Time) {
	c.mu.Lock()
	c.bucket(now)[4]++
	c.mu.Unlock()
}

// Run flushes every interval until ctx ends, then flushes once more.
func (c *Counter) Run(ctx context.Context, interval time.Duration) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			c.Flush(fctx)
			cancel()
			return nil
		case <-t.C:
			c.Flush(ctx)
		}
	}
}

// Flush writes the pending deltas. On failure they are merged back and tried
// again next time, unless they have outlived the per-second hashes.
func (c *Counter) Flush(ctx context.Context) {
	c.mu.Lock()
	batch := c.pending
	c.pending = map[int64]*counts{}
	c.mu.Unlock()
	if len(batch) == 0 {
		return
	}
	fctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	var total counts
	_, err := c.rdb.Pipelined(fctx, func(p redis.Pipeliner) error {
		for sec, b := range batch {
			key := wire.StatsKey(c.prefix, sec)
			for i, n := range b {
				if n != 0 {
					p.HIncrBy(fctx, key, fields[i], n)
					total[i] += n
				}
			}
			p.Expire(fctx, key, wire.StatsRetentionSeconds*time.Second)
		}
		for i, n := range total {
			if n != 0 {
				p.HIncrBy(fctx, wire.StatsTotalKey(c.prefix), fields[i], n)
			}
		}
		return nil
	})
	if err == nil {
		return
	}
	c.log.Warn("stats flush failed", "err", err)
	oldest := time.Now().Unix() - wire.StatsRetentionSeconds
	c.mu.Lock()
	defer c.mu.Unlock()
	for sec, b := range batch {
		if sec < oldest {
			continue
		}
		dst := c.bucket(time.Unix(sec, 0))
		for i := range b {
			dst[i] += b[i]
		}
	}
}
