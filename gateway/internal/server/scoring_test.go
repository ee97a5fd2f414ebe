package server_test

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulwarkgw/bulwark/gateway/internal/config"
	"github.com/bulwarkgw/bulwark/gateway/internal/server"
	"github.com/bulwarkgw/bulwark/gateway/internal/testenv"
	"github.com/bulwarkgw/bulwark/gateway/internal/traffic"
	"github.com/bulwarkgw/bulwark/shared/wire"
)

// The outcome middleware finds the recorder by a type assertion, which a
// changed signature would silently defeat: the store must stay one.
var _ server.ResponseRecorder = (*traffic.Store)(nil)

// shop answers /auth with 401 unless the body says "good", and 404 for
// /missing; everything else 200.
func shop(w http.ResponseWriter, r *http.Request) {
	switch {
	case strings.EqualFold(strings.TrimSuffix(r.URL.Path, "/"), "/auth"):
		body, _ := io.ReadAll(r.Body)
		if string(body) != "good" {
			http.Error(w, `{"success":false}`, http.StatusUnauthorized)
			return
		}
	case strings.HasPrefix(r.URL.Path, "/missing"):
		http.NotFound(w, r)
		return
	}
	_, _ = w.Write([]byte("ok"))
}

// scoringGateway is the whole chain in front of shop, with a real traffic
// store and the given scorer.
func scoringGateway(t *testing.T, scorer server.Scorer, mutate func(*config.Config)) (http.Handler, *recorder) {
	t.Helper()
	rdb, prefix := testenv.Redis(t)
	up := httptest.NewServer(http.HandlerFunc(shop))
	t.Cleanup(up.Close)
	h, rec := newGateway(t, up.URL, mutate, scorer, rdb, prefix)
	return h, rec
}

// capturing is a scorer double that answers score and records every
// request it is asked about; requests returns them so far.
func capturing(score float64) (server.Scorer, func() []wire.ScoreRequest) {
	var mu sync.Mutex
	var seen []wire.ScoreRequest
	f := scoreFunc(func(r wire.ScoreRequest) (wire.ScoreResponse, error) {
		mu.Lock()
		seen = append(seen, r)
		mu.Unlock()
		return wire.ScoreResponse{Score: score}, nil
	})
	return f, func() []wire.ScoreRequest {
		mu.Lock()
		defer mu.Unlock()
		return append([]wire.ScoreRequest(nil), seen...)
	}
}

func send(h http.Handler, method, path, body string, hdr ...string) int {
	r := httptest.NewRequest(method, path, strings.NewReader(body))
	r.RemoteAddr = "127.0.0.2:1"
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Set(hdr[i], hdr[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w.Code
}

// TestScoreRequestCarriesTheFeatures checks what the gateway gathers in its
// round trip and from the upstream's answers reaches the scorer.
func TestScoreRequestCarriesTheFeatures(t *testing.T) {
	t.Parallel()
	capture, requests := capturing(0)
	h, _ := scoringGateway(t, capture, nil)
	xff := []string{"X-Forwarded-For", "203.0.113.50", "User-Agent", "test-agent"}

	assert.Equal(t, 401, send(h, "POST", "/AUTH/", "bad", xff...))
	assert.Equal(t, 401, send(h, "POST", "/auth", "bad", xff...))
	assert.Equal(t, 200, send(h, "POST", "/auth", "good", xff...))
	assert.Equal(t, 404, send(h, "GET", "/missing", "", xff...))
	for _, id := range []string{"1", "2", "3"} {
		assert.Equal(t, 200, send(h, "GET", "/api/products/"+id, "", xff...))
	}

	seen := requests()
	require.Len(t, seen, 7)
	first, auth3, last := seen[0], seen[2], seen[6]
	assert.Equal(t, "203.0.113.50", first.IP)
	assert.True(t, first.Sensitive, "/AUTH/ is /auth")
	assert.Equal(t, int64(1), first.SensitiveHits)
	assert.Equal(t, "test-agent", first.UserAgent)
	assert.Equal(t, int64(3), auth3.SensitiveHits)
	assert.Equal(t, int64(2), auth3.AuthFailures, "two 401s from the upstream before the third login")
	assert.False(t, last.Sensitive)
	assert.Equal(t, int64(7), last.Count1s)
	assert.Equal(t, int64(7), last.Visits)
	assert.Equal(t, int64(3), last.Errors4xx)
	assert.Equal(t, int64(2), last.AuthFailures)
	assert.Equal(t, int64(5), last.DistinctPaths) // /auth, /missing, 3 products
	assert.Equal(t, int64(2), last.SequentialIDs)
	assert.Equal(t, 6, last.Intervals)
}

// TestRefusalsAreNotTheClientsErrors: the gateway's own 429s never count
// as the client's 4xx answers or auth failures: a throttle must not turn
// itself into a ban.
func TestRefusalsAreNotTheClientsErrors(t *testing.T) {
	t.Parallel()
	throttle, requests := capturing(0.6)
	h, _ := scoringGateway(t, throttle, nil)
	xff := []string{"X-Forwarded-For", "203.0.113.51"}
	for range 3 {
		assert.Equal(t, 429, send(h, "GET", "/", "", xff...))
	}
	seen := requests()
	last := seen[len(seen)-1]
	assert.Equal(t, int64(3), last.Count60s, "every request counted")
	assert.Zero(t, last.Errors4xx, "the two refusals before the last request are the gateway's, not the client's")
	assert.EqualValues(t, 2, last.Refused60s, "and counted apart, so they dilute nothing either")
	assert.Zero(t, last.AuthFailures)
}

// TestFallbackScoreWhenTheScorerIsDown: fail-open scores locally with the
// documented rule, so a burst is still blocked and the events say degraded.
func TestFallbackScoreWhenTheScorerIsDown(t *testing.T) {
	t.Parallel()
	down := scoreFunc(func(wire.ScoreRequest) (wire.ScoreResponse, error) {
		return wire.ScoreResponse{}, errors.New("connection refused")
	})
	h, rec := scoringGateway(t, down, nil)
	xff := []string{"X-Forwarded-For", "203.0.113.52", "User-Agent", "Mozilla/5.0"}
	codes := map[int]int{}
	first403 := 0
	for i := 1; i <= 150; i++ {
		c := send(h, "GET", "/", "", xff...)
		codes[c]++
		if c == 403 && first403 == 0 {
			first403 = i
		}
	}
	// burst alone reaches 1.0 at 120 requests (ramp 40 → 120), with rate
	// (over 10 s) the block comes near 100; regularity may get there
	// first, as requests in a tight loop are evenly spaced.
	assert.Greater(t, first403, 40, "codes %v", codes)
	assert.LessOrEqual(t, first403, 120, "codes %v", codes)
	assert.Greater(t, codes[429], 0, "throttled before the block")
	evs := rec.all()
	require.NotEmpty(t, evs)
	ban := evs[len(evs)-1]
	assert.Equal(t, wire.EventBan, ban.Type)
	assert.True(t, ban.Degraded)
	assert.Equal(t, "burst", ban.Reasons[0].Feature)
}

// TestUnverifiedPrincipalsMoveNothing: an API key or a login merely named
// in requests is never remembered for impossible travel (anyone can send
// anyone's name from anywhere), so it never carries a previous address.
// Only a key the gateway accepted or a login the upstream confirmed is
// remembered (gateway/cmd/gateway's TestVerifiedKeysAreRememberedForTravel).
func TestUnverifiedPrincipalsMoveNothing(t *testing.T) {
	t.Parallel()
	capture, requests := capturing(0)
	h, _ := scoringGateway(t, capture, nil)
	assert.Equal(t, 200, send(h, "GET", "/api/orders", "", "X-Forwarded-For", "81.2.69.142", "X-API-Key", "k-1"))
	assert.Equal(t, 200, send(h, "GET", "/api/orders", "", "X-Forwarded-For", "192.0.2.1", "X-API-Key", "k-1"))
	assert.Equal(t, 401, send(h, "POST", "/auth", `{"username":"alice"}`, "X-Forwarded-For", "81.2.69.142", "Content-Type", "application/json"))
	assert.Equal(t, 401, send(h, "POST", "/auth", `{"username":"Alice"}`, "X-Forwarded-For", "192.0.2.1", "Content-Type", "application/json"))

	seen := requests()
	require.Len(t, seen, 4)
	for i, r := range seen {
		assert.Empty(t, r.PrevIP, "request %d", i+1)
	}
}
