package stats_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulwarkgw/bulwark/gateway/internal/stats"
	"github.com/bulwarkgw/bulwark/gateway/internal/testenv"
	"github.com/bulwarkgw/bulwark/shared/wire"
)

func TestFlushSumsAcrossGateways(t *testing.T) {
	t.Parallel()
	rdb, prefix := testenv.Redis(t)
	ctx := context.Background()
	a, err := stats.New(rdb, prefix, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	b, err := stats.New(rdb, prefix, slog.New(slog.DiscardHandler))
	require.NoError(t, err)

	t0 := time.Unix(1_800_000_000, 0)
	a.Request(t0, stats.Allowed)
	a.Request(t0, stats.Blocked)
	a.Ban(t0)
	b.Request(t0, stats.Throttled)
	b.Request(t0.Add(time.Second), stats.Allowed)
	a.Flush(ctx)
	b.Flush(ctx)
	a.Flush(ctx) // nothing pending: no change

	got, err := rdb.HGetAll(ctx, wire.StatsKey(prefix, t0.Unix())).Result()
	require.NoError(t, err)
	assert.Equal(t, map[string]string{"requests": "3", "allowed": "1", "throttled": "1", "blocked": "1", "bans": "1"}, got)
	got, err = rdb.HGetAll(ctx, wire.StatsKey(prefix, t0.Unix()+1)).Result()
	require.NoError(t, err)
	assert.Equal(t, map[string]string{"requests": "1", "allowed": "1"}, got)
	got, err = rdb.HGetAll(ctx, wire.StatsTotalKey(prefix)).Result()
	require.NoError(t, err)
	assert.Equal(t, map[string]string{"requests": "4", "allowed": "2", "throttled": "1", "blocked": "1", "bans": "1"}, got)
	ttl, err := rdb.TTL(ctx, wire.StatsKey(prefix, t0.Unix())).Result()
	require.NoError(t, err)
	assert.Greater(t, ttl, time.Duration(0))
}
