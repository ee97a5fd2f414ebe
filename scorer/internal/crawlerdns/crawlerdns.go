// Package crawlerdns verifies crawlers by forward-confirmed reverse DNS,
// the way the search engines tell sites to: the address's PTR names, of
// those the ones under a crawler's published domain (googlebot.com,
// search.msn.com, ...), and of those the ones whose own A/AAAA records
// contain the address again. A PTR record alone proves nothing (whoever
// holds the address's reverse zone writes it); the forward lookup in the
// crawler's own zone is what ties the address to the search engine.
//
// DNS is never on the request path. Hostnames answers from a cache at once;
// a miss queues the address for a few workers and answers "unknown", so
// the request is scored without the names (the allow rules' networks are
// the fallback) and a later request from the same address finds them. A
// lookup is bounded by a timeout; verified names are kept for TTL, a
// definite "no" (no PTR, no name in the domains, a forward lookup that
// does not give the address back) for NegativeTTL and a failure (timeout,
// server failure) for ErrorTTL, so a crawler is not refused for an hour
// because the DNS server hiccupped. The queue, the addresses in flight and
// the cache are bounded: a flood of clients claiming to be a crawler costs
// at most Workers lookups at a time and MaxEntries cache entries, and
// claims beyond the queue are dropped (answered "unknown" again, retried by
// a later request).
//
// Only the caller decides who is looked up: the scorer asks only for
// clients whose user agent an allow rule with domains claims
// (rules.Config.WantsHostnames), never for ordinary clients.
package crawlerdns

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/bulwarkgw/bulwark/scorer/rules"
	"github.com/prometheus/client_golang/prometheus"
)

// Resolver is the part of *net.Resolver the verifier uses.
type Resolver interface {
	LookupAddr(ctx context.Context, addr string) ([]string, error)
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// NewResolver returns a resolver that asks the DNS server at server
// (host:port) over UDP, and TCP for truncated answers; "" is the system's
// resolver.
func NewResolver(server string) (*net.Resolver, error) {
	if server == "" {
		return &net.Resolver{}, nil
	}
	host, port, err := net.SplitHostPort(server)
	if err != nil || host == "" || port == "" {
		return nil, fmt.Errorf("want host:port, got %q", server)
	}
	return &net.Resolver{
		PreferGo: true, // the cgo resolver would ignore Dial
		Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, server)
		},
	}, nil
}

// Outcome is how one lookup ended.
type Outcome string

// The outcomes of a lookup; each is a value of the lookups metric's
// result label.
const (
	// Verified: at least one name under the domains forward-confirmed.
	Verified Outcome = "verified"
	// Refused: a definite no (no PTR, no PTR name under the domains, or
	// forward lookups that do not contain the address).
	Refused Outcome = "refused"
	// Timeout: the lookup did not finish within Config.Timeout.
	Timeout Outcome = "timeout"
	// Failed: the DNS server failed otherwise (SERVFAIL, refused, ...).
	Failed Outcome = "error"
)

// Defaults for Config's zero values.
const (
	DefaultTimeout     = 2 * time.Second
	DefaultTTL         = 24 * time.Hour
	DefaultNegativeTTL = time.Hour
	DefaultErrorTTL    = time.Minute
	DefaultMaxEntries  = 100_000
	DefaultWorkers     = 4
	DefaultQueue       = 1024
	DefaultMaxNames    = 4
)

// Config is what New needs; zero values take the defaults above.
type Config struct {
	// Resolver answers the queries; nil is the system's resolver.
	Resolver Resolver
	// Timeout bounds one address's lookups (PTR and forward) together.
	Timeout time.Duration
	// TTL keeps verified names, NegativeTTL a definite no, ErrorTTL a
	// failure (timeout or server error).
	TTL, NegativeTTL, ErrorTTL time.Duration
	// MaxEntries bounds the cache; a full cache makes room by evicting the
	// soonest-expiring of a few sampled entries.
	MaxEntries int
	// Workers look addresses up concurrently, taking them from a queue of
	// Queue addresses.
	Workers, Queue int
	// MaxNames bounds the PTR names of one address that are checked.
	MaxNames int
	// Now is the clock (time.Now when nil).
	Now func() time.Time
	// Registerer receives the metrics; nil registers none.
	Registerer prometheus.Registerer
	// Logger gets one debug line per lookup; nil logs nothing.
	Logger *slog.Logger
	// Observe, when set, is called after each lookup has been cached
	// (tests wait on it).
	Observe func(addr netip.Addr, names []string, o Outcome)
}

type entry struct {
	names   []string // forward-confirmed, under the domains; nil for none
	expires time.Time
	// unsure marks a lookup that got no answer (a timeout, a server
	// failure): no answer is not a no, so Hostnames keeps saying "not
	// known" until it expires and is asked again.
	unsure bool
}

type job struct {
	addr    netip.Addr
	domains []string
	gen     uint64
}

// Verifier is a cache of forward-confirmed reverse DNS names with the
// workers that fill it. Its methods are safe for concurrent use.
type Verifier struct {
	cfg   Config
	queue chan job

	mu       sync.Mutex
	cache    map[netip.Addr]entry
	inflight map[netip.Addr]struct{}
	domains  []string
	gen      uint64 // bumped when the domains change: older lookups are not cached

	cacheHits, cacheMisses, dropped prometheus.Counter
	lookups                         *prometheus.CounterVec
	entries                         prometheus.GaugeFunc
}

// New returns a Verifier; Run starts its workers.
func New(cfg Config) (*Verifier, error) {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	defInt := func(d *int, v int) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&cfg.Timeout, DefaultTimeout)
	def(&cfg.TTL, DefaultTTL)
	def(&cfg.NegativeTTL, DefaultNegativeTTL)
	def(&cfg.ErrorTTL, DefaultErrorTTL)
	defInt(&cfg.MaxEntries, DefaultMaxEntries)
	defInt(&cfg.Workers, DefaultWorkers)
	defInt(&cfg.Queue, DefaultQueue)
	defInt(&cfg.MaxNames, DefaultMaxNames)
	if cfg.Resolver == nil {
		cfg.Resolver = &net.Resolver{}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	v := &Verifier{
		cfg:      cfg,
		queue:    make(chan job, cfg.Queue),
		cache:    make(map[netip.Addr]entry),
		inflight: make(map[netip.Addr]struct{}),
		cacheHits: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "bulwark_scorer_crawler_dns_cache_hits_total",
			Help: "Crawler DNS verifications answered from the cache.",
		}),
		cacheMisses: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "bulwark_scorer_crawler_dns_cache_misses_total",
			Help: "Crawler DNS verifications not in the cache (scored with the networks only).",
		}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "bulwark_scorer_crawler_dns_dropped_total",
			Help: "Crawler DNS lookups not queued because the queue was full.",
		}),
		lookups: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bulwark_scorer_crawler_dns_lookups_total",
			Help: "Crawler DNS lookups (PTR then forward), by result: verified, refused, timeout, error.",
		}, []string{"result"}),
	}
	v.entries = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "bulwark_scorer_crawler_dns_cache_entries",
		Help: "Addresses in the crawler DNS cache.",
	}, func() float64 {
		v.mu.Lock()
		defer v.mu.Unlock()
		return float64(len(v.cache))
	})
	for _, o := range []Outcome{Verified, Refused, Timeout, Failed} {
		v.lookups.WithLabelValues(string(o))
	}
	if cfg.Registerer != nil {
		for _, c := range []prometheus.Collector{v.cacheHits, v.cacheMisses, v.dropped, v.lookups, v.entries} {
			if err := cfg.Registerer.Register(c); err != nil {
				return nil, fmt.Errorf("crawlerdns: register metrics: %w", err)
			}
		}
	}
	return v, nil
}

// SetDomains sets the domains PTR names must be under to be looked up
// forward (the union of the allow rules' domains, as rules.AllowRule has
// them). A different set empties the cache: its answers were given for
// the old one.
func (v *Verifier) SetDomains(domains []string) {
	d := slices.Clone(domains)
	slices.Sort(d)
	d = slices.Compact(d)
	v.mu.Lock()
	defer v.mu.Unlock()
	if slices.Equal(d, v.domains) {
		return
	}
	v.domains = d
	v.gen++
	clear(v.cache)
}

// Hostnames returns addr's forward-confirmed reverse DNS names under the
// domains, and whether they are known: whether DNS has answered, yes or
// no. It never waits: on a miss it queues addr for a lookup (unless it is
// already queued or the queue is full) and returns known == false; after a
// lookup that got no answer (timeout, server failure) it keeps returning
// known == false, without asking again, until ErrorTTL has passed.
func (v *Verifier) Hostnames(addr netip.Addr) (names []string, known bool) {
	addr = addr.Unmap()
	now := v.cfg.Now()
	v.mu.Lock()
	if e, ok := v.cache[addr]; ok && now.Before(e.expires) {
		v.mu.Unlock()
		v.cacheHits.Inc()
		return e.names, !e.unsure
	}
	v.cacheMisses.Inc()
	if _, ok := v.inflight[addr]; ok || len(v.domains) == 0 {
		v.mu.Unlock()
		return nil, false
	}
	select {
	case v.queue <- job{addr: addr, domains: v.domains, gen: v.gen}:
		v.inflight[addr] = struct{}{}
	default:
		v.dropped.Inc()
	}
	v.mu.Unlock()
	return nil, false
}

// Run looks queued addresses up with Config.Workers workers until ctx is
// done; lookups in flight are cancelled then.
func (v *Verifier) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for range v.cfg.Workers {
		wg.Go(func() {
			for {
				select {
				case <-ctx.Done():
					return
				case j := <-v.queue:
					v.do(ctx, j)
				}
			}
		})
	}
	wg.Wait()
}

func (v *Verifier) do(ctx context.Context, j job) {
	lctx, cancel := context.WithTimeout(ctx, v.cfg.Timeout)
	names, o, err := v.lookup(lctx, j.addr, j.domains)
	cancel()
	if ctx.Err() != nil { // shutting down: not an answer
		v.mu.Lock()
		delete(v.inflight, j.addr)
		v.mu.Unlock()
		return
	}
	v.lookups.WithLabelValues(string(o)).Inc()
	if v.cfg.Logger != nil {
		v.cfg.Logger.Debug("crawler dns lookup", "ip", j.addr.String(), "result", string(o), "names", names, "err", err)
	}
	ttl := v.cfg.NegativeTTL
	switch o {
	case Verified:
		ttl = v.cfg.TTL
	case Timeout, Failed:
		ttl = v.cfg.ErrorTTL
	}
	v.mu.Lock()
	delete(v.inflight, j.addr)
	if j.gen == v.gen {
		v.store(j.addr, entry{names: names, expires: v.cfg.Now().Add(ttl), unsure: o == Timeout || o == Failed})
	}
	v.mu.Unlock()
	if v.cfg.Observe != nil {
		v.cfg.Observe(j.addr, names, o)
	}
}

// store caches e for addr; v.mu is held. When the cache is full it evicts
// the soonest-expiring of up to 8 entries (map iteration order is random):
// an approximation of "oldest first" that costs O(1).
func (v *Verifier) store(addr netip.Addr, e entry) {
	if _, ok := v.cache[addr]; !ok && len(v.cache) >= v.cfg.MaxEntries {
		var victim netip.Addr
		var soonest time.Time
		n := 0
		for a, old := range v.cache {
			if n == 0 || old.expires.Before(soonest) {
				victim, soonest = a, old.expires
			}
			if n++; n == 8 {
				break
			}
		}
		delete(v.cache, victim)
	}
	v.cache[addr] = e
}

// lookup verifies addr: its PTR names under domains (at most MaxNames of
// them) whose A (for IPv4) or AAAA (for IPv6) records contain addr.
func (v *Verifier) lookup(ctx context.Context, addr netip.Addr, domains []string) ([]string, Outcome, error) {
	ptrs, err := v.cfg.Resolver.LookupAddr(ctx, addr.String())
	if err != nil && len(ptrs) == 0 { // Go returns the valid names along with an error about invalid ones
		if notFound(err) {
			return nil, Refused, err
		}
		return nil, failure(ctx, err), err
	}
	network := "ip6"
	if addr.Is4() {
		network = "ip4"
	}
	var names []string
	var ferr error
	checked := 0
	for _, p := range ptrs {
		name := strings.TrimSuffix(strings.ToLower(p), ".")
		if !rules.InDomains(name, domains) || slices.Contains(names, name) {
			continue
		}
		if checked++; checked > v.cfg.MaxNames {
			break
		}
		ips, err := v.cfg.Resolver.LookupNetIP(ctx, network, name+".")
		if err != nil {
			if !notFound(err) {
				ferr = err
			}
			continue
		}
		for _, ip := range ips {
			if ip.Unmap() == addr {
				names = append(names, name)
				break
			}
		}
	}
	switch {
	case len(names) > 0:
		return names, Verified, nil
	case ferr != nil:
		return nil, failure(ctx, ferr), ferr
	default:
		return nil, Refused, nil
	}
}

// notFound reports a definite "no such name or record".
func notFound(err error) bool {
	var de *net.DNSError
	return errors.As(err, &de) && de.IsNotFound
}

// failure classifies a lookup error that is not a definite no.
func failure(ctx context.Context, err error) Outcome {
	var de *net.DNSError
	if errors.Is(ctx.Err(), context.DeadlineExceeded) || errors.Is(err, context.DeadlineExceeded) ||
		(errors.As(err, &de) && de.IsTimeout) {
		return Timeout
	}
	return Failed
}
