package scoreclient_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulwarkgw/bulwark/gateway/internal/scoreclient"
	"github.com/bulwarkgw/bulwark/shared/wire"
)

func TestScore(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		assert.Equal(t, "/v1/score", r.URL.Path)
		var req wire.ScoreRequest
		require.NoError(t, json.NewDecoder(r.Body).Decode(&req))
		_ = json.NewEncoder(w).Encode(wire.ScoreResponse{
			Score:   float64(req.Count1s) / 100,
			Reasons: []wire.Reason{{Feature: "burst", Value: float64(req.Count1s), Contribution: float64(req.Count1s) / 100}},
		})
	}))
	defer srv.Close()
	c, err := scoreclient.New(srv.URL, time.Second)
	require.NoError(t, err)
	got, err := c.Score(context.Background(), wire.ScoreRequest{IP: "1.2.3.4", Count1s: 42})
	require.NoError(t, err)
	assert.InDelta(t, 0.42, got.Score, 1e-9)
	require.Len(t, got.Reasons, 1)
	assert.Equal(t, "burst", got.Reasons[0].Feature)
}

func TestScoreErrors(t *testing.T) {
	tests := []struct {
		name    string
		handler http.HandlerFunc
	}{
		{"server error", func(w http.ResponseWriter, r *http.Request) { http.Error(w, "boom", 500) }},
		{"bad json", func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("{")) }},
		{"score out of range", func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte(`{"score":1.5}`)) }},
		{"too slow", func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-r.Context().Done():
			case <-time.After(300 * time.Millisecond):
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(tt.handler)
			defer srv.Close()
			c, err := scoreclient.New(srv.URL, 50*time.Millisecond)
			require.NoError(t, err)
			_, err = c.Score(context.Background(), wire.ScoreRequest{IP: "1.2.3.4"})
			assert.Error(t, err)
		})
	}
}

func TestCircuitBreaker(t *testing.T) {
	var calls, healthy atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		if healthy.Load() == 0 {
			http.Error(w, "down", http.StatusInternalServerError)
			return
		}
		_ = json.NewEncoder(w).Encode(wire.ScoreResponse{Score: 0.1})
	}))
	defer srv.Close()
	c, err := scoreclient.New(srv.URL, time.Second)
	require.NoError(t, err)
	now := time.Unix(1_800_000_000, 0)
	c.SetClock(func() time.Time { return now })
	ctx := context.Background()
	req := wire.ScoreRequest{IP: "203.0.113.1"}

	for range scoreclient.BreakerFailures {
		_, err := c.Score(ctx, req)
		require.Error(t, err)
		assert.NotErrorIs(t, err, scoreclient.ErrCircuitOpen)
	}
	// Open: no more calls reach the scorer.
	for range 10 {
		_, err := c.Score(ctx, req)
		assert.ErrorIs(t, err, scoreclient.ErrCircuitOpen)
	}
	assert.Equal(t, int64(scoreclient.BreakerFailures), calls.Load())

	// After the cooldown one probe goes through; it fails and reopens.
	now = now.Add(scoreclient.BreakerCooldown)
	_, err = c.Score(ctx, req)
	assert.NotErrorIs(t, err, scoreclient.ErrCircuitOpen)
	_, err = c.Score(ctx, req)
	assert.ErrorIs(t, err, scoreclient.ErrCircuitOpen)

	// The scorer recovers: the next probe closes the breaker.
	healthy.Store(1)
	now = now.Add(scoreclient.BreakerCooldown)
	res, err := c.Score(ctx, req)
	require.NoError(t, err)
	assert.Equal(t, 0.1, res.Score)
	_, err = c.Score(ctx, req)
	assert.NoError(t, err)
}

func TestProfile(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/profile" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set(wire.RulesVersionHeader, "1")
		_, _ = w.Write([]byte(`{"name":"seed-002","combine":"capped_sum","thresholds":{"block":0.7,"throttle":0.7}}`))
	}))
	defer srv.Close()
	c, err := scoreclient.New(srv.URL, time.Second)
	require.NoError(t, err)
	body, version, err := c.RawProfile(context.Background())
	require.NoError(t, err)
	assert.Equal(t, "1", version)
	var p struct {
		Name       string `json:"name"`
		Thresholds struct {
			Block, Throttle float64
		} `json:"thresholds"`
	}
	require.NoError(t, json.Unmarshal(body, &p))
	assert.Equal(t, "seed-002", p.Name)
	assert.Equal(t, 0.7, p.Thresholds.Block)
	assert.Equal(t, 0.7, p.Thresholds.Throttle)

	bad, err := scoreclient.New(srv.URL+"/nope", time.Second)
	require.NoError(t, err)
	_, _, err = bad.RawProfile(context.Background())
	assert.ErrorContains(t, err, "404")
}

// A scorer that refuses one request (a 4xx: too large, malformed) is up:
// many such refusals must not open the circuit for every other client.
func TestRejectedRequestsDoNotOpenTheCircuit(t *testing.T) {
	calls := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls++
		http.Error(w, `{"error":"too large"}`, http.StatusRequestEntityTooLarge)
	}))
	defer srv.Close()
	c, err := scoreclient.New(srv.URL, time.Second)
	require.NoError(t, err)
	for range scoreclient.BreakerFailures + 3 {
		_, err := c.Score(context.Background(), wire.ScoreRequest{IP: "1.2.3.4"})
		require.ErrorIs(t, err, scoreclient.ErrRejected)
	}
	assert.Equal(t, scoreclient.BreakerFailures+3, calls, "every request reached the scorer: the circuit stayed closed")
}
