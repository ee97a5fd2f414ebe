// Command simulator drives labelled traffic at a Bulwark gateway and
// reports what the gateway did with each kind of client, so that detection
// quality is measured, not claimed.
//
// Each simulated client has its own address, presented in X-Forwarded-For
// as a trusted proxy would (the gateway must trust the simulator's
// address: BULWARK_TRUSTED_PROXIES). Scenarios: people browsing (pages
// with their assets, think time, logins that mostly succeed, checkouts), a
// sneaker bot hammering checkout at 50 rps, credential stuffing, a scraper
// walking product ids, a low-and-slow botnet in hosting networks, an API-key
// guesser and a verified crawler (Googlebot from Google's network).
//
//	simulator [-target URL] [-duration 30s] [-rate 1] [-mix human=40,sneaker=1,...]
//	          [-seed 1] [-report] [-json FILE|-] [-check] [-rtt 80ms]
//	          [-dns-listen 127.0.0.1:5353]
//
// Scenarios added for issue 13 (real traffic): browser (people loading
// pages of 5–150 assets, median 70, over 6 connections at -rtt, with
// same-site referers and the phones' icon 404s), scanner and scanner-ua
// (probes for WordPress, phpMyAdmin, .env, .git/config, ... with no or a
// tool's user agent, or a browser's) and bingbot (Bingbot on Microsoft's
// network outside the allow rule's /24s, vouched for only by its DNS,
// which -dns-listen serves with the Googlebot crawler's).
//
// Scenarios added for the API's clientele (API clients are not bots: a
// library's user agent, a cloud network, a timer's regularity are
// circumstances, not evidence), judged by Measure API (not one request
// refused):
//
//   - app-timer: a phone's app (okhttp/4.12.0 or an iOS app's CFNetwork,
//     by client) on a residential address polling GET /api/products every
//     1–3 s on a metronome, now and then a product by id;
//   - app-jitter: the same, ±40 %;
//   - integration: server integrations from cloud networks
//     (python-requests, Go-http-client, Java-http-client, node-fetch,
//     axios) at a fixed 1–5/s each, on a timer, product list and random
//     products, no credential;
//   - integration-key: the same after one POST /auth as a shop customer,
//     with the API key the gateway minted (its "API_KEY") as X-API-Key;
//   - webhook: Stripe's or GitHub's webhook sender, 20–50 POST
//     /webhooks/{provider} within a second, then 10–30 s idle;
//   - batch-key: a partner's batch job with an API key, 50/s on a timer,
//     GET /api/products?page=1..20 and POST /api/orders in turn (within
//     the per-key limit of deploy/config/detect.yaml);
//   - monitor: curl/8.5.0 from a cloud, GET /api/status every 10 s;
//   - sdk-retry: an SDK (aws-sdk-go-v2, stripe-go) calling GET /api/flaky
//     (the shop's 503 about 30 % of the time, which reached the
//     application: not a failure) ~2/s, retrying after 0.2, 0.4, 0.8 s;
//   - graphql: apollo-ios or graphql-request, POST /graphql only, 1–3/s.
//
// And attackers that borrow those circumstances: scraper-okhttp (okhttp's
// user agent, random /api/products/{1..5000} at 8/s), stuffing-resi
// (credential stuffing, 5/s, each client rotating over 20 residential
// proxy addresses of its own), leaked-key (a customer's key walking
// /api/orders/1, 2, 3 ... at 5/s into 403s), and scraper-pages and
// scraper-rotate (HTML product pages without their assets at 1.2/s with
// one browser's user agent, 0.5–1/s rotating four; judged by Measure
// AfterMinute: 99 % refused after each client's first minute, so a run
// shorter than a minute misses their goal). Credential scenarios also
// need every client to have got its key. The browser's category pages
// load 10–25 thumbnails from /image/{id}/productModel/200x200 (no
// extension: image/jpeg by Content-Type only). simulator -h lists every
// scenario with its label, clients, addresses and goal.
//
// -report prints a table per scenario: requests sent, allowed, throttled,
// blocked, clients refused and banned, time to first block and the share of requests throttled or
// blocked (for bots: of those sent after each client's first second, or
// minute), and for credential scenarios how many clients got a key. -json
// writes the same as JSON. -check exits non-zero when a detection goal is
// missed. The same seed gives the same clients, addresses and choices.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout)
	stop()
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "simulator:", err)
		os.Exit(1)
	}
}

// options are the command line.
type options struct {
	target   string
	duration time.Duration
	rate     float64
	mix      map[string]int
	seed     uint64
	report   bool
	jsonOut  string
	check    bool
	rtt      time.Duration
	dns      string
}

func parse(args []string, getenv func(string) string, out io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("simulator", flag.ContinueOnError)
	fs.SetOutput(out)
	target := getenv("BULWARK_TARGET")
	if target == "" {
		target = "http://127.0.0.1:8080"
	}
	fs.StringVar(&o.target, "target", target, "gateway base URL (BULWARK_TARGET)")
	fs.DurationVar(&o.duration, "duration", 30*time.Second, "how long to run")
	fs.Float64Var(&o.rate, "rate", 1, "factor on every scenario's request rate")
	mix := fs.String("mix", "", "clients per scenario, e.g. human=40,sneaker=1 (default: every scenario's default; unlisted scenarios do not run)")
	fs.Uint64Var(&o.seed, "seed", 1, "random seed: the same seed gives the same clients and choices")
	fs.BoolVar(&o.report, "report", false, "print the per-scenario table")
	fs.StringVar(&o.jsonOut, "json", "", "write the report as JSON to this file (- for stdout)")
	fs.BoolVar(&o.check, "check", false, "exit non-zero when a detection goal is missed")
	fs.DurationVar(&o.rtt, "rtt", 80*time.Millisecond, "the browser scenario's round trip, waited before each of its requests")
	fs.Usage = func() { usage(fs) }
	fs.StringVar(&o.dns, "dns-listen", "", "serve the crawlers' reverse and forward DNS (PTR, A) on this UDP host:port during the run (point the scorer's BULWARK_DNS_SERVER at it)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	if o.duration <= 0 {
		return o, errors.New("-duration must be positive")
	}
	if o.rate <= 0 {
		return o, errors.New("-rate must be positive")
	}
	if o.rtt < 0 {
		return o, errors.New("-rtt must not be negative")
	}
	m, err := parseMix(*mix)
	if err != nil {
		return o, err
	}
	o.mix = m
	return o, nil
}

// usage prints the flags and the scenarios.
func usage(fs *flag.FlagSet) {
	w := fs.Output()
	fmt.Fprintln(w, "Usage: simulator [flags]\n\nFlags:")
	fs.PrintDefaults()
	fmt.Fprintln(w, "\nScenarios (-mix name=clients; label, default clients, addresses, goal):")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, sc := range Scenarios {
		fmt.Fprintf(tw, "  %s\t%s\t%d\t%s\t%s\t%s\n", sc.Name, sc.Label, sc.Clients, poolName(sc), measureName(sc), sc.Doc)
	}
	_ = tw.Flush()
}

// poolName names a scenario's address pool for -h.
func poolName(sc Scenario) string {
	pools := []struct {
		name string
		pool []netip.Prefix
	}{{"residential", residential}, {"hosting", hosting}, {"google", google}, {"russia", russia},
		{"bing", bing}, {"scanners", scanners}, {"cloud", cloud}}
	for _, p := range pools {
		if &p.pool[0] == &sc.Pool[0] {
			if sc.Rotate > 1 {
				return fmt.Sprintf("%s x%d", p.name, sc.Rotate)
			}
			return p.name
		}
	}
	return "?"
}

// measureName is how a scenario is judged, for -h.
func measureName(sc Scenario) string {
	if sc.Measure != "" {
		return string(sc.Measure)
	}
	if sc.Label == Bot {
		return "after_second"
	}
	return "per_request"
}

// parseMix reads "name=clients,..."; empty means every scenario's default.
func parseMix(s string) (map[string]int, error) {
	m := map[string]int{}
	if strings.TrimSpace(s) == "" {
		for _, sc := range Scenarios {
			m[sc.Name] = sc.Clients
		}
		return m, nil
	}
	for _, part := range strings.Split(s, ",") {
		name, n, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			n = ""
		}
		if !known(name) {
			return nil, fmt.Errorf("-mix: unknown scenario %q (have %s)", name, strings.Join(names(), ", "))
		}
		count := defaultClients(name)
		if n != "" {
			v, err := strconv.Atoi(n)
			if err != nil || v < 0 {
				return nil, fmt.Errorf("-mix: %s: want a number of clients >= 0, got %q", name, n)
			}
			count = v
		}
		m[name] = count
	}
	return m, nil
}

func known(name string) bool { return defaultClients(name) >= 0 }

func defaultClients(name string) int {
	for _, sc := range Scenarios {
		if sc.Name == name {
			return sc.Clients
		}
	}
	return -1
}

func names() []string {
	out := make([]string, len(Scenarios))
	for i, sc := range Scenarios {
		out[i] = sc.Name
	}
	return out
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	o, err := parse(args, getenv, stdout)
	if err != nil {
		return err
	}
	if o.dns != "" {
		records, err := crawlerRecords(o.mix, addresses(o.mix, o.seed))
		if err != nil {
			return err
		}
		srv, addr, err := startDNS(o.dns, records)
		if err != nil {
			return err
		}
		defer srv.close()
		fmt.Fprintf(stdout, "serving the crawlers' DNS on %s (%d records)\n", addr, len(records))
		defer func() { fmt.Fprintf(stdout, "crawlers' DNS: %d queries answered\n", srv.queries.Load()) }()
	}
	rep := simulate(ctx, o)
	if o.report {
		rep.writeTable(stdout)
	}
	if o.jsonOut != "" {
		w := stdout
		if o.jsonOut != "-" {
			f, err := os.Create(o.jsonOut)
			if err != nil {
				return err
			}
			defer f.Close()
			w = f
		}
		if err := rep.writeJSON(w); err != nil {
			return err
		}
	}
	if o.check && !rep.Pass {
		return errors.New("a detection goal was missed")
	}
	return nil
}

// simulate runs every client of the mix for the duration and returns the
// report.
func simulate(ctx context.Context, o options) *Report {
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		MaxIdleConns:        1024,
		MaxIdleConnsPerHost: 1024,
		IdleConnTimeout:     30 * time.Second,
	}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	start := time.Now()
	rec := newRecorder(start)
	ctx, cancel := context.WithTimeout(ctx, o.duration)
	defer cancel()

	var wg sync.WaitGroup
	addrs := allocate(o.mix, o.seed)
	for si, sc := range Scenarios {
		n := o.mix[sc.Name]
		rec.declare(sc, n)
		for i := range n {
			c := &client{
				n: i, scenario: sc.Name, target: o.target, http: hc, rate: o.rate, rtt: o.rtt,
				ip: addrs[sc.Name][i][0], ips: addrs[sc.Name][i],
				rng: newRand(o.seed, si, i), rec: rec,
			}
			wg.Go(func() { sc.Run(ctx, c) })
		}
	}
	wg.Wait()
	return rec.report(time.Since(start), o)
}
