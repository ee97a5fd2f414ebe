package main

import (
	"bytes"
	"context"
	"io"
	"math/rand/v2"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"
)

// client is one simulated client: one address, one random source.
type client struct {
	n        int // the client's number within its scenario
	scenario string
	target   string
	http     *http.Client
	rate     float64
	rtt      time.Duration // a browser's round trip before each request
	ip       netip.Addr
	// ips, for a scenario that rotates addresses (Scenario.Rotate), is
	// the client's own slice of its pool, ip its first.
	ips []netip.Addr
	rng *rand.Rand
	rec *recorder

	mu    sync.Mutex
	first time.Time // when the client sent its first request
}

// Outcome is what the gateway did with one request.
type Outcome int

// Outcomes.
const (
	Allowed   Outcome = iota // reached the application (whatever it answered)
	Throttled                // 429 from the gateway
	Blocked                  // 403 from the gateway (a block or a ban)
	Failed                   // transport error or 5xx
)

// The gateway's refusal messages (gateway/internal/server): a 403 carrying
// one is the gateway's, not the application's: a block, a ban, the ban for
// repeated failed logins or invalid keys (api_key.invalid_threshold), a
// login's lockout.
var gatewayRefusals = []string{"Suspicious behavior detected", "Client banned",
	"IP blocked due to repeated invalid requests", "Too many failed login attempts"}

// flakyMarker is in the body of the shop's own 503s (GET /api/flaky, see
// deploy/cmd/shop): the application answered, so the request reached it;
// any other 5xx is a failure (the gateway's 502 or 503, a crash).
const flakyMarker = "flaky by design"

// classify maps a response to an outcome.
func classify(status int, body []byte) Outcome {
	switch {
	case status == http.StatusTooManyRequests:
		return Throttled
	case status == http.StatusForbidden:
		for _, m := range gatewayRefusals {
			if bytes.Contains(body, []byte(m)) {
				return Blocked
			}
		}
		return Allowed
	case status == http.StatusServiceUnavailable && bytes.Contains(body, []byte(flakyMarker)):
		return Allowed
	case status >= 500:
		return Failed
	default:
		return Allowed
	}
}

// do sends one request as this client and records the outcome. hdr holds
// extra header name/value pairs (an X-Forwarded-For among them replaces
// the client's address). An empty ua sends no User-Agent at all. It
// returns the outcome, and false when none was recorded (the run ended).
func (c *client) do(ctx context.Context, method, path, body, ua string, hdr ...string) (Outcome, bool) {
	r, ok := c.send(ctx, method, path, body, ua, hdr...)
	return r.outcome, ok
}

// response is what send got back: the outcome recorded, the status (0 on
// a transport error) and the start of the body.
type response struct {
	outcome Outcome
	status  int
	body    []byte
}

// send is do, returning the response too.
func (c *client) send(ctx context.Context, method, path, body, ua string, hdr ...string) (response, bool) {
	if ctx.Err() != nil {
		return response{}, false
	}
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.target+path, rd)
	if err != nil {
		return response{}, false
	}
	req.Header.Set("X-Forwarded-For", c.ip.String())
	req.Header.Set("User-Agent", ua)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	sent := time.Now()
	c.mu.Lock()
	if c.first.IsZero() {
		c.first = sent
	}
	first := c.first
	c.mu.Unlock()

	resp, err := c.http.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return response{}, false // the run ended mid-request: not an outcome
		}
		c.rec.add(c, sent, first, Failed)
		return response{outcome: Failed}, true
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	_ = resp.Body.Close()
	o := classify(resp.StatusCode, b)
	c.rec.add(c, sent, first, o)
	return response{outcome: o, status: resp.StatusCode, body: b}, true
}
