// Package scorecache keeps each client's latest score for a short time so
// that a busy client is not scored on every request. A cached score is
// reused only while it is fresh (younger than the TTL) and the client's
// observations have not moved: every count within a tolerance of the one
// it was scored with, the same user agent, sensitivity and principal's last
// other address. When a count
// moves (a burst building up, auth failures arriving) the client is scored
// again at once, so caching delays a decision by at most the tolerance.
//
// One verdict outlives a failure of the scorer: a client that matched an
// allow rule (a verified crawler: its user agent and its network) keeps
// that verdict for up to AllowGrace while the scorer cannot be reached, as
// long as it sends the same user agent; the rule depends on nothing else.
package scorecache

import (
	"context"
	"errors"
	"hash/maphash"
	"math"
	"sync"
	"time"

	"github.com/bulwarkgw/bulwark/shared/wire"
)

// Scorer scores a client's observed behaviour.
type Scorer interface {
	Score(ctx context.Context, req wire.ScoreRequest) (wire.ScoreResponse, error)
}

// Cache wraps a Scorer with a per-IP cache. It is itself a Scorer and safe
// for concurrent use.
type Cache struct {
	next      Scorer
	ttl       time.Duration
	tolerance float64
	now       func() time.Time
	seed      maphash.Seed
	shards    [shards]shard
}

var _ Scorer = (*Cache)(nil)

// AllowGrace is how long an allow-rule verdict stands in for a scorer that
// fails.
const AllowGrace = 10 * time.Minute

const (
	shards = 64
	// perShard bounds each shard; a full shard drops expired entries, then
	// an eighth of its entries, arbitrary ones.
	perShard = 1024
)

type shard struct {
	mu sync.Mutex
	m  map[string]entry
}

type entry struct {
	req wire.ScoreRequest
	res wire.ScoreResponse
	at  time.Time
}

// New returns a Cache in front of next. ttl 0 disables caching (every call
// goes to next); tolerance is the fraction by which a count may move before
// the client is scored again. now is time.Now in production.
func New(next Scorer, ttl time.Duration, tolerance float64, now func() time.Time) (*Cache, error) {
	if next == nil {
		return nil, errors.New("scorecache: nil scorer")
	}
	if ttl < 0 || tolerance < 0 || tolerance > 1 || math.IsNaN(tolerance) {
		return nil, errors.New("scorecache: ttl must be >= 0 and tolerance in [0, 1]")
	}
	if now == nil {
		now = time.Now
	}
	c := &Cache{next: next, ttl: ttl, tolerance: tolerance, now: now, seed: maphash.MakeSeed()}
	for i := range c.shards {
		c.shards[i].m = make(map[string]entry)
	}
	return c, nil
}

// Score returns the cached score for req's client (cacheKey) when it is fresh and the
// client's observations have not moved; otherwise it asks the wrapped
// Scorer and caches a successful answer.
func (c *Cache) Score(ctx context.Context, req wire.ScoreRequest) (wire.ScoreResponse, error) {
	if c.ttl == 0 {
		return c.next.Score(ctx, req)
	}
	key := cacheKey(&req)
	sh := &c.shards[maphash.String(c.seed, key)%shards]
	now := c.now()
	sh.mu.Lock()
	e, ok := sh.m[key]
	sh.mu.Unlock()
	if ok && now.Sub(e.at) < c.ttl && !c.moved(&e.req, &req) {
		return e.res, nil
	}
	res, err := c.next.Score(ctx, req)
	if err != nil {
		if ok && e.res.Allow != "" && e.req.UserAgent == req.UserAgent && now.Sub(e.at) < AllowGrace {
			return e.res, nil
		}
		return res, err
	}
	sh.mu.Lock()
	if len(sh.m) >= perShard {
		c.evict(sh, now)
	}
	sh.m[key] = entry{req: req, res: res, at: now}
	sh.mu.Unlock()
	return res, nil
}

// cacheKey is whom a score is cached for: the principal when the request
// has one (many principals share a NAT's or a cloud's address, and each is
// judged by its own record), else the address.
func cacheKey(req *wire.ScoreRequest) string {
	if req.Principal != "" {
		return req.Principal
	}
	return req.IP
}

// evict drops expired entries and, if that freed too little, arbitrary
// ones, leaving the shard at most 7/8 full so that the next evictions are
// far apart. The caller holds the lock.
func (c *Cache) evict(sh *shard, now time.Time) {
	for ip, e := range sh.m {
		if now.Sub(e.at) >= c.ttl {
			delete(sh.m, ip)
		}
	}
	for ip := range sh.m {
		if len(sh.m) <= perShard*7/8 {
			return
		}
		delete(sh.m, ip)
	}
}

// moved reports whether the client's observations differ enough from the
// ones its cached score was computed from.
func (c *Cache) moved(old, cur *wire.ScoreRequest) bool {
	if old.Sensitive != cur.Sensitive || old.Asset != cur.Asset || old.Probe != cur.Probe || old.UserAgent != cur.UserAgent || old.PrevIP != cur.PrevIP || old.IP != cur.IP {
		return true
	}
	pairs := [...][2]int64{
		{old.Count1s, cur.Count1s}, {old.Count10s, cur.Count10s}, {old.Count60s, cur.Count60s},
		{old.Visits, cur.Visits}, {old.SensitiveHits, cur.SensitiveHits},
		{old.AuthFailures, cur.AuthFailures}, {old.Errors4xx, cur.Errors4xx},
		{old.DistinctPaths, cur.DistinctPaths}, {old.SequentialIDs, cur.SequentialIDs},
		{int64(old.Intervals), int64(cur.Intervals)},
		{old.Assets10s, cur.Assets10s}, {old.Probes, cur.Probes},
		{old.Pages60s, cur.Pages60s}, {old.Assets60s, cur.Assets60s}, {old.Refused60s, cur.Refused60s},
	}
	for _, p := range pairs {
		if math.Abs(float64(p[1]-p[0])) > c.tolerance*float64(max(p[0], 1)) {
			return true
		}
	}
	return math.Abs(cur.IntervalCV-old.IntervalCV) > c.tolerance
}

// Len returns the number of cached clients.
func (c *Cache) Len() int {
	n := 0
	for i := range c.shards {
		c.shards[i].mu.Lock()
		n += len(c.shards[i].m)
		c.shards[i].mu.Unlock()
	}
	return n
}
