// Package bruteforce protects logins from password guessing, in Redis so all
// gateway replicas share one state. It does two jobs that the seeds did
// separately:
//
//   - Rate limits before authenticating (seed 003's SignIn, POST /v1/check):
//     one attempt is taken from a login bucket, a password bucket and an IP
//     bucket. Each bucket is a GCRA in its continuous-state leaky-bucket form
//     (exact integer microseconds): Rate attempts may come at once, then one
//     more every Interval/Rate, and a bucket left alone for Interval is full
//     again. The seed's "leaky bucket" was really a fixed window anchored at
//     the first hit.
//   - Consecutive-failure lockout after the upstream answered (seed 004):
//     Failures failures in a row, the first and last no more than
//     FailureWindow apart, lock that login, or that IP, for LockFor.
//
// Decisions made here:
//
//   - All or nothing. Check decides every bucket and both locks in one Lua
//     script and consumes from all three buckets only when it allows; a
//     refused attempt consumes nothing. (Seed 003 took from the login bucket
//     even when the password bucket then refused.)
//   - One hash tag. Because that script must touch three entities (login,
//     password, IP) and two locks atomically, every key of a Guard carries
//     the same tag "{bf}" and so lives on one Redis Cluster slot. The
//     trade-off: login protection for the whole deployment is served by one
//     shard, which bounds its throughput to what one Redis core runs (tens of
//     thousands of checks per second, far above any login rate), in exchange
//     for exact atomicity and no cross-slot scripts. Prefixes must therefore
//     not contain '{' or '}'.
//   - Logins are normalised by trimming spaces and lower-casing (Unicode
//     simple lower case, no NFKC), so "Alice " and "alice" share a bucket,
//     run and lock. Logins and passwords only ever appear in Redis as the
//     hex SHA-256 of the normalised login or the exact password bytes. An
//     empty login is ErrInvalid; an empty password is a password like any
//     other.
//   - IPv4 addresses (and IPv4-mapped IPv6) are bucketed per address; IPv6
//     per /64, the smallest block an end site is normally given, so one
//     client cannot rotate through its 2^64 addresses to reset its limits.
//   - Login and IP lockouts are independent: locking a login never locks the
//     IP it was attacked from, and locking an IP never locks the logins tried
//     from it (seed 004 stored both in one row and leaked each into the other).
//   - A success resets that login's run and that IP's run of failures; it
//     does not lift an existing lock (only expiry or an admin reset does).
//   - Failures recorded while the login (or IP) is locked are ignored: they
//     neither extend the lock nor start a new run, so a lock lasts exactly
//     LockFor from the failure that set it and the attacker cannot keep a
//     victim locked for longer by guessing through the lock (with inline
//     protection such attempts never reach the upstream anyway). When a lock
//     is set the run is cleared, so after it expires the login gets Failures
//     fresh tries.
//   - Time is passed in (now) and all decisions compare against it; Redis
//     TTLs only collect garbage, with a second of slack for clock skew.
package bruteforce

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/bulwarkgw/bulwark/gateway/internal/loginname"
	"github.com/bulwarkgw/bulwark/shared/wire"
)

var (
	// ErrNotFound reports a reset of a login, password or IP with no state.
	ErrNotFound = errors.New("bruteforce: not found")
	// ErrInvalid reports an empty login or an invalid IP address.
	ErrInvalid = errors.New("bruteforce: invalid input")
)

// Bucket allows Rate attempts per Interval.
type Bucket struct {
	Rate     int
	Interval time.Duration
}

// Config sets the limits. The zero value is invalid; start from
// DefaultConfig.
type Config struct {
	Login, Password, IP Bucket        // seed 003: 10/1m, 100/1m, 1000/1m
	Failures            int           // consecutive failures that lock (seed 004: 8)
	FailureWindow       time.Duration // ...within this window (10s)
	LockFor             time.Duration // lock duration (1h)
}

// DefaultConfig returns the seeds' defaults.
func DefaultConfig() Config {
	return Config{
		Login:         Bucket{Rate: 10, Interval: time.Minute},
		Password:      Bucket{Rate: 100, Interval: time.Minute},
		IP:            Bucket{Rate: 1000, Interval: time.Minute},
		Failures:      8,
		FailureWindow: 10 * time.Second,
		LockFor:       time.Hour,
	}
}

// maxExact is the largest integer a Lua (double) number holds exactly.
const maxExact = 1 << 53

// Validate reports every problem in c, each naming its field.
func (c Config) Validate() error {
	var errs []error
	for _, b := range []struct {
		name string
		b    Bucket
	}{{"Login", c.Login}, {"Password", c.Password}, {"IP", c.IP}} {
		if b.b.Rate <= 0 {
			errs = append(errs, fmt.Errorf("bruteforce: %s.Rate must be positive, got %d", b.name, b.b.Rate))
		}
		if b.b.Interval < time.Millisecond {
			errs = append(errs, fmt.Errorf("bruteforce: %s.Interval must be at least 1ms, got %v", b.name, b.b.Interval))
		}
		if b.b.Rate > 0 && b.b.Interval > 0 && float64(b.b.Rate)*float64(b.b.Interval.Microseconds()) > maxExact {
			errs = append(errs, fmt.Errorf("bruteforce: %s.Rate × %s.Interval is too large (%d per %v)", b.name, b.name, b.b.Rate, b.b.Interval))
		}
	}
	if c.Failures <= 0 {
		errs = append(errs, fmt.Errorf("bruteforce: Failures must be positive, got %d", c.Failures))
	}
	if c.FailureWindow < time.Millisecond {
		errs = append(errs, fmt.Errorf("bruteforce: FailureWindow must be at least 1ms, got %v", c.FailureWindow))
	}
	if c.LockFor < time.Millisecond {
		errs = append(errs, fmt.Errorf("bruteforce: LockFor must be at least 1ms, got %v", c.LockFor))
	}
	return errors.Join(errs...)
}

// Reason says why Decide refused an attempt.
type Reason string

// The reasons Decide gives. Allowed is the empty reason.
const (
	Allowed      Reason = ""
	LoginLocked  Reason = "login_locked"
	IPLocked     Reason = "ip_locked"
	LoginRate    Reason = "login_rate"
	PasswordRate Reason = "password_rate"
	IPRate       Reason = "ip_rate"
)

// Guard enforces a Config.
type Guard struct {
	rdb    redis.UniversalClient
	prefix string
	cfg    atomic.Pointer[Config]
	secret atomic.Pointer[[]byte] // the deployment's HMAC key for passwords, from Redis
}

// passwordID is the stored form of a password: HMAC-SHA256 under a random
// secret every replica shares through Redis (created once, SETNX). A plain
// SHA-256 of a human password, visible in key names to anyone who can SCAN
// or read a backup, would be cracked by a dictionary in seconds.
func (g *Guard) passwordID(ctx context.Context, password string) (string, error) {
	sec := g.secret.Load()
	if sec == nil {
		key := g.prefix + "bf:secret"
		var b [32]byte
		if _, err := rand.Read(b[:]); err != nil {
			return "", fmt.Errorf("password secret: %w", err)
		}
		if err := g.rdb.SetNX(ctx, key, hex.EncodeToString(b[:]), 0).Err(); err != nil {
			return "", fmt.Errorf("password secret: %w", err)
		}
		v, err := g.rdb.Get(ctx, key).Result()
		if err != nil {
			return "", fmt.Errorf("password secret: %w", err)
		}
		raw := []byte(v)
		g.secret.Store(&raw)
		sec = &raw
	}
	m := hmac.New(sha256.New, *sec)
	m.Write([]byte(password))
	return hex.EncodeToString(m.Sum(nil)), nil
}

// New returns a Guard whose keys all start with prefix.
func New(rdb redis.UniversalClient, prefix string, cfg Config) (*Guard, error) {
	var errs []error
	if rdb == nil {
		errs = append(errs, errors.New("bruteforce: nil redis client"))
	}
	if prefix == "" {
		errs = append(errs, errors.New("bruteforce: empty key prefix"))
	}
	if strings.ContainsAny(prefix, "{}") {
		errs = append(errs, fmt.Errorf("bruteforce: key prefix %q must not contain '{' or '}' (it would become the cluster hash tag)", prefix))
	}
	errs = append(errs, cfg.Validate())
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	g := &Guard{rdb: rdb, prefix: prefix}
	g.cfg.Store(&cfg)
	return g, nil
}

// SetConfig validates cfg and swaps it in atomically (hot reload). Existing
// state is read under the new limits: a bucket may be a little fuller or
// emptier than it would have been for at most one interval.
func (g *Guard) SetConfig(cfg Config) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	g.cfg.Store(&cfg)
	return nil
}

// Config returns the configuration in force.
func (g *Guard) Config() Config { return *g.cfg.Load() }

// Key kinds and entity kinds.
const (
	kindBucket = "bucket"
	kindRun    = "run"
	kindLock   = "lock"

	entLogin    = "login"
	entPassword = "password"
	entIP       = "ip"
)

func (g *Guard) key(kind, entity, id string) string {
	return g.prefix + "bf:{bf}:" + kind + ":" + entity + ":" + id
}

// normLogin returns the stored form of a login: the SHA-256 of its
// canonical spelling (loginname.Canonical: NFKC, case-folded, trimmed).
func normLogin(login string) (string, error) {
	l := loginname.Canonical(login)
	if l == "" {
		return "", fmt.Errorf("empty login: %w", ErrInvalid)
	}
	return sha256hex(l), nil
}

// normIP returns the stored form of an address: its client as every Redis
// key spells it (wire.ClientID): itself for IPv4, its /64 for IPv6.
func normIP(ip netip.Addr) (string, error) {
	if !ip.IsValid() {
		return "", fmt.Errorf("invalid ip: %w", ErrInvalid)
	}
	return wire.ClientID(ip), nil
}

func sha256hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// check is the all-or-nothing pre-authentication decision.
//
// KEYS: 1-3 login, password and IP buckets; 4-5 login and IP locks.
// ARGV: 1 now (µs); 2 now (ms); then rate and interval (µs) for each bucket.
//
// A bucket is a hash {b, t}: its level b at time t. Each attempt adds
// interval to the level, the level drains by rate per µs, and an attempt is
// allowed when the level after it is at most rate × interval (so rate
// attempts fit in an empty bucket). Every quantity is an integer below 2^53,
// exact in Lua's doubles. A lock is a string holding its end in ms.
//
// Returns 0 when allowed, else the index of the key that refused.
var check = redis.NewScript(`
local now = tonumber(ARGV[1])
local nowms = tonumber(ARGV[2])
for i = 4, 5 do
  local u = redis.call('GET', KEYS[i])
  if u and tonumber(u) > nowms then return i end
end
local lv, ts = {}, {}
for i = 1, 3 do
  local rate = tonumber(ARGV[1 + 2 * i])
  local iv = tonumber(ARGV[2 + 2 * i])
  local st = redis.call('HMGET', KEYS[i], 'b', 't')
  local b = tonumber(st[1]) or 0
  local t = tonumber(st[2]) or now
  if now > t then
    if now - t >= iv then b = 0 else b = math.max(0, b - (now - t) * rate) end
    t = now
  end
  if b + iv > rate * iv then return i end
  lv[i], ts[i] = b + iv, t
end
for i = 1, 3 do
  local rate = tonumber(ARGV[1 + 2 * i])
  redis.call('HSET', KEYS[i], 'b', string.format('%.0f', lv[i]), 't', string.format('%.0f', ts[i]))
  redis.call('PEXPIRE', KEYS[i], math.ceil(lv[i] / rate / 1000) + 1000)
end
return 0
`)

var reasons = [...]Reason{Allowed, LoginRate, PasswordRate, IPRate, LoginLocked, IPLocked}

// Check takes one attempt for login with password from ip at now and
// reports whether it may proceed: the login, password and IP buckets all
// have room and neither the login nor the IP is locked. A refused attempt
// consumes nothing.
func (g *Guard) Check(ctx context.Context, login, password string, ip netip.Addr, now time.Time) (bool, error) {
	r, err := g.Decide(ctx, login, password, ip, now)
	return r == Allowed, err
}

// Decide is Check that also says why an attempt was refused (Allowed if it
// was not). A lock is reported before an empty bucket; among buckets, login
// before password before IP.
func (g *Guard) Decide(ctx context.Context, login, password string, ip netip.Addr, now time.Time) (Reason, error) {
	l, err := normLogin(login)
	if err != nil {
		return Allowed, fmt.Errorf("check: %w", err)
	}
	a, err := normIP(ip)
	if err != nil {
		return Allowed, fmt.Errorf("check: %w", err)
	}
	pw, err := g.passwordID(ctx, password)
	if err != nil {
		return Allowed, fmt.Errorf("check: %w", err)
	}
	cfg := g.cfg.Load()
	keys := []string{
		g.key(kindBucket, entLogin, l),
		g.key(kindBucket, entPassword, pw),
		g.key(kindBucket, entIP, a),
		g.key(kindLock, entLogin, l),
		g.key(kindLock, entIP, a),
	}
	args := []any{now.UnixMicro(), now.UnixMilli()}
	for _, b := range []Bucket{cfg.Login, cfg.Password, cfg.IP} {
		args = append(args, b.Rate, b.Interval.Microseconds())
	}
	i, err := check.Run(ctx, g.rdb, keys, args...).Int()
	if err != nil {
		return Allowed, fmt.Errorf("check login %s… from %s: %w", l[:8], a, err)
	}
	if i < 0 || i >= len(reasons) {
		return Allowed, fmt.Errorf("check login %s… from %s: unexpected reply %d", l[:8], a, i)
	}
	return reasons[i], nil
}

// Locked reports whether login or ip is locked at now and, if either is,
// how long until both locks have expired.
func (g *Guard) Locked(ctx context.Context, login string, ip netip.Addr, now time.Time) (loginLocked, ipLocked bool, retryAfter time.Duration, err error) {
	l, err := normLogin(login)
	if err != nil {
		return false, false, 0, fmt.Errorf("locked: %w", err)
	}
	a, err := normIP(ip)
	if err != nil {
		return false, false, 0, fmt.Errorf("locked: %w", err)
	}
	vals, err := g.rdb.MGet(ctx, g.key(kindLock, entLogin, l), g.key(kindLock, entIP, a)).Result()
	if err != nil {
		return false, false, 0, fmt.Errorf("locked login %s… from %s: %w", l[:8], a, err)
	}
	nowms := now.UnixMilli()
	var locked [2]bool
	for i, v := range vals {
		s, ok := v.(string)
		if !ok {
			continue
		}
		until, perr := strconv.ParseInt(s, 10, 64)
		if perr != nil {
			return false, false, 0, fmt.Errorf("locked login %s… from %s: bad lock %q: %w", l[:8], a, s, perr)
		}
		if until > nowms {
			locked[i] = true
			retryAfter = max(retryAfter, time.Duration(until-nowms)*time.Millisecond)
		}
	}
	return locked[0], locked[1], retryAfter, nil
}

// record applies one verdict to two entities (login, then IP).
//
// KEYS: 1 login run, 2 login lock, 3 IP run, 4 IP lock.
// ARGV: 1 now (ms), 2 "1" on success, 3 failures, 4 window (ms),
// 5 lock duration (ms), 6 TTL slack (ms).
//
// A run is a list of the times (ms) of the latest consecutive failures, at
// most ARGV[3] of them. Returns {login locked now, IP locked now}: 1 where
// this call set the lock.
var record = redis.NewScript(`
local now = tonumber(ARGV[1])
local n = tonumber(ARGV[3])
local window = tonumber(ARGV[4])
local lockfor = tonumber(ARGV[5])
local slack = tonumber(ARGV[6])
local out = {0, 0}
for e = 1, 2 do
  local run, lock = KEYS[2 * e - 1], KEYS[2 * e]
  if ARGV[2] == '1' then
    redis.call('DEL', run)
  else
    local u = redis.call('GET', lock)
    if not (u and tonumber(u) > now) then
      redis.call('RPUSH', run, string.format('%.0f', now))
      redis.call('LTRIM', run, -n, -1)
      local xs = redis.call('LRANGE', run, 0, -1)
      local lo, hi = now, now
      for _, x in ipairs(xs) do
        local v = tonumber(x)
        if v < lo then lo = v end
        if v > hi then hi = v end
      end
      if #xs >= n and hi - lo <= window then
        redis.call('SET', lock, string.format('%.0f', now + lockfor), 'PX', lockfor + slack)
        redis.call('DEL', run)
        out[e] = 1
      else
        redis.call('PEXPIRE', run, window + slack)
      end
    end
  end
end
return out
`)

const slack = time.Second

// Record applies the upstream's verdict on an attempt for login from ip at
// now. A success resets the login's and the IP's runs of failures. A failure
// extends each run; a run of Failures failures no more than FailureWindow
// apart locks that login (resp. IP) for LockFor. loginLockedNow and
// ipLockedNow report locks set by this very call, so that each lock is
// announced once; Locked tells whether a lock is in force.
func (g *Guard) Record(ctx context.Context, login string, ip netip.Addr, success bool, now time.Time) (loginLockedNow, ipLockedNow bool, err error) {
	l, err := normLogin(login)
	if err != nil {
		return false, false, fmt.Errorf("record: %w", err)
	}
	a, err := normIP(ip)
	if err != nil {
		return false, false, fmt.Errorf("record: %w", err)
	}
	cfg := g.cfg.Load()
	ok := "0"
	if success {
		ok = "1"
	}
	keys := []string{
		g.key(kindRun, entLogin, l), g.key(kindLock, entLogin, l),
		g.key(kindRun, entIP, a), g.key(kindLock, entIP, a),
	}
	res, err := record.Run(ctx, g.rdb, keys, now.UnixMilli(), ok, cfg.Failures,
		cfg.FailureWindow.Milliseconds(), cfg.LockFor.Milliseconds(), slack.Milliseconds()).Int64Slice()
	if err != nil {
		return false, false, fmt.Errorf("record login %s… from %s: %w", l[:8], a, err)
	}
	if len(res) != 2 {
		return false, false, fmt.Errorf("record login %s… from %s: unexpected reply %v", l[:8], a, res)
	}
	return res[0] == 1, res[1] == 1, nil
}

// ResetLogin clears the login's bucket, run of failures and lock. It is
// ErrNotFound if there was none of them.
func (g *Guard) ResetLogin(ctx context.Context, login string) error {
	l, err := normLogin(login)
	if err != nil {
		return fmt.Errorf("reset login: %w", err)
	}
	return g.reset(ctx, "login "+l[:8]+"…", g.key(kindBucket, entLogin, l), g.key(kindRun, entLogin, l), g.key(kindLock, entLogin, l))
}

// ResetPassword clears the password's bucket. It is ErrNotFound if there
// was none.
func (g *Guard) ResetPassword(ctx context.Context, password string) error {
	p, err := g.passwordID(ctx, password)
	if err != nil {
		return fmt.Errorf("reset password: %w", err)
	}
	return g.reset(ctx, "password", g.key(kindBucket, entPassword, p))
}

// ResetIP clears the bucket, run of failures and lock of ip (of its /64 for
// IPv6). It is ErrNotFound if there was none of them.
func (g *Guard) ResetIP(ctx context.Context, ip netip.Addr) error {
	a, err := normIP(ip)
	if err != nil {
		return fmt.Errorf("reset ip: %w", err)
	}
	return g.reset(ctx, "ip "+a, g.key(kindBucket, entIP, a), g.key(kindRun, entIP, a), g.key(kindLock, entIP, a))
}

func (g *Guard) reset(ctx context.Context, what string, keys ...string) error {
	n, err := g.rdb.Del(ctx, keys...).Result()
	if err != nil {
		return fmt.Errorf("reset %s: %w", what, err)
	}
	if n == 0 {
		return fmt.Errorf("reset %s: %w", what, ErrNotFound)
	}
	return nil
}
