// Package traffic keeps each client's shared state in Redis so that any
// number of gateway replicas see one truth: sliding-window request counts,
// the behavioural features the scorer needs (sensitive-path hits, upstream
// error and auth-failure answers, distinct paths, runs of sequential ids,
// recent inter-arrival times, a fixed-window visit counter) and bans.
// Observe costs one round trip (a Lua script) per request; RecordResponse
// one more, only for 4xx answers. Keys are hash-tagged by IP so each script
// stays on one Redis Cluster slot.
package traffic

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// Observation is what Observe learned about a client.
type Observation struct {
	// Requests in sliding windows ending now, this request included.
	Count1s, Count10s, Count60s int64
	// Visits in the current fixed visit window, this request included.
	Visits int64
	// Sensitive repeats Request.Sensitive; SensitiveHits counts requests
	// to sensitive paths in 60 s, this one included.
	Sensitive     bool
	SensitiveHits int64
	// Upstream answers in 60 s (RecordResponse): every 4xx, and 401/403.
	Errors4xx, AuthFailures int64
	// DistinctPaths in 60 s (at most MaxPaths).
	DistinctPaths int64
	// SequentialIDs is the length of the client's current run of
	// neighbouring ids on one path pattern: steps of +1 (or of -1), always
	// the same way.
	SequentialIDs int64
	// Intervals gaps between the client's last requests (at most
	// Timestamps-1) and their coefficient of variation.
	Intervals  int
	IntervalCV float64
	// PrevIP is the other address the request's principal was last seen
	// from, PrevAge how long ago; PrevIP is invalid when there is none.
	PrevIP  netip.Addr
	PrevAge time.Duration
	// Banned is true when an active ban stopped the request before counting;
	// BanTTL is then the ban's remaining time.
	Banned bool
	BanTTL time.Duration
}

// Limits of the per-client state.
const (
	// MaxPaths bounds the distinct paths remembered per client.
	MaxPaths = 256
	// Timestamps is how many recent request times are kept per client.
	Timestamps = 12
)

// Store reads and writes client state in Redis.
type Store struct {
	rdb    redis.UniversalClient
	prefix string
}

// New returns a Store whose keys all start with prefix.
func New(rdb redis.UniversalClient, prefix string) (*Store, error) {
	if rdb == nil {
		return nil, errors.New("traffic: nil redis client")
	}
	if prefix == "" {
		return nil, errors.New("traffic: empty key prefix")
	}
	return &Store{rdb: rdb, prefix: prefix}, nil
}

func (s *Store) key(ip netip.Addr, kind string) string {
	return s.prefix + "{" + ip.String() + "}:" + kind
}

// observe counts requests in one hash per client: field = Unix second,
// value = requests in that second. A window of W seconds is the sum of the
// W most recent whole seconds plus the older edge second weighted by the part
// of it still inside the window (the sliding-window counter). Old fields are
// deleted as they age out and the key expires when the client goes quiet, so
// memory per client is bounded by 61 fields whatever its rate. Sensitive
// hits and the upstream's 4xx and 401/403 answers are counted the same way
// in their own hashes (60 s window only).
//
// Beside the counts it keeps: the last Timestamps request times (a list),
// the paths of the last 60 s (a sorted set by time, at most MaxPaths), the
// current run of neighbouring ids (a hash: pattern, id, run, direction),
// and seed 002's
// visit counter (INCR with an expiry set atomically on the first visit: a
// fixed window anchored at the first request).
//
// A banned client is answered before anything is counted.
//
// KEYS: w, ban, s, x4, xa, t, p, q, v
// ARGV: now_ms, path, sensitive (0/1), pattern, id, visit_window_ms
var observe = redis.NewScript(`
local ban = redis.call('PTTL', KEYS[2])
if ban > 0 or ban == -1 then
  return {-1, ban}
end
local now = tonumber(ARGV[1])
local sec = math.floor(now / 1000)
local rest = 1 - (now % 1000) / 1000
local function windows(key)
  local all = redis.call('HGETALL', key)
  local c1, c10, c60 = 0, 0, 0
  for i = 1, #all, 2 do
    local age = sec - tonumber(all[i])
    local n = tonumber(all[i + 1])
    if age > 60 or age < -60 then
      redis.call('HDEL', key, all[i])
    else
      if age < 1 then c1 = c1 + n elseif age == 1 then c1 = c1 + n * rest end
      if age < 10 then c10 = c10 + n elseif age == 10 then c10 = c10 + n * rest end
      if age < 60 then c60 = c60 + n elseif age == 60 then c60 = c60 + n * rest end
    end
  end
  return math.floor(c1 + 0.5), math.floor(c10 + 0.5), math.floor(c60 + 0.5)
end
redis.call('HINCRBY', KEYS[1], sec, 1)
redis.call('PEXPIRE', KEYS[1], 62000)
local c1, c10, c60 = windows(KEYS[1])
if ARGV[3] == '1' then
  redis.call('HINCRBY', KEYS[3], sec, 1)
  redis.call('PEXPIRE', KEYS[3], 62000)
end
local _, _, sens = windows(KEYS[3])
local _, _, e4 = windows(KEYS[4])
local _, _, ea = windows(KEYS[5])

redis.call('LPUSH', KEYS[6], ARGV[1])
redis.call('LTRIM', KEYS[6], 0, ` + fmt.Sprint(Timestamps-1) + `)
redis.call('PEXPIRE', KEYS[6], 62000)
local ts = redis.call('LRANGE', KEYS[6], 0, -1)

redis.call('ZADD', KEYS[7], ARGV[1], ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[7], '-inf', now - 60000)
redis.call('ZREMRANGEBYRANK', KEYS[7], 0, -` + fmt.Sprint(MaxPaths+1) + `)
redis.call('PEXPIRE', KEYS[7], 62000)
local paths = redis.call('ZCARD', KEYS[7])

local run = 0
if ARGV[4] ~= '' then
  local id = tonumber(ARGV[5])
  local prev = redis.call('HMGET', KEYS[8], 'p', 'i', 'r', 'd')
  local dir = 0
  if prev[1] == ARGV[4] and prev[2] then
    local d = id - tonumber(prev[2])
    local r = tonumber(prev[3] or '0')
    local pd = tonumber(prev[4] or '0')
    if d == 0 then
      run, dir = r, pd
    elseif (d == 1 or d == -1) and (pd == 0 or pd == d) then
      run, dir = r + 1, d
    end
  end
  redis.call('HSET', KEYS[8], 'p', ARGV[4], 'i', ARGV[5], 'r', run, 'd', dir)
  redis.call('PEXPIRE', KEYS[8], 60000)
else
  run = tonumber(redis.call('HGET', KEYS[8], 'r') or '0')
end

local visits = redis.call('INCR', KEYS[9])
if visits == 1 then
  redis.call('PEXPIRE', KEYS[9], tonumber(ARGV[6]))
end

local out = {c1, c10, c60, visits, sens, e4, ea, paths, run}
for i = 1, #ts do out[#out + 1] = tonumber(ts[i]) end
return out
`)

// fixedFields is the number of counts before the timestamps in observe's
// reply.
const fixedFields = 9

// travel reads where a principal was last seen (Remember writes it, only
// once the principal is verified): the address and time, when the address
// differs from this one. The key is tagged by the principal, not the IP,
// so on Redis Cluster it may live on another node: it goes in the same
// pipeline as observe, one round trip on a single node. Reading never
// writes: an unverified name in a request body must not move anyone.
//
// KEYS: the principal's key; ARGV: ip
var travel = redis.NewScript(`
local prev = redis.call('HMGET', KEYS[1], 'ip', 't')
if prev[1] and prev[1] ~= ARGV[1] then
  return {prev[1], prev[2]}
end
return {}
`)

// pathDigest is what the distinct-paths set stores: 8 bytes of the path's
// SHA-256, so a client sending long paths cannot grow its Redis memory
// (only the number of distinct paths is ever read).
func pathDigest(path string) string {
	sum := sha256.Sum256([]byte(path))
	return hex.EncodeToString(sum[:8])
}

// truncated bounds the enumeration pattern kept per client.
func truncated(s string) string {
	if len(s) > 256 {
		return s[:256]
	}
	return s
}

// Remember records that a verified principal (an API key the gateway
// accepted, a login the upstream confirmed) was just used from ip, for
// impossible travel. Names merely sent in a request are never remembered:
// anyone could send them from anywhere.
func (s *Store) Remember(ctx context.Context, principal string, ip netip.Addr, now time.Time) error {
	if principal == "" {
		return nil
	}
	key := s.prefix + "{" + principal + "}:loc"
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.HSet(ctx, key, "ip", ip.String(), "t", now.UnixMilli())
		p.PExpire(ctx, key, 24*time.Hour)
		return nil
	})
	if err != nil {
		return fmt.Errorf("remember %s: %w", principal, err)
	}
	return nil
}

// Observe records one request from ip at now and returns its counts and
// features, or reports that ip is banned.
func (s *Store) Observe(ctx context.Context, ip netip.Addr, now time.Time, req Request) (Observation, error) {
	return s.ObserveWith(ctx, ip, now, req, nil)
}

// ObserveWith is Observe with more commands in the same pipeline: extra,
// when not nil, queues them (a rate limit's script, say) so the request
// still costs one round trip. Their results are read from their own
// commands after ObserveWith returns.
func (s *Store) ObserveWith(ctx context.Context, ip netip.Addr, now time.Time, req Request, extra func(redis.Pipeliner)) (Observation, error) {
	window := req.VisitWindow
	if window <= 0 {
		window = time.Minute
	}
	sensitive := "0"
	if req.Sensitive {
		sensitive = "1"
	}
	keys := []string{
		s.key(ip, "w"), s.key(ip, "ban"), s.key(ip, "s"), s.key(ip, "x4"), s.key(ip, "xa"),
		s.key(ip, "t"), s.key(ip, "p"), s.key(ip, "q"), s.key(ip, "v"),
	}
	args := []any{now.UnixMilli(), pathDigest(req.Path), sensitive, truncated(req.Pattern), req.ID, window.Milliseconds()}
	var res []int64
	var prev []any
	var err error
	if req.Principal == "" && extra == nil {
		res, err = observe.Run(ctx, s.rdb, keys, args...).Int64Slice()
	} else {
		res, prev, err = s.observePipelined(ctx, keys, args, ip, req.Principal, extra)
	}
	if err != nil {
		return Observation{}, fmt.Errorf("observe %s: %w", ip, err)
	}
	if len(res) == 2 && res[0] == -1 {
		o := Observation{Banned: true, BanTTL: time.Duration(res[1]) * time.Millisecond}
		if res[1] < 0 {
			o.BanTTL = 0 // a ban without expiry
		}
		return o, nil
	}
	if len(res) < fixedFields {
		return Observation{}, fmt.Errorf("observe %s: unexpected reply %v", ip, res)
	}
	o := Observation{
		Count1s: res[0], Count10s: res[1], Count60s: res[2], Visits: res[3],
		Sensitive: req.Sensitive, SensitiveHits: res[4], Errors4xx: res[5], AuthFailures: res[6],
		DistinctPaths: res[7], SequentialIDs: res[8],
	}
	o.Intervals, o.IntervalCV = Regularity(res[fixedFields:])
	if len(prev) == 2 {
		pip, _ := prev[0].(string)
		pt, _ := prev[1].(string)
		ms, perr := strconv.ParseInt(pt, 10, 64)
		if a, aerr := netip.ParseAddr(pip); aerr == nil && perr == nil {
			o.PrevIP, o.PrevAge = a, max(now.Sub(time.UnixMilli(ms)), 0)
		}
	}
	return o, nil
}

// observeWithPrincipal runs observe and travel in one pipeline. Scripts
// are sent by hash; one the server does not have yet (first use, or after
// a Redis restart: NOSCRIPT) is sent again in full, on its own.
// observePipelined sends observe, the principal's travel lookup (when there
// is a principal) and extra in one pipeline. A script Redis has not cached
// yet (NOSCRIPT, after a restart) is sent again on its own.
func (s *Store) observePipelined(ctx context.Context, keys []string, args []any, ip netip.Addr, principal string, extra func(redis.Pipeliner)) ([]int64, []any, error) {
	trKeys := []string{s.prefix + "{" + principal + "}:loc"}
	trArgs := []any{ip.String()}
	pipe := s.rdb.Pipeline()
	obs := observe.EvalSha(ctx, pipe, keys, args...)
	var tr *redis.Cmd
	if principal != "" {
		tr = travel.EvalSha(ctx, pipe, trKeys, trArgs...)
	}
	if extra != nil {
		extra(pipe)
	}
	_, _ = pipe.Exec(ctx) // every command carries its own error
	if noScript(obs.Err()) {
		obs = observe.Run(ctx, s.rdb, keys, args...)
	}
	res, err := obs.Int64Slice()
	if err != nil {
		return nil, nil, err
	}
	if tr == nil {
		return res, nil, nil
	}
	if noScript(tr.Err()) {
		tr = travel.Run(ctx, s.rdb, trKeys, trArgs...)
	}
	prev, err := tr.Slice()
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, nil, err
	}
	return res, prev, nil
}

func noScript(err error) bool { return err != nil && redis.HasErrorPrefix(err, "NOSCRIPT") }

// Regularity returns the number of gaps between the times (Unix ms, newest
// first, as the list keeps them) and the gaps' coefficient of variation
// (population standard deviation / mean). Equal times give gaps of 0; when
// every gap is 0 the CV is 0 (perfectly regular).
func Regularity(times []int64) (int, float64) {
	n := len(times) - 1
	if n < 1 {
		return 0, 0
	}
	var sum float64
	gaps := make([]float64, n)
	for i := range n {
		gaps[i] = math.Abs(float64(times[i] - times[i+1]))
		sum += gaps[i]
	}
	mean := sum / float64(n)
	if mean == 0 {
		return n, 0
	}
	var sq float64
	for _, g := range gaps {
		sq += (g - mean) * (g - mean)
	}
	return n, math.Sqrt(sq/float64(n)) / mean
}

// recordResponse counts one upstream answer: every 4xx, and 401/403 also
// as an auth failure. KEYS: x4, xa; ARGV: sec, auth (0/1).
var recordResponse = redis.NewScript(`
redis.call('HINCRBY', KEYS[1], ARGV[1], 1)
redis.call('PEXPIRE', KEYS[1], 62000)
if ARGV[2] == '1' then
  redis.call('HINCRBY', KEYS[2], ARGV[1], 1)
  redis.call('PEXPIRE', KEYS[2], 62000)
end
return 1
`)

// RecordResponse counts the upstream's answer to ip: a 4xx toward the
// error ratio, a 401 or 403 also toward auth failures. Other statuses are
// not recorded and cost nothing.
func (s *Store) RecordResponse(ctx context.Context, ip netip.Addr, now time.Time, status int) error {
	if status < 400 || status > 499 {
		return nil
	}
	auth := "0"
	if status == 401 || status == 403 {
		auth = "1"
	}
	err := recordResponse.Run(ctx, s.rdb, []string{s.key(ip, "x4"), s.key(ip, "xa")}, now.Unix(), auth).Err()
	if err != nil {
		return fmt.Errorf("record response %s: %w", ip, err)
	}
	return nil
}
