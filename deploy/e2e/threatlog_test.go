package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestS31ThreatLog: after S26's seven requests under the seed-002 profile,
// the threat log (seed 002's /api/logs, on the admin listener) lists them
// newest first with seed 002's scores, and the summary counts the whole
// store and prices the block at $0.45.
func TestS31ThreatLog(t *testing.T) {
	t.Parallel()
	admin := freeAddr(t)
	cfg := filepath.Join(t.TempDir(), "gateway.yaml")
	require.NoError(t, os.WriteFile(cfg, []byte(fmt.Sprintf(`
routes: [{path: /, upstream: "${BULWARK_UPSTREAM_URL}"}]
thresholds: {block: 0.7, throttle: 0.7}
ban_ttl: 1s
scoring:
  sensitive_paths: [/api/login, /api/register, /api/data]
  visit_window: 3s
  cache_ttl: 0s
admin: {listen: %q, username: admin, password: s3cret}
audit: {requests: true}
`, admin)), 0o600))
	s := startScoringStack(t, []string{"BULWARK_PROFILE=seed-002"}, []string{"BULWARK_CONFIG=" + cfg})
	client := &http.Client{Timeout: 5 * time.Second}
	for range 7 {
		req, _ := http.NewRequest("GET", "http://"+s.gateway+"/svc/public", nil)
		req.Header.Set("X-Forwarded-For", "127.0.0.40")
		resp, err := client.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
	}

	get := func(path string, auth bool) (int, []byte) {
		req, _ := http.NewRequest("GET", "http://"+admin+path, nil)
		if auth {
			req.SetBasicAuth("admin", "s3cret")
		}
		resp, err := client.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		var raw json.RawMessage
		_ = json.NewDecoder(resp.Body).Decode(&raw)
		return resp.StatusCode, raw
	}
	type row struct {
		IP     string  `json:"ipAddress"`
		Path   string  `json:"endpoint"`
		Action string  `json:"actionTaken"`
		Score  float64 `json:"riskScore"`
		Where  string  `json:"location"`
		TS     string  `json:"timestamp"`
	}
	var rows []row
	require.Eventually(t, func() bool {
		code, body := get("/api/logs", true)
		rows = nil
		return code == 200 && json.Unmarshal(body, &rows) == nil && len(rows) == 7
	}, 10*time.Second, 100*time.Millisecond)
	var scores []float64
	var actions []string
	for i := len(rows) - 1; i >= 0; i-- { // chronological
		scores = append(scores, rows[i].Score)
		actions = append(actions, rows[i].Action)
		assert.Equal(t, "127.0.0.40", rows[i].IP)
		assert.Equal(t, "/svc/public", rows[i].Path)
		assert.Equal(t, "Local Network", rows[i].Where)
		assert.NotEmpty(t, rows[i].TS)
	}
	assert.Equal(t, []float64{0, 0, 0, 0.3, 0.3, 0.3, 0.8}, scores)
	assert.Equal(t, []string{"ALLOWED", "ALLOWED", "ALLOWED", "ALLOWED", "ALLOWED", "ALLOWED", "BLOCKED"}, actions)

	code, body := get("/api/logs/summary", true)
	require.Equal(t, 200, code)
	assert.JSONEq(t, `{"total":7,"allowed":6,"blocked":1,"throttled":0,"money_saved":"$0.45"}`, string(body))
	code, _ = get("/api/logs", false)
	assert.Equal(t, http.StatusUnauthorized, code)
}
