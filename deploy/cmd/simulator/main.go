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
// -report prints a table per scenario: requests sent, allowed, throttled,
// blocked, clients refused and banned, time to first block and the share of requests throttled or
// blocked (for bots: of those sent after each client's first second). -json
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
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
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
	addrs := addresses(o.mix, o.seed)
	for si, sc := range Scenarios {
		n := o.mix[sc.Name]
		rec.declare(sc, n)
		for i := range n {
			c := &client{
				n: i, scenario: sc.Name, target: o.target, http: hc, rate: o.rate, rtt: o.rtt,
				ip:  addrs[sc.Name][i],
				rng: newRand(o.seed, si, i), rec: rec,
			}
			wg.Go(func() { sc.Run(ctx, c) })
		}
	}
	wg.Wait()
	return rec.report(time.Since(start), o)
}
