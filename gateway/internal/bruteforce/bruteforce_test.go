package bruteforce_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulwarkgw/bulwark/gateway/internal/bruteforce"
	"github.com/bulwarkgw/bulwark/gateway/internal/testenv"
)

var (
	t0  = time.Unix(1_800_000_000, 0)
	ctx = context.Background()
)

// testConfig is the scenarios' base test config: login 2/1s, password 3/1s,
// ip 4/1s; 3 failures within 2s lock for 2s.
func testConfig() bruteforce.Config {
	return bruteforce.Config{
		Login:         bruteforce.Bucket{Rate: 2, Interval: time.Second},
		Password:      bruteforce.Bucket{Rate: 3, Interval: time.Second},
		IP:            bruteforce.Bucket{Rate: 4, Interval: time.Second},
		Failures:      3,
		FailureWindow: 2 * time.Second,
		LockFor:       2 * time.Second,
	}
}

func newGuard(t *testing.T, cfg bruteforce.Config) (*bruteforce.Guard, redis.UniversalClient, string) {
	t.Helper()
	rdb, prefix := testenv.Redis(t)
	g, err := bruteforce.New(rdb, prefix, cfg)
	require.NoError(t, err)
	return g, rdb, prefix
}

func ip(s string) netip.Addr { return netip.MustParseAddr(s) }

func check(t *testing.T, g *bruteforce.Guard, login, password, addr string, at time.Time) bool {
	t.Helper()
	ok, err := g.Check(ctx, login, password, ip(addr), at)
	require.NoError(t, err)
	return ok
}

func TestNewValidates(t *testing.T) {
	t.Parallel()
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"}) // never dialled
	t.Cleanup(func() { _ = rdb.Close() })
	mod := func(f func(*bruteforce.Config)) bruteforce.Config {
		c := testConfig()
		f(&c)
		return c
	}
	tests := []struct {
		name   string
		rdb    redis.UniversalClient
		prefix string
		cfg    bruteforce.Config
		want   []string // every one must be named
	}{
		{"nil client", nil, "p:", testConfig(), []string{"nil redis client"}},
		{"empty prefix", rdb, "", testConfig(), []string{"empty key prefix"}},
		{"hash tag in prefix", rdb, "a{b}:", testConfig(), []string{"must not contain"}},
		{"zero config names every field", rdb, "p:", bruteforce.Config{}, []string{
			"Login.Rate", "Login.Interval", "Password.Rate", "Password.Interval", "IP.Rate", "IP.Interval",
			"Failures", "FailureWindow", "LockFor",
		}},
		{"negative rate", rdb, "p:", mod(func(c *bruteforce.Config) { c.Password.Rate = -1 }), []string{"Password.Rate"}},
		{"sub-millisecond interval", rdb, "p:", mod(func(c *bruteforce.Config) { c.IP.Interval = time.Microsecond }), []string{"IP.Interval"}},
		{"rate × interval beyond exact integers", rdb, "p:", mod(func(c *bruteforce.Config) {
			c.Login = bruteforce.Bucket{Rate: 1 << 30, Interval: 24 * time.Hour}
		}), []string{"Login.Rate × Login.Interval"}},
		{"zero failures", rdb, "p:", mod(func(c *bruteforce.Config) { c.Failures = 0 }), []string{"Failures must be positive"}},
		{"zero lock", rdb, "p:", mod(func(c *bruteforce.Config) { c.LockFor = 0 }), []string{"LockFor"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g, err := bruteforce.New(tt.rdb, tt.prefix, tt.cfg)
			require.Error(t, err)
			assert.Nil(t, g)
			for _, w := range tt.want {
				assert.Contains(t, err.Error(), w)
			}
		})
	}
	g, err := bruteforce.New(rdb, "p:", bruteforce.DefaultConfig())
	require.NoError(t, err)
	assert.Equal(t, bruteforce.DefaultConfig(), g.Config())
}

func TestS33ThreeBuckets(t *testing.T) {
	t.Parallel()
	type attempt struct {
		login, password, ip string
		want                bruteforce.Reason
	}
	tests := []struct {
		name     string
		attempts []attempt
	}{
		{"(a) one login, different passwords: T T F", []attempt{
			{"loginAuth", "p1", "192.168.199.132", bruteforce.Allowed},
			{"loginAuth", "p2", "192.168.199.132", bruteforce.Allowed},
			{"loginAuth", "p3", "192.168.199.132", bruteforce.LoginRate},
		}},
		{"(b) one password across logins: T T T F", []attempt{
			{"login1", "passwordAuth", "10.0.0.1", bruteforce.Allowed},
			{"login2", "passwordAuth", "10.0.0.2", bruteforce.Allowed},
			{"login3", "passwordAuth", "10.0.0.3", bruteforce.Allowed},
			{"login4", "passwordAuth", "10.0.0.4", bruteforce.PasswordRate},
		}},
		{"(c) distinct pairs from one ip: T×4 F", []attempt{
			{"l1", "p1", "192.168.199.132", bruteforce.Allowed},
			{"l2", "p2", "192.168.199.132", bruteforce.Allowed},
			{"l3", "p3", "192.168.199.132", bruteforce.Allowed},
			{"l4", "p4", "192.168.199.132", bruteforce.Allowed},
			{"l5", "p5", "192.168.199.132", bruteforce.IPRate},
		}},
		{"logins are trimmed and lower-cased", []attempt{
			{"Alice", "p1", "10.0.0.1", bruteforce.Allowed},
			{" alice ", "p2", "10.0.0.2", bruteforce.Allowed},
			{"ALICE", "p3", "10.0.0.3", bruteforce.LoginRate},
			{"alice2", "p4", "10.0.0.4", bruteforce.Allowed},
		}},
		{"passwords are exact", []attempt{
			{"a", "pw", "10.0.0.1", bruteforce.Allowed},
			{"b", "pw", "10.0.0.2", bruteforce.Allowed},
			{"c", "pw", "10.0.0.3", bruteforce.Allowed},
			{"d", "PW", "10.0.0.4", bruteforce.Allowed},
			{"e", " pw", "10.0.0.5", bruteforce.Allowed},
		}},
		{"IPv6 is bucketed by /64, IPv4-mapped as IPv4", []attempt{
			{"l1", "p1", "2001:db8::1", bruteforce.Allowed},
			{"l2", "p2", "2001:db8::2", bruteforce.Allowed},
			{"l3", "p3", "2001:db8::ffff:1", bruteforce.Allowed},
			{"l4", "p4", "2001:db8:0:0:1:2:3:4", bruteforce.Allowed},
			{"l5", "p5", "2001:db8::9", bruteforce.IPRate},
			{"l6", "p6", "2001:db8:0:1::1", bruteforce.Allowed},
			{"l7", "p7", "192.0.2.1", bruteforce.Allowed},
			{"l8", "p8", "::ffff:192.0.2.1", bruteforce.Allowed},
			{"l9", "p9", "192.0.2.1", bruteforce.Allowed},
			{"l10", "p10", "::ffff:192.0.2.1", bruteforce.Allowed},
			{"l11", "p11", "192.0.2.1", bruteforce.IPRate},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			g, _, _ := newGuard(t, testConfig())
			for i, a := range tt.attempts {
				r, err := g.Decide(ctx, a.login, a.password, ip(a.ip), t0)
				require.NoError(t, err)
				assert.Equal(t, a.want, r, "attempt %d (%s/%s/%s)", i+1, a.login, a.password, a.ip)
			}
		})
	}
}

// TestRefusedAttemptConsumesNothing: the third attempt for one login is
// refused by the login bucket; had it taken from the password bucket (as
// seed 003 did) the password would then be spent.
func TestRefusedAttemptConsumesNothing(t *testing.T) {
	t.Parallel()
	g, _, _ := newGuard(t, testConfig())
	assert.True(t, check(t, g, "a", "pw", "10.0.0.1", t0))
	assert.True(t, check(t, g, "a", "pw", "10.0.0.2", t0))
	for range 5 {
		assert.False(t, check(t, g, "a", "pw", "10.0.0.3", t0), "login bucket empty")
	}
	assert.True(t, check(t, g, "b", "pw", "10.0.0.3", t0), "password has one attempt left, IP has all four")
	assert.False(t, check(t, g, "c", "pw", "10.0.0.3", t0), "now the password is spent")
	// The IP bucket of 10.0.0.3 gave one attempt (to b) of four.
	assert.True(t, check(t, g, "c", "other", "10.0.0.3", t0))
	assert.True(t, check(t, g, "d", "other2", "10.0.0.3", t0))
	assert.True(t, check(t, g, "e", "other3", "10.0.0.3", t0))
	assert.False(t, check(t, g, "f", "other4", "10.0.0.3", t0))
}

func TestS34IntervalExpiry(t *testing.T) {
	t.Parallel()
	steps := []struct {
		at   time.Duration
		want bool
	}{
		{0, true}, {0, true}, {0, false}, // S33 (a)
		{499 * time.Millisecond, false},
		{500 * time.Millisecond, true}, // GCRA: one attempt back every Interval/Rate
		{500 * time.Millisecond, false},
		{1600 * time.Millisecond, true}, // S34: after more than the interval
		{1600 * time.Millisecond, true}, // ... the bucket is full again
		{1600 * time.Millisecond, false},
		{time.Hour, true},
		{time.Hour - time.Second, true}, // a clock behind the stored time drains nothing
		{time.Hour - time.Second, false},
	}
	g, _, _ := newGuard(t, testConfig())
	for i, st := range steps {
		got := check(t, g, "loginAuth", fmt.Sprint("p", i), "192.168.199.132", t0.Add(st.at))
		assert.Equal(t, st.want, got, "step %d at +%v", i, st.at)
	}
}

func TestDefaultConfig(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		limit int
		nth   func(i int) (login, password, addr string)
	}{
		{"11th attempt for one login", 10, func(i int) (string, string, string) {
			return "victim", fmt.Sprint("p", i), fmt.Sprintf("10.0.%d.%d", i/250, i%250)
		}},
		{"101st for one password", 100, func(i int) (string, string, string) {
			return fmt.Sprint("l", i), "123456", fmt.Sprintf("10.0.%d.%d", i/250, i%250)
		}},
		{"1001st for one IP", 1000, func(i int) (string, string, string) {
			return fmt.Sprint("l", i), fmt.Sprint("p", i), "203.0.113.66"
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			g, _, _ := newGuard(t, bruteforce.DefaultConfig())
			for i := range tt.limit {
				l, p, a := tt.nth(i)
				require.True(t, check(t, g, l, p, a, t0), "attempt %d", i+1)
			}
			l, p, a := tt.nth(tt.limit)
			assert.False(t, check(t, g, l, p, a, t0), "attempt %d", tt.limit+1)
			// GCRA: one attempt comes back every Interval/Rate.
			step := time.Minute / time.Duration(tt.limit)
			assert.False(t, check(t, g, l, p, a, t0.Add(step-time.Millisecond)))
			assert.True(t, check(t, g, l, p, a, t0.Add(step)))
		})
	}
}

func TestConcurrentFirstSight(t *testing.T) {
	t.Parallel()
	big := bruteforce.Bucket{Rate: 1000, Interval: time.Minute}
	ten := bruteforce.Bucket{Rate: 10, Interval: time.Minute}
	tests := []struct {
		name    string
		buckets [3]bruteforce.Bucket
		attempt func(i int) (login, password, addr string)
	}{
		{"login", [3]bruteforce.Bucket{ten, big, big}, func(i int) (string, string, string) {
			return "same", fmt.Sprint("p", i), fmt.Sprintf("10.0.0.%d", i)
		}},
		{"password", [3]bruteforce.Bucket{big, ten, big}, func(i int) (string, string, string) {
			return fmt.Sprint("l", i), "same", fmt.Sprintf("10.0.0.%d", i)
		}},
		{"ip", [3]bruteforce.Bucket{big, big, ten}, func(i int) (string, string, string) {
			return fmt.Sprint("l", i), fmt.Sprint("p", i), "10.0.0.1"
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := testConfig()
			cfg.Login, cfg.Password, cfg.IP = tt.buckets[0], tt.buckets[1], tt.buckets[2]
			g, _, _ := newGuard(t, cfg)
			var ok atomic.Int64
			var wg sync.WaitGroup
			start := make(chan struct{})
			for i := range 50 {
				wg.Go(func() {
					<-start
					l, p, a := tt.attempt(i)
					allowed, err := g.Check(ctx, l, p, ip(a), t0)
					assert.NoError(t, err)
					if allowed {
						ok.Add(1)
					}
				})
			}
			close(start)
			wg.Wait()
			assert.Equal(t, int64(10), ok.Load())
		})
	}
}

func TestS35Reset(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		exhaust func(t *testing.T, g *bruteforce.Guard) // leaves the next attempt refused
		next    func(t *testing.T, g *bruteforce.Guard) bool
		reset   func(g *bruteforce.Guard) error
	}{
		{"login",
			func(t *testing.T, g *bruteforce.Guard) {
				for i := range 3 {
					check(t, g, "loginAuth", fmt.Sprint("p", i), "192.168.199.132", t0)
				}
			},
			func(t *testing.T, g *bruteforce.Guard) bool {
				return check(t, g, "loginAuth", "px", "192.168.199.132", t0)
			},
			func(g *bruteforce.Guard) error { return g.ResetLogin(ctx, " LoginAuth ") },
		},
		{"password",
			func(t *testing.T, g *bruteforce.Guard) {
				for i := range 4 {
					check(t, g, fmt.Sprint("login", i), "passwordAuth", fmt.Sprint("10.0.0.", i), t0)
				}
			},
			func(t *testing.T, g *bruteforce.Guard) bool {
				return check(t, g, "login9", "passwordAuth", "10.0.0.9", t0)
			},
			func(g *bruteforce.Guard) error { return g.ResetPassword(ctx, "passwordAuth") },
		},
		{"ip",
			func(t *testing.T, g *bruteforce.Guard) {
				for i := range 5 {
					check(t, g, fmt.Sprint("l", i), fmt.Sprint("p", i), "192.168.199.132", t0)
				}
			},
			func(t *testing.T, g *bruteforce.Guard) bool { return check(t, g, "l9", "p9", "192.168.199.132", t0) },
			func(g *bruteforce.Guard) error { return g.ResetIP(ctx, ip("::ffff:192.168.199.132")) },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			g, _, _ := newGuard(t, testConfig())
			require.ErrorIs(t, tt.reset(g), bruteforce.ErrNotFound, "nothing to reset yet")
			tt.exhaust(t, g)
			require.False(t, tt.next(t, g), "precondition: refused")
			require.NoError(t, tt.reset(g))
			require.ErrorIs(t, tt.reset(g), bruteforce.ErrNotFound, "second reset")
			assert.True(t, tt.next(t, g), "a fresh bucket after the reset")
			require.NoError(t, tt.reset(g), "the attempt made a bucket again")
		})
	}
}

func TestResetClearsLocks(t *testing.T) {
	t.Parallel()
	g, _, _ := newGuard(t, testConfig())
	for i := range 3 {
		_, _, err := g.Record(ctx, "u", ip("10.9.9.9"), false, t0.Add(time.Duration(i)*time.Millisecond))
		require.NoError(t, err)
	}
	l, a, _, err := g.Locked(ctx, "u", ip("10.9.9.9"), t0)
	require.NoError(t, err)
	require.True(t, l)
	require.True(t, a)

	require.NoError(t, g.ResetLogin(ctx, "u"), "a lock alone is something to reset")
	require.NoError(t, g.ResetIP(ctx, ip("10.9.9.9")))
	l, a, _, err = g.Locked(ctx, "u", ip("10.9.9.9"), t0)
	require.NoError(t, err)
	assert.False(t, l)
	assert.False(t, a)
	require.ErrorIs(t, g.ResetLogin(ctx, "u"), bruteforce.ErrNotFound)
	require.ErrorIs(t, g.ResetIP(ctx, ip("10.9.9.9")), bruteforce.ErrNotFound)
}

// event is one step of a lockout scenario: a Record, or (check) a Locked.
type event struct {
	at      time.Duration
	login   string
	ip      string
	success bool
	check   bool
	// Record: locks set by this call. Locked: locks in force.
	wantLogin, wantIP bool
}

func fail(at time.Duration, login, addr string, lockLogin, lockIP bool) event {
	return event{at: at, login: login, ip: addr, wantLogin: lockLogin, wantIP: lockIP}
}

func ok(at time.Duration, login, addr string) event {
	return event{at: at, login: login, ip: addr, success: true}
}

func locked(at time.Duration, login, addr string, l, a bool) event {
	return event{at: at, login: login, ip: addr, check: true, wantLogin: l, wantIP: a}
}

func TestLockout(t *testing.T) {
	t.Parallel()
	const ms = time.Millisecond
	tests := []struct {
		name   string
		events []event
	}{
		{"S38 three failures for u from different IPs lock u only", []event{
			fail(0, "u", "127.0.0.11", false, false),
			fail(500*ms, "u", "127.0.0.12", false, false),
			fail(1000*ms, "u", "127.0.0.13", true, false),
			locked(1100*ms, "u", "127.0.0.14", true, false),
			locked(1100*ms, "U", "127.0.0.11", true, false),
			locked(2999*ms, "u", "127.0.0.14", true, false),
			locked(3000*ms, "u", "127.0.0.14", false, false), // LockFor after the failure that locked
			ok(3000*ms, "u", "127.0.0.14"),
			locked(3000*ms, "u", "127.0.0.14", false, false),
		}},
		{"failures spread over more than the window do not lock", []event{
			fail(0, "u", "10.0.0.1", false, false),
			fail(1500*ms, "u", "10.0.0.2", false, false),
			fail(3000*ms, "u", "10.0.0.3", false, false), // 0..3000 > 2s
			fail(3500*ms, "u", "10.0.0.4", true, false),  // 1500..3500 = 2s: locks
		}},
		{"a success resets the run (consecutive, unlike seed 004)", []event{
			fail(0, "u", "10.0.0.1", false, false),
			fail(100*ms, "u", "10.0.0.2", false, false),
			ok(200*ms, "u", "10.0.0.3"),
			fail(300*ms, "u", "10.0.0.4", false, false),
			fail(400*ms, "u", "10.0.0.5", false, false),
			locked(450*ms, "u", "10.0.0.5", false, false),
			fail(500*ms, "u", "10.0.0.6", true, false),
		}},
		{"a success before the failures does not shield them (seed 004 bug 3)", []event{
			ok(0, "u", "10.0.0.1"),
			fail(100*ms, "u", "10.0.0.1", false, false),
			fail(200*ms, "u", "10.0.0.1", false, false),
			fail(300*ms, "u", "10.0.0.1", true, true),
		}},
		{"a success for another login resets the IP's run", []event{
			fail(0, "x", "6.6.6.6", false, false),
			fail(100*ms, "y", "6.6.6.6", false, false),
			ok(200*ms, "mine", "6.6.6.6"),
			fail(300*ms, "z", "6.6.6.6", false, false),
			locked(300*ms, "z", "6.6.6.6", false, false),
		}},
		{"seed 004 leak: locking alice does not lock 9.9.9.9", []event{
			fail(0, "alice", "1.1.1.1", false, false),
			fail(100*ms, "alice", "2.2.2.2", false, false),
			fail(200*ms, "alice", "9.9.9.9", true, false),
			locked(300*ms, "alice", "9.9.9.9", true, false),
			locked(300*ms, "bob", "9.9.9.9", false, false),
		}},
		{"seed 004 leak: locking 6.6.6.6 does not lock victim", []event{
			fail(0, "x", "6.6.6.6", false, false),
			fail(100*ms, "y", "6.6.6.6", false, false),
			fail(200*ms, "victim", "6.6.6.6", false, true),
			locked(300*ms, "victim", "6.6.6.6", false, true),
			locked(300*ms, "victim", "7.7.7.7", false, false),
		}},
		{"failures while locked extend nothing", []event{
			fail(0, "u", "10.0.0.1", false, false),
			fail(100*ms, "u", "10.0.0.2", false, false),
			fail(200*ms, "u", "10.0.0.3", true, false), // locked until 2200
			fail(1000*ms, "u", "10.0.0.4", false, false),
			fail(2100*ms, "u", "10.0.0.5", false, false),
			locked(2199*ms, "u", "10.0.0.6", true, false),
			locked(2200*ms, "u", "10.0.0.6", false, false),
			fail(2200*ms, "u", "10.0.0.7", false, false), // a fresh run: the lock cleared it
			fail(2300*ms, "u", "10.0.0.8", false, false),
			fail(2400*ms, "u", "10.0.0.9", true, false),
		}},
		{"a success does not lift a lock", []event{
			fail(0, "u", "10.0.0.1", false, false),
			fail(0, "u", "10.0.0.2", false, false),
			fail(0, "u", "10.0.0.3", true, false),
			ok(100*ms, "u", "10.0.0.4"),
			locked(100*ms, "u", "10.0.0.4", true, false),
		}},
		{"IPv6 runs are per /64", []event{
			fail(0, "a", "2001:db8::1", false, false),
			fail(0, "b", "2001:db8::2", false, false),
			fail(0, "c", "2001:db8::3", false, true),
			locked(0, "d", "2001:db8::ffff", false, true),
			locked(0, "d", "2001:db8:1::1", false, false),
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			g, _, _ := newGuard(t, testConfig())
			for i, e := range tt.events {
				at := t0.Add(e.at)
				if e.check {
					l, a, _, err := g.Locked(ctx, e.login, ip(e.ip), at)
					require.NoError(t, err)
					assert.Equal(t, e.wantLogin, l, "event %d: login %s locked", i, e.login)
					assert.Equal(t, e.wantIP, a, "event %d: ip %s locked", i, e.ip)
					continue
				}
				l, a, err := g.Record(ctx, e.login, ip(e.ip), e.success, at)
				require.NoError(t, err)
				assert.Equal(t, e.wantLogin, l, "event %d: login %s locked now", i, e.login)
				assert.Equal(t, e.wantIP, a, "event %d: ip %s locked now", i, e.ip)
			}
		})
	}
}

// TestS38LockedLoginIsRefusedByCheck: a locked login is refused even with
// the right password, without consuming any bucket, and retryAfter says
// when to come back.
func TestS38LockedLoginIsRefusedByCheck(t *testing.T) {
	t.Parallel()
	g, _, _ := newGuard(t, testConfig())
	for i, a := range []string{"127.0.0.11", "127.0.0.12", "127.0.0.13"} {
		_, _, err := g.Record(ctx, "u", ip(a), false, t0.Add(time.Duration(i)*500*time.Millisecond))
		require.NoError(t, err)
	}
	at := t0.Add(1100 * time.Millisecond)
	l, a, retry, err := g.Locked(ctx, "u", ip("127.0.0.14"), at)
	require.NoError(t, err)
	assert.True(t, l)
	assert.False(t, a)
	assert.Equal(t, 1900*time.Millisecond, retry)

	for range 5 {
		r, err := g.Decide(ctx, "u", "correct", ip("127.0.0.14"), at)
		require.NoError(t, err)
		assert.Equal(t, bruteforce.LoginLocked, r)
	}
	assert.True(t, check(t, g, "other", "correct", "127.0.0.14", at), "the IP is not locked")

	after := t0.Add(3 * time.Second)
	assert.True(t, check(t, g, "u", "correct", "127.0.0.14", after), "lock over")
	assert.True(t, check(t, g, "u", "correct2", "127.0.0.14", after), "refusals consumed nothing: two attempts left")
	assert.False(t, check(t, g, "u", "correct3", "127.0.0.14", after))

	// An IP lock refuses every login from that IP, with the longer wait.
	for i, login := range []string{"x", "y", "victim"} {
		_, _, err := g.Record(ctx, login, ip("6.6.6.6"), false, t0.Add(time.Duration(i)*time.Millisecond))
		require.NoError(t, err)
	}
	r, err := g.Decide(ctx, "someone", "pw", ip("6.6.6.6"), t0.Add(time.Second))
	require.NoError(t, err)
	assert.Equal(t, bruteforce.IPLocked, r)
	_, _, retry, err = g.Locked(ctx, "u", ip("6.6.6.6"), t0.Add(1100*time.Millisecond))
	require.NoError(t, err)
	assert.Equal(t, 1900*time.Millisecond, retry, "the later of the two locks")
}

func TestS38DefaultLockout(t *testing.T) {
	t.Parallel()
	g, _, _ := newGuard(t, bruteforce.DefaultConfig())
	for i := range 8 {
		l, _, err := g.Record(ctx, "u", ip(fmt.Sprint("10.0.0.", i)), false, t0.Add(time.Duration(i)*1200*time.Millisecond))
		require.NoError(t, err)
		assert.Equal(t, i == 7, l, "failure %d", i+1)
	}
	l, _, retry, err := g.Locked(ctx, "u", ip("10.0.1.1"), t0.Add(9*time.Second))
	require.NoError(t, err)
	assert.True(t, l)
	assert.Equal(t, time.Hour-600*time.Millisecond, retry)
}

func TestSetConfig(t *testing.T) {
	t.Parallel()
	g, _, _ := newGuard(t, testConfig())
	bad := testConfig()
	bad.Login.Rate = 0
	err := g.SetConfig(bad)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "Login.Rate")
	assert.Equal(t, testConfig(), g.Config(), "a bad config changes nothing")

	more := testConfig()
	more.Login.Rate = 3
	require.NoError(t, g.SetConfig(more))
	for i, want := range []bool{true, true, true, false} {
		assert.Equal(t, want, check(t, g, "l", fmt.Sprint("p", i), fmt.Sprint("10.0.0.", i), t0), "attempt %d", i+1)
	}
}

func TestInvalidInput(t *testing.T) {
	t.Parallel()
	g, _, _ := newGuard(t, testConfig())
	good := ip("10.0.0.1")
	tests := []struct {
		name string
		call func() error
	}{
		{"check empty login", func() error { _, err := g.Check(ctx, "  ", "pw", good, t0); return err }},
		{"check invalid ip", func() error { _, err := g.Check(ctx, "u", "pw", netip.Addr{}, t0); return err }},
		{"locked empty login", func() error { _, _, _, err := g.Locked(ctx, "", good, t0); return err }},
		{"locked invalid ip", func() error { _, _, _, err := g.Locked(ctx, "u", netip.Addr{}, t0); return err }},
		{"record empty login", func() error { _, _, err := g.Record(ctx, "", good, false, t0); return err }},
		{"record invalid ip", func() error { _, _, err := g.Record(ctx, "u", netip.Addr{}, false, t0); return err }},
		{"reset empty login", func() error { return g.ResetLogin(ctx, "") }},
		{"reset invalid ip", func() error { return g.ResetIP(ctx, netip.Addr{}) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.ErrorIs(t, tt.call(), bruteforce.ErrInvalid)
		})
	}
}

// TestStorage checks that Redis never holds a login or password in clear,
// that every key shares the one hash tag, and that every key expires.
func TestStorage(t *testing.T) {
	t.Parallel()
	g, rdb, prefix := newGuard(t, testConfig())
	const login, password = "Alice@Example.com", "hunter2-secret"
	for i := range 3 {
		_, err := g.Check(ctx, login, password, ip("2001:db8::7"), t0)
		require.NoError(t, err)
		_, _, err = g.Record(ctx, login, ip("198.51.100.7"), false, t0.Add(time.Duration(i)*time.Second))
		require.NoError(t, err)
	}
	_, _, err := g.Record(ctx, "bob", ip("198.51.100.8"), false, t0)
	require.NoError(t, err)

	var dump []string
	kinds := map[string]bool{}
	names, err := testenv.Keys(ctx, rdb, prefix+"*")
	require.NoError(t, err)
	for _, name := range names {
		if name == prefix+"bf:secret" {
			continue // the shared HMAC key: no login, no password, no expiry
		}
		dump = append(dump, name)
		assert.True(t, strings.HasPrefix(name, prefix+"bf:{bf}:"), name)
		parts := strings.SplitN(strings.TrimPrefix(name, prefix+"bf:{bf}:"), ":", 3)
		require.Len(t, parts, 3, name)
		kinds[parts[0]+":"+parts[1]] = true
		typ := rdb.Type(ctx, name).Val()
		switch typ {
		case "string":
			dump = append(dump, rdb.Get(ctx, name).Val())
		case "hash":
			for f, v := range rdb.HGetAll(ctx, name).Val() {
				dump = append(dump, f, v)
			}
		case "list":
			dump = append(dump, rdb.LRange(ctx, name, 0, -1).Val()...)
		default:
			t.Fatalf("unexpected %s key %s", typ, name)
		}
		ttl := rdb.PTTL(ctx, name).Val()
		assert.Positive(t, ttl, "%s expires", name)
		assert.LessOrEqual(t, ttl, 2*time.Second+time.Second, name)
	}
	assert.Equal(t, map[string]bool{
		"bucket:login": true, "bucket:password": true, "bucket:ip": true,
		"lock:login": true, "lock:ip": true, // alice's runs became locks
		"run:login": true, "run:ip": true, // bob's
	}, kinds)
	all := strings.ToLower(strings.Join(dump, "\n"))
	assert.NotContains(t, all, "alice")
	assert.NotContains(t, all, "hunter2")
	assert.NotContains(t, all, "bob")
	assert.Contains(t, all, ":ip:2001:db8::\n", "IPv6 stored by its /64, spelled as every client key spells it (wire.ClientID)")
}

// Passwords are keyed by an HMAC under a secret the replicas share through
// Redis: the password bucket is one bucket across replicas, and neither the
// password nor its plain SHA-256 appears anywhere in Redis.
func TestPasswordsAreKeyedByASharedSecret(t *testing.T) {
	t.Parallel()
	a, rdb, prefix := newGuard(t, testConfig())
	b, err := bruteforce.New(rdb, prefix, testConfig())
	require.NoError(t, err)
	ctx := context.Background()
	now := time.Unix(1_800_000_000, 0)
	ip := func(i int) netip.Addr { return netip.AddrFrom4([4]byte{10, 3, 0, byte(i)}) }
	var got []bool
	for i, g := range []*bruteforce.Guard{a, a, b, b} {
		ok, err := g.Check(ctx, fmt.Sprintf("user%d", i), "hunter2", ip(i), now)
		require.NoError(t, err)
		got = append(got, ok)
	}
	assert.Equal(t, []bool{true, true, true, false}, got, "one password bucket across both replicas")

	sum := sha256.Sum256([]byte("hunter2"))
	plain := hex.EncodeToString(sum[:])
	keys, err := testenv.Keys(ctx, rdb, prefix+"*")
	require.NoError(t, err)
	for _, k := range keys {
		assert.NotContains(t, k, "hunter2")
		assert.NotContains(t, k, plain, "an unsalted hash is as good as the password")
	}
}
