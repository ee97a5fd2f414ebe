// Package bans creates, lists and lifts client bans. A ban is the key
// <prefix>{<id>}:ban (wire.BanKey) holding the reason with a TTL, which the
// gateway's per-request script (package traffic) checks; this package also
// keeps the sorted set <prefix>bans (wire.BanIndexKey; member: id, score:
// until in Unix ms) so that bans can be listed without scanning the
// keyspace. The id is the client's clientid.Identity: the address for
// IPv4, the first address of the /64 for IPv6, so any address of a /64
// bans, finds and lifts the /64's one ban.
//
// Ban also announces the ban on wire.BanChannel, in the same round trip,
// so that every gateway closes the client's open tunnels (package
// tunnels) without polling.
//
// Every write sends the ban key and the index in one round trip: inside
// MULTI/EXEC where one server holds both, in a plain pipeline on Redis
// Cluster, where the index and the hash-tagged ban key live on different
// slots and a transaction across slots is refused. The key is the truth,
// the index a hint that List and Get check against it and prune.
package bans

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/bulwarkgw/bulwark/shared/clientid"
	"github.com/bulwarkgw/bulwark/shared/wire"
)

// ErrInvalid reports a bad argument to Ban.
var ErrInvalid = errors.New("invalid ban")

// Ban is one active ban.
type Ban struct {
	IP     netip.Addr // the client's clientid.Identity
	Reason string
	Until  time.Time // zero for a ban without expiry (set outside this package)
}

// Store manages bans in Redis. It is safe for concurrent use.
type Store struct {
	rdb     redis.UniversalClient
	prefix  string
	index   string
	channel string
}

// New returns a Store whose keys all start with prefix.
func New(rdb redis.UniversalClient, prefix string) (*Store, error) {
	if rdb == nil {
		return nil, errors.New("bans: nil redis client")
	}
	if prefix == "" {
		return nil, errors.New("bans: empty key prefix")
	}
	return &Store{rdb: rdb, prefix: prefix, index: wire.BanIndexKey(prefix), channel: wire.BanChannel(prefix)}, nil
}

// normalise gives the identity the gateway keeps a client under
// (clientid.Identity), so keys match the ones the traffic script checks.
func normalise(ip netip.Addr) netip.Addr { return clientid.Identity(ip) }

func (s *Store) key(ip netip.Addr) string { return wire.BanKey(s.prefix, ip) }

// together sends the commands fn queues in one round trip: as a
// transaction on a single server, as a pipeline on a cluster (see the
// package comment).
func (s *Store) together(ctx context.Context, fn func(redis.Pipeliner) error) ([]redis.Cmder, error) {
	if _, ok := s.rdb.(*redis.ClusterClient); ok {
		return s.rdb.Pipelined(ctx, fn)
	}
	return s.rdb.TxPipelined(ctx, fn)
}

// ban sets KEYS[1] to ARGV[1] with a TTL of ARGV[2] ms unless it already
// holds a ban that lasts at least as long. It returns the ban's remaining
// time in ms afterwards, -1 for a ban without expiry.
var ban = redis.NewScript(`
local ttl = tonumber(ARGV[2])
local left = redis.call('PTTL', KEYS[1])
if left == -1 or left >= ttl then
  return left
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ttl)
return ttl
`)

// Ban bans ip for ttl from now on every gateway sharing this Redis. A
// longer ban already in place is kept as it is, reason included; a shorter
// one is replaced. Either way the ban is announced on wire.BanChannel.
func (s *Store) Ban(ctx context.Context, ip netip.Addr, ttl time.Duration, reason string, now time.Time) error {
	if !ip.IsValid() {
		return fmt.Errorf("ban: %w: no IP", ErrInvalid)
	}
	ip = normalise(ip)
	if ttl < time.Millisecond {
		return fmt.Errorf("ban %s: %w: ttl %v must be at least 1ms", ip, ErrInvalid, ttl)
	}
	ms := ttl.Milliseconds()
	until := now.Add(time.Duration(ms) * time.Millisecond)
	notice, _ := json.Marshal(wire.BanNotice{Ban: ip.String()}) // cannot fail
	var left *redis.Cmd
	// GT: the index, like the ban, only ever moves later, so concurrent bans
	// of one client from several gateways leave the longest. Expired entries
	// are pruned here too, so the index stays as small as the active bans
	// even when nobody lists them.
	_, err := s.together(ctx, func(p redis.Pipeliner) error {
		left = ban.Eval(ctx, p, []string{s.key(ip)}, reason, ms)
		p.ZAddGT(ctx, s.index, redis.Z{Score: float64(until.UnixMilli()), Member: ip.String()})
		p.ZRemRangeByScore(ctx, s.index, "-inf", "("+strconv.FormatInt(now.UnixMilli(), 10))
		p.Publish(ctx, s.channel, notice)
		return nil
	})
	if err != nil {
		return fmt.Errorf("ban %s: %w", ip, err)
	}
	n, err := left.Int64()
	if err != nil {
		return fmt.Errorf("ban %s: %w", ip, err)
	}
	if n == ms {
		return nil
	}
	// A longer ban was already in place and stays: index its end instead
	// (a second round trip, only in this rare case).
	score := math.Inf(1)
	if n >= 0 {
		score = float64(now.Add(time.Duration(n) * time.Millisecond).UnixMilli())
	}
	if err := s.rdb.ZAddGT(ctx, s.index, redis.Z{Score: score, Member: ip.String()}).Err(); err != nil {
		return fmt.Errorf("ban %s: index: %w", ip, err)
	}
	return nil
}

// Unban lifts the ban on ip and reports whether there was one.
func (s *Store) Unban(ctx context.Context, ip netip.Addr) (bool, error) {
	ip = normalise(ip)
	var del *redis.IntCmd
	_, err := s.together(ctx, func(p redis.Pipeliner) error {
		del = p.Del(ctx, s.key(ip))
		p.ZRem(ctx, s.index, ip.String())
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("unban %s: %w", ip, err)
	}
	return del.Val() > 0, nil
}

// List returns the active bans sorted by Until (bans without expiry last),
// pruning index entries whose time has passed or whose ban key is gone.
func (s *Store) List(ctx context.Context, now time.Time) ([]Ban, error) {
	nowMs := strconv.FormatInt(now.UnixMilli(), 10)
	var live *redis.ZSliceCmd
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.ZRemRangeByScore(ctx, s.index, "-inf", nowMs)
		// By score, that is by Until; +inf (no expiry) sorts last.
		live = p.ZRangeByScoreWithScores(ctx, s.index, &redis.ZRangeBy{Min: "(" + nowMs, Max: "+inf"})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list bans: %w", err)
	}
	zs := live.Val()
	type entry struct {
		ip    netip.Addr
		score float64
		get   *redis.StringCmd
	}
	entries := make([]entry, 0, len(zs))
	var stale []any // member, score pairs for forget
	for _, z := range zs {
		m, _ := z.Member.(string)
		ip, err := netip.ParseAddr(m)
		if err != nil || ip.String() != m || clientid.Identity(ip) != ip {
			// Not an id: no gateway checks such a key (an IPv6 ban once
			// made on one address of a /64), so it bans nobody.
			stale = append(stale, m, scoreArg(z.Score))
			continue
		}
		entries = append(entries, entry{ip: ip, score: z.Score})
	}
	// One GET per key: the keys are in different cluster slots, which MGET
	// would refuse.
	_, err = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i := range entries {
			entries[i].get = p.Get(ctx, s.key(entries[i].ip))
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("list bans: %w", err)
	}
	out := make([]Ban, 0, len(entries))
	for _, e := range entries {
		reason, err := e.get.Result()
		if errors.Is(err, redis.Nil) {
			stale = append(stale, e.ip.String(), scoreArg(e.score)) // lifted or expired elsewhere
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("list bans: %s: %w", e.ip, err)
		}
		out = append(out, Ban{IP: e.ip, Reason: reason, Until: until(e.score)})
	}
	if len(stale) > 0 {
		if err := forget.Run(ctx, s.rdb, []string{s.index}, stale...).Err(); err != nil {
			return nil, fmt.Errorf("list bans: prune: %w", err)
		}
	}
	return out, nil
}

// forget removes index members whose ban key was found gone (ARGV: member,
// score pairs as listed), unless a new ban moved the score since: the
// index's slot cannot see the ban keys, so the score is the witness.
var forget = redis.NewScript(`
local n = 0
for i = 1, #ARGV, 2 do
  local s = redis.call('ZSCORE', KEYS[1], ARGV[i])
  if s and tonumber(s) <= tonumber(ARGV[i + 1]) then
    n = n + redis.call('ZREM', KEYS[1], ARGV[i])
  end
end
return n
`)

// scoreArg spells an index score as forget's tonumber reads it.
func scoreArg(f float64) string {
	if math.IsInf(f, 1) {
		return "inf"
	}
	return strconv.FormatFloat(f, 'f', -1, 64)
}

func until(score float64) time.Time {
	if math.IsInf(score, 1) {
		return time.Time{}
	}
	return time.UnixMilli(int64(score))
}

// Left returns how long the ban on ip has left, 0 when there is none: one
// PTTL, for the request path.
func (s *Store) Left(ctx context.Context, ip netip.Addr) (time.Duration, error) {
	d, err := s.rdb.PTTL(ctx, s.key(normalise(ip))).Result()
	if err != nil {
		return 0, fmt.Errorf("ban left %s: %w", ip, err)
	}
	return max(d, 0), nil // -2: no key; -1: no expiry, which Ban never writes
}

// Banned returns those of ids (as their clientid.Identity) that are banned
// now: one round trip, an EXISTS per ban key (on a cluster the keys live
// on different slots). A gateway that missed ban announcements asks it
// about the clients whose tunnels it holds.
func (s *Store) Banned(ctx context.Context, ids []netip.Addr) ([]netip.Addr, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	exists := make([]*redis.IntCmd, len(ids))
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, id := range ids {
			exists[i] = p.Exists(ctx, s.key(normalise(id)))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("banned: %w", err)
	}
	var out []netip.Addr
	for i, e := range exists {
		if e.Val() > 0 {
			out = append(out, normalise(ids[i]))
		}
	}
	return out, nil
}

// Get returns the active ban on ip, if any. Until comes from the index; for
// a ban set outside this package (not indexed) it is estimated from the
// key's TTL and the local clock.
func (s *Store) Get(ctx context.Context, ip netip.Addr) (Ban, bool, error) {
	ip = normalise(ip)
	var get *redis.StringCmd
	var pttl *redis.DurationCmd
	var score *redis.FloatCmd
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		get = p.Get(ctx, s.key(ip))
		pttl = p.PTTL(ctx, s.key(ip))
		score = p.ZScore(ctx, s.index, ip.String())
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return Ban{}, false, fmt.Errorf("get ban %s: %w", ip, err)
	}
	reason, err := get.Result()
	if errors.Is(err, redis.Nil) {
		return Ban{}, false, nil
	}
	if err != nil {
		return Ban{}, false, fmt.Errorf("get ban %s: %w", ip, err)
	}
	b := Ban{IP: ip, Reason: reason}
	switch sc, err := score.Result(); {
	case err == nil:
		b.Until = until(sc)
	case errors.Is(err, redis.Nil):
		if d := pttl.Val(); d > 0 {
			b.Until = time.Now().Add(d).Truncate(time.Millisecond)
		}
	default:
		return Ban{}, false, fmt.Errorf("get ban %s: index: %w", ip, err)
	}
	return b, true, nil
}
