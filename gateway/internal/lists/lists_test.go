package lists_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulwarkgw/bulwark/gateway/internal/lists"
	"github.com/bulwarkgw/bulwark/gateway/internal/testenv"
	"github.com/bulwarkgw/bulwark/shared/wire"
)

var discard = slog.New(slog.DiscardHandler)

func prefixes(ss ...string) []netip.Prefix {
	ps := make([]netip.Prefix, len(ss))
	for i, s := range ss {
		ps[i] = netip.MustParsePrefix(s)
	}
	return ps
}

func newStore(t testing.TB, static lists.Static) (*lists.Store, redis.UniversalClient, string) {
	t.Helper()
	rdb, prefix := testenv.Redis(t)
	s, err := lists.New(rdb, prefix, static, discard)
	require.NoError(t, err)
	require.NoError(t, s.Refresh(context.Background()))
	return s, rdb, prefix
}

func TestNewRejectsBadArguments(t *testing.T) {
	t.Parallel()
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	t.Cleanup(func() { _ = rdb.Close() })
	tests := []struct {
		name   string
		rdb    redis.UniversalClient
		prefix string
		static lists.Static
		log    *slog.Logger
	}{
		{"nil client", nil, "p:", lists.Static{}, discard},
		{"empty prefix", rdb, "", lists.Static{}, discard},
		{"braces in prefix", rdb, "{p}:", lists.Static{}, discard},
		{"nil logger", rdb, "p:", lists.Static{}, nil},
		{"invalid static prefix", rdb, "p:", lists.Static{Deny: []netip.Prefix{{}}}, discard},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := lists.New(tt.rdb, tt.prefix, tt.static, tt.log)
			assert.Error(t, err)
		})
	}
}

func TestMatch(t *testing.T) {
	t.Parallel()
	s, _, _ := newStore(t, lists.Static{
		Allow: prefixes("10.1.2.0/24", "2001:db8:1::/48", "192.0.2.7/32"),
		Deny:  prefixes("10.0.0.0/8", "2001:db8::/32", "::ffff:198.51.100.0/120"),
	})
	tests := []struct {
		ip   string
		want lists.Verdict
	}{
		{"10.9.9.9", lists.Deny},
		{"10.1.2.3", lists.Allow}, // overlap: allow wins
		{"10.1.3.1", lists.Deny},
		{"192.0.2.7", lists.Allow},
		{"192.0.2.8", lists.None},
		{"2001:db8:2::1", lists.Deny},
		{"2001:db8:1:ffff::1", lists.Allow},
		{"2001:db9::1", lists.None},
		{"::ffff:10.1.2.3", lists.Allow}, // mapped addresses are unmapped
		{"::ffff:10.200.0.1", lists.Deny},
		{"198.51.100.9", lists.Deny}, // a mapped static prefix is unmapped too
		{"fe80::1%eth0", lists.None},
		{"8.8.8.8", lists.None},
	}
	for _, tt := range tests {
		t.Run(tt.ip, func(t *testing.T) {
			assert.Equal(t, tt.want, s.Match(netip.MustParseAddr(tt.ip)))
		})
	}
	assert.Equal(t, lists.None, s.Match(netip.Addr{}))
}

func TestParse(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in, want string
	}{
		{"192.168.1.5/24", "192.168.1.0/24"},
		{"192.168.1.5", "192.168.1.5/32"},
		{" 10.0.0.0/8 ", "10.0.0.0/8"},
		{"2001:db8::1/32", "2001:db8::/32"},
		{"2001:db8::1", "2001:db8::1/128"},
		{"::ffff:10.0.0.1/104", "10.0.0.0/8"},
		{"::ffff:10.0.0.1", "10.0.0.1/32"},
		{"0.0.0.0/0", "0.0.0.0/0"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			p, err := lists.Parse(tt.in)
			require.NoError(t, err)
			assert.Equal(t, tt.want, p.String())
		})
	}
	for _, bad := range []string{"", "10.0.0.0/33", "2001:db8::/129", "10.0.0", "example.com", "fe80::1%eth0", "10.0.0.0/8/8", "10.0.0.0/-1"} {
		t.Run("bad "+bad, func(t *testing.T) {
			_, err := lists.Parse(bad)
			assert.ErrorIs(t, err, lists.ErrInvalid)
		})
	}
}

func TestAddRemoveSentinels(t *testing.T) {
	t.Parallel()
	s, _, _ := newStore(t, lists.Static{
		Allow: prefixes("192.0.2.0/24"),
		Deny:  prefixes("198.51.100.0/24"),
	})
	ctx := context.Background()

	p, err := s.Add(ctx, lists.KindDeny, "203.0.113.77/24")
	require.NoError(t, err)
	assert.Equal(t, netip.MustParsePrefix("203.0.113.0/24"), p, "the masked network is stored")

	tests := []struct {
		name string
		kind lists.Kind
		cidr string
		want error
	}{
		{"bad kind", "maybe", "10.0.0.0/8", lists.ErrInvalid},
		{"bad cidr", lists.KindAllow, "10.0.0.0/33", lists.ErrInvalid},
		{"runtime same list", lists.KindDeny, "203.0.113.0/24", lists.ErrExists},
		{"runtime same list unmasked", lists.KindDeny, "203.0.113.200/24", lists.ErrExists},
		{"runtime other list", lists.KindAllow, "203.0.113.1/24", lists.ErrConflict},
		{"static same list", lists.KindAllow, "192.0.2.0/24", lists.ErrExists},
		{"static other list", lists.KindDeny, "192.0.2.0/24", lists.ErrConflict},
		{"static other list deny", lists.KindAllow, "198.51.100.0/24", lists.ErrConflict},
	}
	for _, tt := range tests {
		t.Run("add "+tt.name, func(t *testing.T) {
			_, err := s.Add(ctx, tt.kind, tt.cidr)
			assert.ErrorIs(t, err, tt.want)
		})
	}

	// Overlapping (not identical) networks across lists are fine.
	_, err = s.Add(ctx, lists.KindAllow, "203.0.113.128/25")
	require.NoError(t, err)
	assert.Equal(t, lists.Allow, s.Match(netip.MustParseAddr("203.0.113.200")))
	assert.Equal(t, lists.Deny, s.Match(netip.MustParseAddr("203.0.113.1")))

	removeTests := []struct {
		name string
		kind lists.Kind
		cidr string
		want error
	}{
		{"bad kind", "", "10.0.0.0/8", lists.ErrInvalid},
		{"bad cidr", lists.KindDeny, "nope", lists.ErrInvalid},
		{"absent", lists.KindDeny, "10.0.0.0/8", lists.ErrNotFound},
		{"in the other list", lists.KindAllow, "203.0.113.0/24", lists.ErrNotFound},
		{"static", lists.KindDeny, "198.51.100.0/24", lists.ErrStatic},
	}
	for _, tt := range removeTests {
		t.Run("remove "+tt.name, func(t *testing.T) {
			assert.ErrorIs(t, s.Remove(ctx, tt.kind, tt.cidr), tt.want)
		})
	}

	require.NoError(t, s.Remove(ctx, lists.KindDeny, "203.0.113.9/24"), "removal masks too")
	assert.Equal(t, lists.None, s.Match(netip.MustParseAddr("203.0.113.1")), "removal is visible at once")
	assert.ErrorIs(t, s.Remove(ctx, lists.KindDeny, "203.0.113.0/24"), lists.ErrNotFound)

	// Once gone from deny, the network may go into allow.
	_, err = s.Add(ctx, lists.KindAllow, "203.0.113.0/24")
	require.NoError(t, err)
	assert.Equal(t, lists.Allow, s.Match(netip.MustParseAddr("203.0.113.1")))
}

func TestList(t *testing.T) {
	t.Parallel()
	s, _, _ := newStore(t, lists.Static{
		Deny: prefixes("2001:db8::/32", "10.0.0.0/8", "192.0.2.5/24"),
	})
	ctx := context.Background()
	for _, c := range []string{"2001:db8:ffff::/48", "172.16.0.0/12", "10.0.0.0/16", "10.0.0.1"} {
		_, err := s.Add(ctx, lists.KindDeny, c)
		require.NoError(t, err)
	}
	got, err := s.List(ctx, lists.KindDeny)
	require.NoError(t, err)
	want := []lists.Entry{
		{netip.MustParsePrefix("10.0.0.0/8"), lists.SourceConfig},
		{netip.MustParsePrefix("10.0.0.0/16"), lists.SourceRuntime},
		{netip.MustParsePrefix("10.0.0.1/32"), lists.SourceRuntime},
		{netip.MustParsePrefix("172.16.0.0/12"), lists.SourceRuntime},
		{netip.MustParsePrefix("192.0.2.0/24"), lists.SourceConfig},
		{netip.MustParsePrefix("2001:db8::/32"), lists.SourceConfig},
		{netip.MustParsePrefix("2001:db8:ffff::/48"), lists.SourceRuntime},
	}
	assert.Equal(t, want, got)

	got, err = s.List(ctx, lists.KindAllow)
	require.NoError(t, err)
	assert.Empty(t, got)

	_, err = s.List(ctx, "both")
	assert.ErrorIs(t, err, lists.ErrInvalid)
}

func TestReplicasShareRuntimeLists(t *testing.T) {
	t.Parallel()
	a, rdb, prefix := newStore(t, lists.Static{})
	b, err := lists.New(rdb, prefix, lists.Static{Allow: prefixes("192.0.2.0/24")}, discard)
	require.NoError(t, err)
	ctx := context.Background()
	require.NoError(t, b.Refresh(ctx))
	ip := netip.MustParseAddr("203.0.113.9")

	_, err = a.Add(ctx, lists.KindDeny, "203.0.113.0/24")
	require.NoError(t, err)
	assert.Equal(t, lists.Deny, a.Match(ip))
	assert.Equal(t, lists.None, b.Match(ip), "b has not refreshed yet")
	require.NoError(t, b.Refresh(ctx))
	assert.Equal(t, lists.Deny, b.Match(ip))

	// b's List reads Redis, so it sees a's entry next to its own static one.
	got, err := b.List(ctx, lists.KindDeny)
	require.NoError(t, err)
	assert.Equal(t, []lists.Entry{{netip.MustParsePrefix("203.0.113.0/24"), lists.SourceRuntime}}, got)

	// Static entries are per replica: a does not know b's.
	_, err = a.Add(ctx, lists.KindDeny, "192.0.2.0/24")
	require.NoError(t, err)
	_, err = b.Add(ctx, lists.KindAllow, "203.0.113.0/24")
	assert.ErrorIs(t, err, lists.ErrConflict, "the script sees a's runtime entry")

	// Changes interleave: b adds while a's change is unseen; b must still
	// pick up a's change on its next Refresh.
	_, err = a.Add(ctx, lists.KindDeny, "198.51.100.0/24")
	require.NoError(t, err)
	_, err = b.Add(ctx, lists.KindDeny, "100.64.0.0/10")
	require.NoError(t, err)
	assert.Equal(t, lists.Deny, b.Match(netip.MustParseAddr("100.64.1.1")), "b's own change is visible at once")
	require.NoError(t, b.Refresh(ctx))
	assert.Equal(t, lists.Deny, b.Match(netip.MustParseAddr("198.51.100.1")))

	require.NoError(t, a.Remove(ctx, lists.KindDeny, "203.0.113.0/24"))
	require.NoError(t, b.Refresh(ctx))
	assert.Equal(t, lists.None, b.Match(ip))
}

func TestConcurrentAddToBothLists(t *testing.T) {
	t.Parallel()
	a, rdb, prefix := newStore(t, lists.Static{})
	b, err := lists.New(rdb, prefix, lists.Static{}, discard)
	require.NoError(t, err)
	ctx := context.Background()
	for i := range 20 {
		cidr := fmt.Sprintf("10.%d.0.0/16", i)
		var errA, errB error
		var wg sync.WaitGroup
		wg.Go(func() { _, errA = a.Add(ctx, lists.KindAllow, cidr) })
		wg.Go(func() { _, errB = b.Add(ctx, lists.KindDeny, cidr) })
		wg.Wait()
		if errA == nil {
			assert.ErrorIs(t, errB, lists.ErrConflict, cidr)
		} else {
			assert.ErrorIs(t, errA, lists.ErrConflict, cidr)
			assert.NoError(t, errB, cidr)
		}
	}
}

func TestRefreshSkipsBadStoredEntries(t *testing.T) {
	t.Parallel()
	s, rdb, prefix := newStore(t, lists.Static{})
	ctx := context.Background()
	require.NoError(t, rdb.SAdd(ctx, prefix+"{lists}:deny", "10.0.0.0/8", "garbage").Err())
	require.NoError(t, rdb.Incr(ctx, prefix+"{lists}:version").Err())
	assert.ErrorIs(t, s.Refresh(ctx), lists.ErrInvalid)
	assert.Equal(t, lists.Deny, s.Match(netip.MustParseAddr("10.1.1.1")), "the good entries are loaded")
	assert.NoError(t, s.Refresh(ctx), "nothing to do until the version moves")
}

func TestSetStatic(t *testing.T) {
	t.Parallel()
	s, _, _ := newStore(t, lists.Static{Deny: prefixes("10.0.0.0/8")})
	ctx := context.Background()
	_, err := s.Add(ctx, lists.KindDeny, "172.16.0.0/12")
	require.NoError(t, err)

	require.NoError(t, s.SetStatic(lists.Static{Allow: prefixes("10.0.0.0/8"), Deny: prefixes("192.0.2.0/24")}))
	assert.Equal(t, lists.Allow, s.Match(netip.MustParseAddr("10.1.1.1")))
	assert.Equal(t, lists.Deny, s.Match(netip.MustParseAddr("192.0.2.1")))
	assert.Equal(t, lists.Deny, s.Match(netip.MustParseAddr("172.16.0.1")), "runtime entries survive a reload")
	assert.ErrorIs(t, s.Remove(ctx, lists.KindDeny, "10.0.0.0/8"), lists.ErrNotFound)
	assert.ErrorIs(t, s.Remove(ctx, lists.KindDeny, "192.0.2.0/24"), lists.ErrStatic)

	err = s.SetStatic(lists.Static{Allow: []netip.Prefix{{}}})
	require.ErrorIs(t, err, lists.ErrInvalid)
	assert.Equal(t, lists.Allow, s.Match(netip.MustParseAddr("10.1.1.1")), "a bad reload changes nothing")
}

func TestRunPicksUpOtherReplicas(t *testing.T) {
	t.Parallel()
	a, rdb, prefix := newStore(t, lists.Static{})
	b, err := lists.New(rdb, prefix, lists.Static{}, discard)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx, 10*time.Millisecond) }()

	_, err = a.Add(ctx, lists.KindDeny, "203.0.113.0/24")
	require.NoError(t, err)
	assert.Eventually(t, func() bool {
		return b.Match(netip.MustParseAddr("203.0.113.1")) == lists.Deny
	}, 5*time.Second, 5*time.Millisecond)
	cancel()
	assert.NoError(t, <-done)

	assert.Error(t, b.Run(context.Background(), 0))
}

func BenchmarkMatch(b *testing.B) {
	var static lists.Static
	for i := range 5_000 {
		static.Deny = append(static.Deny, netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i >> 8), byte(i), 0}), 24))
		static.Allow = append(static.Allow, netip.PrefixFrom(netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, byte(i >> 8), byte(i)}), 48))
	}
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"}) // never used by Match
	b.Cleanup(func() { _ = rdb.Close() })
	s, err := lists.New(rdb, "bench:", static, discard)
	require.NoError(b, err)
	ips := []netip.Addr{
		netip.MustParseAddr("10.7.42.1"),
		netip.MustParseAddr("11.0.0.1"),
		netip.MustParseAddr("2001:db8:5:9::1"),
		netip.MustParseAddr("2001:db9::1"),
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			s.Match(ips[i%len(ips)])
			i++
		}
	})
}

// A network added to the deny list is announced on the ban channel (every
// gateway closes the tunnels it covers); allow-list additions and refused
// additions are not.
func TestDenyAddsAreAnnounced(t *testing.T) {
	t.Parallel()
	s, rdb, prefix := newStore(t, lists.Static{})
	ctx := context.Background()
	sub := rdb.Subscribe(ctx, wire.BanChannel(prefix))
	t.Cleanup(func() { _ = sub.Close() })
	_, err := sub.Receive(ctx) // subscribed: nothing published from here on is missed
	require.NoError(t, err)
	msgs := sub.Channel()
	_, err = s.Add(ctx, lists.KindAllow, "192.0.2.0/24")
	require.NoError(t, err)
	_, err = s.Add(ctx, lists.KindDeny, "192.0.2.0/24")
	require.ErrorIs(t, err, lists.ErrConflict)
	_, err = s.Add(ctx, lists.KindDeny, "198.51.100.7/16")
	require.NoError(t, err)
	_, err = s.Add(ctx, lists.KindDeny, "198.51.0.0/16")
	require.ErrorIs(t, err, lists.ErrExists)
	_, err = s.Add(ctx, lists.KindDeny, "2001:db8::/32")
	require.NoError(t, err)
	for _, want := range []string{"198.51.0.0/16", "2001:db8::/32"} {
		select {
		case m := <-msgs:
			var n wire.BanNotice
			require.NoError(t, json.Unmarshal([]byte(m.Payload), &n))
			assert.Equal(t, wire.BanNotice{Deny: want}, n)
		case <-time.After(5 * time.Second):
			t.Fatalf("no notice for %s", want)
		}
	}
	// Nothing else was announced: a marker published last is the next
	// message (one channel's messages arrive in order).
	require.NoError(t, rdb.Publish(ctx, wire.BanChannel(prefix), "marker").Err())
	select {
	case m := <-msgs:
		assert.Equal(t, "marker", m.Payload)
	case <-time.After(5 * time.Second):
		t.Fatal("no marker")
	}
}
