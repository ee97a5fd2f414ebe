package config_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulwarkgw/bulwark/gateway/internal/config"
)

func TestMaxTunnelsPerClient(t *testing.T) {
	const routes = "routes: [{path: /, upstream: \"http://u:1\"}]\n"
	cfg, err := config.Parse([]byte(routes), env(nil))
	require.NoError(t, err)
	assert.Equal(t, 16, cfg.Edge.MaxTunnelsPerClient, "the default")
	assert.Equal(t, 16, cfg.Redacted()["max_tunnels_per_client"])

	cfg, err = config.Parse([]byte(routes+"max_tunnels_per_client: 0\n"), env(nil))
	require.NoError(t, err)
	assert.Equal(t, 0, cfg.Edge.MaxTunnelsPerClient, "0 turns the cap off")

	_, err = config.Parse([]byte(routes+"max_tunnels_per_client: -1\n"), env(nil))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "max_tunnels_per_client: must not be negative (0 turns the cap off), got -1")
}
