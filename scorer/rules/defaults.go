package rules

import "net/netip"

func prefixes(ss ...string) []netip.Prefix {
	out := make([]netip.Prefix, len(ss))
	for i, s := range ss {
		out[i] = netip.MustParsePrefix(s)
	}
	return out
}

// DefaultConfig returns the default ("default") profile: the behavioural
// one, calibrated on the simulator's labelled traffic (see the package
// comment and the README's detection table).
func DefaultConfig() Config {
	var c Config
	c.Name = "default"
	// Behaviour decides; circumstance (user agent class, country,
	// hosting network, regular timing) only strengthens it: see the
	// package comment.
	c.Combine = Amplified
	c.Amplify = 3
	// A burst of a webhook sender's or a page's worth of requests in one
	// second is no abuse by itself; sustained volume is (rate).
	c.Curves[Burst] = Ramp(40, 120, 1.0)
	c.Curves[Rate] = Ramp(5, 15, 0.9)
	// Server integrations poll at up to 5 req/s for hours.
	c.Curves[Rate60s] = Ramp(6, 15, 0.6)
	c.Curves[Visits] = Ramp(0, 1, 0)
	c.Curves[SensitiveVisits] = Ramp(0, 1, 0)
	c.Curves[SensitiveHits] = Ramp(0, 4, 0.4)
	c.Curves[Regularity] = Ramp(0.6, 0.85, 0.6)
	c.Curves[AuthFailures] = Ramp(0, 8, 0.9)
	c.Curves[ErrorRatio] = Ramp(0.2, 0.7, 0.6)
	c.Curves[PathDiversity] = Ramp(30, 100, 0.5)
	// A run of neighbouring ids: an API client picking among a few
	// resources at random makes runs of 3 and 4 by chance.
	c.Curves[Enumeration] = Ramp(4, 10, 0.9)
	c.Curves[UserAgent] = Ramp(0, 1, 0.45)
	c.Curves[Geo] = Ramp(0, 1, 0.5)
	c.Curves[Hosting] = Ramp(0, 1, 0.45)
	c.Curves[Travel] = Ramp(1000, 5000, 0.9)
	// Probes of exploit and admin paths in 60 s: by themselves the 3rd
	// throttles (0.52), the 5th blocks (1.0); with a tool's user agent the
	// 2nd throttles already.
	c.Curves[Probing] = Ramp(0.8, 5, 1.0)
	// Page assets per second over 10 s: a browser loading a page of 150
	// is at 15; only a flood far past any page throttles.
	c.Curves[AssetRate] = Ramp(50, 120, 0.7)
	// HTML pages in 60 s per asset (+1) in 60 s, for every client but a
	// crawler whose claim is being verified: people read about 6 pages a
	// minute and load
	// assets with them; a scraper takes the pages alone.
	c.Curves[BarePages] = Ramp(10, 30, 0.75)
	c.MinIntervals = 8
	c.MinRequests = 4
	c.ErrorPrior, c.ErrorPriorRatio = 8, 0.05
	c.MinTravelKm = 500
	c.MinTravelSeconds = 60
	c.CountryRisk = map[string]float64{}
	c.HostingASNs = make(map[uint32]bool, len(DefaultHostingASNs))
	for _, a := range DefaultHostingASNs {
		c.HostingASNs[a] = true
	}
	c.AutomationUA = append([]string(nil), DefaultAutomationUA...)
	c.BotUA = append([]string(nil), DefaultBotUA...)
	c.BotUARisk = 0.5
	// The crawlers' networks are a fallback for while their DNS is not
	// known yet (or not looked up at all): the domains are what the search
	// engines publish for verifying their crawlers by forward-confirmed
	// reverse DNS. Google also lists googleusercontent.com, for fetchers
	// that users trigger; it is left out on purpose: it is also the domain
	// of every Google Cloud VM's PTR (*.bc.googleusercontent.com), so anyone
	// with a VM there would pass as Googlebot.
	c.Allow = []AllowRule{
		{Name: "googlebot", UserAgent: "googlebot", Networks: prefixes("66.249.64.0/19"),
			Domains: []string{"googlebot.com", "google.com"}},
		{Name: "bingbot", UserAgent: "bingbot", Networks: prefixes("157.55.39.0/24", "207.46.13.0/24", "40.77.167.0/24"),
			Domains: []string{"search.msn.com"}},
	}
	c.Block, c.Throttle = 0.8, 0.5
	return c
}

// DefaultHostingASNs are large hosting, cloud and VPS providers: traffic
// from them is servers, not people at home.
var DefaultHostingASNs = []uint32{
	14618, 16509, // Amazon
	14061,  // DigitalOcean
	16276,  // OVH
	24940,  // Hetzner
	8075,   // Microsoft Azure
	396982, // Google Cloud
	63949,  // Akamai Connected Cloud (Linode)
	20473,  // Vultr (Choopa)
	45102,  // Alibaba Cloud
	12876,  // Scaleway
	51167,  // Contabo
	9009,   // M247
	136907, // Huawei Cloud
}

// DefaultAutomationUA are substrings (lower case) of user agents sent by
// HTTP libraries, command-line tools, scanners and headless browsers.
var DefaultAutomationUA = []string{
	"curl/", "wget/", "python-requests", "python-urllib", "python-httpx", "aiohttp",
	"go-http-client", "java/", "okhttp", "apache-httpclient", "libwww-perl", "scrapy",
	"node-fetch", "axios/", "postmanruntime", "headlesschrome", "phantomjs", "selenium",
	"puppeteer", "playwright", "sqlmap", "nikto", "nmap", "masscan", "zgrab", "httpie",
}

// DefaultBotUA are substrings (lower case) of self-declared crawlers. Such a
// user agent is only a claim: a verified crawler is an allow rule (user
// agent and network), never a free pass by string.
var DefaultBotUA = []string{"bot", "crawler", "spider", "slurp"}
