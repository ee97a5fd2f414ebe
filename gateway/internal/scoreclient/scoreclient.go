// Package scoreclient asks the scorer service for a client's threat score
// over HTTP/JSON on kept-alive connections. Every call has a hard deadline
// (tens of milliseconds): a slow scorer costs a request at most the timeout,
// and the caller falls back as configured.
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
	"time"

	"github.com/bulwarkgw/bulwark/shared/wire"
)

// Client calls POST {base}/v1/score.
type Client struct {
	url     string
	timeout time.Duration
	http    *http.Client
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
	return &Client{url: baseURL + "/v1/score", timeout: timeout, http: &http.Client{Transport: tr}}, nil
}

// Score returns the scorer's verdict for req.
func (c *Client) Score(ctx context.Context, req wire.ScoreRequest) (wire.ScoreResponse, error) {
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
