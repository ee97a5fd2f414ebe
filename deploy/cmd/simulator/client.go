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
	rng      *rand.Rand
	rec      *recorder

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
// one is the gateway's, not the application's.
var gatewayRefusals = []string{"Suspicious behavior detected", "Client banned"}

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
	case status >= 500:
		return Failed
	default:
		return Allowed
	}
}

// do sends one request as this client and records the outcome. hdr holds
// extra header name/value pairs. An empty ua sends no User-Agent at all.
// It returns the outcome, and false when none was recorded (the run
// ended).
func (c *client) do(ctx context.Context, method, path, body, ua string, hdr ...string) (Outcome, bool) {
	if ctx.Err() != nil {
		return 0, false
	}
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.target+path, rd)
	if err != nil {
		return 0, false
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
			return 0, false // the run ended mid-request: not an outcome
		}
		c.rec.add(c, sent, first, Failed)
		return Failed, true
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	_ = resp.Body.Close()
	o := classify(resp.StatusCode, b)
	c.rec.add(c, sent, first, o)
	return o, true
}
