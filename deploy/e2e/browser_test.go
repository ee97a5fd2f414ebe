package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestDashboardInBrowser starts the stack and runs web/e2e/dashboard.spec.mjs
// in real headless Chromium: a burst from one client must show up on the
// live chart, in the feed with its reasons, on the map, in the detail view,
// and be unbannable with the admin token. Screenshots land in
// var/browser/ (git-ignored).
func TestDashboardInBrowser(t *testing.T) {
	chromium := need(t, "BULWARK_TEST_CHROMIUM")
	need(t, "BULWARK_TEST_GEOIP_DB") // the attacker needs a country for the map
	root := repoRoot(t)

	const token = "e2e-admin-token-0123456789"
	st := startStack(t,
		// The test's requests come from 127.0.0.1, a trusted proxy: the
		// gateway takes the client from X-Forwarded-For.
		[]string{"BULWARK_TRUSTED_PROXIES=127.0.0.1/32"},
		[]string{"BULWARK_DASHBOARD_ADMIN_TOKEN=" + token},
	)

	out := filepath.Join(root, "var", "browser")
	b, err := spec(t, root, chromium, "dashboard.spec.mjs", "http://"+st.dashboard+"/", "http://"+st.gateway, out, token)
	t.Logf("browser test:\n%s", b)
	require.NoError(t, err, "the browser test failed; screenshots in %s", out)
}

// TestDashboardLoginInBrowser checks the optional login in Chromium: the
// page and its websocket work with the right basic-auth login only.
func TestDashboardLoginInBrowser(t *testing.T) {
	chromium := need(t, "BULWARK_TEST_CHROMIUM")
	redisURL := need(t, "BULWARK_TEST_REDIS_URL")
	mongoURI := need(t, "BULWARK_TEST_MONGO_URI")
	root := repoRoot(t)
	bins := build(t, root, t.TempDir())
	ns := fmt.Sprintf("login%d", time.Now().UnixNano())
	dash := freeAddr(t)
	start(t, "dashboard", bins["dashboard"], dash,
		"BULWARK_REDIS_URL="+redisURL, "BULWARK_REDIS_PREFIX="+ns+":",
		"BULWARK_MONGO_URI="+mongoURI, "BULWARK_MONGO_DB="+ns,
		"BULWARK_DASHBOARD_USER=ops", "BULWARK_DASHBOARD_PASSWORD=correct horse battery")

	b, err := spec(t, root, chromium, "login.spec.mjs", "http://"+dash+"/", "ops", "correct horse battery")
	t.Logf("browser test:\n%s", b)
	require.NoError(t, err, "the login browser test failed")
}

// spec runs one of web/e2e's node scripts with Chromium and returns its
// output.
func spec(t *testing.T, root, chromium, script string, args ...string) ([]byte, error) {
	node, err := exec.LookPath("node")
	require.NoError(t, err, "node is needed for the browser tests")
	_, err = os.Stat(filepath.Join(root, "web", "node_modules", "playwright-core"))
	require.NoError(t, err, "run `npm ci` in web/ first (make test does)")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, append([]string{filepath.Join(root, "web", "e2e", script)}, args...)...)
	cmd.Dir = filepath.Join(root, "web")
	cmd.Env = append(os.Environ(), "BULWARK_TEST_CHROMIUM="+chromium)
	return cmd.CombinedOutput()
}
