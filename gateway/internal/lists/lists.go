// Package lists keeps the gateway's CIDR allow and deny lists: static entries
// from the config file plus runtime entries added through the admin API and
// shared by every replica through Redis. Match answers from memory (one
// netipx.IPSet per kind, swapped atomically) so the request path does no I/O;
// Run keeps each replica's copy current by polling a version counter. A
// network added to the deny list is also announced on wire.BanChannel, so
// that every gateway closes the open tunnels it covers at once (and
// refreshes its copy: see Refresh).
package lists

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"go4.org/netipx"

	"github.com/bulwarkgw/bulwark/shared/wire"
)

// Kind names a list.
type Kind string

// The two lists.
const (
	KindAllow Kind = "allow"
	KindDeny  Kind = "deny"
)

func (k Kind) valid() bool { return k == KindAllow || k == KindDeny }

func (k Kind) other() Kind {
	if k == KindAllow {
		return KindDeny
	}
	return KindAllow
}

// Verdict is what the lists say about an address.
type Verdict int

// Verdicts. Allow wins over Deny when both lists contain an address.
const (
	None Verdict = iota
	Allow
	Deny
)

func (v Verdict) String() string {
	switch v {
	case Allow:
		return "allow"
	case Deny:
		return "deny"
	default:
		return "none"
	}
}

// Sources of an Entry.
const (
	SourceConfig  = "config"
	SourceRuntime = "runtime"
)

// Expected outcomes of Add and Remove; the admin API maps them to 400, 409,
// 409, 404 and 409.
var (
	ErrInvalid  = errors.New("invalid list or CIDR")
	ErrExists   = errors.New("already in the list")
	ErrConflict = errors.New("already in the other list")
	ErrNotFound = errors.New("not in the list")
	ErrStatic   = errors.New("from the config file; it cannot be removed at run time")
)

// Static holds the lists from the config file.
type Static struct{ Allow, Deny []netip.Prefix }

// Validate reports every invalid prefix, each wrapping ErrInvalid.
func (st Static) Validate() error {
	var errs []error
	for _, l := range []struct {
		kind Kind
		ps   []netip.Prefix
	}{{KindAllow, st.Allow}, {KindDeny, st.Deny}} {
		for i, p := range l.ps {
			if !p.IsValid() || p.Addr().Zone() != "" {
				errs = append(errs, fmt.Errorf("%s[%d] %q: %w", l.kind, i, p, ErrInvalid))
			}
		}
	}
	return errors.Join(errs...)
}

// Entry is one network in a list.
type Entry struct {
	Prefix netip.Prefix
	Source string // SourceConfig or SourceRuntime
}

// state is an immutable snapshot of both lists; Match reads it without locks.
type state struct {
	static  [2]map[netip.Prefix]struct{} // by index(kind)
	runtime [2]map[netip.Prefix]struct{}
	version int64 // of the runtime lists in Redis; -1 before the first load
	sets    [2]*netipx.IPSet
}

func index(k Kind) int {
	if k == KindAllow {
		return 0
	}
	return 1
}

func (st *state) has(k Kind, p netip.Prefix) (static, runtime bool) {
	_, static = st.static[index(k)][p]
	_, runtime = st.runtime[index(k)][p]
	return static, runtime
}

// build returns a snapshot with fresh IPSets; the maps are owned by it.
func build(static, runtime [2]map[netip.Prefix]struct{}, version int64) *state {
	st := &state{static: static, runtime: runtime, version: version}
	for i := range st.sets {
		var b netipx.IPSetBuilder
		for p := range static[i] {
			b.AddPrefix(p)
		}
		for p := range runtime[i] {
			b.AddPrefix(p)
		}
		set, err := b.IPSet()
		if err != nil {
			// Every prefix was validated and normalised on the way in.
			panic(fmt.Sprintf("lists: build set: %v", err))
		}
		st.sets[i] = set
	}
	return st
}

func clone(m map[netip.Prefix]struct{}) map[netip.Prefix]struct{} {
	c := make(map[netip.Prefix]struct{}, len(m)+1)
	for p := range m {
		c[p] = struct{}{}
	}
	return c
}

// Store matches addresses against both lists and edits the runtime ones.
// It is safe for concurrent use.
type Store struct {
	rdb     redis.UniversalClient
	keys    [2]string // runtime sets by index(kind)
	ver     string    // version counter
	channel string    // wire.BanChannel
	log     *slog.Logger

	cur atomic.Pointer[state]
	mu  sync.Mutex // serialises writers of cur (and Refresh's reads)
}

// New returns a Store with the static lists and no runtime entries yet: call
// Refresh (or Run, which refreshes at once) to load those. Keys are
// <prefix>{lists}:allow, <prefix>{lists}:deny and <prefix>{lists}:version;
// the hash tag keeps them in one Redis Cluster slot for the scripts. log
// receives Run's refresh errors.
func New(rdb redis.UniversalClient, prefix string, static Static, log *slog.Logger) (*Store, error) {
	if rdb == nil {
		return nil, errors.New("lists: nil redis client")
	}
	if prefix == "" {
		return nil, errors.New("lists: empty key prefix")
	}
	if strings.ContainsAny(prefix, "{}") {
		return nil, fmt.Errorf("lists: key prefix %q must not contain braces", prefix)
	}
	if log == nil {
		return nil, errors.New("lists: nil logger")
	}
	sm, err := normaliseStatic(static)
	if err != nil {
		return nil, fmt.Errorf("lists: static lists: %w", err)
	}
	s := &Store{
		rdb:     rdb,
		keys:    [2]string{prefix + "{lists}:allow", prefix + "{lists}:deny"},
		ver:     prefix + "{lists}:version",
		channel: wire.BanChannel(prefix),
		log:     log,
	}
	s.cur.Store(build(sm, [2]map[netip.Prefix]struct{}{{}, {}}, -1))
	return s, nil
}

func normaliseStatic(static Static) ([2]map[netip.Prefix]struct{}, error) {
	var m [2]map[netip.Prefix]struct{}
	if err := static.Validate(); err != nil {
		return m, err
	}
	for i, ps := range [][]netip.Prefix{static.Allow, static.Deny} {
		m[i] = make(map[netip.Prefix]struct{}, len(ps))
		for _, p := range ps {
			m[i][normalise(p)] = struct{}{}
		}
	}
	return m, nil
}

// normalise masks p and turns an IPv4-mapped IPv6 prefix into its IPv4 form,
// since Match unmaps addresses first.
func normalise(p netip.Prefix) netip.Prefix {
	p = p.Masked()
	if a := p.Addr(); a.Is4In6() && p.Bits() >= 96 {
		p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
	}
	return p
}

// Parse reads a CIDR or a bare address (as a /32 or /128) and returns the
// network it names, masked: "192.168.1.5/24" is 192.168.1.0/24.
func Parse(cidr string) (netip.Prefix, error) {
	s := strings.TrimSpace(cidr)
	var p netip.Prefix
	if strings.Contains(s, "/") {
		var err error
		if p, err = netip.ParsePrefix(s); err != nil {
			return netip.Prefix{}, fmt.Errorf("%w: %w", ErrInvalid, err)
		}
	} else {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("%w: %w", ErrInvalid, err)
		}
		if a.Zone() != "" {
			return netip.Prefix{}, fmt.Errorf("%w: %q has a zone", ErrInvalid, s)
		}
		p = netip.PrefixFrom(a, a.BitLen())
	}
	return normalise(p), nil
}

// Match reports what the lists say about ip: Allow if the allow list contains
// it (whatever the deny list says), else Deny if the deny list does, else
// None. It does no I/O.
func (s *Store) Match(ip netip.Addr) Verdict {
	ip = ip.WithZone("").Unmap()
	st := s.cur.Load()
	switch {
	case st.sets[0].Contains(ip):
		return Allow
	case st.sets[1].Contains(ip):
		return Deny
	default:
		return None
	}
}

// add puts ARGV[1] into KEYS[1] unless KEYS[2] (the other list) holds it,
// and bumps the version KEYS[3]; when it added and ARGV[2] is a channel, it
// publishes ARGV[3] there. It returns -1 for a conflict, 0 if the entry was
// already there, else the new version.
var add = redis.NewScript(`
if redis.call('SISMEMBER', KEYS[2], ARGV[1]) == 1 then
  return -1
end
if redis.call('SADD', KEYS[1], ARGV[1]) == 0 then
  return 0
end
local v = redis.call('INCR', KEYS[3])
if ARGV[2] ~= '' then
  redis.call('PUBLISH', ARGV[2], ARGV[3])
end
return v
`)

// remove takes ARGV[1] out of KEYS[1] and bumps the version KEYS[2]. It
// returns 0 if the entry was not there, else the new version.
var remove = redis.NewScript(`
if redis.call('SREM', KEYS[1], ARGV[1]) == 0 then
  return 0
end
return redis.call('INCR', KEYS[2])
`)

// Add puts the network cidr names (see Parse) into the runtime list kind and
// returns it. It fails with ErrInvalid for a bad kind or CIDR, ErrExists if
// the list already holds the network, and ErrConflict if the other list holds
// the very same network (overlapping networks are fine: allow wins). The
// check and the write are one atomic script, so two replicas cannot put one
// network in both lists. The local matcher is updated at once. A network
// added to the deny list is announced on wire.BanChannel by the same
// script.
func (s *Store) Add(ctx context.Context, kind Kind, cidr string) (netip.Prefix, error) {
	if !kind.valid() {
		return netip.Prefix{}, fmt.Errorf("add to %q: %w", kind, ErrInvalid)
	}
	p, err := Parse(cidr)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("add %q to %s: %w", cidr, kind, err)
	}
	st := s.cur.Load()
	if static, _ := st.has(kind, p); static {
		return netip.Prefix{}, fmt.Errorf("add %s to %s: %w", p, kind, ErrExists)
	}
	if static, _ := st.has(kind.other(), p); static {
		return netip.Prefix{}, fmt.Errorf("add %s to %s: %w", p, kind, ErrConflict)
	}
	keys := []string{s.keys[index(kind)], s.keys[index(kind.other())], s.ver}
	channel, notice := "", []byte(nil)
	if kind == KindDeny {
		channel = s.channel
		notice, _ = json.Marshal(wire.BanNotice{Deny: p.String()}) // cannot fail
	}
	v, err := add.Run(ctx, s.rdb, keys, p.String(), channel, notice).Int64()
	switch {
	case err != nil:
		return netip.Prefix{}, fmt.Errorf("add %s to %s: %w", p, kind, err)
	case v == -1:
		return netip.Prefix{}, fmt.Errorf("add %s to %s: %w", p, kind, ErrConflict)
	case v == 0:
		return netip.Prefix{}, fmt.Errorf("add %s to %s: %w", p, kind, ErrExists)
	}
	s.apply(kind, p, true, v)
	return p, nil
}

// Remove takes the network cidr names out of the runtime list kind. It fails
// with ErrInvalid for a bad kind or CIDR, ErrStatic if the network is only
// in the config file's list, and ErrNotFound if it is in neither.
func (s *Store) Remove(ctx context.Context, kind Kind, cidr string) error {
	if !kind.valid() {
		return fmt.Errorf("remove from %q: %w", kind, ErrInvalid)
	}
	p, err := Parse(cidr)
	if err != nil {
		return fmt.Errorf("remove %q from %s: %w", cidr, kind, err)
	}
	v, err := remove.Run(ctx, s.rdb, []string{s.keys[index(kind)], s.ver}, p.String()).Int64()
	if err != nil {
		return fmt.Errorf("remove %s from %s: %w", p, kind, err)
	}
	if v == 0 {
		if static, _ := s.cur.Load().has(kind, p); static {
			return fmt.Errorf("remove %s from %s: %w", p, kind, ErrStatic)
		}
		return fmt.Errorf("remove %s from %s: %w", p, kind, ErrNotFound)
	}
	s.apply(kind, p, false, v)
	return nil
}

// apply records a change this Store made in Redis, which moved the version
// to v. The local version follows only if no other change came in between;
// otherwise the next Refresh reloads everything.
func (s *Store) apply(kind Kind, p netip.Prefix, in bool, v int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.cur.Load()
	runtime := old.runtime
	i := index(kind)
	runtime[i] = clone(runtime[i])
	if in {
		runtime[i][p] = struct{}{}
	} else {
		delete(runtime[i], p)
	}
	version := old.version
	if version == v-1 {
		version = v
	}
	s.cur.Store(build(old.static, runtime, version))
}

// List returns the list kind, static and runtime entries, sorted by network
// then source. The runtime entries are read from Redis, so they include
// other replicas' changes not yet refreshed here.
func (s *Store) List(ctx context.Context, kind Kind) ([]Entry, error) {
	if !kind.valid() {
		return nil, fmt.Errorf("list %q: %w", kind, ErrInvalid)
	}
	members, err := s.rdb.SMembers(ctx, s.keys[index(kind)]).Result()
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", kind, err)
	}
	runtime, err := parseMembers(members)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", kind, err)
	}
	static := s.cur.Load().static[index(kind)]
	out := make([]Entry, 0, len(static)+len(runtime))
	for p := range static {
		out = append(out, Entry{Prefix: p, Source: SourceConfig})
	}
	for p := range runtime {
		out = append(out, Entry{Prefix: p, Source: SourceRuntime})
	}
	slices.SortFunc(out, func(a, b Entry) int {
		if c := a.Prefix.Compare(b.Prefix); c != 0 {
			return c
		}
		return strings.Compare(a.Source, b.Source)
	})
	return out, nil
}

func parseMembers(members []string) (map[netip.Prefix]struct{}, error) {
	m := make(map[netip.Prefix]struct{}, len(members))
	var errs []error
	for _, s := range members {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			errs = append(errs, fmt.Errorf("stored entry %q: %w", s, ErrInvalid))
			continue
		}
		m[normalise(p)] = struct{}{}
	}
	return m, errors.Join(errs...)
}

// SetStatic replaces the config file's lists, for a reload. It validates
// them all first and changes nothing on error.
func (s *Store) SetStatic(static Static) error {
	sm, err := normaliseStatic(static)
	if err != nil {
		return fmt.Errorf("lists: static lists: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.cur.Load()
	s.cur.Store(build(sm, old.runtime, old.version))
	return nil
}

// Refresh reloads the runtime lists from Redis if their version moved since
// the last load. Unparsable stored entries are skipped and reported (wrapping
// ErrInvalid) after the rest have been loaded.
func (s *Store) Refresh(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.cur.Load()
	v, err := s.version(ctx)
	if err != nil {
		return fmt.Errorf("refresh lists: %w", err)
	}
	if v == old.version {
		return nil
	}
	// Version and sets are read in one transaction (one slot), so they agree.
	var getV *redis.StringCmd
	var sets [2]*redis.StringSliceCmd
	_, err = s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		getV = p.Get(ctx, s.ver)
		sets[0] = p.SMembers(ctx, s.keys[0])
		sets[1] = p.SMembers(ctx, s.keys[1])
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return fmt.Errorf("refresh lists: %w", err)
	}
	// Exec reports only the first failed command, and a missing version
	// counter fails with redis.Nil; look at each command.
	if v, err = versionOf(getV); err != nil {
		return fmt.Errorf("refresh lists: %w", err)
	}
	for _, cmd := range sets {
		if err := cmd.Err(); err != nil {
			return fmt.Errorf("refresh lists: %w", err)
		}
	}
	var runtime [2]map[netip.Prefix]struct{}
	var errs []error
	for i := range sets {
		var err error
		runtime[i], err = parseMembers(sets[i].Val())
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", []Kind{KindAllow, KindDeny}[i], err))
		}
	}
	s.cur.Store(build(old.static, runtime, v))
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("refresh lists: %w", err)
	}
	return nil
}

func (s *Store) version(ctx context.Context) (int64, error) {
	return versionOf(s.rdb.Get(ctx, s.ver))
}

// versionOf reads the version counter; a missing counter is version 0.
func versionOf(cmd *redis.StringCmd) (int64, error) {
	v, err := cmd.Int64()
	if errors.Is(err, redis.Nil) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("version: %w", err)
	}
	return v, nil
}

// Run refreshes at once and then every interval until ctx ends, so that
// another replica's change is visible here within one interval. Refresh
// errors are logged and retried at the next tick; Run returns nil when ctx
// ends, or an error at once for a non-positive interval.
func (s *Store) Run(ctx context.Context, interval time.Duration) error {
	if interval <= 0 {
		return fmt.Errorf("lists: refresh interval %v: must be positive", interval)
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		rctx, cancel := context.WithTimeout(ctx, interval)
		err := s.Refresh(rctx)
		cancel()
		if err != nil && ctx.Err() == nil {
			s.log.Warn("lists refresh failed", slog.Any("error", err))
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}
