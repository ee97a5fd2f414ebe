package scoreclient_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
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
