package main

// A client that gives up on a request (issue 12, item 12) has not made an
// error: the 499 the gateway records for it is not an upstream answer and
// must not raise the client's 4xx count, while the upstream's real 4xx
// answers still do.

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulwarkgw/bulwark/shared/wire"
)

// ratioScorer is a scorer whose score is the client's 4xx ratio, so that
// the error count is both visible (every request it was asked about) and
// consequential (a ratio of 0.5 throttles).
type ratioScorer struct {
	srv  *httptest.Server
	mu   sync.Mutex
	seen []wire.ScoreRequest
}

func newRatioScorer(t *testing.T) *ratioScorer {
	rs := &ratioScorer{}
	rs.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/score" {
			http.NotFound(w, r) // no profile: every request asks
			return
		}
		var req wire.ScoreRequest
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		rs.mu.Lock()
		rs.seen = append(rs.seen, req)
		rs.mu.Unlock()
		ratio := math.Min(0.95, float64(req.Errors4xx)/float64(max(req.Count60s, 1)))
		_ = json.NewEncoder(w).Encode(wire.ScoreResponse{Score: ratio, Reasons: []wire.Reason{{Feature: "errors_4xx", Value: float64(req.Errors4xx), Contribution: ratio}}})
	}))
	t.Cleanup(rs.srv.Close)
	return rs
}

// last is the latest score request about ip.
func (rs *ratioScorer) last(t *testing.T, ip string) wire.ScoreRequest {
	t.Helper()
	rs.mu.Lock()
	defer rs.mu.Unlock()
	for i := len(rs.seen) - 1; i >= 0; i-- {
		if rs.seen[i].IP == ip {
			return rs.seen[i]
		}
	}
	t.Fatalf("the scorer was never asked about %s", ip)
	return wire.ScoreRequest{}
}

const abandonConfig = `
routes:
  - {path: /api/, upstream: "{{U1}}"}
scorer: {url: "SCORER", timeout: 5s}
scoring: {fast_path: false, cache_ttl: 0s}
thresholds: {block: 0.99, throttle: 0.5}
admin: {username: admin, password: s3cret}
`

func TestAbandonedRequestsAreNotClientErrors(t *testing.T) {
	t.Parallel()
	rs := newRatioScorer(t)
	s := startStack(t, strings.Replace(abandonConfig, "SCORER", rs.srv.URL, 1))
	arrived := make(chan struct{}, 1)
	s.u1.handle(func(w http.ResponseWriter, r *http.Request, _ []byte) bool {
		switch r.URL.Path {
		case "/api/slow": // answers only after the client has given up
			arrived <- struct{}{}
			select {
			case <-r.Context().Done():
			case <-time.After(10 * time.Second):
			}
			return true
		case "/api/missing":
			http.NotFound(w, r)
			return true
		}
		return false
	})
	const ip = "127.0.0.97"
	c := s.from(ip)
	// statusLogged waits until the gateway has finished n requests with
	// this status (the access-log line is written after the response was
	// recorded for the client).
	statusLogged := func(status, n int) {
		t.Helper()
		require.Eventually(t, func() bool {
			return strings.Count(s.out.String(), fmt.Sprintf(`"status":%d,`, status)) >= n
		}, 10*time.Second, 10*time.Millisecond, "%d requests answered %d", n, status)
	}

	const abandoned = 6
	for i := range abandoned {
		ctx, cancel := context.WithCancel(context.Background())
		req, err := http.NewRequestWithContext(ctx, "GET", c.base+"/api/slow", nil)
		require.NoError(t, err)
		done := make(chan *http.Response, 1)
		go func() {
			resp, _ := c.hc.Do(req)
			done <- resp
		}()
		select {
		case <-arrived:
		case resp := <-done:
			cancel()
			require.FailNow(t, "answered by the gateway instead of reaching the upstream", "attempt %d: %v", i+1, resp)
		case <-time.After(10 * time.Second):
			cancel()
			require.FailNow(t, "the request never reached the upstream")
		}
		cancel() // the client gives up while the upstream is still working
		<-done
		statusLogged(499, i+1)
	}

	r := c.get("/api/ok")
	assert.Equal(t, http.StatusOK, r.Code, "not throttled for giving up")
	sr := rs.last(t, ip)
	assert.GreaterOrEqual(t, sr.Count60s, int64(abandoned+1), "the abandoned requests were counted as requests")
	assert.Zero(t, sr.Errors4xx, "but not as errors")

	// The upstream's own 404s count, and enough of them throttle.
	for i := range 3 {
		require.Equal(t, http.StatusNotFound, c.get("/api/missing").Code)
		statusLogged(404, i+1)
	}
	require.Equal(t, http.StatusOK, c.get("/api/ok").Code)
	assert.EqualValues(t, 3, rs.last(t, ip).Errors4xx, "upstream 404s count")
	throttled := false
	for range 20 {
		if c.get("/api/missing").Code == http.StatusTooManyRequests {
			throttled = true
			break
		}
	}
	assert.True(t, throttled, "a client scanning for 404s is throttled: %+v", rs.last(t, ip))
}
