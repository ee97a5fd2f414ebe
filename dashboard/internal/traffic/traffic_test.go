package traffic_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/bulwarkgw/bulwark/dashboard/internal/testenv"
	"github.com/bulwarkgw/bulwark/dashboard/internal/traffic"
	"github.com/bulwarkgw/bulwark/shared/wire"
)

func TestListBans(t *testing.T) {
	t.Parallel()
	rdb, prefix := testenv.Redis(t)
	other := prefix[:len(prefix)-1] + "x:" // a neighbour's prefix that extends ours
	ctx := context.Background()
	require.NoError(t, rdb.Set(ctx, wire.BanKey(prefix, "203.0.113.1"), "score 0.93", 10*time.Minute).Err())
	require.NoError(t, rdb.Set(ctx, wire.BanKey(prefix, "2001:db8::1"), "admin", time.Minute).Err())
	require.NoError(t, rdb.Set(ctx, wire.BanKey(prefix, "198.51.100.2"), "forever", 0).Err())
	require.NoError(t, rdb.Set(ctx, wire.BanKey(other, "192.0.2.1"), "not ours", time.Minute).Err())
	require.NoError(t, rdb.Set(ctx, wire.ClientKey(prefix, "192.0.2.2"), "1", time.Minute).Err())
	t.Cleanup(func() { rdb.Del(context.Background(), wire.BanKey(other, "192.0.2.1")) })

	s, err := traffic.New(rdb, prefix, testenv.Mongo(t).Collection("events"), "dash")
	require.NoError(t, err)
	bans, err := s.List(ctx)
	require.NoError(t, err)
	require.Len(t, bans, 3)
	assert.Equal(t, wire.Ban{IP: "198.51.100.2", TTLSeconds: -1, Reason: "forever"}, bans[0], "no expiry first")
	assert.Equal(t, "203.0.113.1", bans[1].IP)
	assert.InDelta(t, 600, bans[1].TTLSeconds, 5)
	assert.Equal(t, "score 0.93", bans[1].Reason)
	assert.Equal(t, "2001:db8::1", bans[2].IP)
	assert.InDelta(t, 60, bans[2].TTLSeconds, 5)
}

func TestClient(t *testing.T) {
	t.Parallel()
	rdb, prefix := testenv.Redis(t)
	ctx := context.Background()
	now := time.Unix(1_800_000_000, 0)
	// A gateway's state: 7 requests in the current 10 s bucket, 3 in the
	// one before, 99 in a bucket that has left the minute's ring.
	st := wire.ClientState{LastMs: float64(now.UnixMilli())}
	cur := now.UnixMilli() / wire.Ring60sWidthMs
	st.R60s[cur%wire.Ring60sBuckets] = 7
	st.R60s[(cur-1)%wire.Ring60sBuckets] = 3
	st.R60s[(cur-6)%wire.Ring60sBuckets] = 99 // the oldest bucket is out of the last minute's 6
	require.NoError(t, rdb.Set(ctx, wire.ClientKey(prefix, "203.0.113.1"), st.Encode(), time.Minute).Err())
	require.NoError(t, rdb.Set(ctx, wire.BanKey(prefix, "203.0.113.1"), "score 0.90", 5*time.Minute).Err())
	s, err := traffic.New(rdb, prefix, testenv.Mongo(t).Collection("events"), "dash")
	require.NoError(t, err)

	c, err := s.Client(ctx, "203.0.113.1", now)
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

	c, err = s.Client(ctx, "192.0.2.1", now)
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
	require.NoError(t, rdb.Set(ctx, wire.BanKey(prefix, "203.0.113.1"), "score 0.93", 10*time.Minute).Err())
	s, err := traffic.New(rdb, prefix, coll, "dash-1")
	require.NoError(t, err)
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

	ev, err := s.Unban(ctx, "203.0.113.1", now)
	require.NoError(t, err)
	assert.Equal(t, wire.EventUnban, ev.Type)
	assert.Equal(t, "203.0.113.1", ev.IP)
	assert.Equal(t, "dash-1", ev.Gateway)
	assert.NotEmpty(t, ev.ID)

	n, err := rdb.Exists(ctx, wire.BanKey(prefix, "203.0.113.1")).Result()
	require.NoError(t, err)
	assert.Zero(t, n, "the ban key is gone")

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

	_, err = s.Unban(ctx, "203.0.113.1", now)
	assert.ErrorIs(t, err, traffic.ErrNotBanned, "a second unban finds nothing")
}
