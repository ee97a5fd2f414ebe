package audit_test

import (
	"context"
	"log/slog"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulwarkgw/bulwark/gateway/internal/audit"
	"github.com/bulwarkgw/bulwark/gateway/internal/testenv"
	"github.com/bulwarkgw/bulwark/shared/clientid"
)

func TestRecordQueryStats(t *testing.T) {
	t.Parallel()
	coll := testenv.Mongo(t).Collection("audit")
	ctx := context.Background()
	require.NoError(t, audit.EnsureIndexes(ctx, coll))
	require.NoError(t, audit.EnsureIndexes(ctx, coll), "idempotent")
	l, err := audit.New(coll, 100, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- l.Run(rctx) }()

	t0 := time.Now().Add(-time.Minute)
	for i := range 5 {
		l.Record(audit.Entry{Timestamp: t0.Add(time.Duration(i) * time.Second), EventType: audit.TypeRequest, ClientIP: "127.0.0.31", Method: "GET", Path: "/api/users", StatusCode: 200, DurationMS: 1.5, UserAgent: "acc/1"})
	}
	l.Record(audit.Entry{Timestamp: t0.Add(10 * time.Second), EventType: audit.TypeAdminAction, ClientIP: "127.0.0.1", Action: "config_reload", Details: "Reloaded 3 routes"})
	require.Eventually(t, func() bool {
		s, err := l.Stats(ctx)
		return err == nil && s.Total == 6
	}, 10*time.Second, 20*time.Millisecond)

	s, err := l.Stats(ctx)
	require.NoError(t, err)
	assert.Equal(t, audit.Stats{Total: 6, Requests: 5, AdminActions: 1}, s)

	admin, err := l.Logs(ctx, audit.Query{Limit: 10, EventType: audit.TypeAdminAction})
	require.NoError(t, err)
	require.Len(t, admin, 1)
	assert.Equal(t, "config_reload", admin[0].Action)

	page1, err := l.Logs(ctx, audit.Query{Limit: 2, ClientIP: "127.0.0.31"})
	require.NoError(t, err)
	page2, err := l.Logs(ctx, audit.Query{Limit: 2, Offset: 2, ClientIP: "127.0.0.31"})
	require.NoError(t, err)
	require.Len(t, page1, 2)
	require.Len(t, page2, 2)
	assert.True(t, page1[0].Timestamp.After(page1[1].Timestamp), "newest first")
	assert.True(t, page1[1].Timestamp.After(page2[0].Timestamp), "pages are disjoint and ordered")
	assert.NotEqual(t, page1[0].ID, page1[1].ID)
	cancel()
	require.NoError(t, <-done)
}

// TestLogsOfAnIPv6Client: a /64's pattern finds the rows of every address
// in it and of no other.
func TestLogsOfAnIPv6Client(t *testing.T) {
	t.Parallel()
	coll := testenv.Mongo(t).Collection("audit")
	ctx := context.Background()
	require.NoError(t, audit.EnsureIndexes(ctx, coll))
	l, err := audit.New(coll, 100, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- l.Run(rctx) }()

	t0 := time.Now().Add(-time.Minute)
	ips := []string{"2001:db8:1:2::5", "2001:db8:1:2:ffff::1", "2001:db8:1:3::5", "2001:db8:1:2::", "192.0.2.7", "2001:db8:0:1::2", "2001:db8::1:2:0:5"}
	for i, ip := range ips {
		l.Record(audit.Entry{Timestamp: t0.Add(time.Duration(i) * time.Second), EventType: audit.TypeRequest, ClientIP: ip, Method: "GET", Path: "/"})
	}
	require.Eventually(t, func() bool {
		s, err := l.Stats(ctx)
		return err == nil && s.Total == int64(len(ips))
	}, 10*time.Second, 20*time.Millisecond)

	clientIPs := func(pattern string) []string {
		rows, err := l.Logs(ctx, audit.Query{Limit: 100, ClientPattern: pattern})
		require.NoError(t, err)
		var out []string
		for _, r := range rows {
			out = append(out, r.ClientIP)
		}
		return out
	}
	assert.ElementsMatch(t, []string{"2001:db8:1:2::5", "2001:db8:1:2:ffff::1", "2001:db8:1:2::"},
		clientIPs(clientid.TextPattern(netip.MustParseAddr("2001:db8:1:2::77"))))
	// 2001:db8::1:2:0:5 is 2001:db8:0:0:1:2:0:5, in 2001:db8::/64.
	assert.ElementsMatch(t, []string{"2001:db8::1:2:0:5"}, clientIPs(clientid.TextPattern(netip.MustParseAddr("2001:db8::"))))
	cancel()
	require.NoError(t, <-done)
}
