package tunnels_test

import (
	"context"
	"log/slog"
	"net/netip"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulwarkgw/bulwark/gateway/internal/testenv"
	"github.com/bulwarkgw/bulwark/gateway/internal/tunnels"
	"github.com/bulwarkgw/bulwark/shared/wire"
)

// wait is a deadline for something that is on its way, not a measure.
const wait = 10 * time.Second

func recv[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(wait):
		t.Fatalf("no %s", what)
		panic("unreachable")
	}
}

// Watch hands every notice on, and after its Redis is killed and started
// again it subscribes again by itself and catches up (Resync).
func TestWatchResubscribesAfterAnOutage(t *testing.T) {
	t.Parallel()
	srv := testenv.StartRedisServer(t)
	// The gateway's client options: no retries, short timeouts.
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr(), DialTimeout: time.Second, ReadTimeout: 100 * time.Millisecond,
		WriteTimeout: 100 * time.Millisecond, MaxRetries: -1, DialerRetries: 1})
	t.Cleanup(func() { _ = rdb.Close() })
	pub := srv.Client()
	channel := wire.BanChannel("t:")

	bans, denies, syncs := make(chan netip.Addr, 8), make(chan netip.Prefix, 8), make(chan struct{}, 8)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- tunnels.Watch(ctx, rdb, channel, tunnels.Notices{
			Ban:    func(_ context.Context, id netip.Addr) { bans <- id },
			Deny:   func(_ context.Context, p netip.Prefix) { denies <- p },
			Resync: func(context.Context) { syncs <- struct{}{} },
		}, slog.New(slog.DiscardHandler))
	}()

	publish := func(payload string) {
		t.Helper()
		require.NoError(t, pub.Publish(context.Background(), channel, payload).Err())
	}
	recv(t, syncs, "first subscription")
	publish(`not json`)
	publish(`{"ban":"192.0.2.7"}`)
	publish(`{"deny":"10.0.0.0/8"}`)
	assert.Equal(t, netip.MustParseAddr("192.0.2.7"), recv(t, bans, "ban"))
	assert.Equal(t, netip.MustParsePrefix("10.0.0.0/8"), recv(t, denies, "deny"))

	srv.Kill()
	srv.Start()
	recv(t, syncs, "subscription after the restart")
	publish(`{"ban":"2001:db8::"}`)
	assert.Equal(t, netip.MustParseAddr("2001:db8::"), recv(t, bans, "ban after the restart"))

	cancel()
	assert.NoError(t, recv(t, done, "Watch to return"))
}

func TestWatchRefusesBadArguments(t *testing.T) {
	t.Parallel()
	err := tunnels.Watch(context.Background(), nil, "c", tunnels.Notices{}, slog.New(slog.DiscardHandler))
	assert.Error(t, err)
}
