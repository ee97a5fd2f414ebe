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

// TestS32GeoLookup: the gateway believes X-Forwarded-For from its trusted
// proxy, the scorer locates the client in the (demo) GeoIP database, and
// the threat log shows "City, CC", the country alone when the database has
// no city, and "Local Network" for loopback.
func TestS32GeoLookup(t *testing.T) {
	redisURL := need(t, "BULWARK_TEST_REDIS_URL")
	mongoURI := need(t, "BULWARK_TEST_MONGO_URI")
	geoDB := need(t, "BULWARK_TEST_GEOIP_DB")
	bins := build(t, repoRoot(t), t.TempDir())
	ns := fmt.Sprintf("geo%d", time.Now().UnixNano())
	shop, scorer, gw, admin := freeAddr(t), freeAddr(t), freeAddr(t), freeAddr(t)
	cfg := filepath.Join(t.TempDir(), "gateway.yaml")
	require.NoError(t, os.WriteFile(cfg, []byte(fmt.Sprintf(`
routes: [{path: /, upstream: "http://%s"}]
trusted_proxies: [127.0.0.2/32]
scorer: {url: "http://%s", timeout: 3s}
admin: {listen: "%s", username: admin, password: s3cret}
audit: {requests: true}
`, shop, scorer, admin)), 0o600))

	start(t, "shop", bins["shop"], shop)
	start(t, "scorer", bins["scorer"], scorer, "BULWARK_GEOIP_DB="+geoDB)
	start(t, "gateway", bins["gateway"], gw, "BULWARK_CONFIG="+cfg,
		"BULWARK_REDIS_URL="+redisURL, "BULWARK_REDIS_PREFIX="+ns+":", "BULWARK_MONGO_URI="+mongoURI, "BULWARK_MONGO_DB="+ns,
		"BULWARK_REDIS_TIMEOUT=3s")

	proxy := clientFrom(t, "127.0.0.2") // the trusted proxy
	for _, xff := range []string{"81.2.69.142", "185.0.0.9"} {
		req, _ := http.NewRequest("GET", "http://"+gw+"/api/products", nil)
		req.Header.Set("X-Forwarded-For", xff)
		resp, err := proxy.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode)
	}
	resp, err := clientFrom(t, "127.0.0.33").Get("http://" + gw + "/api/products")
	require.NoError(t, err)
	resp.Body.Close()

	want := map[string]string{"81.2.69.142": "London, GB", "185.0.0.9": "GB", "127.0.0.33": "Local Network"}
	got := map[string]string{}
	require.Eventually(t, func() bool {
		req, _ := http.NewRequest("GET", "http://"+admin+"/api/logs", nil)
		req.SetBasicAuth("admin", "s3cret")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		var rows []struct {
			IP       string `json:"ipAddress"`
			Location string `json:"location"`
		}
		if json.NewDecoder(resp.Body).Decode(&rows) != nil {
			return false
		}
		for _, r := range rows {
			got[r.IP] = r.Location
		}
		return len(got) == 3
	}, 10*time.Second, 100*time.Millisecond, "threat log rows: %v", got)
	assert.Equal(t, want, got)
}
