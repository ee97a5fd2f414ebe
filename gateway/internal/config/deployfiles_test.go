package config_test

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulwarkgw/bulwark/gateway/internal/config"
)

// TestDeployConfigFilesLoad runs the real loader on the configuration files
// the repo ships: docker compose's and the Kubernetes base's ConfigMap
// (deploy/k8stest checks the manifests around it but cannot import this
// package). The environment is what those deployments set.
func TestDeployConfigFilesLoad(t *testing.T) {
	env := map[string]string{
		config.EnvUpstreamURL: "http://upstream.example:9000",
		config.EnvRedisURL:    "redis://redis.example:6379/0",
		config.EnvMongoURI:    "mongodb://mongo.example:27017/?replicaSet=rs0",
		config.EnvScorerURL:   "http://scorer:8081",
	}
	for _, path := range []string{
		"../../../deploy/config/gateway.yaml",
		"../../../deploy/k8s/base/gateway-config.yaml",
	} {
		t.Run(filepath.Base(filepath.Dir(path)), func(t *testing.T) {
			cfg, err := config.Load(path, func(k string) string { return env[k] })
			require.NoError(t, err)
			assert.Equal(t, ":8080", cfg.Listen)
			assert.Equal(t, "/var/spool/bulwark", cfg.Events.SpoolDir)
			require.NotEmpty(t, cfg.Routes)
			assert.Equal(t, env[config.EnvUpstreamURL], cfg.Routes[0].Upstream.String())
		})
	}
}
