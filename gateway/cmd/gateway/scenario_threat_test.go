package main

// Group C of SEEDS.md section 8, the part that is the gateway's alone:
// S30, a failing scorer. S26–S28, S31 and S32 need the real scorer and run
// in deploy/e2e.

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const threatConfig = `
routes:
  - {path: /svc/, upstream: "{{U3}}"}
scorer: {url: "SCORER", timeout: 200ms, fail_mode: MODE}
admin: {username: admin, password: s3cret}
audit: {requests: true}
`

func TestS30ScorerFailure(t *testing.T) {
	t.Parallel()
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
		}
	}))
	t.Cleanup(hang.Close)
	broken := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, `{"error":"boom"}`, http.StatusInternalServerError)
	}))
	t.Cleanup(broken.Close)

	for _, scorer := range []struct{ name, url string }{{"hanging", hang.URL}, {"500", broken.URL}, {"down", "http://127.0.0.1:1"}} {
		t.Run(scorer.name, func(t *testing.T) {
			t.Parallel()
			open := startStack(t, strings.NewReplacer("SCORER", scorer.url, "MODE", "open").Replace(threatConfig))
			c := open.from("127.0.0.90")
			for range 3 {
				start := time.Now()
				r := c.get("/svc/public")
				assert.Equal(t, http.StatusOK, r.Code, "fail open forwards")
				assert.Less(t, time.Since(start), 2*time.Second, "cut at the 200 ms scorer timeout, long before the scorer's 10 s")
			}
			var rows []map[string]any
			require.Eventually(t, func() bool {
				rows = nil
				return jsonInto(open.adminGet("/api/logs").Body, &rows) == nil && len(rows) == 3
			}, 5*time.Second, 50*time.Millisecond)
			for _, row := range rows {
				assert.Equal(t, "ALLOWED", row["actionTaken"])
				assert.Equal(t, true, row["degraded"], "the degradation is recorded")
				assert.Equal(t, "Local Network", row["location"])
			}
			metrics := open.adminGet("/metrics").Body
			assert.Regexp(t, `bulwark_gateway_dependency_errors_total\{dependency="scorer"\} [1-9]`, metrics)
			// Failed calls are timed too: the distribution shows whether the timeout fits.
			assert.Regexp(t, `bulwark_gateway_dependency_duration_seconds_count\{dependency="scorer"\} [1-9]`, metrics)
			assert.Regexp(t, `bulwark_gateway_dependency_duration_seconds_count\{dependency="redis"\} [1-9]`, metrics)
			assert.Regexp(t, `(?m)^bulwark_gateway_events_dropped_total 0$`, metrics, "every drop would be counted")
			assert.Regexp(t, `(?m)^bulwark_gateway_events_written_total [0-9]`, metrics)

			closed := startStack(t, strings.NewReplacer("SCORER", scorer.url, "MODE", "closed").Replace(threatConfig))
			r := closed.from("127.0.0.91").get("/svc/public")
			assert.Equal(t, http.StatusServiceUnavailable, r.Code, "fail closed refuses")
			assert.Zero(t, closed.u3.count("/svc/"))
		})
	}
}

// S31's summary counts the whole store, not a 50-row window, and prices
// blocks at cost_per_block.
func TestThreatLogSummary(t *testing.T) {
	t.Parallel()
	cfg := `
routes:
  - {path: /svc/, upstream: "{{U3}}"}
scorer: {enabled: false}
admin: {username: admin, password: s3cret}
audit: {requests: true}
lists: {deny: [127.0.0.93/32]}
`
	s := startStack(t, cfg)
	for range 55 {
		s.from("127.0.0.92").get("/svc/public")
	}
	s.from("127.0.0.93").get("/svc/public")
	var rows []map[string]any
	require.Eventually(t, func() bool {
		sum := s.adminGet("/api/logs/summary").json(t)
		return sum["total"] == 56.0
	}, 5*time.Second, 50*time.Millisecond)
	sum := s.adminGet("/api/logs/summary").json(t)
	assert.Equal(t, map[string]any{"total": 56.0, "allowed": 55.0, "blocked": 1.0, "throttled": 0.0, "money_saved": "$0.45"}, sum)
	require.NoError(t, jsonInto(s.adminGet("/api/logs").Body, &rows))
	assert.Len(t, rows, 50, "the list is capped at 50, newest first")
	assert.Equal(t, "BLOCKED", rows[0]["actionTaken"])
	assert.Equal(t, http.StatusUnauthorized, s.adminFrom("127.0.0.1").get("/api/logs").Code)
}
