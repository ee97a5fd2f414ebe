// Package ratelimit enforces sliding-window request limits shared by every
// gateway replica. Each key is a sliding log in one Redis sorted set: a
// request is allowed iff fewer than limit allowed requests lie in
// (now-window, now]; denied requests are not recorded, so a client that keeps
// hammering is let in again as soon as its oldest allowed request ages out.
// One check is one atomic Lua script, and a key never holds more than limit
// entries.
package ratelimit

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// ErrInvalid reports a bad argument to Allow or Count.
var ErrInvalid = errors.New("invalid rate limit")

// Result is the outcome of one Allow.
type Result struct {
	Allowed   bool
	Limit     int64
	Remaining int64 // requests still allowed in the window after this one
	// Reset is the time until the oldest request in the window leaves it,
	// freeing a slot (0 if the window is empty): RateLimit-Reset.
	Reset time.Duration
	// RetryAfter is the time until a request would be allowed; it is > 0
	// only when this one was denied.
	RetryAfter time.Duration
}

// Limiter checks and records requests in Redis. It is safe for concurrent use.
type Limiter struct {
	rdb    redis.UniversalClient
	prefix string
}

// New returns a Limiter whose keys are <prefix>rl:<key>.
func New(rdb redis.UniversalClient, prefix string) (*Limiter, error) {
	if rdb == nil {
		return nil, errors.New("ratelimit: nil redis client")
	}
	if prefix == "" {
		return nil, errors.New("ratelimit: empty key prefix")
	}
	return &Limiter{rdb: rdb, prefix: prefix}, nil
}

func (l *Limiter) key(key string) string { return l.prefix + "rl:" + key }

// allow runs the sliding log for one key. KEYS[1] is the sorted set (member:
// unique per request, score: time in ms); ARGV: now ms, window ms, limit,
// member. It drops entries that left the window, trims to the newest limit
// entries (only ever needed after the limit was lowered; the decision is the
// same), records the request if fewer than limit remain, and keeps the key
// only as long as its newest entry stays in the window. It returns {allowed
// (0|1), count, ms until the oldest entry leaves}.
var allow = redis.NewScript(`
local now = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local limit = tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local n = redis.call('ZCARD', KEYS[1])
if n > limit then
  redis.call('ZREMRANGEBYRANK', KEYS[1], 0, n - limit - 1)
  n = limit
end
local allowed = 0
if n < limit then
  redis.call('ZADD', KEYS[1], now, ARGV[4])
  n = n + 1
  allowed = 1
end
if n == 0 then
  return {allowed, 0, 0}
end
local oldest = tonumber(redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')[2])
local newest = tonumber(redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')[2])
redis.call('PEXPIRE', KEYS[1], math.max(newest + window - now, 1))
return {allowed, n, math.max(oldest + window - now, 0)}
`)

func check(limit int64, window time.Duration) error {
	if limit <= 0 {
		return fmt.Errorf("limit %d: %w: must be positive", limit, ErrInvalid)
	}
	if window < time.Millisecond {
		return fmt.Errorf("window %v: %w: must be at least 1ms", window, ErrInvalid)
	}
	return nil
}

// Queue adds the check of Allow to pipe and returns a function that reads
// its result once pipe has been executed (a script Redis has not cached yet
// is then run on its own). It lets a caller put its limits in the same
// round trip as other work.
//
// The returned function takes its own context: the pipeline's may be over
// by the time the result is read, and a script Redis has forgotten (after
// a restart) is then run again with it.
func (l *Limiter) Queue(ctx context.Context, pipe redis.Pipeliner, key string, limit int64, window time.Duration, now time.Time) func(context.Context) (Result, error) {
	if err := check(limit, window); err != nil {
		return func(context.Context) (Result, error) { return Result{}, fmt.Errorf("rate limit %s: %w", key, err) }
	}
	member := strconv.FormatInt(now.UnixMicro(), 10) + "-" + randomSuffix()
	keys, args := []string{l.key(key)}, []any{now.UnixMilli(), window.Milliseconds(), limit, member}
	cmd := allow.EvalSha(ctx, pipe, keys, args...)
	return func(ctx context.Context) (Result, error) {
		c := cmd
		if err := c.Err(); err != nil && redis.HasErrorPrefix(err, "NOSCRIPT") {
			c = allow.Run(ctx, l.rdb, keys, args...)
		}
		res, err := c.Int64Slice()
		if err != nil {
			return Result{}, fmt.Errorf("rate limit %s: %w", key, err)
		}
		return decode(res, key, limit)
	}
}

func decode(res []int64, key string, limit int64) (Result, error) {
	if len(res) != 3 {
		return Result{}, fmt.Errorf("rate limit %s: unexpected reply %v", key, res)
	}
	r := Result{
		Allowed:   res[0] == 1,
		Limit:     limit,
		Remaining: max(limit-res[1], 0),
		Reset:     time.Duration(res[2]) * time.Millisecond,
	}
	if !r.Allowed {
		r.RetryAfter = max(r.Reset, time.Millisecond)
	}
	return r, nil
}

// Allow records a request for key at now if fewer than limit requests were
// allowed in (now-window, now], and reports the outcome. Times have
// millisecond resolution.
//
// key is any string; it is stored as <prefix>rl:<key>. Redis Cluster hashes
// only the part of a key inside its first {…}, so a caller that wants a
// client's limit in the same slot as its other state writes the hash tag
// itself, e.g. "ip:{203.0.113.7}" or "route:login:{203.0.113.7}".
func (l *Limiter) Allow(ctx context.Context, key string, limit int64, window time.Duration, now time.Time) (Result, error) {
	if err := check(limit, window); err != nil {
		return Result{}, fmt.Errorf("rate limit %s: %w", key, err)
	}
	member := strconv.FormatInt(now.UnixMicro(), 10) + "-" + randomSuffix()
	res, err := allow.Run(ctx, l.rdb, []string{l.key(key)},
		now.UnixMilli(), window.Milliseconds(), limit, member).Int64Slice()
	if err != nil {
		return Result{}, fmt.Errorf("rate limit %s: %w", key, err)
	}
	return decode(res, key, limit)
}

func randomSuffix() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b) // never fails
	return hex.EncodeToString(b)
}

// Count returns how many allowed requests for key lie in (now-window, now].
// After the limit for a key was lowered it may under-count: entries beyond
// the new limit are dropped by the next Allow.
func (l *Limiter) Count(ctx context.Context, key string, window time.Duration, now time.Time) (int64, error) {
	if window < time.Millisecond {
		return 0, fmt.Errorf("count %s: window %v: %w: must be at least 1ms", key, window, ErrInvalid)
	}
	from := "(" + strconv.FormatInt(now.Add(-window).UnixMilli(), 10)
	to := strconv.FormatInt(now.UnixMilli(), 10)
	n, err := l.rdb.ZCount(ctx, l.key(key), from, to).Result()
	if err != nil {
		return 0, fmt.Errorf("count %s: %w", key, err)
	}
	return n, nil
}

// Clear forgets every request recorded for key and reports whether there
// were any.
func (l *Limiter) Clear(ctx context.Context, key string) (bool, error) {
	n, err := l.rdb.Del(ctx, l.key(key)).Result()
	if err != nil {
		return false, fmt.Errorf("clear %s: %w", key, err)
	}
	return n > 0, nil
}

// Headers sets RateLimit-Limit, RateLimit-Remaining and RateLimit-Reset
// (whole seconds, rounded up) from r and, when r was denied, Retry-After
// (whole seconds, rounded up, at least 1).
func Headers(h http.Header, r Result) {
	h.Set("RateLimit-Limit", strconv.FormatInt(r.Limit, 10))
	h.Set("RateLimit-Remaining", strconv.FormatInt(max(r.Remaining, 0), 10))
	h.Set("RateLimit-Reset", strconv.FormatInt(ceilSeconds(r.Reset), 10))
	if r.Allowed {
		h.Del("Retry-After")
	} else {
		h.Set("Retry-After", strconv.FormatInt(max(ceilSeconds(r.RetryAfter), 1), 10))
	}
}

func ceilSeconds(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return int64((d + time.Second - 1) / time.Second)
}
