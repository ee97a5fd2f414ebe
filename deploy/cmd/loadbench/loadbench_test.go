package main

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestUpstreamAnswers50Bytes(t *testing.T) {
	rec := httptest.NewRecorder()
	upstreamHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/api/products", nil))
	assert.Equal(t, http.StatusOK, rec.Code)
	assert.Len(t, rec.Body.Bytes(), 50)
	assert.Equal(t, "application/json", rec.Header().Get("Content-Type"))
}

func TestSequences(t *testing.T) {
	legit := sequence(loadLegit, 50000)
	require.Len(t, legit, 50000)
	assert.Equal(t, 50000, distinct(legit, 50000), "every legitimate client is distinct")
	assert.Equal(t, 1000, distinct(legit, 1000))
	assert.Contains(t, legit[0].UserAgent, "Chrome/")

	mix := sequence(loadMix, 50000)
	attackers := map[string]bool{}
	for _, c := range mix {
		if strings.HasPrefix(c.IP, "45.0.0.") {
			attackers[c.IP] = true
		}
	}
	assert.Len(t, attackers, mixAttackers)
	assert.Equal(t, 45000+mixAttackers, distinct(mix, 50000), "90% distinct legitimate clients")

	warm := sequence(loadWarmup, 0)
	for _, c := range warm {
		assert.NotContains(t, legit[:1000], c, "warm-up clients are not measured clients")
	}
	assert.Len(t, sequence(loadHammer, 50000), 1)
}

func TestPercentiles(t *testing.T) {
	ds := make([]time.Duration, 100)
	for i := range ds {
		ds[i] = time.Duration(100-i) * time.Millisecond
	}
	p := percentiles(ds)
	assert.Equal(t, 50.0, p.P50)
	assert.Equal(t, 99.0, p.P99)
	assert.Equal(t, 100.0, p.Max)
	assert.Equal(t, latencyMS{}, percentiles(nil))
}

func TestLabel(t *testing.T) {
	k := `bulwark_gateway_requests_total{code="403",decision="banned",route="/"}`
	assert.Equal(t, "banned", label(k, "decision"))
	assert.Equal(t, "403", label(k, "code"))
	assert.Equal(t, 3.0, sumMetric(map[string]float64{k: 1, `bulwark_gateway_requests_total{code="200"}`: 2, "other": 5}, "bulwark_gateway_requests_total"))
}

func TestHistogramTimes(t *testing.T) {
	const n = "bulwark_gateway_dependency_duration_seconds"
	b := func(dep, le string) string { return n + `_bucket{dependency="` + dep + `",le="` + le + `"}` }
	before := map[string]float64{b("redis", "0.001"): 10, b("redis", "0.01"): 10, b("redis", "0.1"): 10, b("redis", "+Inf"): 10}
	after := map[string]float64{
		// 1000 calls in the run: 989 under 1 ms, 10 more under 10 ms, 1 past 100 ms.
		b("redis", "0.001"): 999, b("redis", "0.01"): 1009, b("redis", "0.1"): 1009, b("redis", "+Inf"): 1010,
		b("scorer", "0.001"): 0, b("scorer", "0.01"): 4, b("scorer", "0.1"): 4, b("scorer", "+Inf"): 4,
		n + `_count{dependency="redis"}`: 1010,
	}
	got := histogramTimes(before, after, n, "dependency")
	assert.Equal(t, depTimes{Calls: 1000, P50MS: 1, P99MS: 10, P999MS: 10, MaxMS: -1}, got["redis"])
	assert.Equal(t, depTimes{Calls: 4, P50MS: 10, P99MS: 10, P999MS: 10, MaxMS: 10}, got["scorer"])
	assert.Equal(t, ">1000", bucketMS(-1))
	assert.Equal(t, "0.25", bucketMS(0.25))
}
