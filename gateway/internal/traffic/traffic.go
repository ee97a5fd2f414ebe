// Package traffic keeps each client's shared state in Redis so that any
// number of gateway replicas see one truth: sliding-window request counts
// and bans. Observe costs one round trip (a Lua script) per request; keys are
// hash-tagged by IP so the script stays on one Redis Cluster slot.
package traffic

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/redis/go-redis/v9"
)

// Observation is what Observe learned about a client.
type Observation struct {
	// Requests in sliding windows ending now, this request included.
	Count1s, Count10s, Count60s int64
	// Banned is true when an active ban stopped the request before counting;
	// BanTTL is then the ban's remaining time.
	Banned bool
	BanTTL time.Duration
}

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
// memory per client is bounded by 61 fields whatever its rate.
//
// A banned client is answered before anything is counted.
var observe = redis.NewScript(`
local ban = redis.call('PTTL', KEYS[2])
if ban > 0 or ban == -1 then
  return {-1, ban}
end
local now = tonumber(ARGV[1])
local sec = math.floor(now / 1000)
local rest = 1 - (now % 1000) / 1000
redis.call('HINCRBY', KEYS[1], sec, 1)
redis.call('PEXPIRE', KEYS[1], 62000)
local all = redis.call('HGETALL', KEYS[1])
local c1, c10, c60 = 0, 0, 0
for i = 1, #all, 2 do
  local age = sec - tonumber(all[i])
  local n = tonumber(all[i + 1])
  if age > 60 or age < -60 then
    redis.call('HDEL', KEYS[1], all[i])
  else
    if age < 1 then c1 = c1 + n elseif age == 1 then c1 = c1 + n * rest end
    if age < 10 then c10 = c10 + n elseif age == 10 then c10 = c10 + n * rest end
    if age < 60 then c60 = c60 + n elseif age == 60 then c60 = c60 + n * rest end
  end
end
return {math.floor(c1 + 0.5), math.floor(c10 + 0.5), math.floor(c60 + 0.5)}
`)

// Observe records one request from ip at now and returns its counts, or
// reports that ip is banned.
func (s *Store) Observe(ctx context.Context, ip netip.Addr, now time.Time) (Observation, error) {
	res, err := observe.Run(ctx, s.rdb, []string{s.key(ip, "w"), s.key(ip, "ban")}, now.UnixMilli()).Int64Slice()
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
	if len(res) != 3 {
		return Observation{}, fmt.Errorf("observe %s: unexpected reply %v", ip, res)
	}
	return Observation{Count1s: res[0], Count10s: res[1], Count60s: res[2]}, nil
}

// Ban stops ip for ttl on every gateway sharing this Redis.
func (s *Store) Ban(ctx context.Context, ip netip.Addr, ttl time.Duration, reason string) error {
	if err := s.rdb.Set(ctx, s.key(ip, "ban"), reason, ttl).Err(); err != nil {
		return fmt.Errorf("ban %s: %w", ip, err)
	}
	return nil
}

// Unban lifts a ban. It reports whether there was one.
func (s *Store) Unban(ctx context.Context, ip netip.Addr) (bool, error) {
	n, err := s.rdb.Del(ctx, s.key(ip, "ban")).Result()
	if err != nil {
		return false, fmt.Errorf("unban %s: %w", ip, err)
	}
	return n > 0, nil
}
