package bans_test

import (
	"context"
	"encoding/json"
	"math"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulwarkgw/bulwark/gateway/internal/bans"
	"github.com/bulwarkgw/bulwark/gateway/internal/testenv"
	"github.com/bulwarkgw/bulwark/gateway/internal/traffic"
	"github.com/bulwarkgw/bulwark/shared/wire"
)

func newStore(t *testing.T) (*bans.Store, redis.UniversalClient, string) {
	t.Helper()
	rdb, prefix := testenv.Redis(t)
	s, err := bans.New(rdb, prefix)
	require.NoError(t, err)
	return s, rdb, prefix
}

func TestNewRejectsBadArguments(t *testing.T) {
	t.Parallel()
	_, err := bans.New(nil, "p:")
	assert.Error(t, err)
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	t.Cleanup(func() { _ = rdb.Close() })
	_, err = bans.New(rdb, "")
	assert.Error(t, err)
}

func TestBanIsSeenByTheTrafficScript(t *testing.T) {
	t.Parallel()
	s, rdb, prefix := newStore(t)
	tr, err := traffic.New(rdb, prefix)
	require.NoError(t, err)
	ctx := context.Background()
	now := time.Now()
	ip := netip.MustParseAddr("203.0.113.7")

	require.NoError(t, s.Ban(ctx, ip, time.Minute, "score 0.97", now))
	reason, err := rdb.Get(ctx, prefix+"{203.0.113.7}:ban").Result()
	require.NoError(t, err)
	assert.Equal(t, "score 0.97", reason)
	o, err := tr.Observe(ctx, ip, now, traffic.Request{})
	require.NoError(t, err)
	assert.True(t, o.Banned)
	assert.InDelta(t, time.Minute.Seconds(), o.BanTTL.Seconds(), 2)

	lifted, err := s.Unban(ctx, ip)
	require.NoError(t, err)
	assert.True(t, lifted)
	o, err = tr.Observe(ctx, ip, now, traffic.Request{})
	require.NoError(t, err)
	assert.False(t, o.Banned)

	lifted, err = s.Unban(ctx, ip)
	require.NoError(t, err)
	assert.False(t, lifted)
	n, err := rdb.ZCard(ctx, prefix+"bans").Result()
	require.NoError(t, err)
	assert.Zero(t, n, "the index entry went with the ban")
}

func TestBanRejectsBadArguments(t *testing.T) {
	t.Parallel()
	s, _, _ := newStore(t)
	ctx := context.Background()
	now := time.Now()
	tests := []struct {
		name string
		ip   netip.Addr
		ttl  time.Duration
	}{
		{"no ip", netip.Addr{}, time.Minute},
		{"zero ttl", netip.MustParseAddr("192.0.2.1"), 0},
		{"negative ttl", netip.MustParseAddr("192.0.2.1"), -time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.ErrorIs(t, s.Ban(ctx, tt.ip, tt.ttl, "x", now), bans.ErrInvalid)
		})
	}
}

func TestLongerBanIsNotShortened(t *testing.T) {
	t.Parallel()
	s, rdb, prefix := newStore(t)
	ctx := context.Background()
	now := time.Now().Truncate(time.Millisecond)
	ip := netip.MustParseAddr("2001:db8::")
	key := prefix + "{2001:db8::}:ban"

	require.NoError(t, s.Ban(ctx, ip, time.Hour, "manual", now))
	require.NoError(t, s.Ban(ctx, ip, time.Minute, "score", now))
	b, ok, err := s.Get(ctx, ip)
	require.NoError(t, err)
	require.True(t, ok)
	assert.Equal(t, "manual", b.Reason, "the longer ban stays, reason included")
	assert.InDelta(t, float64(now.Add(time.Hour).UnixMilli()), float64(b.Until.UnixMilli()), 2000)
	ttl, err := rdb.PTTL(ctx, key).Result()
	require.NoError(t, err)
	assert.InDelta(t, time.Hour.Seconds(), ttl.Seconds(), 2)

	// A longer ban replaces a shorter one.
	require.NoError(t, s.Ban(ctx, ip, 2*time.Hour, "repeat offender", now))
	b, ok, err = s.Get(ctx, ip)
	require.NoError(t, err)
	require.True(t, ok)
	assert.Equal(t, bans.Ban{IP: ip, Reason: "repeat offender", Until: now.Add(2 * time.Hour)}, b)
	ttl, err = rdb.PTTL(ctx, key).Result()
	require.NoError(t, err)
	assert.InDelta(t, (2 * time.Hour).Seconds(), ttl.Seconds(), 2)
}

func TestListSortsAndPrunes(t *testing.T) {
	t.Parallel()
	s, rdb, prefix := newStore(t)
	ctx := context.Background()
	now := time.Now().Truncate(time.Millisecond)
	bansIn := []struct {
		ip     string
		ttl    time.Duration
		reason string
	}{
		{"198.51.100.3", 3 * time.Hour, "third"},
		{"2001:db8::1", time.Hour, "first"},           // stored as its /64
		{"::ffff:192.0.2.1", 2 * time.Hour, "second"}, // stored unmapped
		{"192.0.2.99", time.Minute, "lifted behind our back"},
	}
	for _, b := range bansIn {
		require.NoError(t, s.Ban(ctx, netip.MustParseAddr(b.ip), b.ttl, b.reason, now))
	}
	// A ban lifted without the index (e.g. by traffic.Store.Unban).
	require.NoError(t, rdb.Del(ctx, prefix+"{192.0.2.99}:ban").Err())
	// A ban set without the index is not listed, but Get finds it.
	require.NoError(t, rdb.Set(ctx, prefix+"{192.0.2.50}:ban", "legacy", time.Minute).Err())
	// An index entry whose time has passed, one that is not an IP, one
	// without expiry whose key is gone, and one that is not a client's id
	// (an IPv6 ban once made on one address, which no gateway checks).
	require.NoError(t, rdb.Set(ctx, prefix+"{2001:db8:5::1}:ban", "never enforced", time.Hour).Err())
	require.NoError(t, rdb.ZAdd(ctx, prefix+"bans",
		redis.Z{Score: float64(now.Add(-time.Second).UnixMilli()), Member: "192.0.2.77"},
		redis.Z{Score: float64(now.Add(time.Hour).UnixMilli()), Member: "not an ip"},
		redis.Z{Score: math.Inf(1), Member: "192.0.2.78"},
		redis.Z{Score: float64(now.Add(time.Hour).UnixMilli()), Member: "2001:db8:5::1"}).Err())

	got, err := s.List(ctx, now)
	require.NoError(t, err)
	want := []bans.Ban{
		{IP: netip.MustParseAddr("2001:db8::"), Reason: "first", Until: now.Add(time.Hour)},
		{IP: netip.MustParseAddr("192.0.2.1"), Reason: "second", Until: now.Add(2 * time.Hour)},
		{IP: netip.MustParseAddr("198.51.100.3"), Reason: "third", Until: now.Add(3 * time.Hour)},
	}
	assert.Equal(t, want, got)
	members, err := rdb.ZRange(ctx, prefix+"bans", 0, -1).Result()
	require.NoError(t, err)
	assert.Equal(t, []string{"2001:db8::", "192.0.2.1", "198.51.100.3"}, members, "stale index entries pruned")

	// Listing later drops bans whose time has come, by the passed-in clock.
	got, err = s.List(ctx, now.Add(90*time.Minute))
	require.NoError(t, err)
	require.Len(t, got, 2)
	assert.Equal(t, "second", got[0].Reason)

	b, ok, err := s.Get(ctx, netip.MustParseAddr("192.0.2.50"))
	require.NoError(t, err)
	require.True(t, ok)
	assert.Equal(t, "legacy", b.Reason)
	assert.WithinDuration(t, time.Now().Add(time.Minute), b.Until, 2*time.Second)
}

func TestBanWithoutExpiryIsListedLast(t *testing.T) {
	t.Parallel()
	s, rdb, prefix := newStore(t)
	ctx := context.Background()
	now := time.Now().Truncate(time.Millisecond)
	permanent := netip.MustParseAddr("192.0.2.1")
	require.NoError(t, rdb.Set(ctx, prefix+"{192.0.2.1}:ban", "forever", 0).Err())
	require.NoError(t, s.Ban(ctx, permanent, time.Minute, "try to shorten", now))
	require.NoError(t, s.Ban(ctx, netip.MustParseAddr("192.0.2.2"), time.Minute, "short", now))

	got, err := s.List(ctx, now)
	require.NoError(t, err)
	assert.Equal(t, []bans.Ban{
		{IP: netip.MustParseAddr("192.0.2.2"), Reason: "short", Until: now.Add(time.Minute)},
		{IP: permanent, Reason: "forever"},
	}, got)
}

func TestGet(t *testing.T) {
	t.Parallel()
	s, _, _ := newStore(t)
	ctx := context.Background()
	now := time.Now().Truncate(time.Millisecond)
	ip := netip.MustParseAddr("192.0.2.10")

	_, ok, err := s.Get(ctx, ip)
	require.NoError(t, err)
	assert.False(t, ok)

	require.NoError(t, s.Ban(ctx, ip, 10*time.Minute, "", now))
	tests := []string{"192.0.2.10", "::ffff:192.0.2.10"}
	for _, addr := range tests {
		t.Run(addr, func(t *testing.T) {
			b, ok, err := s.Get(ctx, netip.MustParseAddr(addr))
			require.NoError(t, err)
			require.True(t, ok)
			assert.Equal(t, bans.Ban{IP: ip, Until: now.Add(10 * time.Minute)}, b)
		})
	}
}

// TestIPv6BansTheSlash64: any address of a /64 bans, finds and lifts the
// /64's one ban, under the key the traffic script checks for every address
// of it.
func TestIPv6BansTheSlash64(t *testing.T) {
	t.Parallel()
	s, rdb, prefix := newStore(t)
	tr, err := traffic.New(rdb, prefix)
	require.NoError(t, err)
	ctx := context.Background()
	now := time.Now().Truncate(time.Millisecond)
	id := netip.MustParseAddr("2001:db8:1:2::")

	require.NoError(t, s.Ban(ctx, netip.MustParseAddr("2001:db8:1:2::5"), time.Hour, "admin", now))
	reason, err := rdb.Get(ctx, prefix+"{2001:db8:1:2::}:ban").Result()
	require.NoError(t, err)
	assert.Equal(t, "admin", reason)
	o, err := tr.Observe(ctx, id, now, traffic.Request{})
	require.NoError(t, err)
	assert.True(t, o.Banned, "the gateway observes a /64 under its first address")

	got, err := s.List(ctx, now)
	require.NoError(t, err)
	assert.Equal(t, []bans.Ban{{IP: id, Reason: "admin", Until: now.Add(time.Hour)}}, got)
	b, ok, err := s.Get(ctx, netip.MustParseAddr("2001:db8:1:2:ffff::1"))
	require.NoError(t, err)
	require.True(t, ok)
	assert.Equal(t, id, b.IP)
	_, ok, err = s.Get(ctx, netip.MustParseAddr("2001:db8:1:3::5"))
	require.NoError(t, err)
	assert.False(t, ok, "the next /64 is another client")

	lifted, err := s.Unban(ctx, netip.MustParseAddr("2001:db8:1:2::99"))
	require.NoError(t, err)
	assert.True(t, lifted)
	o, err = tr.Observe(ctx, id, now, traffic.Request{})
	require.NoError(t, err)
	assert.False(t, o.Banned)
}

func TestEmptyList(t *testing.T) {
	t.Parallel()
	s, _, _ := newStore(t)
	got, err := s.List(context.Background(), time.Now())
	require.NoError(t, err)
	assert.Empty(t, got)
}

// trips counts the round trips a client makes (a pipeline or transaction
// is one) and the commands it sends.
type trips struct {
	mu    sync.Mutex
	n     int
	names []string
}

func (r *trips) DialHook(next redis.DialHook) redis.DialHook { return next }

func (r *trips) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		r.record(cmd)
		return next(ctx, cmd)
	}
}

func (r *trips) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		r.record(cmds...)
		return next(ctx, cmds)
	}
}

func (r *trips) record(cmds ...redis.Cmder) {
	switch cmds[0].Name() {
	case "hello", "client", "auth", "select":
		return // a new connection's handshake
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.n++
	for _, c := range cmds {
		r.names = append(r.names, c.Name())
	}
}

func (r *trips) take() (int, []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	n, names := r.n, r.names
	r.n, r.names = 0, nil
	return n, names
}

var _ redis.Hook = (*trips)(nil)

func TestBanWritesKeyAndIndexInOneRoundTrip(t *testing.T) {
	t.Parallel()
	s, rdb, prefix := newStore(t)
	rec := &trips{}
	rdb.AddHook(rec)
	ctx := context.Background()
	now := time.Now().Truncate(time.Millisecond)
	ip := netip.MustParseAddr("198.51.100.20")

	// On a cluster the pipeline is split per node, sent concurrently: one
	// round trip in time, one pipeline per node, never a transaction.
	cluster := testenv.IsCluster(rdb)
	require.NoError(t, s.Ban(ctx, ip, 10*time.Minute, "score 0.91", now))
	n, names := rec.take()
	if cluster {
		assert.ElementsMatch(t, []string{"eval", "zadd", "zremrangebyscore", "publish"}, names, "a plain pipeline on a cluster")
	} else {
		assert.Equal(t, 1, n, "one round trip")
		assert.Equal(t, []string{"multi", "eval", "zadd", "zremrangebyscore", "publish", "exec"}, names, "one transaction on a single server")
	}
	score, err := rdb.ZScore(ctx, prefix+"bans", "198.51.100.20").Result()
	require.NoError(t, err)
	assert.Equal(t, float64(now.Add(10*time.Minute).UnixMilli()), score)

	// A shorter ban leaves the longer one, and its end, as they are; it
	// takes a second round trip to index the longer ban's end.
	rec.take()
	require.NoError(t, s.Ban(ctx, ip, time.Minute, "shorter", now))
	n, _ = rec.take()
	if !cluster {
		assert.Equal(t, 2, n)
	}
	score, err = rdb.ZScore(ctx, prefix+"bans", "198.51.100.20").Result()
	require.NoError(t, err)
	assert.InDelta(t, float64(now.Add(10*time.Minute).UnixMilli()), score, 2000)

	rec.take()
	lifted, err := s.Unban(ctx, ip)
	require.NoError(t, err)
	assert.True(t, lifted)
	n, names = rec.take()
	if cluster {
		assert.ElementsMatch(t, []string{"del", "zrem"}, names)
	} else {
		assert.Equal(t, 1, n)
		assert.Equal(t, []string{"multi", "del", "zrem", "exec"}, names)
	}
	members, err := rdb.ZCard(ctx, prefix+"bans").Result()
	require.NoError(t, err)
	assert.Zero(t, members, "the index entry went with the ban")
}

// Every ban is announced on the ban channel, with the client's id (an
// IPv6 client's /64), so that gateways close its tunnels; a shorter ban
// that leaves a longer one in place is announced too.
func TestBanIsAnnounced(t *testing.T) {
	t.Parallel()
	s, rdb, prefix := newStore(t)
	ctx := context.Background()
	sub := rdb.Subscribe(ctx, wire.BanChannel(prefix))
	t.Cleanup(func() { _ = sub.Close() })
	_, err := sub.Receive(ctx) // the subscription is confirmed: nothing published after it is missed
	require.NoError(t, err)
	msgs := sub.Channel()
	now := time.Now()
	for _, ip := range []string{"198.51.100.30", "2001:db8:7:7::42", "198.51.100.30"} {
		require.NoError(t, s.Ban(ctx, netip.MustParseAddr(ip), time.Hour-time.Duration(len(ip))*time.Minute, "test", now))
	}
	for _, want := range []string{"198.51.100.30", "2001:db8:7:7::", "198.51.100.30"} {
		select {
		case m := <-msgs:
			var n wire.BanNotice
			require.NoError(t, json.Unmarshal([]byte(m.Payload), &n))
			assert.Equal(t, wire.BanNotice{Ban: want}, n)
		case <-time.After(5 * time.Second):
			t.Fatalf("no notice for %s", want)
		}
	}
}

func TestBanned(t *testing.T) {
	t.Parallel()
	s, _, _ := newStore(t)
	ctx := context.Background()
	now := time.Now()
	got, err := s.Banned(ctx, nil)
	require.NoError(t, err)
	assert.Empty(t, got)
	require.NoError(t, s.Ban(ctx, netip.MustParseAddr("198.51.100.40"), time.Hour, "test", now))
	require.NoError(t, s.Ban(ctx, netip.MustParseAddr("2001:db8:40::1"), time.Hour, "test", now))
	got, err = s.Banned(ctx, []netip.Addr{
		netip.MustParseAddr("198.51.100.40"), netip.MustParseAddr("198.51.100.41"),
		netip.MustParseAddr("2001:db8:40::77"), netip.MustParseAddr("2001:db8:41::1"),
	})
	require.NoError(t, err)
	assert.Equal(t, []netip.Addr{netip.MustParseAddr("198.51.100.40"), netip.MustParseAddr("2001:db8:40::")}, got)
}

func TestBanIndexesALongerBanSetElsewhere(t *testing.T) {
	t.Parallel()
	s, rdb, prefix := newStore(t)
	ctx := context.Background()
	now := time.Now().Truncate(time.Millisecond)
	tests := []struct {
		ip   string
		ttl  time.Duration // of the ban set without the index; 0: no expiry
		want float64
	}{
		{"192.0.2.31", time.Hour, float64(now.Add(time.Hour).UnixMilli())},
		{"192.0.2.32", 0, math.Inf(1)},
	}
	for _, tt := range tests {
		t.Run(tt.ip, func(t *testing.T) {
			require.NoError(t, rdb.Set(ctx, prefix+"{"+tt.ip+"}:ban", "legacy", tt.ttl).Err())
			require.NoError(t, s.Ban(ctx, netip.MustParseAddr(tt.ip), time.Minute, "score", now))
			score, err := rdb.ZScore(ctx, prefix+"bans", tt.ip).Result()
			require.NoError(t, err)
			assert.InDelta(t, tt.want, score, 2000, "the index holds the end of the ban that stays")
			reason, err := rdb.Get(ctx, prefix+"{"+tt.ip+"}:ban").Result()
			require.NoError(t, err)
			assert.Equal(t, "legacy", reason)
		})
	}
}

func TestListKeepsAnIndexEntryBannedAgain(t *testing.T) {
	t.Parallel()
	s, rdb, prefix := newStore(t)
	ctx := context.Background()
	now := time.Now().Truncate(time.Millisecond)
	// A listing found the key gone while the index said "until now+1h";
	// before it removed the member, the client was banned again for 2h.
	require.NoError(t, s.Ban(ctx, netip.MustParseAddr("192.0.2.60"), 2*time.Hour, "again", now))
	require.NoError(t, bans.Forget(ctx, s, "192.0.2.60", float64(now.Add(time.Hour).UnixMilli())))
	n, err := rdb.ZCard(ctx, prefix+"bans").Result()
	require.NoError(t, err)
	assert.Equal(t, int64(1), n, "a score that moved since the listing is kept")
	require.NoError(t, bans.Forget(ctx, s, "192.0.2.60", float64(now.Add(2*time.Hour).UnixMilli())))
	n, err = rdb.ZCard(ctx, prefix+"bans").Result()
	require.NoError(t, err)
	assert.Zero(t, n, "the score listed is removed")
}

// TestLeft: the request path's one-read check of a ban's time left.
func TestLeft(t *testing.T) {
	t.Parallel()
	s, _, _ := newStore(t)
	ctx := context.Background()
	ip := netip.MustParseAddr("2001:db8:7::9")
	left, err := s.Left(ctx, ip)
	require.NoError(t, err)
	assert.Zero(t, left, "no ban")
	require.NoError(t, s.Ban(ctx, netip.MustParseAddr("2001:db8:7::1"), time.Minute, "score", time.Now()))
	left, err = s.Left(ctx, ip)
	require.NoError(t, err)
	assert.Greater(t, left, 50*time.Second, "the /64's ban, read from another of its addresses")
	assert.LessOrEqual(t, left, time.Minute)
}
