package server_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"
	"testing"

	"github.com/bulwarkgw/bulwark/scorer/internal/crawlerdns"
	"github.com/bulwarkgw/bulwark/scorer/internal/crawlerdns/dnstest"
	"github.com/bulwarkgw/bulwark/scorer/internal/server"
	"github.com/bulwarkgw/bulwark/scorer/profile"
	"github.com/bulwarkgw/bulwark/shared/wire"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var _ server.Crawlers = (*crawlerdns.Verifier)(nil)

const bingbot = "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)"

// crawlerServer is the scorer's handler with a crawler DNS verifier asking
// a DNS server the test runs. Every address of 52.0.0.0/8 is on Microsoft's
// Azure ASN, a hosting one. done receives each finished lookup.
func crawlerServer(t *testing.T) (h *server.Handler, dns *dnstest.Server, done chan netip.Addr) {
	t.Helper()
	dns = dnstest.Start(t)
	r, err := crawlerdns.NewResolver(dns.Addr)
	require.NoError(t, err)
	reg := prometheus.NewRegistry()
	done = make(chan netip.Addr, 100)
	v, err := crawlerdns.New(crawlerdns.Config{
		Resolver: r, Registerer: reg,
		Observe: func(a netip.Addr, _ []string, _ crawlerdns.Outcome) { done <- a },
	})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() { v.Run(ctx); close(stopped) }()
	t.Cleanup(func() { cancel(); <-stopped })

	azure := locatorFunc(func(a netip.Addr) (*wire.Geo, error) {
		if netip.MustParsePrefix("52.0.0.0/8").Contains(a) {
			return &wire.Geo{Country: "US", ASN: 8075, Org: "Microsoft Corporation"}, nil
		}
		return fakeGeo(a)
	})
	h, err = server.New(server.Config{
		Profile: profile.Default(), Locator: azure, Logger: slog.New(slog.DiscardHandler),
		Registry: reg, Crawlers: v,
	})
	require.NoError(t, err)
	return h, dns, done
}

func scoreUA(t *testing.T, h http.Handler, ip, ua string) wire.ScoreResponse {
	t.Helper()
	// A busy crawler: 2 req/s over a minute, many distinct paths.
	body := `{"ip":"` + ip + `","count_1s":3,"count_10s":20,"count_60s":120,"distinct_paths":120,"user_agent":"` + ua + `"}`
	rec := do(h, http.MethodPost, "/v1/score", strings.NewReader(body))
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	var got wire.ScoreResponse
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &got))
	return got
}

// TestCrawlerVerifiedByDNS is the bingbot: outside the allow rule's
// networks, on a hosting ASN, it is refused until its DNS is known (busy as
// it is here, blocked: 1 − 0.5^(1 + 3 · 0.45) = 0.80), then allowed with
// score 0.
func TestCrawlerVerifiedByDNS(t *testing.T) {
	h, dns, done := crawlerServer(t)
	dns.PTR(t, "52.167.144.20", "msnbot-52-167-144-20.search.msn.com.")
	dns.Add(t, "msnbot-52-167-144-20.search.msn.com. 300 IN A 52.167.144.20")

	first := scoreUA(t, h, "52.167.144.20", bingbot)
	assert.Empty(t, first.Allow, "DNS not known yet: the networks alone decide")
	assert.Equal(t, 0.8039, first.Score, "120 paths a minute (0.5) amplified by a hosting network")
	assert.Equal(t, wire.LevelBlock, first.Level, "120 paths a minute from a hosting network")
	for _, r := range first.Reasons {
		if r.Feature == "user_agent" {
			assert.Zero(t, r.Value, "the claim is being checked: it counts neither way")
		}
	}
	assert.Equal(t, netip.MustParseAddr("52.167.144.20"), <-done)

	got := scoreUA(t, h, "52.167.144.20", bingbot)
	assert.Equal(t, "bingbot", got.Allow)
	assert.Equal(t, "dns", got.AllowVia)
	assert.Zero(t, got.Score)
	assert.Equal(t, wire.LevelAllow, got.Level)
	assert.Equal(t, uint32(8075), uint32(got.Geo.ASN), "allowed despite the hosting ASN")

	// The batch endpoint verifies the same way, from the cache.
	rec := do(h, http.MethodPost, "/v1/score/batch", strings.NewReader(`{"requests":[{"ip":"52.167.144.20","user_agent":"`+bingbot+`"},{"ip":"52.167.144.20","user_agent":"`+chrome+`"}]}`))
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	var batch wire.ScoreBatchResponse
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &batch))
	assert.Equal(t, "bingbot", batch.Responses[0].Allow)
	assert.Empty(t, batch.Responses[1].Allow, "the verified address without the crawler's user agent")
	assert.Equal(t, 2, dns.Total(), "one PTR and one A query in all: the rest came from the cache")

	// Inside the rule's networks the network verifies, as before.
	inNet := scoreUA(t, h, "157.55.39.7", bingbot)
	assert.Equal(t, "bingbot", inNet.Allow)
	assert.Equal(t, "network", inNet.AllowVia)

	metrics := do(h, http.MethodGet, "/metrics", nil).Body.String()
	assert.Contains(t, metrics, `bulwark_scorer_crawler_dns_lookups_total{result="verified"} 1`)
	assert.Contains(t, metrics, "bulwark_scorer_crawler_dns_cache_hits_total 2")
}

// TestCrawlerSpoofedAndOrdinaryClients: a PTR that the crawler's zone does
// not confirm verifies nothing, and clients that claim no crawler cost no
// DNS at all.
func TestCrawlerSpoofedAndOrdinaryClients(t *testing.T) {
	h, dns, done := crawlerServer(t)
	const googlebot = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
	dns.PTR(t, "52.1.2.3", "crawl-66-249-66-1.googlebot.com.")
	dns.Add(t, "crawl-66-249-66-1.googlebot.com. 300 IN A 66.249.66.1")

	for _, ip := range []string{"52.1.2.3", "81.2.69.142", "2001:db8::1"} {
		scoreUA(t, h, ip, chrome)
		scoreUA(t, h, ip, "curl/8.4")
	}
	assert.Zero(t, dns.Total(), "no DNS for clients that claim no crawler")

	// The busy crawler's 120 paths a minute (a risk of 0.5) amplified by
	// the hosting network: 1 − 0.5^2.35 while the claim is checked, and
	// by the refuted claim as well afterwards: 1 − 0.5^(1 + 3 · 0.574).
	pending := scoreUA(t, h, "52.1.2.3", googlebot)
	assert.Equal(t, 0.8039, pending.Score)
	assert.Equal(t, wire.LevelBlock, pending.Level)
	<-done
	got := scoreUA(t, h, "52.1.2.3", googlebot)
	assert.Empty(t, got.Allow, "the PTR claims googlebot.com, googlebot.com does not point back")
	assert.Equal(t, wire.LevelBlock, got.Level)
	assert.Equal(t, 0.8484, got.Score, "a refuted claim counts against the client again")
	assert.Greater(t, got.Score, pending.Score)
	for _, r := range got.Reasons {
		if r.Feature == "user_agent" {
			assert.Equal(t, 0.5, r.Value)
			assert.Positive(t, r.Contribution)
		}
	}

	// Circumstance alone refuses nobody: the refuted claim from the
	// hosting network, doing nothing abusive, is allowed.
	rec := do(h, http.MethodPost, "/v1/score", strings.NewReader(`{"ip":"52.1.2.3","count_1s":1,"count_10s":1,"count_60s":1,"user_agent":"`+googlebot+`"}`))
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	var quiet wire.ScoreResponse
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &quiet))
	assert.Empty(t, quiet.Allow)
	assert.Zero(t, quiet.Score)
	assert.Equal(t, wire.LevelAllow, quiet.Level)
}

// TestCrawlerDNSNeverDelaysAScore: with the lookup held in the DNS server,
// scores for the address keep coming, from the networks.
func TestCrawlerDNSNeverDelaysAScore(t *testing.T) {
	h, dns, done := crawlerServer(t)
	held := dns.Hold()
	dns.PTR(t, "52.167.144.21", "msnbot-52-167-144-21.search.msn.com.")
	dns.Add(t, "msnbot-52-167-144-21.search.msn.com. 300 IN A 52.167.144.21")

	assert.Empty(t, scoreUA(t, h, "52.167.144.21", bingbot).Allow)
	assert.Equal(t, "PTR 21.144.167.52.in-addr.arpa.", <-held, "the lookup is now stuck in the DNS server")
	for range 3 {
		got := scoreUA(t, h, "52.167.144.21", bingbot) // returns although the lookup cannot finish
		assert.Empty(t, got.Allow)
	}
	dns.Release()
	<-done
	assert.Equal(t, "dns", scoreUA(t, h, "52.167.144.21", bingbot).AllowVia)
	assert.Equal(t, 1, dns.Count("PTR", "21.144.167.52.in-addr.arpa"), "one lookup for the address in flight")
}

// TestCrawlerDomainsFollowTheProfile: a reloaded profile's domains are the
// ones looked up.
func TestCrawlerDomainsFollowTheProfile(t *testing.T) {
	h, dns, done := crawlerServer(t)
	dns.PTR(t, "52.9.9.9", "crawler-9.example.org.")
	dns.Add(t, "crawler-9.example.org. 300 IN A 52.9.9.9")
	const ua = "ExampleCrawler/1.0"

	p, err := profile.Parse([]byte("allow:\n  - {name: example, user_agent: examplecrawler, domains: [example.org]}\n"))
	require.NoError(t, err)
	h.SetProfile(p)
	scoreUA(t, h, "52.9.9.9", ua)
	<-done
	got := scoreUA(t, h, "52.9.9.9", ua)
	assert.Equal(t, "example", got.Allow)
	assert.Equal(t, "dns", got.AllowVia)

	h.SetProfile(profile.Default())
	assert.Empty(t, scoreUA(t, h, "52.9.9.9", ua).Allow)
	assert.Equal(t, 2, dns.Total(), "the default profile does not look this user agent up")
}
