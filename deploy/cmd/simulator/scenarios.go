package main

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Label says whether a scenario's traffic should get through.
type Label string

// Labels.
const (
	Human Label = "human"   // people: must not be throttled or blocked
	Bot   Label = "bot"     // abuse: must be throttled or blocked
	Good  Label = "goodbot" // a verified crawler: must get through
)

// Scenario is one kind of simulated client.
type Scenario struct {
	Name  string
	Label Label
	// Doc is one line for simulator -h.
	Doc string
	// Clients is the default number of clients (each with its own address).
	Clients int
	// Pool is the address ranges clients are drawn from.
	Pool []netip.Prefix
	// Rotate, when above 1, gives each client that many addresses of the
	// pool, its own (client.ips), to rotate over as a residential proxy
	// network would.
	Rotate int
	// Credential says the clients log in for an API key first (the
	// report counts how many got one: see ScenarioReport.KeysMinted).
	Credential bool
	// Run drives one client until ctx is done.
	Run func(ctx context.Context, c *client)
	// Measure is how the report judges the scenario ("" by its label:
	// share of requests; see judge).
	Measure Measure
	// PTR, for a crawler, is the host name its address's reverse DNS
	// gives (forward-confirmed: the name's A record is the address), as
	// the simulator's DNS server (-dns-listen) answers it.
	PTR func(netip.Addr) string
}

// Measure names a goal other than the label's default.
type Measure string

// Measures.
const (
	// PerClient: people, counted by client: at most 0.1 % of clients
	// refused (429 or the gateway's 403) even once, none blocked or
	// banned (any gateway 403).
	PerClient Measure = "per_client"
	// AfterProbes: scanners, counted by probe: at least 99 % of the
	// probes after each client's 3rd refused.
	AfterProbes Measure = "after_probes"
	// API: an API's clients (apps, integrations, webhooks, monitors),
	// counted by request: not one refused (429 or the gateway's 403).
	API Measure = "api"
	// AfterMinute: slow bots only their pace over time gives away,
	// counted by request: at least 99 % of those sent a minute or more
	// after each client's first refused.
	AfterMinute Measure = "after_minute"
)

// Browser user agents people send.
var browsers = []string{
	"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
	"Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15",
	"Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
	"Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
	"Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Mobile Safari/537.36",
}

const (
	googlebotUA = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
	bingbotUA   = "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)"
)

func prefixes(ss ...string) []netip.Prefix {
	out := make([]netip.Prefix, len(ss))
	for i, s := range ss {
		out[i] = netip.MustParsePrefix(s)
	}
	return out
}

// Address pools, all in the demo GeoIP database (deploy/cmd/geoipgen).
var (
	residential = prefixes("203.0.113.0/24", "198.51.100.0/24", "192.0.2.0/24", "81.2.69.0/24",
		"24.0.0.0/16", "90.0.0.0/16", "49.0.0.0/16", "177.0.0.0/16")
	hosting = prefixes("45.0.0.0/16", "45.1.0.0/16", "45.2.0.0/16", "45.3.0.0/16", "45.4.0.0/16")
	google  = prefixes("66.249.66.0/24")
	russia  = prefixes("5.0.0.0/16")
	// Bingbot's published ranges on Microsoft's network (AS8075, a
	// hosting ASN as Azure's), outside the three /24s the default allow
	// rule lists: only its reverse DNS can vouch for it there.
	bing = prefixes("40.77.188.0/24", "52.167.144.0/24", "40.77.202.0/24")
	// Where scanners come from: the big clouds' and hosters' ranges, and
	// residential ISPs (infected machines, people's VPSes at home).
	scanners = prefixes("3.80.0.0/16", "54.80.0.0/16", "13.64.0.0/16", "34.64.0.0/16",
		"159.89.0.0/16", "51.68.0.0/16", "88.198.0.0/16", "86.128.0.0/16", "73.0.0.0/16")
	// Where an API's server-side clients run (integrations, webhook
	// senders, monitors, SDKs): the same clouds and hosters, hosting ASNs
	// all in the demo database, but other /16s of their ranges than the
	// scanners' and the botnet's, so that no address is shared.
	cloud = prefixes("3.81.0.0/16", "54.81.0.0/16", "18.184.0.0/16", "13.65.0.0/16", "34.65.0.0/16",
		"167.99.0.0/16", "137.74.0.0/16", "95.216.0.0/16")
)

// Scenarios lists every scenario, in report order. New ones go at the end:
// a scenario's place seeds its clients' random sources and addresses.
var Scenarios = []Scenario{
	{Name: "human", Label: Human, Clients: 40, Pool: residential, Run: human,
		Doc: "people browsing: pages with their assets, think time, logins, checkouts"},
	{Name: "sneaker", Label: Bot, Clients: 1, Pool: residential, Run: sneaker,
		Doc: "a sneaker bot hammering POST /api/checkout at 50/s"},
	{Name: "stuffing", Label: Bot, Clients: 3, Pool: residential, Run: stuffing,
		Doc: "credential stuffing, 5 logins/s from one address"},
	{Name: "scraper", Label: Bot, Clients: 1, Pool: residential, Run: scraper,
		Doc: "walks /api/products/{id} in order, 4/s, past the end"},
	{Name: "botnet", Label: Bot, Clients: 30, Pool: hosting, Run: botnet,
		Doc: "low-and-slow distributed logins from hosting networks, one per 4 s each"},
	{Name: "keyguess", Label: Bot, Clients: 1, Pool: russia, Run: keyGuesser,
		Doc: "random X-API-Key values against /api/orders, 3/s"},
	{Name: "crawler", Label: Good, Clients: 1, Pool: google, Run: crawler, PTR: googlebotPTR,
		Doc: "Googlebot from Google's network, 1/s"},
	{Name: "browser", Label: Human, Clients: 150, Pool: residential, Run: browser, Measure: PerClient,
		Doc: "people's browsers: pages of 5-150 assets over 6 connections, category pages with extension-less thumbnails"},
	{Name: "scanner", Label: Bot, Clients: 40, Pool: scanners, Run: scanner, Measure: AfterProbes,
		Doc: "vulnerability probes with a tool's user agent or none"},
	{Name: "scanner-ua", Label: Bot, Clients: 40, Pool: scanners, Run: scannerUA, Measure: AfterProbes,
		Doc: "vulnerability probes with a browser's user agent"},
	{Name: "bingbot", Label: Good, Clients: 3, Pool: bing, Run: bingbot, PTR: bingbotPTR,
		Doc: "Bingbot from Microsoft's network, vouched for by its DNS only"},

	// An API's real clientele (issue: API clients are not bots): none may
	// be refused.
	{Name: "app-timer", Label: Human, Clients: 10, Pool: residential, Run: appTimer, Measure: API,
		Doc: "a mobile app (okhttp or CFNetwork) polling GET /api/products every 1-3 s, no jitter"},
	{Name: "app-jitter", Label: Human, Clients: 10, Pool: residential, Run: appJitter, Measure: API,
		Doc: "the same app polling with ±40 % jitter"},
	{Name: "integration", Label: Human, Clients: 10, Pool: cloud, Run: integration, Measure: API,
		Doc: "server integrations (python-requests, Go, Java, node-fetch, axios) from clouds, 1-5/s on a timer, no credential"},
	{Name: "integration-key", Label: Human, Clients: 5, Pool: cloud, Run: integrationKey, Measure: API, Credential: true,
		Doc: "the same with an API key (POST /auth once, then X-API-Key), 1-5/s"},
	{Name: "webhook", Label: Human, Clients: 3, Pool: cloud, Run: webhook, Measure: API,
		Doc: "webhook senders (Stripe, GitHub): 20-50 POST /webhooks/{provider} in 1 s, then 10-30 s idle"},
	{Name: "batch-key", Label: Human, Clients: 1, Pool: cloud, Run: batchKey, Measure: API, Credential: true,
		Doc: "a partner batch job with an API key: 50/s alternating GET /api/products?page=N and POST /api/orders"},
	{Name: "monitor", Label: Human, Clients: 2, Pool: cloud, Run: monitor, Measure: API,
		Doc: "an uptime probe (curl) on GET /api/status every 10 s"},
	{Name: "sdk-retry", Label: Human, Clients: 3, Pool: cloud, Run: sdkRetry, Measure: API,
		Doc: "an SDK calling GET /api/flaky (30 % 503) ~2/s, retrying after 0.2, 0.4, 0.8 s"},
	{Name: "graphql", Label: Human, Clients: 5, Pool: residential, Run: graphql, Measure: API,
		Doc: "a GraphQL client (apollo-ios, graphql-request): POST /graphql only, 1-3/s"},

	// New attackers.
	{Name: "scraper-okhttp", Label: Bot, Clients: 1, Pool: residential, Run: scraperOkhttp,
		Doc: "okhttp's user agent, GET /api/products/{random 1-5000} at 8/s (mostly 404)"},
	{Name: "stuffing-resi", Label: Bot, Clients: 3, Pool: residential, Rotate: stuffingAddrs, Run: stuffingResi,
		Doc: "credential stuffing through a residential proxy pool: 20 addresses per client, 5 logins/s"},
	{Name: "leaked-key", Label: Bot, Clients: 1, Pool: residential, Run: leakedKey, Credential: true,
		Doc: "a leaked customer's API key enumerating GET /api/orders/1, 2, 3, ... at 5/s (403s)"},
	{Name: "scraper-pages", Label: Bot, Clients: 1, Pool: residential, Run: scraperPages, Measure: AfterMinute,
		Doc: "a browser's user agent fetching HTML /products/{id} without assets, 1.2/s"},
	{Name: "scraper-rotate", Label: Bot, Clients: 1, Pool: residential, Run: scraperRotate, Measure: AfterMinute,
		Doc: "the same rotating four browsers' user agents, 0.5-1 page/s"},
}

// googlebotPTR is Googlebot's reverse DNS name for a: crawl-66-249-66-1.googlebot.com.
func googlebotPTR(a netip.Addr) string {
	return "crawl-" + strings.ReplaceAll(a.String(), ".", "-") + ".googlebot.com"
}

// bingbotPTR is Bingbot's reverse DNS name for a: msnbot-40-77-188-1.search.msn.com.
func bingbotPTR(a netip.Addr) string {
	return "msnbot-" + strings.ReplaceAll(a.String(), ".", "-") + ".search.msn.com"
}

// human browses the shop: a page with its assets (fetched together, as a
// browser does), the product list, product pages (HTML) with their
// stylesheet, script and picture, then the product from the API; now
// and then a login to their own account (mostly right the first time) or a
// checkout; seconds of think time in between.
func human(ctx context.Context, c *client) {
	ua := browsers[c.rng.IntN(len(browsers))]
	page := func(path string, assets ...string) {
		c.do(ctx, "GET", path, "", ua)
		var wg sync.WaitGroup
		for _, a := range assets {
			wg.Go(func() { c.do(ctx, "GET", a, "", ua) })
		}
		wg.Wait()
	}
	page("/", "/assets/app.css", "/assets/app.js", "/assets/logo.svg")
	c.think(ctx, 0.3, 1.2)
	c.do(ctx, "GET", "/api/products", "", ua)
	for ctx.Err() == nil {
		c.thinkHuman(ctx)
		switch r := c.rng.Float64(); {
		case r < 0.1:
			// Their own account on the demo shop.
			login := fmt.Sprintf(`{"username":"customer%03d","password":"pw-%03d`, c.n%500+1, c.n%500+1)
			if c.rng.Float64() < 0.1 { // a typo, then the right one
				c.do(ctx, "POST", "/auth", login+`x"}`, ua)
				c.think(ctx, 2, 6)
			}
			c.do(ctx, "POST", "/auth", login+`"}`, ua)
		case r < 0.17:
			c.do(ctx, "POST", "/api/checkout", fmt.Sprintf(`{"product_id":%d,"quantity":1}`, 1+c.rng.IntN(8)), ua)
		case r < 0.3:
			page("/", "/assets/app.css", "/assets/app.js", "/assets/logo.svg")
		default:
			// The product's HTML page with its stylesheet, script and
			// picture; the page's script then asks the API for it.
			id := strconv.Itoa(1 + c.rng.IntN(8))
			page("/products/"+id, "/assets/app.css", "/assets/app.js", "/assets/img/"+id+".jpg")
			c.do(ctx, "GET", "/api/products/"+id, "", ua)
		}
	}
}

// sneaker hammers checkout for a limited drop at 50 requests per second.
func sneaker(ctx context.Context, c *client) {
	ua := browsers[0]
	c.every(ctx, 50, 0, func() {
		c.do(ctx, "POST", "/api/checkout", `{"product_id":3,"quantity":1}`, ua)
	})
}

// stuffing tries leaked credentials against the login, 5 per second.
func stuffing(ctx context.Context, c *client) {
	ua := browsers[c.rng.IntN(len(browsers))]
	c.every(ctx, 5, 0.3, func() {
		c.do(ctx, "POST", "/auth", fmt.Sprintf(`{"username":"user%d","password":"%x"}`, c.rng.IntN(100000), c.rng.Uint32()), ua)
	})
}

// scraper walks the catalogue by id, 4 per second, past its end.
func scraper(ctx context.Context, c *client) {
	ua := browsers[0]
	id := 0
	c.every(ctx, 4, 0.2, func() {
		id++
		c.do(ctx, "GET", "/api/products/"+strconv.Itoa(id), "", ua)
	})
}

// botnet is one member of a low-and-slow distributed credential attack
// from hosting providers: one login every 4 s with a browser's user agent,
// on a timer.
func botnet(ctx context.Context, c *client) {
	ua := browsers[c.rng.IntN(len(browsers))]
	c.think(ctx, 0, 4) // members start spread out
	c.every(ctx, 0.25, 0.02, func() {
		c.do(ctx, "POST", "/auth", fmt.Sprintf(`{"username":"user%d","password":"%x"}`, c.rng.IntN(100000), c.rng.Uint32()), ua)
	})
}

// keyGuesser tries random API keys against the API with a script, 3 per
// second.
func keyGuesser(ctx context.Context, c *client) {
	c.every(ctx, 3, 0.2, func() {
		c.do(ctx, "GET", "/api/orders", "", "python-requests/2.31.0", "X-API-Key", fmt.Sprintf("%016x", c.rng.Uint64()))
	})
}

// crawler is Googlebot from Google's network, indexing the catalogue once
// a second.
func crawler(ctx context.Context, c *client) { crawl(ctx, c, googlebotUA, 1, "/api/products/") }

// crawl fetches / and then pages prefix1 to prefix8, round and round, at
// rate per second, as ua.
func crawl(ctx context.Context, c *client, ua string, rate float64, prefix string) {
	i := 0
	c.every(ctx, rate, 0.3, func() {
		path := "/"
		if i%9 != 0 {
			path = prefix + strconv.Itoa(i%9)
		}
		i++
		c.do(ctx, "GET", path, "", ua)
	})
}

// bingbot is Bingbot from Microsoft's network, fetching robots.txt, then
// the shop's pages every 2 s.
func bingbot(ctx context.Context, c *client) {
	c.think(ctx, 0, 2)
	c.do(ctx, "GET", "/robots.txt", "", bingbotUA)
	crawl(ctx, c, bingbotUA, 0.5, "/products/")
}

// every calls fn rate times a second (scaled by the run's rate factor),
// each interval varied by ±jitter (a fraction), until ctx is done.
func (c *client) every(ctx context.Context, rate, jitter float64, fn func()) {
	interval := time.Duration(float64(time.Second) / (rate * c.rate))
	next := time.Now()
	for ctx.Err() == nil {
		fn()
		d := interval
		if jitter > 0 {
			d = time.Duration(float64(d) * (1 + jitter*(2*c.rng.Float64()-1)))
		}
		next = next.Add(d)
		if !sleep(ctx, time.Until(next)) {
			return
		}
	}
}

// think pauses between lo and hi seconds, uniformly.
func (c *client) think(ctx context.Context, lo, hi float64) {
	sleep(ctx, time.Duration((lo+(hi-lo)*c.rng.Float64())*float64(time.Second)))
}

// thinkHuman pauses as people read: log-normal, median 6 s, clipped to
// 1.5–40 s.
func (c *client) thinkHuman(ctx context.Context) {
	s := math.Exp(math.Log(6) + 0.7*c.rng.NormFloat64())
	s = min(max(s, 1.5), 40) / c.rate
	sleep(ctx, time.Duration(s*float64(time.Second)))
}

func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// addresses gives every client of the mix its address (its first, for a
// scenario that rotates: see allocate).
func addresses(mix map[string]int, seed uint64) map[string][]netip.Addr {
	out := map[string][]netip.Addr{}
	for name, clients := range allocate(mix, seed) {
		for _, a := range clients {
			out[name] = append(out[name], a[0])
		}
	}
	return out
}

// allocate gives every client of the mix its addresses: one, or
// Scenario.Rotate for a scenario that rotates. The scenarios take turns,
// in order, on one counter per pool, so clients of scenarios that share a
// pool never share an address (within a pool's capacity: see address).
func allocate(mix map[string]int, seed uint64) map[string][][]netip.Addr {
	next := map[*netip.Prefix]int{}
	out := map[string][][]netip.Addr{}
	for _, sc := range Scenarios {
		key := &sc.Pool[0] // scenarios sharing a pool share its backing array
		for range mix[sc.Name] {
			own := make([]netip.Addr, max(sc.Rotate, 1))
			for j := range own {
				own[j] = address(sc.Pool, next[key], seed)
				next[key]++
			}
			out[sc.Name] = append(out[sc.Name], own)
		}
	}
	return out
}

// address returns the n-th address of a pool, offset by the seed,
// skipping network and broadcast-like host parts. The n go round the
// pool's ranges in turn; a range that is full (a /24 after 254 rounds)
// drops out of the turns and the others go on, so that the pool holds
// as many addresses as its ranges together. The pool's numbering wraps
// around only after that.
func address(pool []netip.Prefix, n int, seed uint64) netip.Addr {
	capacity := func(p netip.Prefix) int { return int(min(uint64(1)<<(32-p.Bits())-2, 1<<30)) }
	total := 0
	for _, p := range pool {
		total += capacity(p)
	}
	n %= total
	round := 0 // rounds every range still in the turns has had
	for {
		var active []int
		next := math.MaxInt // the round at which the next range fills up
		for i, p := range pool {
			if c := capacity(p); c > round {
				active = append(active, i)
				next = min(next, c)
			}
		}
		if span := (next - round) * len(active); n >= span {
			n -= span
			round = next
			continue
		}
		p := pool[active[n%len(active)]]
		k := uint64(round+n/len(active)) + seed*7919
		a := p.Addr().As4()
		host := 1 + k%uint64(capacity(p))
		v := uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3])
		v += uint32(host)
		return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
	}
}

// newRand returns the client's reproducible random source.
func newRand(seed uint64, scenario, index int) *rand.Rand {
	return rand.New(rand.NewPCG(seed, uint64(scenario)<<32|uint64(index)))
}
