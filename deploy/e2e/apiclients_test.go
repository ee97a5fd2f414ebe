package e2e

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestAPIClientsPassAndLookalikeAttackersDoNot runs the simulator's API
// clientele against the real stack (shop, scorer with the default profile
// and the demo GeoIP databases, gateway minting keys through the shop's
// /auth, as make detect runs it): apps polling on timers, server SDKs from
// cloud networks with and without keys, webhook bursts, a partner's batch
// job at 50 requests a second with a key, monitors, SDK retries and a
// GraphQL client are never refused; a leaked key used to enumerate and a
// scraper with okhttp's user agent are.
func TestAPIClientsPassAndLookalikeAttackersDoNot(t *testing.T) {
	t.Parallel()
	cfg := filepath.Join(t.TempDir(), "gateway.yaml")
	root := repoRoot(t)
	b, err := os.ReadFile(filepath.Join(root, "deploy/config/detect.yaml"))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(cfg, b, 0o600))
	s := startScoringStack(t, nil, []string{"BULWARK_CONFIG=" + cfg})

	var out, errOut bytes.Buffer
	cmd := exec.Command(s.bins["simulator"], "-target", "http://"+s.gateway, "-duration", "8s",
		"-mix", "app-timer=4,app-jitter=3,integration=4,integration-key=3,webhook=2,batch-key=1,monitor=1,sdk-retry=2,graphql=2,leaked-key=1,scraper-okhttp=1",
		"-seed", "3", "-json", "-")
	cmd.Stdout, cmd.Stderr = &out, &errOut
	require.NoError(t, cmd.Run(), "simulator: %s", errOut.String())
	t.Logf("report: %s", out.String())

	var rep struct {
		Scenarios []struct {
			Name                   string
			Label                  string
			Clients                int
			Sent                   int
			Throttled              int
			Blocked                int
			Failed                 int
			KeysMinted             int  `json:"keys_minted"`
			Credential             bool `json:"credential"`
			AfterFirstSecond       int  `json:"after_first_second"`
			CaughtAfterFirstSecond int  `json:"caught_after_first_second"`
		}
	}
	require.NoError(t, json.Unmarshal(out.Bytes(), &rep), out.String())
	require.Len(t, rep.Scenarios, 11)
	for _, sc := range rep.Scenarios {
		if sc.Credential {
			assert.Equal(t, sc.Clients, sc.KeysMinted, "%s: every client got its key", sc.Name)
		}
		switch sc.Label {
		case "human":
			assert.Positive(t, sc.Sent, sc.Name)
			assert.Zero(t, sc.Throttled+sc.Blocked, "%s: an API client refused", sc.Name)
			assert.Zero(t, sc.Failed, sc.Name)
		case "bot":
			require.Positive(t, sc.AfterFirstSecond, sc.Name)
			assert.GreaterOrEqual(t, float64(sc.CaughtAfterFirstSecond)/float64(sc.AfterFirstSecond), 0.9,
				"%s: caught after its first second", sc.Name)
		}
	}
}
