package crawlerdns_test

import (
	"context"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/bulwarkgw/bulwark/scorer/internal/crawlerdns"
	"github.com/bulwarkgw/bulwark/scorer/internal/crawlerdns/dnstest"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// clock is a settable test clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

type result struct {
	addr    netip.Addr
	names   []string
	outcome crawlerdns.Outcome
}

type fixture struct {
	v     *crawlerdns.Verifier
	dns   *dnstest.Server
	clock *clock
	reg   *prometheus.Registry
	done  chan result
}

var googleDomains = []string{"googlebot.com", "google.com", "search.msn.com"}

func newFixture(t *testing.T, edit func(*crawlerdns.Config)) *fixture {
	t.Helper()
	f := &fixture{dns: dnstest.Start(t), clock: &clock{now: time.Unix(1_700_000_000, 0)}, reg: prometheus.NewRegistry(), done: make(chan result, 100)}
	r, err := crawlerdns.NewResolver(f.dns.Addr)
	require.NoError(t, err)
	cfg := crawlerdns.Config{
		Resolver: r, Now: f.clock.Now, Registerer: f.reg,
		Observe: func(a netip.Addr, names []string, o crawlerdns.Outcome) { f.done <- result{a, names, o} },
	}
	if edit != nil {
		edit(&cfg)
	}
	f.v, err = crawlerdns.New(cfg)
	require.NoError(t, err)
	f.v.SetDomains(googleDomains)
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() { f.v.Run(ctx); close(stopped) }()
	t.Cleanup(func() { cancel(); <-stopped })
	return f
}

// resolve asks for ip, which must not be cached yet, waits for its lookup
// and returns what the cache then answers.
func (f *fixture) resolve(t *testing.T, ip string) ([]string, crawlerdns.Outcome) {
	t.Helper()
	addr := netip.MustParseAddr(ip)
	names, known := f.v.Hostnames(addr)
	require.False(t, known, "%s is not looked up yet", ip)
	require.Nil(t, names)
	r := <-f.done
	require.Equal(t, addr.Unmap(), r.addr)
	names, known = f.v.Hostnames(addr)
	answered := r.outcome != crawlerdns.Timeout && r.outcome != crawlerdns.Failed
	require.Equal(t, answered, known, "%s is cached after its lookup; known only if DNS answered (%s)", ip, r.outcome)
	assert.Equal(t, r.names, names)
	return names, r.outcome
}

func (f *fixture) lookups(t *testing.T, o crawlerdns.Outcome) float64 {
	t.Helper()
	return metric(t, f.reg, "bulwark_scorer_crawler_dns_lookups_total", string(o))
}

func TestVerifiedAndCached(t *testing.T) {
	f := newFixture(t, nil)
	f.dns.PTR(t, "66.249.66.1", "crawl-66-249-66-1.googlebot.com.")
	f.dns.Add(t, "crawl-66-249-66-1.googlebot.com. 300 IN A 66.249.66.1")

	names, o := f.resolve(t, "66.249.66.1")
	assert.Equal(t, crawlerdns.Verified, o)
	assert.Equal(t, []string{"crawl-66-249-66-1.googlebot.com"}, names)
	assert.Equal(t, 1, f.dns.Count("PTR", "1.66.249.66.in-addr.arpa"))
	assert.Equal(t, 1, f.dns.Count("A", "crawl-66-249-66-1.googlebot.com"))
	assert.Zero(t, f.dns.Count("AAAA", "crawl-66-249-66-1.googlebot.com"), "an IPv4 address needs only A records")

	// Cache hits ask nothing, also for the IPv4-mapped form of the address.
	before := f.dns.Total()
	for _, ip := range []string{"66.249.66.1", "::ffff:66.249.66.1"} {
		names, known := f.v.Hostnames(netip.MustParseAddr(ip))
		assert.True(t, known)
		assert.Equal(t, []string{"crawl-66-249-66-1.googlebot.com"}, names)
	}
	assert.Equal(t, before, f.dns.Total(), "a cache hit sends no query")
	assert.Equal(t, 3.0, metric(t, f.reg, "bulwark_scorer_crawler_dns_cache_hits_total", ""))
	assert.Equal(t, 1.0, f.lookups(t, crawlerdns.Verified))

	// Verified names are kept for the TTL, then looked up again.
	f.clock.advance(crawlerdns.DefaultTTL - time.Second)
	_, known := f.v.Hostnames(netip.MustParseAddr("66.249.66.1"))
	assert.True(t, known)
	f.clock.advance(time.Second)
	_, o = f.resolve(t, "66.249.66.1")
	assert.Equal(t, crawlerdns.Verified, o)
	assert.Equal(t, 2, f.dns.Count("PTR", "1.66.249.66.in-addr.arpa"))
}

func TestIPv6(t *testing.T) {
	f := newFixture(t, nil)
	const ip = "2001:4860:4801:2008::1"
	f.dns.PTR(t, ip, "crawl-2001-4860-4801-2008--1.googlebot.com.")
	f.dns.Add(t, "crawl-2001-4860-4801-2008--1.googlebot.com. 300 IN AAAA "+ip)
	f.dns.Add(t, "crawl-2001-4860-4801-2008--1.googlebot.com. 300 IN A 66.249.66.1")

	names, o := f.resolve(t, ip)
	assert.Equal(t, crawlerdns.Verified, o)
	assert.Equal(t, []string{"crawl-2001-4860-4801-2008--1.googlebot.com"}, names)
	assert.Equal(t, 1, f.dns.Count("AAAA", "crawl-2001-4860-4801-2008--1.googlebot.com"))
	assert.Zero(t, f.dns.Count("A", "crawl-2001-4860-4801-2008--1.googlebot.com"), "an IPv6 address needs only AAAA records")
}

// TestSpoofedPTR: whoever holds an address's reverse zone can point its
// PTR at a crawler's name; the crawler's zone does not point back.
func TestSpoofedPTR(t *testing.T) {
	f := newFixture(t, nil)
	f.dns.PTR(t, "45.2.0.9", "crawl-66-249-66-1.googlebot.com.")
	f.dns.Add(t, "crawl-66-249-66-1.googlebot.com. 300 IN A 66.249.66.1")

	names, o := f.resolve(t, "45.2.0.9")
	assert.Equal(t, crawlerdns.Refused, o)
	assert.Nil(t, names)
	assert.Equal(t, 1, f.dns.Count("A", "crawl-66-249-66-1.googlebot.com"), "the forward lookup was made and did not confirm")
	assert.Equal(t, 1.0, f.lookups(t, crawlerdns.Refused))
}

// TestLookalikeDomain: a name in the attacker's own zone, which does point
// back, is not under the crawler's domain, and is not even looked up.
func TestLookalikeDomain(t *testing.T) {
	f := newFixture(t, nil)
	for _, name := range []string{"crawl.evilgooglebot.com.", "googlebot.com.evil.net.", "search.msn.com.attacker.org."} {
		f.dns.PTR(t, "45.2.0.10", name)
		f.dns.Add(t, name+" 300 IN A 45.2.0.10")
	}

	names, o := f.resolve(t, "45.2.0.10")
	assert.Equal(t, crawlerdns.Refused, o)
	assert.Nil(t, names)
	assert.Equal(t, 1, f.dns.Total(), "only the PTR query: no forward lookup in a zone outside the domains")
}

// TestSeveralPTRNames: of several PTR names, those under the domains that
// confirm are kept.
func TestSeveralPTRNames(t *testing.T) {
	f := newFixture(t, nil)
	f.dns.PTR(t, "157.55.39.7", "host.example.net.", "msnbot-157-55-39-7.search.msn.com.", "MSNBOT-157-55-39-7.Search.MSN.com.", "other.search.msn.com.")
	f.dns.Add(t, "msnbot-157-55-39-7.search.msn.com. 300 IN A 157.55.39.7")
	f.dns.Add(t, "other.search.msn.com. 300 IN A 157.55.39.8")

	names, o := f.resolve(t, "157.55.39.7")
	assert.Equal(t, crawlerdns.Verified, o)
	assert.Equal(t, []string{"msnbot-157-55-39-7.search.msn.com"}, names, "lower-cased, deduplicated, only the confirmed one")
}

// TestNoPTRIsCachedNegatively: a definite no is kept for NegativeTTL, then
// asked again.
func TestNoPTRIsCachedNegatively(t *testing.T) {
	f := newFixture(t, nil)
	names, o := f.resolve(t, "52.167.144.20")
	assert.Equal(t, crawlerdns.Refused, o)
	assert.Nil(t, names)
	assert.Equal(t, 1, f.dns.Total())

	f.clock.advance(crawlerdns.DefaultNegativeTTL - time.Second)
	_, known := f.v.Hostnames(netip.MustParseAddr("52.167.144.20"))
	assert.True(t, known, "still cached")
	assert.Equal(t, 1, f.dns.Total(), "no new query within the negative TTL")

	// The address gets its PTR meanwhile; after the TTL it is seen.
	f.dns.PTR(t, "52.167.144.20", "msnbot-52-167-144-20.search.msn.com.")
	f.dns.Add(t, "msnbot-52-167-144-20.search.msn.com. 300 IN A 52.167.144.20")
	f.clock.advance(time.Second)
	names, o = f.resolve(t, "52.167.144.20")
	assert.Equal(t, crawlerdns.Verified, o)
	assert.Equal(t, []string{"msnbot-52-167-144-20.search.msn.com"}, names)
}

// TestTimeout: a DNS server that never answers costs the lookup its timeout
// and nothing else; the failure is cached for ErrorTTL only.
func TestTimeout(t *testing.T) {
	f := newFixture(t, func(c *crawlerdns.Config) { c.Timeout = 200 * time.Millisecond })
	f.dns.SetSilent(true)
	names, o := f.resolve(t, "66.249.66.2")
	assert.Equal(t, crawlerdns.Timeout, o)
	assert.Nil(t, names)
	assert.Equal(t, 1.0, f.lookups(t, crawlerdns.Timeout))

	f.clock.advance(crawlerdns.DefaultErrorTTL - time.Second)
	queries := f.dns.Total()
	_, known := f.v.Hostnames(netip.MustParseAddr("66.249.66.2"))
	assert.False(t, known, "no answer is not a no: the claim stays unverified, neither trusted nor refuted")
	assert.Equal(t, queries, f.dns.Total(), "a failure is cached too, so a dead server is not asked on every request")
	f.clock.advance(time.Second)
	f.dns.SetSilent(false)
	f.dns.PTR(t, "66.249.66.2", "crawl-66-249-66-2.googlebot.com.")
	f.dns.Add(t, "crawl-66-249-66-2.googlebot.com. 300 IN A 66.249.66.2")
	_, o = f.resolve(t, "66.249.66.2")
	assert.Equal(t, crawlerdns.Verified, o, "retried after the error TTL")
}

func TestServerFailure(t *testing.T) {
	f := newFixture(t, nil)
	f.dns.PTR(t, "66.249.66.3", "crawl-66-249-66-3.googlebot.com.")
	f.dns.Fail("A", "crawl-66-249-66-3.googlebot.com")
	names, o := f.resolve(t, "66.249.66.3")
	assert.Equal(t, crawlerdns.Failed, o, "a forward lookup that failed is not a no")
	assert.Nil(t, names)
	f.clock.advance(crawlerdns.DefaultErrorTTL)
	_, known := f.v.Hostnames(netip.MustParseAddr("66.249.66.3"))
	assert.False(t, known, "failures expire after ErrorTTL")
}

// TestNeverWaits: Hostnames answers while the lookup is stuck in DNS, and
// an address in flight is asked once however often it is asked for.
func TestNeverWaits(t *testing.T) {
	f := newFixture(t, nil)
	held := f.dns.Hold()
	f.dns.PTR(t, "66.249.66.4", "crawl-66-249-66-4.googlebot.com.")
	f.dns.Add(t, "crawl-66-249-66-4.googlebot.com. 300 IN A 66.249.66.4")
	addr := netip.MustParseAddr("66.249.66.4")

	_, known := f.v.Hostnames(addr)
	require.False(t, known)
	assert.Equal(t, "PTR 4.66.249.66.in-addr.arpa.", <-held, "the lookup is held in the DNS server")
	for range 5 {
		_, known = f.v.Hostnames(addr)
		assert.False(t, known, "answered at once while the lookup is held")
	}
	f.dns.Release()
	r := <-f.done
	assert.Equal(t, crawlerdns.Verified, r.outcome)
	assert.Equal(t, 1, f.dns.Count("PTR", "4.66.249.66.in-addr.arpa"), "one lookup for an address in flight")
	names, known := f.v.Hostnames(addr)
	assert.True(t, known)
	assert.Equal(t, []string{"crawl-66-249-66-4.googlebot.com"}, names)
}

// TestQueueIsBounded: beyond the workers and the queue, claims are dropped
// (and answered "unknown"), never waited for.
func TestQueueIsBounded(t *testing.T) {
	f := newFixture(t, func(c *crawlerdns.Config) { c.Workers, c.Queue = 1, 1 })
	held := f.dns.Hold()
	_, known := f.v.Hostnames(netip.MustParseAddr("10.0.0.1"))
	require.False(t, known)
	<-held // the worker is busy with 10.0.0.1
	for _, ip := range []string{"10.0.0.2", "10.0.0.3", "10.0.0.4"} {
		_, known := f.v.Hostnames(netip.MustParseAddr(ip))
		assert.False(t, known)
	}
	assert.Equal(t, 2.0, metric(t, f.reg, "bulwark_scorer_crawler_dns_dropped_total", ""), "10.0.0.2 queued, the others dropped")
	f.dns.Release()
	got := map[netip.Addr]bool{}
	for range 2 {
		got[(<-f.done).addr] = true
	}
	assert.Equal(t, map[netip.Addr]bool{netip.MustParseAddr("10.0.0.1"): true, netip.MustParseAddr("10.0.0.2"): true}, got)
	// A dropped address is asked for again by a later request.
	_, o := f.resolve(t, "10.0.0.3")
	assert.Equal(t, crawlerdns.Refused, o)
}

func TestCacheIsBounded(t *testing.T) {
	f := newFixture(t, func(c *crawlerdns.Config) { c.MaxEntries = 2 })
	for _, ip := range []string{"10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4"} {
		f.resolve(t, ip)
		assert.LessOrEqual(t, metric(t, f.reg, "bulwark_scorer_crawler_dns_cache_entries", ""), 2.0)
	}
	_, known := f.v.Hostnames(netip.MustParseAddr("10.0.0.4"))
	assert.True(t, known, "the newest entry stays")
}

// TestNewDomainsEmptyTheCache: the answers were given for the old domains.
func TestNewDomainsEmptyTheCache(t *testing.T) {
	f := newFixture(t, nil)
	f.dns.PTR(t, "203.0.113.7", "crawler-7.example.org.")
	f.dns.Add(t, "crawler-7.example.org. 300 IN A 203.0.113.7")
	names, o := f.resolve(t, "203.0.113.7")
	assert.Equal(t, crawlerdns.Refused, o, "example.org is not a crawler domain yet")
	assert.Nil(t, names)

	f.v.SetDomains(append([]string{"search.msn.com", "google.com"}, "googlebot.com")) // the same set
	_, known := f.v.Hostnames(netip.MustParseAddr("203.0.113.7"))
	assert.True(t, known, "the same domains keep the cache")

	f.v.SetDomains([]string{"example.org"})
	names, o = f.resolve(t, "203.0.113.7")
	assert.Equal(t, crawlerdns.Verified, o)
	assert.Equal(t, []string{"crawler-7.example.org"}, names)
}

func TestNoDomainsNoLookups(t *testing.T) {
	f := newFixture(t, nil)
	f.v.SetDomains(nil)
	for range 3 {
		_, known := f.v.Hostnames(netip.MustParseAddr("66.249.66.1"))
		assert.False(t, known)
	}
	assert.Zero(t, f.dns.Total())
}

func TestNewResolver(t *testing.T) {
	for _, bad := range []string{"127.0.0.1", ":53", "dns.example:", "a:b:c"} {
		_, err := crawlerdns.NewResolver(bad)
		assert.ErrorContains(t, err, "want host:port", bad)
	}
	r, err := crawlerdns.NewResolver("")
	require.NoError(t, err)
	assert.NotNil(t, r)
}

// metric returns the value of the counter or gauge name (with the result
// label value result, "" for none) in reg.
func metric(t *testing.T, reg *prometheus.Registry, name, result string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if result != "" && (len(m.GetLabel()) == 0 || m.GetLabel()[0].GetValue() != result) {
				continue
			}
			if m.GetCounter() != nil {
				return m.GetCounter().GetValue()
			}
			return m.GetGauge().GetValue()
		}
	}
	t.Fatalf("no metric %s{result=%q}", name, result)
	return 0
}
