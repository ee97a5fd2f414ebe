// Command loadbench is the load harness behind `make bench`: it measures
// Bulwark under concurrent load against a bare Go reverse proxy and nginx in
// the same run, with the same generators and the same clients.
//
//	loadbench upstream -listen ADDR            the upstream: a 50-byte JSON answer to every request
//	loadbench proxy -listen ADDR -upstream URL a bare httputil.ReverseProxy with a tuned transport
//	loadbench recorder -listen ADDR -scorer URL -control ADDR
//	                                           a TCP relay to the scorer counting score requests by client class
//	loadbench ports -n N                       N free TCP ports on 127.0.0.1, one a line
//	loadbench machine [-wrk PATH]              the machine: CPUs, CPU model, kernel, Go
//	loadbench open -url URL [-load api|browsers] -rate N   one open-loop run by hand
//	loadbench run [flags]                      the measurements (deploy/bench.sh starts the targets)
//
// run drives each target with four loads: api, the API mix (apiMix: 50,000
// clients by default, 40% Chrome browsers, 25% Android apps, 15% iOS apps,
// 15% server SDKs from cloud networks, 5% curl, on five /api/ paths, in a
// seeded order); browsers, 50,000 distinct Chrome browsers; hammer, one
// client with curl's user agent at full speed; mix, 90% browsers and 10%
// from 20 attacking addresses with tools' user agents. Each goes first
// closed-loop with wrk (maximum throughput), then the legitimate loads (api,
// browsers) open-loop at fixed rates with vegeta (latency free of
// coordinated omission). Clients are presented in X-Forwarded-For, which
// the gateway trusts from 127.0.0.1. For Bulwark it also reads what each
// request cost in Redis (INFO), the scorer (/metrics) and MongoDB (events
// written), and splits each run by client class: the refusals from the
// gateway's log, the scorer calls from the recorder. It prints a table,
// writes the full results as JSON, and fails when a legitimate request
// was refused.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout)
	stop()
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "loadbench:", err)
		os.Exit(1)
	}
}

const usage = "usage: loadbench upstream|proxy|recorder|ports|machine|open|run [flags]"

func run(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	if len(args) == 0 {
		return errors.New(usage)
	}
	switch args[0] {
	case "upstream":
		return runUpstream(ctx, args[1:], stdout)
	case "proxy":
		return runProxy(ctx, args[1:], stdout)
	case "recorder":
		return runRecorder(ctx, args[1:], stdout)
	case "ports":
		return runPorts(args[1:], stdout)
	case "machine":
		return runMachine(ctx, args[1:], stdout)
	case "run":
		return runBench(ctx, args[1:], getenv, stdout)
	case "open":
		return runOpen(args[1:], stdout)
	default:
		return fmt.Errorf("unknown command %q; %s", args[0], usage)
	}
}
