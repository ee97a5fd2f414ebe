package server_test

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/bulwarkgw/bulwark/gateway/internal/bans"
	"github.com/bulwarkgw/bulwark/gateway/internal/config"
	"github.com/bulwarkgw/bulwark/gateway/internal/lists"
	"github.com/bulwarkgw/bulwark/gateway/internal/proxy"
	"github.com/bulwarkgw/bulwark/gateway/internal/ratelimit"
	"github.com/bulwarkgw/bulwark/gateway/internal/realip"
	"github.com/bulwarkgw/bulwark/gateway/internal/server"
	"github.com/bulwarkgw/bulwark/gateway/internal/testenv"
	"github.com/bulwarkgw/bulwark/gateway/internal/traffic"
	"github.com/bulwarkgw/bulwark/shared/wire"
)

type nopPublisher struct{}

func (nopPublisher) Publish(wire.Event) {}

// BenchmarkChainOverhead measures what the protection chain costs on top of
// plain proxying, in the same run and against the same upstream: each
// iteration sends one request through the bare reverse proxy (the baseline)
// and one through the whole chain (lists, the Redis round trip for counts
// and ban, the in-memory fallback's ban checks, a rate limit, scoring with an in-process scorer, the decision).
// It reports both latencies and their ratio (x-baseline); the ratio, not the
// absolute numbers, is what compares across machines.
func BenchmarkChainOverhead(b *testing.B) {
	rdb, prefix := testenv.Redis(b)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("ok")) }))
	b.Cleanup(up.Close)
	u, _ := url.Parse(up.URL)
	log := slog.New(slog.DiscardHandler)

	ips := realip.New(nil)
	base, err := proxy.New([]proxy.Route{{Path: "/", Upstream: u}}, func(r *http.Request) proxy.Origin {
		client, chain, trusted := ips.Forwarding(r)
		return proxy.Origin{Client: client.String(), Chain: chain, Trusted: trusted}
	}, log)
	require.NoError(b, err)

	cfg, err := config.Parse([]byte("routes: [{path: /, upstream: "+up.URL+"}]\nrate_limit: {requests_per_minute: 1000000000}\n"), func(string) string { return "" })
	require.NoError(b, err)
	cfg.Redis.Prefix = prefix
	cfg.Redis.Timeout = time.Second
	store, err := traffic.New(rdb, prefix)
	require.NoError(b, err)
	banStore, err := bans.New(rdb, prefix)
	require.NoError(b, err)
	listStore, err := lists.New(rdb, prefix, lists.Static{}, log)
	require.NoError(b, err)
	limiter, err := ratelimit.New(rdb, prefix)
	require.NoError(b, err)
	fallback, err := traffic.NewMemory(cfg.Redis.FallbackClients)
	require.NoError(b, err)
	scorer := scoreFunc(func(wire.ScoreRequest) (wire.ScoreResponse, error) { return wire.ScoreResponse{Score: 0.1}, nil })
	chain, err := server.New(cfg, server.Deps{Traffic: store, Bans: banStore, Fallback: fallback, Lists: listStore, Limiter: limiter,
		Scorer: scorer, Events: nopPublisher{}, Stats: nopStats{}, Log: log})
	require.NoError(b, err)

	send := func(h http.Handler) time.Duration {
		r := httptest.NewRequest("GET", "/bench", nil)
		r.RemoteAddr = "198.51.100.1:1234"
		w := httptest.NewRecorder()
		start := time.Now()
		h.ServeHTTP(w, r)
		d := time.Since(start)
		if w.Code != http.StatusOK {
			b.Fatalf("status %d: %s", w.Code, w.Body)
		}
		return d
	}
	send(base)
	send(chain)
	var tBase, tChain time.Duration
	b.ResetTimer()
	for b.Loop() {
		tBase += send(base)
		tChain += send(chain)
	}
	n := float64(b.N)
	b.ReportMetric(float64(tBase.Nanoseconds())/n, "base-ns/req")
	b.ReportMetric(float64(tChain.Nanoseconds())/n, "chain-ns/req")
	b.ReportMetric(float64(tChain)/float64(tBase), "x-baseline")
}
