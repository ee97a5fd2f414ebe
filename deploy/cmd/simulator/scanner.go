package main

import (
	"context"
	"time"
)

// probePaths are what vulnerability scanners ask every site for: admin
// pages and exploits of software the shop does not run, secrets left in
// the document root. Taken from real access logs.
var probePaths = []string{
	"/wp-login.php", "/wp-admin/", "/xmlrpc.php", "/wp-includes/wlwmanifest.xml",
	"/wp-content/plugins/wp-file-manager/lib/php/connector.minimal.php", "/wp-config.php.bak",
	"/phpmyadmin/", "/pma/", "/phpMyAdmin/index.php", "/myadmin/", "/mysql/admin/",
	"/.env", "/.env.bak", "/api/.env", "/.git/config", "/.git/HEAD", "/.aws/credentials",
	"/fckeditor/editor/filemanager/connectors/test.html",
	"/FCKeditor/editor/filemanager/browser/default/connectors/test.html",
	"/admin/fckeditor/editor/filemanager/upload/test.html",
	"/vendor/phpunit/phpunit/src/Util/PHP/eval-stdin.php",
	"/backup.sql", "/db.sql", "/.DS_Store", "/server-status", "/actuator/env",
	"/cgi-bin/luci", "/config.json", "/admin/config.php", "/solr/admin/info/system",
}

// Scanners' own user agents (or none at all: "").
var scannerUAs = []string{
	"", "curl/8.5.0", "", "python-requests/2.31.0", "Go-http-client/1.1",
	"", "Mozilla/5.0 zgrab/0.x", "Wget/1.21.4",
}

// Probe runs: how many, and the probes after which the goal counts.
const (
	probesMin   = 5
	probesMax   = 30
	probesGrace = 3 // the goal counts the probes after a client's 3rd
)

// scanner probes the shop with a scanner's user agent or none (by the
// client's number: 3 in 8 send none).
func scanner(ctx context.Context, c *client) {
	probeRun(ctx, c, scannerUAs[c.n%len(scannerUAs)])
}

// scannerUA probes the shop with a browser's user agent.
func scannerUA(ctx context.Context, c *client) {
	probeRun(ctx, c, browsers[c.rng.IntN(len(browsers))])
}

// probeRun is one scanner's visit: 5–30 probes from probePaths in a
// random order, at 1–5 per second (one in four slower: one every 1–5 s),
// sometimes after a GET / (not counted as a probe); then the scanner
// moves on to the next site. Scanners start spread over the run's first
// 20 s.
func probeRun(ctx context.Context, c *client, ua string) {
	c.arrive(ctx, 20)
	rate := 1 + 4*c.rng.Float64()
	if c.rng.Float64() < 0.25 {
		rate = 1 / (1 + 4*c.rng.Float64())
	}
	interval := time.Duration(float64(time.Second) / (rate * c.rate))
	if c.rng.Float64() < 0.3 {
		c.do(ctx, "GET", "/", "", ua)
		sleep(ctx, interval)
	}
	n := probesMin + c.rng.IntN(probesMax-probesMin+1)
	order := c.rng.Perm(len(probePaths))
	for i := range min(n, len(order)) {
		if ctx.Err() != nil {
			return
		}
		o, ok := c.do(ctx, "GET", probePaths[order[i]], "", ua)
		if ok {
			c.rec.probe(c, i+1, o)
		}
		if !sleep(ctx, time.Duration(float64(interval)*(0.7+0.6*c.rng.Float64()))) {
			return
		}
	}
}
