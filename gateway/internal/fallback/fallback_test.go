package fallback_test

import (
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/bulwarkgw/bulwark/gateway/internal/fallback"
	"github.com/bulwarkgw/bulwark/shared/wire"
)

const chrome = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36"

func TestScore(t *testing.T) {
	tests := []struct {
		name  string
		req   wire.ScoreRequest
		score float64
		level string
	}{
		{"idle browser", wire.ScoreRequest{Count1s: 1, Count10s: 1, Count60s: 1, UserAgent: chrome}, 0, "allow"},
		{"tool", wire.ScoreRequest{Count1s: 1, UserAgent: "curl/8"}, 0.45, "allow"},
		// The same numbers as the scorer's default profile: burst 32 is a
		// risk of 0.68, 32 sensitive hits 1 × 0.45: 1 − 0.32 · 0.55.
		{"50 rps checkout at its 32nd request", wire.ScoreRequest{Count1s: 32, Count10s: 32, Count60s: 32, SensitiveHits: 32, UserAgent: chrome}, 0.824, "block"},
		{"burst alone", wire.ScoreRequest{Count1s: 40, Count10s: 40, Count60s: 40, UserAgent: chrome}, 1, "block"},
		{"enumeration", wire.ScoreRequest{Count1s: 4, Count10s: 4, Count60s: 4, SequentialIDs: 4, UserAgent: chrome}, 0.6, "throttle"},
		{"error ratio", wire.ScoreRequest{Count1s: 4, Count10s: 4, Count60s: 4, Errors4xx: 3, UserAgent: chrome}, 0.6, "throttle"},
		{"metronome", wire.ScoreRequest{Count1s: 1, Count10s: 4, Count60s: 20, Intervals: 11, IntervalCV: 0, UserAgent: chrome}, 0.6, "throttle"},
	}
	for _, tt := range tests {
		r := fallback.Score(tt.req, 0.8, 0.5)
		assert.Equal(t, tt.score, r.Score, tt.name)
		assert.Equal(t, tt.level, r.Level, tt.name)
		assert.Equal(t, fallback.Profile, r.Profile)
		sum := 0.0
		for _, rs := range r.Reasons {
			sum += rs.Contribution
		}
		assert.InDelta(t, r.Score, sum, 1e-3, tt.name)
	}
}

func TestScoreBoundedAndMonotone(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	for range 3000 {
		req := wire.ScoreRequest{
			Count1s: rng.Int64N(80), Count10s: rng.Int64N(300), Count60s: rng.Int64N(900),
			SensitiveHits: rng.Int64N(10), AuthFailures: rng.Int64N(12), Errors4xx: rng.Int64N(50),
			DistinctPaths: rng.Int64N(150), SequentialIDs: rng.Int64N(8),
			Intervals: rng.IntN(12), IntervalCV: rng.Float64() * 2, UserAgent: chrome,
		}
		base := fallback.Score(req, 0.8, 0.5)
		assert.GreaterOrEqual(t, base.Score, 0.0)
		assert.LessOrEqual(t, base.Score, 1.0)
		grown := []wire.ScoreRequest{req, req, req, req, req, req}
		grown[0].Count1s += 5
		grown[1].Count10s += 5
		grown[2].SensitiveHits++
		grown[3].AuthFailures++
		grown[4].SequentialIDs++
		grown[5].DistinctPaths += 10
		for _, g := range grown {
			if !assert.GreaterOrEqual(t, fallback.Score(g, 0.8, 0.5).Score, base.Score, "%+v → %+v", req, g) {
				return
			}
		}
	}
}
