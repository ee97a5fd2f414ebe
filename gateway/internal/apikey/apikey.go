// Package apikey mints the API keys handed out on a successful login, checks
// and revokes them, and counts authentication failures per client IP (bad
// keys and failed logins alike, seed 000 decision 1). State lives in Redis so
// every gateway replica shares it.
//
// A key is 32 bytes from crypto/rand, hex-encoded (64 characters, 256 bits).
// Redis never sees the key itself: a session is stored under the SHA-256 of
// the key, so a dump of Redis cannot be replayed. Lookup hashes the presented
// key and fetches that name; nothing secret is ever compared in Go (a timing
// difference in Redis's hash-table lookup can only reveal bits of a SHA-256,
// which do not help to find a preimage). A session's ID, the first 16 hex
// characters of that hash, is safe to log and to show, and is what an
// administrator revokes.
//
// Keys (prefix is the one given to New):
//
//	<prefix>apikey:{<ID>}:s:<sha256 hex>  hash {role, exp}   session, TTL = key TTL
//	<prefix>apikey:{<ID>}:id              string <sha256>    revoke index, same TTL
//	<prefix>apikey:fail:{<ip>}            zset               failure log, TTL = window
//
// The failure log is per exact address (IPv4-mapped IPv6 counted as IPv4):
// the caller's client-identity function decides any coarser grouping.
//
// Both session keys carry the ID as their hash tag so that minting and
// revoking stay on one Redis Cluster slot and can be one transaction; the
// index therefore is "<prefix>apikey:{<ID>}:id" rather than an untagged name.
package apikey

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/bulwarkgw/bulwark/gateway/internal/loginname"
	"github.com/bulwarkgw/bulwark/shared/wire"
)

// ErrNotFound reports an unknown, expired, revoked or malformed key or ID.
var ErrNotFound = errors.New("apikey: not found")

const (
	keyBytes = 32
	// KeyLen is the length of a minted key in hex characters.
	KeyLen = 2 * keyBytes
	// IDLen is the length of a session ID in hex characters.
	IDLen   = 16
	hashLen = 2 * sha256.Size
)

// Session is what a valid key stands for.
type Session struct {
	ID      string    // first 16 hex characters of SHA-256(key): safe to log
	Role    string    // the role the upstream granted at login ("" if none)
	Expires time.Time // the key is refused from this instant on
	// Account names the login the key was minted for (AccountOf: a hash,
	// never the login), "" for a key minted without one. Every key of one
	// account is one principal, so minting a fresh key does not start a
	// fresh record.
	Account string
}

// AccountOf is how Session.Account names a login: the first 16 hex digits
// of the SHA-256 of its canonical spelling (loginname.Canonical), "" for
// none.
func AccountOf(login string) string {
	login = loginname.Canonical(login)
	if login == "" {
		return ""
	}
	sum := sha256.Sum256([]byte(login))
	return hex.EncodeToString(sum[:8])
}

// Store mints, looks up and revokes keys and counts failures.
type Store struct {
	rdb    redis.UniversalClient
	prefix string
	ttl    time.Duration
}

// New returns a Store whose keys all start with prefix and whose minted keys
// live for ttl.
func New(rdb redis.UniversalClient, prefix string, ttl time.Duration) (*Store, error) {
	var errs []error
	if rdb == nil {
		errs = append(errs, errors.New("apikey: nil redis client"))
	}
	if prefix == "" {
		errs = append(errs, errors.New("apikey: empty key prefix"))
	}
	if strings.ContainsAny(prefix, "{}") {
		errs = append(errs, fmt.Errorf("apikey: key prefix %q must not contain '{' or '}' (it would become the cluster hash tag)", prefix))
	}
	if ttl < time.Millisecond {
		errs = append(errs, fmt.Errorf("apikey: key ttl %v must be at least 1ms", ttl))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return &Store{rdb: rdb, prefix: prefix, ttl: ttl}, nil
}

func (s *Store) sessionKey(hash string) string {
	return s.prefix + "apikey:{" + hash[:IDLen] + "}:s:" + hash
}

func (s *Store) indexKey(id string) string {
	return s.prefix + "apikey:{" + id + "}:id"
}

func (s *Store) failKey(ip netip.Addr) string {
	return wire.KeyFailuresKey(s.prefix, ip)
}

// Mint creates a key for role, valid from now for the Store's TTL. The key is
// returned once and never stored; only its hash is.
func (s *Store) Mint(ctx context.Context, role string, now time.Time) (string, Session, error) {
	return s.MintFor(ctx, role, "", now)
}

// MintFor is Mint for the account (AccountOf) that logged in.
func (s *Store) MintFor(ctx context.Context, role, account string, now time.Time) (string, Session, error) {
	raw := make([]byte, keyBytes)
	if _, err := rand.Read(raw); err != nil {
		return "", Session{}, fmt.Errorf("mint key: %w", err)
	}
	key := hex.EncodeToString(raw)
	hash := hashKey(key)
	sess := Session{ID: hash[:IDLen], Role: role, Expires: now.Add(s.ttl), Account: account}
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		sk := s.sessionKey(hash)
		fields := []any{"role", role, "exp", sess.Expires.UnixMilli()}
		if account != "" {
			fields = append(fields, "acct", account)
		}
		p.HSet(ctx, sk, fields...)
		p.PExpire(ctx, sk, s.ttl)
		p.Set(ctx, s.indexKey(sess.ID), hash, s.ttl)
		return nil
	})
	if err != nil {
		return "", Session{}, fmt.Errorf("mint key %s: %w", sess.ID, err)
	}
	return key, sess, nil
}

// Lookup returns the session of key. An unknown, expired or malformed key is
// ErrNotFound; a malformed one is refused without a Redis round trip.
func (s *Store) Lookup(ctx context.Context, key string, now time.Time) (Session, error) {
	if !isHex(key, KeyLen) {
		return Session{}, ErrNotFound
	}
	hash := hashKey(key)
	id := hash[:IDLen]
	vals, err := s.rdb.HMGet(ctx, s.sessionKey(hash), "role", "exp", "acct").Result()
	if err != nil {
		return Session{}, fmt.Errorf("lookup key %s: %w", id, err)
	}
	role, ok1 := vals[0].(string)
	expStr, ok2 := vals[1].(string)
	if !ok1 || !ok2 {
		return Session{}, ErrNotFound
	}
	exp, err := strconv.ParseInt(expStr, 10, 64)
	if err != nil {
		return Session{}, fmt.Errorf("lookup key %s: bad expiry %q: %w", id, expStr, err)
	}
	acct, _ := vals[2].(string) // absent in sessions minted before accounts were kept
	sess := Session{ID: id, Role: role, Expires: time.UnixMilli(exp), Account: acct}
	if !now.Before(sess.Expires) {
		return Session{}, ErrNotFound
	}
	return sess, nil
}

// revoke deletes a session and, if it still points at that session, its
// index. It returns 1 if the session existed.
var revoke = redis.NewScript(`
local n = redis.call('DEL', KEYS[1])
if redis.call('GET', KEYS[2]) == ARGV[1] then
  redis.call('DEL', KEYS[2])
end
return n
`)

// Revoke ends a session before its expiry. id is either the 16-hex-character
// session ID or the full 64-character SHA-256 of the key (never the key
// itself). An unknown or malformed id is ErrNotFound.
func (s *Store) Revoke(ctx context.Context, id string) error {
	id = strings.ToLower(strings.TrimSpace(id))
	var hash string
	switch {
	case isHex(id, hashLen):
		hash = id
	case isHex(id, IDLen):
		h, err := s.rdb.Get(ctx, s.indexKey(id)).Result()
		if errors.Is(err, redis.Nil) {
			return fmt.Errorf("revoke %s: %w", id, ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("revoke %s: %w", id, err)
		}
		if !isHex(h, hashLen) || h[:IDLen] != id {
			return fmt.Errorf("revoke %s: corrupt index %q", id, h)
		}
		hash = h
	default:
		return fmt.Errorf("revoke: malformed id: %w", ErrNotFound)
	}
	short := hash[:IDLen]
	n, err := revoke.Run(ctx, s.rdb, []string{s.sessionKey(hash), s.indexKey(short)}, hash).Int64()
	if err != nil {
		return fmt.Errorf("revoke %s: %w", short, err)
	}
	if n == 0 {
		return fmt.Errorf("revoke %s: %w", short, ErrNotFound)
	}
	return nil
}

// fail appends one failure to a per-IP sliding log and returns how many
// failures the log holds within the window. Entries older than the window
// (score < now - window) are trimmed, and so is everything but the newest
// ARGV[4] entries: that many are enough to decide "more than threshold", so
// an IP flooding failures costs bounded memory.
var fail = redis.NewScript(`
local window = tonumber(ARGV[2])
local cutoff = string.format('%.0f', tonumber(ARGV[1]) - window)
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. cutoff)
redis.call('ZREMRANGEBYRANK', KEYS[1], 0, -1 - tonumber(ARGV[4]))
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return redis.call('ZCOUNT', KEYS[1], cutoff, '+inf')
`)

// Fail records one authentication failure (a missing, unknown or expired
// key, or failed credentials) from ip at now. count is the number of
// failures from ip within window ending at now, this one included, and
// saturates at threshold+1 (older entries are not kept); exceeded is
// count > threshold. With threshold 5 and window 5 s the 6th failure inside
// 5 s is the one that exceeds (scenario S05): the caller blocks that very
// request. A failure exactly window old still counts, as in seed 000.
func (s *Store) Fail(ctx context.Context, ip netip.Addr, window time.Duration, threshold int, now time.Time) (int, bool, error) {
	if !ip.IsValid() {
		return 0, false, errors.New("fail: invalid ip")
	}
	if window < time.Millisecond {
		return 0, false, fmt.Errorf("fail %s: window %v must be at least 1ms", ip, window)
	}
	if threshold < 0 {
		return 0, false, fmt.Errorf("fail %s: negative threshold %d", ip, threshold)
	}
	ip = ip.Unmap()
	ms := now.UnixMilli()
	member := strconv.FormatInt(ms, 10) + "-" + strconv.FormatUint(mrand.Uint64(), 36)
	n, err := fail.Run(ctx, s.rdb, []string{s.failKey(ip)},
		ms, window.Milliseconds(), member, threshold+1).Int()
	if err != nil {
		return 0, false, fmt.Errorf("fail %s: %w", ip, err)
	}
	return n, n > threshold, nil
}

// Failures reports, without recording anything, how many failures from ip
// the log holds within window ending at now (saturated as in Fail).
func (s *Store) Failures(ctx context.Context, ip netip.Addr, window time.Duration, now time.Time) (int, error) {
	if !ip.IsValid() {
		return 0, errors.New("failures: invalid ip")
	}
	ip = ip.Unmap()
	lo := strconv.FormatInt(now.Add(-window).UnixMilli(), 10)
	n, err := s.rdb.ZCount(ctx, s.failKey(ip), lo, "+inf").Result()
	if err != nil {
		return 0, fmt.Errorf("failures %s: %w", ip, err)
	}
	return int(n), nil
}

func hashKey(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:])
}

// isHex reports whether s is exactly n lower-case hex characters.
func isHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
