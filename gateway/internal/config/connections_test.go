package config_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulwarkgw/bulwark/gateway/internal/config"
)

func TestConnectionDefaults(t *testing.T) {
	cfg, err := config.Parse([]byte("routes: [{path: /, upstream: http://u:1}]\n"), env(nil))
	require.NoError(t, err)
	assert.Equal(t, config.Connections{Max: 0, PerAddress: 256, IdleTimeout: 30 * time.Second}, cfg.Edge.Connections,
		"max derived at start, 256 per address, 30 s idle")
	assert.Equal(t, 10*time.Second, cfg.ShutdownTimeout)
}

func TestConnectionSettings(t *testing.T) {
	cfg, err := config.Parse([]byte(`routes: [{path: /, upstream: "http://u:1"}]
connections: {max: 5000, per_address: 0, idle_timeout: 75s}
shutdown_timeout: 3s
`), env(nil))
	require.NoError(t, err)
	assert.Equal(t, config.Connections{Max: 5000, PerAddress: 0, IdleTimeout: 75 * time.Second}, cfg.Edge.Connections, "per_address 0 is off")
	assert.Equal(t, 3*time.Second, cfg.ShutdownTimeout)
	red := cfg.Redacted()
	assert.Equal(t, map[string]any{"max": 5000, "per_address": 0, "idle_timeout": "1m15s"}, red["connections"])
	assert.Equal(t, "3s", red["shutdown_timeout"])
}

func TestConnectionSettingsRefused(t *testing.T) {
	for _, tt := range []struct{ doc, want string }{
		{"connections: {max: -1}", "connections.max: must not be negative"},
		{"connections: {per_address: -5}", "connections.per_address: must not be negative"},
		{"connections: {max: 10, per_address: 11}", "connections.per_address: must be at most connections.max (10), got 11"},
		{"connections: {idle_timeout: -1s}", "connections.idle_timeout: must be at least 1s"},
		{"connections: {idle_timeout: forever}", `connections.idle_timeout: invalid duration "forever"`},
		{"connections: {maximum: 10}", "connections.maximum: unknown key"},
		{"shutdown_timeout: -3s", "shutdown_timeout: must be at least 100ms"},
		{"shutdown_timeout: 0s", "shutdown_timeout: must be at least 100ms"},
	} {
		_, err := config.Parse([]byte("routes: [{path: /, upstream: \"http://u:1\"}]\n"+tt.doc+"\n"), env(nil))
		if assert.Error(t, err, tt.doc) {
			assert.Contains(t, err.Error(), tt.want, tt.doc)
		}
	}
}
