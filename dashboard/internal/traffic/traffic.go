// Package traffic reads and edits the per-client state the gateways keep in
// Redis: bans (a key per client whose TTL is the time left) and the
// per-second request window of the last minute. Unban lifts a ban and
// records an unban event on the live stream and in MongoDB, as a gateway
// records its bans.
package traffic

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"go.mongodb.org/mongo-driver/v2/mongo"

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

// globEscape quotes the characters SCAN MATCH treats specially.
func globEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`*?[]\`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// List returns the active bans (at most MaxBans), the longest-lasting first,
// with their time left as of now. It walks the keyspace with SCAN (on every
// master of a cluster), so call it every few seconds, not per request.
func (s *Store) List(ctx context.Context) ([]wire.Ban, error) {
	match := globEscape(s.prefix) + "{*}:ban"
	var (
		mu   sync.Mutex // ForEachMaster scans the masters concurrently
		keys []string
	)
	scan := func(ctx context.Context, c redis.UniversalClient) error {
		it := c.Scan(ctx, 0, match, 1000).Iterator()
		for it.Next(ctx) {
			mu.Lock()
			full := len(keys) >= MaxBans
			if !full {
				keys = append(keys, it.Val())
			}
			mu.Unlock()
			if full {
				break
			}
		}
		return it.Err()
	}
	var err error
	if cc, ok := s.rdb.(*redis.ClusterClient); ok {
		err = cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error { return scan(ctx, c) })
	} else {
		err = scan(ctx, s.rdb)
	}
	if err != nil {
		return nil, fmt.Errorf("scan bans: %w", err)
	}
	return s.bans(ctx, keys)
}

func (s *Store) bans(ctx context.Context, keys []string) ([]wire.Ban, error) {
	ttls := make([]*redis.DurationCmd, len(keys))
	vals := make([]*redis.StringCmd, len(keys))
	// Per-key commands: on a cluster each goes to its own slot.
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, k := range keys {
			ttls[i] = p.PTTL(ctx, k)
			vals[i] = p.Get(ctx, k)
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("read bans: %w", err)
	}
	out := make([]wire.Ban, 0, len(keys))
	for i, k := range keys {
		ttl := ttls[i].Val()
		ip, ok := ipOf(s.prefix, k)
		if !ok || ttl == -2*time.Nanosecond || ttls[i].Err() != nil || vals[i].Err() != nil {
			continue // expired between SCAN and PTTL, or not ours
		}
		b := wire.Ban{IP: ip, TTLSeconds: -1, Reason: vals[i].Val()}
		if ttl > 0 {
			b.TTLSeconds = int64((ttl + time.Second - 1) / time.Second)
		}
		out = append(out, b)
	}
	sort.Slice(out, func(i, j int) bool {
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

// ipOf extracts the IP of a "<prefix>{<ip>}:ban" key.
func ipOf(prefix, key string) (string, bool) {
	rest, ok := strings.CutPrefix(key, prefix+"{")
	if !ok {
		return "", false
	}
	ip, ok := strings.CutSuffix(rest, "}:ban")
	if _, err := netip.ParseAddr(ip); !ok || err != nil {
		return "", false
	}
	return ip, true
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

// Client returns ip's ban and request window as of now.
// identity is the address the gateway keeps a client's window and ban
// under: the address itself for IPv4, the first address of its /64 for
// IPv6 (the gateway counts and bans IPv6 clients by their /64).
func identity(ip string) string {
	a, err := netip.ParseAddr(ip)
	if err != nil || !a.Unmap().Is6() {
		return ip
	}
	p, _ := a.Prefix(64)
	return p.Addr().String()
}

func (s *Store) Client(ctx context.Context, ip string, now time.Time) (Client, error) {
	ip = identity(ip)
	var state *redis.StringCmd
	var ttl *redis.DurationCmd
	var reason *redis.StringCmd
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		state = p.Get(ctx, wire.ClientKey(s.prefix, ip))
		ttl = p.PTTL(ctx, wire.BanKey(s.prefix, ip))
		reason = p.Get(ctx, wire.BanKey(s.prefix, ip))
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return Client{}, fmt.Errorf("read client %s: %w", ip, err)
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

// Unban lifts ip's ban on every gateway and records an unban event on the
// live stream and in MongoDB. It returns ErrNotBanned when there was no ban.
func (s *Store) Unban(ctx context.Context, ip string, now time.Time) (wire.Event, error) {
	key := wire.BanKey(s.prefix, identity(ip))
	n, err := s.rdb.Del(ctx, key).Result()
	if err != nil {
		return wire.Event{}, fmt.Errorf("unban %s: %w", ip, err)
	}
	if n == 0 {
		return wire.Event{}, ErrNotBanned
	}
	ev := wire.Event{ID: newID(now), TS: now.UTC(), Type: wire.EventUnban, IP: ip, Gateway: s.id}
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
