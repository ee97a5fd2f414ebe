package traffic_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/bulwarkgw/bulwark/dashboard/internal/testenv"
	"github.com/bulwarkgw/bulwark/dashboard/internal/traffic"
	"github.com/bulwarkgw/bulwark/shared/wire"
)

// ban writes a ban as the gateways do on a cluster: the ban key and its
// index entry in one pipeline (they are on different slots).
func ban(t testing.TB, rdb redis.UniversalClient, prefix, ip, reason string, ttl time.Duration, now time.Time) {
	t.Helper()
	score := math.Inf(1)
	if ttl > 0 {
		score = float64(now.Add(ttl).UnixMilli())
	}
	_, err := rdb.Pipelined(context.Background(), func(p redis.Pipeliner) error {
		p.Set(context.Background(), wire.BanKey(prefix, netip.MustParseAddr(ip)), reason, ttl)
		p.ZAdd(context.Background(), wire.BanIndexKey(prefix), redis.Z{Score: score, Member: ip})
		return nil
	})
	require.NoError(t, err)
}

func newStore(t testing.TB, rdb redis.UniversalClient, prefix string) *traffic.Store {
	t.Helper()
	s, err := traffic.New(rdb, prefix, testenv.Mongo(t).Collection("events"), "dash")
	require.NoError(t, err)
	return s
}

func TestListBans(t *testing.T) {
	t.Parallel()
	rdb, prefix := testenv.Redis(t)
	other := prefix[:len(prefix)-1] + "x:" // a neighbour's prefix that extends ours
	ctx := context.Background()
	now := time.Now()
	ban(t, rdb, prefix, "203.0.113.1", "score 0.93", 10*time.Minute, now)
	ban(t, rdb, prefix, "2001:db8::", "admin", time.Minute, now)
	ban(t, rdb, prefix, "198.51.100.2", "forever", 0, now)
	ban(t, rdb, other, "192.0.2.1", "not ours", time.Minute, now)
	require.NoError(t, rdb.Set(ctx, wire.ClientKey(prefix, netip.MustParseAddr("192.0.2.2")), "1", time.Minute).Err())
	t.Cleanup(func() {
		rdb.Del(context.Background(), wire.BanKey(other, netip.MustParseAddr("192.0.2.1")), wire.BanIndexKey(other))
	})

	bans, err := newStore(t, rdb, prefix).List(ctx, now)
	require.NoError(t, err)
	require.Len(t, bans, 3)
	assert.Equal(t, wire.Ban{IP: "198.51.100.2", TTLSeconds: -1, Reason: "forever"}, bans[0], "no expiry first")
	assert.Equal(t, "203.0.113.1", bans[1].IP)
	assert.InDelta(t, 600, bans[1].TTLSeconds, 5)
	assert.Equal(t, "score 0.93", bans[1].Reason)
	assert.Equal(t, "2001:db8::/64", bans[2].IP, "an IPv6 client is shown as its /64")
	assert.InDelta(t, 60, bans[2].TTLSeconds, 5)
}

func TestListPrunesTheIndex(t *testing.T) {
	t.Parallel()
	rdb, prefix := testenv.Redis(t)
	ctx := context.Background()
	now := time.Now()
	index := wire.BanIndexKey(prefix)
	ban(t, rdb, prefix, "203.0.113.1", "short", time.Minute, now)
	ban(t, rdb, prefix, "203.0.113.2", "long", time.Hour, now)
	// Lifted behind the index's back, with and without expiry.
	ban(t, rdb, prefix, "203.0.113.3", "lifted", time.Hour, now)
	ban(t, rdb, prefix, "203.0.113.4", "lifted", 0, now)
	for _, ip := range []string{"203.0.113.3", "203.0.113.4"} { // two slots on a cluster
		require.NoError(t, rdb.Del(ctx, wire.BanKey(prefix, netip.MustParseAddr(ip))).Err())
	}
	// Set without the index (by hand): enforced, not listed.
	require.NoError(t, rdb.Set(ctx, wire.BanKey(prefix, netip.MustParseAddr("203.0.113.5")), "by hand", time.Hour).Err())
	s := newStore(t, rdb, prefix)

	bans, err := s.List(ctx, now)
	require.NoError(t, err)
	ips := func(bans []wire.Ban) (out []string) {
		for _, b := range bans {
			out = append(out, b.IP)
		}
		return out
	}
	assert.Equal(t, []string{"203.0.113.2", "203.0.113.1"}, ips(bans))
	members, err := rdb.ZRange(ctx, index, 0, -1).Result()
	require.NoError(t, err)
	assert.Equal(t, []string{"203.0.113.1", "203.0.113.2"}, members, "members whose ban key is gone are removed")
	c, err := s.Client(ctx, netip.MustParseAddr("203.0.113.5"), now)
	require.NoError(t, err)
	assert.True(t, c.Banned, "an unindexed ban still shows for its client")

	// Two minutes later the short ban has ended (by the clock passed in;
	// its key still has a TTL in Redis): not listed, and pruned.
	bans, err = s.List(ctx, now.Add(2*time.Minute))
	require.NoError(t, err)
	assert.Equal(t, []string{"203.0.113.2"}, ips(bans))
	members, err = rdb.ZRange(ctx, index, 0, -1).Result()
	require.NoError(t, err)
	assert.Equal(t, []string{"203.0.113.2"}, members, "ended bans are pruned")
}

func TestListKeepsAMemberBannedAgain(t *testing.T) {
	t.Parallel()
	rdb, prefix := testenv.Redis(t)
	ctx := context.Background()
	now := time.Now()
	index := wire.BanIndexKey(prefix)
	// The listing found 203.0.113.1's key gone, but before it removed the
	// member a gateway banned the client again (a later end: ZADD GT).
	ban(t, rdb, prefix, "203.0.113.1", "again", 2*time.Hour, now)
	s := newStore(t, rdb, prefix)
	require.NoError(t, traffic.Forget(ctx, s, "203.0.113.1", float64(now.Add(time.Hour).UnixMilli())))
	n, err := rdb.ZCard(ctx, index).Result()
	require.NoError(t, err)
	assert.Equal(t, int64(1), n, "a score that moved since the listing is kept")
	require.NoError(t, traffic.Forget(ctx, s, "203.0.113.1", float64(now.Add(2*time.Hour).UnixMilli())))
	n, err = rdb.ZCard(ctx, index).Result()
	require.NoError(t, err)
	assert.Zero(t, n, "the score listed is removed")
}

// recorder records the commands a client sends.
type recorder struct {
	mu    sync.Mutex
	names []string
}

func (r *recorder) DialHook(next redis.DialHook) redis.DialHook { return next }

func (r *recorder) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		r.record(cmd)
		return next(ctx, cmd)
	}
}

func (r *recorder) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		r.record(cmds...)
		return next(ctx, cmds)
	}
}

func (r *recorder) record(cmds ...redis.Cmder) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, c := range cmds {
		r.names = append(r.names, c.Name())
	}
}

func (r *recorder) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	names := r.names
	r.names = nil
	return names
}

var _ redis.Hook = (*recorder)(nil)

// clients writes n clients' traffic states under prefix, as the gateways
// keep them for every client they track.
func clients(t testing.TB, rdb redis.UniversalClient, prefix string, n int) {
	t.Helper()
	ctx := context.Background()
	st := wire.ClientState{LastSecond: 1_800_000_000}
	state := st.Encode()
	for from := 0; from < n; from += 1000 {
		_, err := rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i := from; i < min(from+1000, n); i++ {
				ip := fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255)
				p.Set(ctx, wire.ClientKey(prefix, netip.MustParseAddr(ip)), state, 0)
			}
			return nil
		})
		require.NoError(t, err)
	}
	t.Cleanup(func() { // faster than testenv's key-by-key cleanup
		for from := 0; from < n; from += 1000 {
			_, _ = rdb.Pipelined(context.Background(), func(p redis.Pipeliner) error {
				for i := from; i < min(from+1000, n); i++ {
					p.Unlink(context.Background(), wire.ClientKey(prefix, netip.MustParseAddr(fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255))))
				}
				return nil
			})
		}
	})
}

func TestListCostDoesNotDependOnClients(t *testing.T) {
	t.Parallel()
	rdb, prefix := testenv.Redis(t)
	ctx := context.Background()
	now := time.Now()
	for i := range 5 {
		ban(t, rdb, prefix, fmt.Sprintf("203.0.113.%d", i+1), "score 0.9", time.Duration(i+1)*time.Minute, now)
	}
	rec := &recorder{}
	rdb.AddHook(rec)
	s := newStore(t, rdb, prefix)

	bans, err := s.List(ctx, now)
	require.NoError(t, err)
	require.Len(t, bans, 5)
	few := rec.take()

	clients(t, rdb, prefix, 10_000)
	// scans reads how many SCANs the server has run.
	scans := func() int64 {
		info, err := rdb.Info(ctx, "commandstats").Result()
		require.NoError(t, err)
		for _, line := range strings.Split(info, "\r\n") {
			if rest, ok := strings.CutPrefix(line, "cmdstat_scan:calls="); ok {
				n, err := strconv.ParseInt(rest[:strings.IndexByte(rest, ',')], 10, 64)
				require.NoError(t, err)
				return n
			}
		}
		return 0
	}
	rec.take()
	bans, err = s.List(ctx, now)
	require.NoError(t, err)
	require.Len(t, bans, 5)
	many := rec.take()
	assert.Equal(t, few, many, "the same commands with 10,000 more clients")
	assert.NotContains(t, many, "scan")
	assert.Len(t, many, 2+2*5, "the index page and prune, then PTTL and GET per ban")

	if _, ok := rdb.(*redis.ClusterClient); ok {
		return // INFO answers from one node of a cluster, and every test's cleanup SCANs every master
	}
	// The server agrees: a listing during which no SCAN ran at all. Other
	// tests' cleanups SCAN the same server, so a listing is retried until
	// one runs alone; a listing that scanned would never run alone.
	alone := false
	for range 50 {
		before := scans()
		_, err := s.List(ctx, now)
		require.NoError(t, err)
		if scans() == before {
			alone = true
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	assert.True(t, alone, "cmdstat_scan moved during every listing")
}
func TestClient(t *testing.T) {
	t.Parallel()
	rdb, prefix := testenv.Redis(t)
	ctx := context.Background()
	now := time.Unix(1_800_000_000, 0)
	// A gateway's state: 7 requests in the current 10 s bucket, 3 in the
	// one before, 99 in a bucket that has left the minute's ring.
	st := wire.ClientState{LastSecond: uint32(now.Unix()), LastMilli: uint16(now.UnixMilli() % 1000)}
	cur := now.UnixMilli() / wire.Ring60sWidthMs
	st.R60s[cur%wire.Ring60sBuckets] = 7
	st.R60s[(cur-1)%wire.Ring60sBuckets] = 3
	st.R60s[(cur-6)%wire.Ring60sBuckets] = 99 // the oldest bucket is out of the last minute's 6
	require.NoError(t, rdb.Set(ctx, wire.ClientKey(prefix, netip.MustParseAddr("203.0.113.1")), st.Encode(), time.Minute).Err())
	require.NoError(t, rdb.Set(ctx, wire.BanKey(prefix, netip.MustParseAddr("203.0.113.1")), "score 0.90", 5*time.Minute).Err())
	s, err := traffic.New(rdb, prefix, testenv.Mongo(t).Collection("events"), "dash")
	require.NoError(t, err)

	c, err := s.Client(ctx, netip.MustParseAddr("203.0.113.1"), now)
	require.NoError(t, err)
	assert.True(t, c.Banned)
	assert.Equal(t, "score 0.90", c.BanReason)
	assert.InDelta(t, 300, c.BanTTLSeconds, 5)
	require.Len(t, c.Requests, 6, "a minute in 10 s buckets")
	assert.Equal(t, wire.Point{TS: cur * 10, Requests: 7}, c.Requests[5])
	assert.Equal(t, int64(3), c.Requests[4].Requests)
	var sum int64
	for _, p := range c.Requests {
		sum += p.Requests
	}
	assert.Equal(t, int64(10), sum, "buckets outside the minute are left out")

	c, err = s.Client(ctx, netip.MustParseAddr("192.0.2.1"), now)
	require.NoError(t, err)
	assert.False(t, c.Banned)
	assert.Zero(t, c.BanTTLSeconds)
	assert.Len(t, c.Requests, 6)
}

func TestUnban(t *testing.T) {
	t.Parallel()
	rdb, prefix := testenv.Redis(t)
	coll := testenv.Mongo(t).Collection("events")
	ctx := context.Background()
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	ban(t, rdb, prefix, "203.0.113.1", "score 0.93", 10*time.Minute, now)
	s, err := traffic.New(rdb, prefix, coll, "dash-1")
	require.NoError(t, err)
	listed, err := s.List(ctx, now)
	require.NoError(t, err)
	require.Len(t, listed, 1)

	ev, err := s.Unban(ctx, netip.MustParseAddr("203.0.113.1"), now)
	require.NoError(t, err)
	assert.Equal(t, wire.EventUnban, ev.Type)
	assert.Equal(t, "203.0.113.1", ev.IP)
	assert.Equal(t, "dash-1", ev.Gateway)
	assert.NotEmpty(t, ev.ID)

	n, err := rdb.Exists(ctx, wire.BanKey(prefix, netip.MustParseAddr("203.0.113.1"))).Result()
	require.NoError(t, err)
	assert.Zero(t, n, "the ban key is gone")
	n, err = rdb.ZCard(ctx, wire.BanIndexKey(prefix)).Result()
	require.NoError(t, err)
	assert.Zero(t, n, "and its index entry")
	bans, err := s.List(ctx, now)
	require.NoError(t, err)
	assert.Empty(t, bans)

	msgs, err := rdb.XRange(ctx, wire.StreamKey(prefix), "-", "+").Result()
	require.NoError(t, err)
	require.Len(t, msgs, 1)
	var onStream wire.Event
	require.NoError(t, json.Unmarshal([]byte(msgs[0].Values[wire.StreamField].(string)), &onStream))
	assert.Equal(t, ev.ID, onStream.ID)
	assert.Equal(t, wire.EventUnban, onStream.Type)

	var stored wire.Event
	require.NoError(t, coll.FindOne(ctx, bson.D{{Key: "_id", Value: ev.ID}}).Decode(&stored))
	assert.Equal(t, "203.0.113.1", stored.IP)
	assert.Equal(t, now, stored.TS.UTC())

	_, err = s.Unban(ctx, netip.MustParseAddr("203.0.113.1"), now)
	assert.ErrorIs(t, err, traffic.ErrNotBanned, "a second unban finds nothing")
}

// TestIPv6ClientIsItsSlash64: the gateways ban and count an IPv6 client
// under its /64's first address; any address of the /64 reads and lifts
// that, and the /64 is what the listing and the unban event show.
func TestIPv6ClientIsItsSlash64(t *testing.T) {
	t.Parallel()
	rdb, prefix := testenv.Redis(t)
	coll := testenv.Mongo(t).Collection("events")
	ctx := context.Background()
	now := time.Now()
	ban(t, rdb, prefix, "2001:db8:1:2::", "score 0.99", 10*time.Minute, now)
	// A ban once made on one address of a /64: no gateway checks its key.
	ban(t, rdb, prefix, "2001:db8:5::1", "never enforced", 10*time.Minute, now)
	st := wire.ClientState{LastSecond: uint32(now.Unix()), LastMilli: uint16(now.UnixMilli() % 1000)}
	st.R60s[(now.UnixMilli()/wire.Ring60sWidthMs)%wire.Ring60sBuckets] = 4
	require.NoError(t, rdb.Set(ctx, wire.ClientKey(prefix, netip.MustParseAddr("2001:db8:1:2::")), st.Encode(), time.Minute).Err())
	s, err := traffic.New(rdb, prefix, coll, "dash-1")
	require.NoError(t, err)

	bans, err := s.List(ctx, now)
	require.NoError(t, err)
	require.Len(t, bans, 1)
	assert.Equal(t, "2001:db8:1:2::/64", bans[0].IP)
	members, err := rdb.ZRange(ctx, wire.BanIndexKey(prefix), 0, -1).Result()
	require.NoError(t, err)
	assert.Equal(t, []string{"2001:db8:1:2::"}, members, "the member that is no client's id is pruned")

	c, err := s.Client(ctx, netip.MustParseAddr("2001:db8:1:2::77"), now)
	require.NoError(t, err)
	assert.True(t, c.Banned)
	assert.Equal(t, "score 0.99", c.BanReason)
	var sum int64
	for _, p := range c.Requests {
		sum += p.Requests
	}
	assert.EqualValues(t, 4, sum, "the /64's request window")

	ev, err := s.Unban(ctx, netip.MustParseAddr("2001:db8:1:2::99"), now)
	require.NoError(t, err)
	assert.Equal(t, "2001:db8:1:2::/64", ev.IP)
	c, err = s.Client(ctx, netip.MustParseAddr("2001:db8:1:2::"), now)
	require.NoError(t, err)
	assert.False(t, c.Banned)
	_, err = s.Unban(ctx, netip.MustParseAddr("2001:db8:1:2::"), now)
	assert.ErrorIs(t, err, traffic.ErrNotBanned)
}
