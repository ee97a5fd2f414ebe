// Package scoreclient asks the scorer service for a client's threat score
// over HTTP/JSON on kept-alive connections. Every call has a hard deadline
// (tens of milliseconds): a slow scorer costs a request at most the timeout,
// and the caller falls back as configured. A circuit breaker stops calling
// a scorer that keeps failing: after BreakerFailures failures in a row every
// call fails at once with ErrCircuitOpen for BreakerCooldown, then one call
// at a time probes the scorer until one succeeds.
package scoreclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/bulwarkgw/bulwark/shared/wire"
)

// Breaker settings.
const (
	BreakerFailures = 5
	BreakerCooldown = time.Second
)

// ErrCircuitOpen is returned without calling the scorer while the breaker
// is open.
var ErrCircuitOpen = errors.New("scorer circuit open")

// Client calls POST {base}/v1/score.
type Client struct {
	base    string
	url     string
	timeout time.Duration
	http    *http.Client
	breaker breaker
}

// breaker is a consecutive-failure circuit breaker.
type breaker struct {
	mu        sync.Mutex
	failures  int
	openUntil time.Time
	probing   bool
	now       func() time.Time
}

// allow reports whether a call may go ahead; in the half-open state only
// one probe at a time does.
func (b *breaker) allow() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.failures < BreakerFailures {
		return true
	}
	if b.now().Before(b.openUntil) || b.probing {
		return false
	}
	b.probing = true
	return true
}

func (b *breaker) release() {
	b.mu.Lock()
	b.probing = false
	b.mu.Unlock()
}

func (b *breaker) done(err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.probing = false
	if err == nil {
		b.failures = 0
		return
	}
	b.failures++
	if b.failures >= BreakerFailures {
		b.openUntil = b.now().Add(BreakerCooldown)
	}
}

// New returns a client for the scorer at baseURL with a per-call timeout.
func New(baseURL string, timeout time.Duration) (*Client, error) {
	if baseURL == "" {
		return nil, errors.New("scoreclient: empty scorer URL")
	}
	if timeout <= 0 {
		return nil, errors.New("scoreclient: timeout must be positive")
	}
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        256,
		MaxIdleConnsPerHost: 256,
		IdleConnTimeout:     90 * time.Second,
	}
	return &Client{
		base: baseURL, url: baseURL + "/v1/score", timeout: timeout, http: &http.Client{Transport: tr},
		breaker: breaker{now: time.Now},
	}, nil
}

// SetClock replaces the breaker's clock (tests).
func (c *Client) SetClock(now func() time.Time) { c.breaker.now = now }

// Score returns the scorer's verdict for req, or ErrCircuitOpen at once
// while the scorer is considered down.
func (c *Client) Score(ctx context.Context, req wire.ScoreRequest) (wire.ScoreResponse, error) {
	if !c.breaker.allow() {
		return wire.ScoreResponse{}, fmt.Errorf("score %s: %w", req.IP, ErrCircuitOpen)
	}
	res, err := c.score(ctx, req)
	switch {
	case err != nil && ctx.Err() != nil:
		c.breaker.release() // a caller that gave up is not the scorer's failure
	case errors.Is(err, ErrRejected):
		// The scorer is up and refused this one request (a 4xx): one odd
		// client must not open the circuit for everyone.
		c.breaker.done(nil)
	default:
		c.breaker.done(err)
	}
	return res, err
}

// ErrRejected is a 4xx from the scorer: the request, not the scorer, was
// at fault.
var ErrRejected = errors.New("scorer rejected the request")

func (c *Client) score(ctx context.Context, req wire.ScoreRequest) (wire.ScoreResponse, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	body, err := json.Marshal(req)
	if err != nil {
		return wire.ScoreResponse{}, fmt.Errorf("score %s: %w", req.IP, err)
	}
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url, bytes.NewReader(body))
	if err != nil {
		return wire.ScoreResponse{}, fmt.Errorf("score %s: %w", req.IP, err)
	}
	hr.Header.Set("Content-Type", "application/json")
	resp, err := c.http.Do(hr)
	if err != nil {
		return wire.ScoreResponse{}, fmt.Errorf("score %s: %w", req.IP, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 400 && resp.StatusCode < 500 {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		return wire.ScoreResponse{}, fmt.Errorf("score %s: %w: %s", req.IP, ErrRejected, resp.Status)
	}
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		return wire.ScoreResponse{}, fmt.Errorf("score %s: scorer answered %s", req.IP, resp.Status)
	}
	var out wire.ScoreResponse
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&out); err != nil {
		return wire.ScoreResponse{}, fmt.Errorf("score %s: decode: %w", req.IP, err)
	}
	if out.Score < 0 || out.Score > 1 {
		return wire.ScoreResponse{}, fmt.Errorf("score %s: score %v outside [0, 1]", req.IP, out.Score)
	}
	return out, nil
}

// RawProfile returns the scorer's active profile as the scorer serves it
// (GET /v1/profile, JSON, at most 1 MiB) and the rules version it names.
func (c *Client) RawProfile(ctx context.Context) ([]byte, string, error) {
	hr, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+"/v1/profile", nil)
	if err != nil {
		return nil, "", fmt.Errorf("profile: %w", err)
	}
	resp, err := c.http.Do(hr)
	if err != nil {
		return nil, "", fmt.Errorf("profile: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, "", fmt.Errorf("profile: scorer answered %s", resp.Status)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, "", fmt.Errorf("profile: %w", err)
	}
	return b, resp.Header.Get(wire.RulesVersionHeader), nil
}
