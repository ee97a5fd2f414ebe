package e2e

// Issue 14: the whole stack on a Redis Cluster, as it runs scaled out:
// three gateway processes behind a (round-robin) load balancer and one
// dashboard, on a private 3-master 3-replica cluster. A burst spread over
// the gateways is one burst, its ban is refused by every gateway, and the
// dashboard shows one view of the traffic all three saw.

import (
	"fmt"
	"io"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulwarkgw/bulwark/shared/redistest"
	"github.com/bulwarkgw/bulwark/shared/wire"
)

func TestClusterStackThreeGatewaysOneDashboard(t *testing.T) {
	mongoURI := need(t, "BULWARK_TEST_MONGO_URI")
	cluster := redistest.StartRedisCluster(t)
	bins := build(t, repoRoot(t), t.TempDir())

	ns := fmt.Sprintf("e2ecl%d", time.Now().UnixNano())
	shared := []string{
		"BULWARK_REDIS_URL=" + cluster.URL(), "BULWARK_REDIS_PREFIX=" + ns + ":",
		"BULWARK_MONGO_URI=" + mongoURI, "BULWARK_MONGO_DB=" + ns,
	}
	shop := start(t, "shop", bins["shop"], "")
	scorer := start(t, "scorer", bins["scorer"], "")
	var gws []string
	for i := range 3 {
		gws = append(gws, start(t, fmt.Sprintf("gateway %d", i+1), bins["gateway"], "", append(shared,
			"BULWARK_UPSTREAM_URL=http://"+shop, "BULWARK_SCORER_URL=http://"+scorer,
			fmt.Sprintf("BULWARK_GATEWAY_ID=gw-%d", i+1),
			"BULWARK_REDIS_TIMEOUT=3s", "BULWARK_SCORER_TIMEOUT=3s")...))
	}
	dash := start(t, "dashboard", bins["dashboard"], "", shared...)

	frames := liveFrames(t, dash)

	// Three people browsing, each request to the next gateway.
	sent := 0
	for i := range 6 {
		time.Sleep(150 * time.Millisecond)
		for _, ip := range []string{"127.0.0.21", "127.0.0.22", "127.0.0.23"} {
			resp, err := clientFrom(t, ip).Get("http://" + gws[(i+sent)%3] + "/api/products")
			require.NoError(t, err)
			resp.Body.Close()
			assert.Equal(t, http.StatusOK, resp.StatusCode, "%s through gw-%d", ip, (i+sent)%3+1)
			sent++
		}
	}
	// A burst of 100 in a second from one client, round robin: no gateway
	// alone sees more than 34, the cluster sees one client.
	const attacker = "127.0.0.30"
	c := clientFrom(t, attacker)
	codes := make([]int, 0, 100)
	tick := time.NewTicker(10 * time.Millisecond)
	for i := range 100 {
		<-tick.C
		resp, err := c.Get("http://" + gws[i%3] + "/api/products")
		require.NoError(t, err)
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		codes = append(codes, resp.StatusCode)
		sent++
	}
	tick.Stop()
	first := slices.Index(codes, http.StatusForbidden)
	require.Greater(t, first, 0, "the burst was never refused: %v", codes)
	t.Logf("first 403 at request %d of 100 (through gw-%d)", first+1, first%3+1)
	for i, gw := range gws {
		resp, err := c.Get("http://" + gw + "/api/products")
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, http.StatusForbidden, resp.StatusCode, "gw-%d refuses the banned client", i+1)
		sent++
	}

	// One dashboard: every gateway's requests in one total, the ban listed.
	var last wire.StatsFrame
	deadline := time.After(15 * time.Second)
	for last.Totals.Requests < int64(sent) || !banListed(last, attacker) {
		select {
		case f, ok := <-frames:
			require.True(t, ok, "websocket closed")
			last = f
		case <-deadline:
			t.Fatalf("after 15 s the dashboard shows %d of %d requests (blocked %d), ban of %s listed: %v",
				last.Totals.Requests, sent, last.Totals.Blocked, attacker, banListed(last, attacker))
		}
	}
	assert.EqualValues(t, sent, last.Totals.Requests, "every gateway's requests, counted once")
	assert.GreaterOrEqual(t, last.Totals.Blocked, int64(100-first+3), "every refusal of the attacker")
}

// banListed reports whether f lists a ban of ip.
func banListed(f wire.StatsFrame, ip string) bool {
	for _, b := range f.Bans {
		if b.IP == ip {
			return true
		}
	}
	return false
}
