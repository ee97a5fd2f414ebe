// Package traffic reads and edits the per-client state the gateways keep in
// Redis: bans (a key per client whose TTL is the time left) and the
// per-second request window of the last minute. Unban lifts a ban and
// records an unban event on the live stream and in MongoDB, as a gateway
// records its bans.
//
// A client is what the gateways keep one: an IPv4 address, or an IPv6 /64
// (package clientid). Its keys are spelled with its clientid.Identity, and
// it is shown as clientid.Display spells it ("2001:db8:1:2::/64").
//
// Bans are listed from the gateways' ban index (wire.BanIndexKey), never by
// scanning the keyspace, so a listing costs the same however many clients
// Redis tracks. A ban key without an index entry (set by hand, or whose
// index write was lost) is enforced by every gateway and shown by Client,
// but not listed; it leaves by itself when it expires. Every gateway
// version has written the index, so an upgrade leaves no such bans behind.
package traffic

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"sort"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/bulwarkgw/bulwark/shared/clientid"
	"github.com/bulwarkgw/bulwark/shared/wire"
)

// MaxBans caps how many bans one List returns.
const MaxBans = 1000

// streamMaxLen caps the live stream as the gateways do (approximately).
const streamMaxLen = 10000

// Store reads client state under a key prefix.
type Store struct {
	rdb    redis.UniversalClient
	prefix string
	events *mongo.Collection
	id     string // written as the events' gateway
}

// New returns a store. events receives the unban events; source names the
// dashboard instance on them.
func New(rdb redis.UniversalClient, prefix string, events *mongo.Collection, source string) (*Store, error) {
	if rdb == nil || events == nil || prefix == "" {
		return nil, errors.New("traffic: nil redis client or collection, or empty prefix")
	}
	return &Store{rdb: rdb, prefix: prefix, events: events, id: source}, nil
}

// together sends the commands fn queues in one round trip: as a
// transaction on a single server, as a pipeline on Redis Cluster, where the
// index and the hash-tagged ban keys live on different slots and a
// transaction across slots is refused.
func (s *Store) together(ctx context.Context, fn func(redis.Pipeliner) error) ([]redis.Cmder, error) {
	if _, ok := s.rdb.(*redis.ClusterClient); ok {
		return s.rdb.Pipelined(ctx, fn)
	}
	return s.rdb.TxPipelined(ctx, fn)
}

// forget removes index members whose ban key was found gone (ARGV: member,
// score pairs as listed), unless a new ban moved the score since.
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

// List returns the active bans as of now (at most MaxBans), the
// longest-lasting first, with their time left. It reads the ban index, not
// the keyspace: two round trips, the first prunes the index of bans whose
// time has passed and reads one page of it, the second reads that page's
// ban keys. Its cost grows with the bans listed, never with the clients
// Redis tracks. Index members whose ban key is gone (lifted without the
// index, or evicted) are skipped and removed.
func (s *Store) List(ctx context.Context, now time.Time) ([]wire.Ban, error) {
	index := wire.BanIndexKey(s.prefix)
	nowMs := strconv.FormatInt(now.UnixMilli(), 10)
	var page *redis.ZSliceCmd
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.ZRemRangeByScore(ctx, index, "-inf", nowMs)
		// By score, the ban's end, latest first: no expiry (+inf) leads.
		page = p.ZRevRangeByScoreWithScores(ctx, index, &redis.ZRangeBy{Max: "+inf", Min: "(" + nowMs, Count: MaxBans})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list bans: index: %w", err)
	}
	zs := page.Val()
	ttls := make([]*redis.DurationCmd, len(zs))
	vals := make([]*redis.StringCmd, len(zs))
	// Per-key commands: on a cluster each goes to its own slot.
	_, err = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, z := range zs {
			m, _ := z.Member.(string)
			id, _ := netip.ParseAddr(m) // not a client's id: skipped below
			k := wire.BanKey(s.prefix, id)
			ttls[i] = p.PTTL(ctx, k)
			vals[i] = p.Get(ctx, k)
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("list bans: %w", err)
	}
	out := make([]wire.Ban, 0, len(zs))
	var gone []any
	for i, z := range zs {
		m, _ := z.Member.(string)
		id, err := netip.ParseAddr(m)
		if err != nil || id.String() != m || clientid.Identity(id) != id {
			// Not a client's id: no gateway checks this key (an IPv6 ban
			// once made on one address of a /64), so it bans nobody.
			gone = append(gone, m, scoreArg(z.Score))
			continue
		}
		ttl := ttls[i].Val()
		if ttl == -2*time.Nanosecond || errors.Is(vals[i].Err(), redis.Nil) {
			gone = append(gone, m, scoreArg(z.Score))
			continue
		}
		if ttls[i].Err() != nil || vals[i].Err() != nil {
			continue // not a string: not a ban
		}
		b := wire.Ban{IP: clientid.Display(id), TTLSeconds: -1, Reason: vals[i].Val()}
		if ttl > 0 {
			b.TTLSeconds = int64((ttl + time.Second - 1) / time.Second)
		}
		out = append(out, b)
	}
	if len(gone) > 0 {
		if err := forget.Run(ctx, s.rdb, []string{index}, gone...).Err(); err != nil {
			return nil, fmt.Errorf("list bans: prune: %w", err)
		}
	}
	// The index orders by the ends the gateways computed; order by the
	// time left Redis reports, as the list shows it.
	sort.SliceStable(out, func(i, j int) bool {
		ti, tj := out[i].TTLSeconds, out[j].TTLSeconds
		if (ti < 0) != (tj < 0) {
			return ti < 0 // no expiry first
		}
		if ti != tj {
			return ti > tj
		}
		return out[i].IP < out[j].IP
	})
	return out, nil
}

// scoreArg spells an index score as forget's tonumber reads it.
func scoreArg(f float64) string {
	if math.IsInf(f, 1) {
		return "inf"
	}
	return strconv.FormatFloat(f, 'f', -1, 64)
}

// Client is what Redis knows about one client now.
type Client struct {
	Banned bool `json:"banned"`
	// BanTTLSeconds is the ban's time left (-1: no expiry); 0 when not banned.
	BanTTLSeconds int64  `json:"ban_ttl_seconds,omitempty"`
	BanReason     string `json:"ban_reason,omitempty"`
	// Requests per 10 s over the last minute (6 buckets, each stamped
	// with its start), oldest first, zeros included (a banned client's
	// refused requests are not counted).
	Requests []wire.Point `json:"requests"`
}

// Client returns the ban and request window of ip's client (for IPv6, its
// /64) as of now.
func (s *Store) Client(ctx context.Context, ip netip.Addr, now time.Time) (Client, error) {
	if !ip.IsValid() {
		return Client{}, errors.New("read client: no address")
	}
	id := clientid.Identity(ip)
	var state *redis.StringCmd
	var ttl *redis.DurationCmd
	var reason *redis.StringCmd
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		state = p.Get(ctx, wire.ClientKey(s.prefix, id))
		ttl = p.PTTL(ctx, wire.BanKey(s.prefix, id))
		reason = p.Get(ctx, wire.BanKey(s.prefix, id))
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return Client{}, fmt.Errorf("read client %s: %w", clientid.Display(ip), err)
	}
	var c Client
	if d := ttl.Val(); d > 0 || d == -1 {
		c.Banned, c.BanReason, c.BanTTLSeconds = true, reason.Val(), -1
		if d > 0 {
			c.BanTTLSeconds = int64((d + time.Second - 1) / time.Second)
		}
	}
	// The gateways keep a minute of requests in 10 s buckets; a state
	// this dashboard cannot read (a newer layout) shows none.
	var st wire.ClientState
	if raw, err := state.Bytes(); err == nil {
		st, _ = wire.DecodeClientState(raw)
	}
	c.Requests = st.Requests10s(now.UnixMilli())
	return c, nil
}

// ErrNotBanned is returned by Unban when ip has no active ban.
var ErrNotBanned = errors.New("traffic: not banned")

// Unban lifts the ban of ip's client (for IPv6, its /64) on every gateway
// (the ban key and its index entry, in one round trip) and records an unban
// event, whose ip is the client as clientid.Display spells it, on the live
// stream and in MongoDB. It returns ErrNotBanned when there was no ban.
func (s *Store) Unban(ctx context.Context, ip netip.Addr, now time.Time) (wire.Event, error) {
	if !ip.IsValid() {
		return wire.Event{}, errors.New("unban: no address")
	}
	id, who := clientid.Identity(ip), clientid.Display(ip)
	var del *redis.IntCmd
	_, err := s.together(ctx, func(p redis.Pipeliner) error {
		del = p.Del(ctx, wire.BanKey(s.prefix, id))
		p.ZRem(ctx, wire.BanIndexKey(s.prefix), wire.ClientID(id))
		return nil
	})
	if err != nil {
		return wire.Event{}, fmt.Errorf("unban %s: %w", who, err)
	}
	if del.Val() == 0 {
		return wire.Event{}, ErrNotBanned
	}
	ev := wire.Event{ID: newID(now), TS: now.UTC(), Type: wire.EventUnban, IP: who, Gateway: s.id}
	b, err := json.Marshal(ev)
	if err != nil {
		return ev, fmt.Errorf("encode unban event: %w", err)
	}
	var errs []error
	if err := s.rdb.XAdd(ctx, &redis.XAddArgs{
		Stream: wire.StreamKey(s.prefix), MaxLen: streamMaxLen, Approx: true,
		Values: map[string]any{wire.StreamField: b},
	}).Err(); err != nil {
		errs = append(errs, fmt.Errorf("publish unban event: %w", err))
	}
	if _, err := s.events.InsertOne(ctx, ev); err != nil {
		errs = append(errs, fmt.Errorf("store unban event: %w", err))
	}
	return ev, errors.Join(errs...)
}

// newID returns a unique, time-ordered event id in the gateways' format
// (base-36 Unix milliseconds, a dash, 16 hex digits).
func newID(now time.Time) string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return strconv.FormatInt(now.UnixMilli(), 36) + "-" + hex.EncodeToString(b[:])
}
