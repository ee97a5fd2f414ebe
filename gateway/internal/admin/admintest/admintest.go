// Package admintest holds small in-memory stand-ins for the admin API's
// collaborators, for tests of the admin API and of bulwarkctl. They behave
// like the real packages where the admin API can tell (normalised CIDRs,
// duplicates, conflicts, not-found) and nothing more.
package admintest

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/netip"
	"regexp"
	"sync"
	"time"

	"github.com/bulwarkgw/bulwark/gateway/internal/admin"
)

// Sentinel errors, handed to admin.Deps.Errors.
var (
	ErrInvalid  = errors.New("invalid")
	ErrExists   = errors.New("already exists")
	ErrConflict = errors.New("on the other list")
	ErrNotFound = errors.New("not found")
	ErrStatic   = errors.New("defined in the config file")
)

// Errors is the admin.Errors for these fakes.
var Errors = admin.Errors{Invalid: ErrInvalid, Exists: ErrExists, Conflict: ErrConflict, NotFound: ErrNotFound, Static: ErrStatic}

// Lists is an allow and a deny list of CIDRs.
type Lists struct {
	mu     sync.Mutex
	lists  map[admin.ListKind]map[string]bool // cidr → static
	Static map[admin.ListKind][]string        // set before use: entries that cannot be removed
}

var _ admin.ListsAdmin = (*Lists)(nil)

func (l *Lists) init() {
	if l.lists == nil {
		l.lists = map[admin.ListKind]map[string]bool{admin.Allow: {}, admin.Deny: {}}
		for k, cs := range l.Static {
			for _, c := range cs {
				l.lists[k][c] = true
			}
		}
	}
}

func other(k admin.ListKind) admin.ListKind {
	if k == admin.Allow {
		return admin.Deny
	}
	return admin.Allow
}

func normalize(cidr string) (string, error) {
	p, err := netip.ParsePrefix(cidr)
	if err != nil {
		return "", errors.Join(ErrInvalid, err)
	}
	return p.Masked().String(), nil
}

// Add stores cidr's network.
func (l *Lists) Add(_ context.Context, k admin.ListKind, cidr string) (string, error) {
	n, err := normalize(cidr)
	if err != nil {
		return "", err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.init()
	if _, ok := l.lists[k][n]; ok {
		return "", ErrExists
	}
	if _, ok := l.lists[other(k)][n]; ok {
		return "", ErrConflict
	}
	l.lists[k][n] = false
	return n, nil
}

// Remove deletes cidr's network.
func (l *Lists) Remove(_ context.Context, k admin.ListKind, cidr string) error {
	n, err := normalize(cidr)
	if err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.init()
	static, ok := l.lists[k][n]
	switch {
	case !ok:
		return ErrNotFound
	case static:
		return ErrStatic
	}
	delete(l.lists[k], n)
	return nil
}

// List returns one list, unordered.
func (l *Lists) List(_ context.Context, k admin.ListKind) ([]admin.ListEntry, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.init()
	var es []admin.ListEntry
	for c, s := range l.lists[k] {
		es = append(es, admin.ListEntry{CIDR: c, Static: s})
	}
	return es, nil
}

// Buckets is a set of existing login limiter buckets, keyed "login:x",
// "password:x" and "ip:x".
type Buckets map[string]bool

var _ admin.BucketsAdmin = Buckets(nil)

func (b Buckets) reset(key string) error {
	if !b[key] {
		return ErrNotFound
	}
	delete(b, key)
	return nil
}

// ResetLogin deletes a login bucket.
func (b Buckets) ResetLogin(_ context.Context, v string) error { return b.reset("login:" + v) }

// ResetPassword deletes a password bucket.
func (b Buckets) ResetPassword(_ context.Context, v string) error { return b.reset("password:" + v) }

// ResetIP deletes an IP bucket.
func (b Buckets) ResetIP(_ context.Context, ip netip.Addr) error { return b.reset("ip:" + ip.String()) }

// Keys is a set of live API key ids.
type Keys map[string]bool

var _ admin.KeysAdmin = Keys(nil)

// Revoke deletes a key.
func (k Keys) Revoke(_ context.Context, id string) error {
	if !k[id] {
		return ErrNotFound
	}
	delete(k, id)
	return nil
}

// Bans holds bans with their expiry, relative to Now.
type Bans struct {
	mu   sync.Mutex
	Now  func() time.Time
	bans map[netip.Addr]admin.Ban
}

var _ admin.BansAdmin = (*Bans)(nil)

// List returns the bans.
func (b *Bans) List(context.Context) ([]admin.Ban, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []admin.Ban
	for _, ban := range b.bans {
		out = append(out, ban)
	}
	return out, nil
}

// Add bans ip for ttl.
func (b *Bans) Add(_ context.Context, ip netip.Addr, ttl time.Duration, reason string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.bans == nil {
		b.bans = map[netip.Addr]admin.Ban{}
	}
	b.bans[ip] = admin.Ban{IP: ip, Reason: reason, ExpiresAt: b.Now().Add(ttl).UTC()}
	return nil
}

// Remove lifts ip's ban.
func (b *Bans) Remove(_ context.Context, ip netip.Addr) (bool, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	_, ok := b.bans[ip]
	delete(b.bans, ip)
	return ok, nil
}

// RateLimit is a per-IP request count under one limit.
type RateLimit struct {
	mu    sync.Mutex
	Limit int64
	Count map[netip.Addr]int64
}

var _ admin.RateLimitAdmin = (*RateLimit)(nil)

// Stats reports ip's count.
func (r *RateLimit) Stats(_ context.Context, ip netip.Addr) (int64, int64, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.Count[ip], r.Limit, nil
}

// Clear resets ip's count.
func (r *RateLimit) Clear(_ context.Context, ip netip.Addr) (bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, ok := r.Count[ip]
	delete(r.Count, ip)
	return ok, nil
}

// Record is one admin action the API asked to audit.
type Record struct{ Action, Details, Method, Path, ClientIP string }

// Audit records admin actions.
type Audit struct {
	mu      sync.Mutex
	records []Record
}

var _ admin.AuditSink = (*Audit)(nil)

// Record keeps the action.
func (a *Audit) Record(action, details string, r *http.Request) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.records = append(a.records, Record{action, details, r.Method, r.URL.Path, r.RemoteAddr})
}

// Records returns what was recorded so far.
func (a *Audit) Records() []Record {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]Record(nil), a.records...)
}

// Actions returns the recorded actions in order.
func (a *Audit) Actions() []string {
	var out []string
	for _, r := range a.Records() {
		out = append(out, r.Action)
	}
	return out
}

// AuditLog serves fixed entries and stats, and keeps the last filter.
type AuditLog struct {
	Entries []admin.AuditEntry
	Totals  admin.AuditStats
	Last    admin.AuditFilter
}

var _ admin.AuditLog = (*AuditLog)(nil)

// Logs filters Entries by type, IP and IP pattern, then applies offset and
// limit.
func (l *AuditLog) Logs(_ context.Context, f admin.AuditFilter) ([]admin.AuditEntry, error) {
	l.Last = f
	re := regexp.MustCompile(f.ClientPattern)
	var out []admin.AuditEntry
	for _, e := range l.Entries {
		if (f.EventType == "" || e.EventType == f.EventType) && (f.ClientIP == "" || e.ClientIP == f.ClientIP) && re.MatchString(e.ClientIP) {
			out = append(out, e)
		}
	}
	out = out[min(f.Offset, len(out)):]
	return out[:min(f.Limit, len(out))], nil
}

// Stats returns Totals.
func (l *AuditLog) Stats(context.Context) (admin.AuditStats, error) { return l.Totals, nil }

// Fixture wires every fake into admin.Deps, with a clock the test moves.
type Fixture struct {
	Lists     *Lists
	Buckets   Buckets
	Keys      Keys
	Bans      *Bans
	RateLimit *RateLimit
	Audit     *Audit
	AuditLog  *AuditLog

	Routes    []admin.Route // what Routes returns, and what Reload counts
	RPM       int64         // the rate limit Reload and Status report
	ReloadErr error         // when set, Reload fails with it and changes nothing
	Config    any

	mu  sync.Mutex
	now time.Time
}

// NewFixture returns a fixture with one route, a limit of 5 per minute and
// the clock at 2026-01-02 03:04:05 UTC.
func NewFixture() *Fixture {
	f := &Fixture{
		Lists:     &Lists{},
		Buckets:   Buckets{},
		Keys:      Keys{},
		RateLimit: &RateLimit{Limit: 5, Count: map[netip.Addr]int64{}},
		Audit:     &Audit{},
		AuditLog:  &AuditLog{},
		Routes:    []admin.Route{{Path: "/api/", Target: "http://127.0.0.1:9001"}},
		RPM:       5,
		Config:    map[string]any{"rate_limit": map[string]any{"requests_per_minute": 5}},
		now:       time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
	}
	f.Bans = &Bans{Now: f.Now}
	return f
}

// Now is the fixture's clock.
func (f *Fixture) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

// Advance moves the clock.
func (f *Fixture) Advance(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now = f.now.Add(d)
}

// Deps returns admin.Deps over the fakes, with the given credentials.
func (f *Fixture) Deps(auth admin.Auth) admin.Deps {
	return admin.Deps{
		Auth: auth,
		Reload: func(context.Context) (admin.Summary, error) {
			if f.ReloadErr != nil {
				return admin.Summary{}, f.ReloadErr
			}
			return admin.Summary{RoutesCount: len(f.Routes), RateLimit: f.RPM}, nil
		},
		Routes: func() []admin.Route { return f.Routes },
		Config: func() any { return f.Config },
		Status: func(context.Context) admin.Status {
			return admin.Status{RoutesCount: len(f.Routes), RateLimit: admin.RateLimitStatus{RequestsPerMinute: f.RPM}}
		},
		RateLimit: f.RateLimit,
		Lists:     f.Lists,
		Bans:      f.Bans,
		Buckets:   f.Buckets,
		Keys:      f.Keys,
		Errors:    Errors,
		Audit:     f.Audit,
		AuditLog:  f.AuditLog,
		Log:       slog.New(slog.DiscardHandler),
		Now:       f.Now,
	}
}
