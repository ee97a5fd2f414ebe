package config_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulwarkgw/bulwark/gateway/internal/config"
)

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

const good = `
listen: ":9999"
routes:
  - path: /api/
    upstream: ${UP}
  - path: /
    upstream: http://127.0.0.1:9002
trusted_proxies: [127.0.0.2/32, "::ffff:10.0.0.0/104", 192.168.1.7]
scorer:
  url: http://scorer:8081
  timeout: 40ms
  fail_mode: closed
thresholds:
  block: 0.7
  throttle: 0.4
ban_ttl: 3s
events:
  aggregate_window: 0s
`

func TestParseGood(t *testing.T) {
	cfg, err := config.Parse([]byte(good), env(map[string]string{"UP": "http://127.0.0.1:9001", config.EnvRedisURL: "redis://r:6379/2"}))
	require.NoError(t, err)
	assert.Equal(t, ":9999", cfg.Listen)
	require.Len(t, cfg.Routes, 2)
	assert.Equal(t, "/api/", cfg.Routes[0].Path)
	assert.Equal(t, "127.0.0.1:9001", cfg.Routes[0].Upstream.Host, "${UP} expanded from the environment")
	assert.Equal(t, "redis://r:6379/2", cfg.Redis.URL, "env overrides the default")
	assert.Equal(t, 100_000, cfg.Redis.FallbackClients, "default")
	assert.Equal(t, 40*time.Millisecond, cfg.Scorer.Timeout)
	assert.Equal(t, config.FailClosed, cfg.Scorer.FailMode)
	assert.Equal(t, 0.7, cfg.BlockAt)
	assert.Equal(t, 0.4, cfg.ThrottleAt)
	assert.Equal(t, 3*time.Second, cfg.BanTTL)
	assert.Zero(t, cfg.Events.AggregateWindow, "0s turns aggregation off")
	require.Len(t, cfg.TrustedProxies, 3)
	assert.Equal(t, "127.0.0.2/32", cfg.TrustedProxies[0].String())
	assert.Equal(t, "10.0.0.0/8", cfg.TrustedProxies[1].String(), "IPv4-mapped prefixes are unmapped")
	assert.Equal(t, "192.168.1.7/32", cfg.TrustedProxies[2].String())
}

func TestDefaultsWithUpstreamFromEnv(t *testing.T) {
	cfg, err := config.Parse(nil, env(map[string]string{
		config.EnvUpstreamURL: "http://shop:9000", config.EnvTrustedProxies: "10.0.0.0/8, 127.0.0.1",
		config.EnvGatewayID: "gw-7",
	}))
	require.NoError(t, err)
	require.Len(t, cfg.Routes, 1)
	assert.Equal(t, "/", cfg.Routes[0].Path)
	assert.Equal(t, "shop:9000", cfg.Routes[0].Upstream.Host)
	assert.Len(t, cfg.TrustedProxies, 2)
	assert.Equal(t, "gw-7", cfg.GatewayID)
	assert.Equal(t, 0.8, cfg.BlockAt)
	assert.Equal(t, 50*time.Millisecond, cfg.Scorer.Timeout)
	assert.Equal(t, time.Second, cfg.Events.AggregateWindow)
	assert.EqualValues(t, 64<<10, cfg.Edge.BodyBufferBytes)
	assert.EqualValues(t, 32<<20, cfg.Edge.BodyBufferMemory)
	assert.Equal(t, 100, cfg.Edge.MaxHeaderCount)
}

func TestRedisURLForms(t *testing.T) {
	for _, u := range []string{"redis://r:6379/2", "rediss://u:p@r:6380", "redis://a:7000?addr=b:7001&addr=c:7002", "redis://s:26379?master_name=mymaster&addr=t:26379"} {
		cfg, err := config.Parse(nil, env(map[string]string{config.EnvUpstreamURL: "http://shop:9000", config.EnvRedisURL: u}))
		require.NoError(t, err, u)
		assert.Equal(t, u, cfg.Redis.URL)
	}
}

func TestParseBad(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		want []string // every message must appear
	}{
		{"unknown key", "routes: [{path: /, upstream: http://u}]\nbogus: 1\nscorer: {extra: 2}\n", []string{"bogus: unknown key (line 2)", "scorer.extra: unknown key"}},
		{"unknown key in a route", "routes: [{path: /, upstream: http://u, bogus: x}]\n", []string{"routes[0].bogus: unknown key"}},
		{"invalid duration", "routes: [{path: /, upstream: http://u}]\nscorer: {timeout: 5x}\nban_ttl: soon\n", []string{`scorer.timeout: invalid duration "5x"`, `ban_ttl: invalid duration "soon"`}},
		{"invalid CIDR", "routes: [{path: /, upstream: http://u}]\ntrusted_proxies: [10.0.0.0/33]\n", []string{`trusted_proxies[0]: invalid CIDR or address "10.0.0.0/33"`}},
		{"missing upstream", "routes: [{path: /api/}]\n", []string{"routes[0].upstream: missing"}},
		{"no routes", "listen: \":1\"\n", []string{"routes: at least one route is required"}},
		{"bad route path and scheme", "routes: [{path: api/, upstream: http://u}, {path: /x, upstream: ftp://x}]\n", []string{`routes[0].path: must start with '/'`, "routes[1].upstream: must be an absolute http or https URL"}},
		{"bad thresholds and fail mode", "routes: [{path: /, upstream: http://u}]\nthresholds: {block: 1.5, throttle: 0}\nredis: {fail_mode: maybe}\n", []string{"thresholds.block", "thresholds.throttle", `redis.fail_mode: must be "open" or "closed"`}},
		{"bad redis url scheme", "routes: [{path: /, upstream: http://u}]\nredis: {url: 'http://r:1'}\n", []string{"redis.url: scheme must be redis or rediss"}},
		{"bad redis cluster addr", "routes: [{path: /, upstream: http://u}]\nredis: {url: 'redis://a:1?addr=nohost'}\n", []string{"redis.url: redis: unable to parse addr param"}},
		{"redis cluster with a database", "routes: [{path: /, upstream: http://u}]\nredis: {url: 'redis://a:1/2?addr=b:2'}\n", []string{"redis.url: a cluster has only database 0"}},
		{"redis unknown option", "routes: [{path: /, upstream: http://u}]\nredis: {url: 'redis://a:1?master_name=m&bogus=1'}\n", []string{"redis.url: redis: unexpected option: bogus"}},
		{"bad fallback bound", "routes: [{path: /, upstream: http://u}]\nredis: {fallback_clients: 0}\n", []string{"redis.fallback_clients: must be at least 2, got 0"}},
		{"not yaml", "routes: [", []string{"config:"}},
		{"bad client ip header", "routes: [{path: /, upstream: http://u}]\nclient_ip_header: X-Client\n", []string{`client_ip_header: must be`}},
		{"wrong type", "routes: 7\n", []string{"config:"}},
		{"bad aggregate window", "routes: [{path: /, upstream: http://u}]\nevents: {aggregate_window: 2m}\n", []string{"events.aggregate_window: must be at most 1m, got 2m"}},
		{"negative aggregate window", "routes: [{path: /, upstream: http://u}]\nevents: {aggregate_window: -1s}\n", []string{"events.aggregate_window: must be at least 0s, got -1s"}},
		{"body buffer too small", "routes: [{path: /, upstream: http://u}]\nbody_buffer_size: 100\n", []string{"body_buffer_size: must be at least 1024, got 100"}},
		{"body memory below one buffer", "routes: [{path: /, upstream: http://u}]\nbody_buffer_size: 4096\nbody_buffer_memory: 2048\n", []string{"body_buffer_memory: must be at least body_buffer_size (4096), got 2048"}},
		{"too few header fields", "routes: [{path: /, upstream: http://u}]\nmax_header_count: 15\n", []string{"max_header_count: must be at least 16 (a browser alone sends about 15 header fields), got 15"}},
		{"no header fields", "routes: [{path: /, upstream: http://u}]\nmax_header_count: 0\n", []string{"max_header_count: must be at least 16"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := config.Parse([]byte(tt.doc), env(nil))
			require.Error(t, err)
			for _, w := range tt.want {
				assert.Contains(t, err.Error(), w)
			}
		})
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := config.Load(filepath.Join(t.TempDir(), "nope.yaml"), env(nil))
	require.Error(t, err)
	p := filepath.Join(t.TempDir(), "ok.yaml")
	require.NoError(t, os.WriteFile(p, []byte("routes: [{path: /, upstream: http://u:1}]\n"), 0o600))
	cfg, err := config.Load(p, env(nil))
	require.NoError(t, err)
	assert.Len(t, cfg.Routes, 1)
}

func TestDollarsSurviveExpansion(t *testing.T) {
	cfg, err := config.Parse([]byte("routes: [{path: /, upstream: \"${UP}\"}]\nadmin: {username: admin, password: \"pa$$w0rd$x\"}\n"),
		env(map[string]string{"UP": "http://u:1", "x": "SHOULD-NOT-APPEAR"}))
	require.NoError(t, err)
	assert.Equal(t, "pa$w0rd$x", cfg.Admin.Password, "only ${NAME} expands; $$ is a literal $")
	assert.Equal(t, "u:1", cfg.Routes[0].Upstream.Host)
}

func TestPathNormalization(t *testing.T) {
	cfg, err := config.Parse([]byte("routes:\n  - {path: /raw/, upstream: http://u, path_normalization: raw}\n  - {path: /s/, upstream: http://u, path_normalization: strict}\n  - {path: /, upstream: http://u}\n"), env(nil))
	require.NoError(t, err)
	assert.True(t, cfg.Routes[0].RawPath)
	assert.False(t, cfg.Routes[1].RawPath)
	assert.False(t, cfg.Routes[2].RawPath, "strict by default")

	_, err = config.Parse([]byte("routes:\n  - {path: /a/, upstream: http://u, path_normalization: loose}\n  - {path: /b/, upstream: http://u, path_normalization: raw, strip_prefix: true}\n"), env(nil))
	require.Error(t, err)
	assert.Contains(t, err.Error(), `routes[0].path_normalization: must be "strict" or "raw", got "loose"`)
	assert.Contains(t, err.Error(), `routes[1].path_normalization: "raw" forwards the path as sent and cannot be combined with strip_prefix`)
}

func TestMethodOverride(t *testing.T) {
	cfg, err := config.Parse([]byte("routes:\n  - {path: /a/, upstream: http://u, method_override: true}\n  - {path: /b/, upstream: http://u, method_override: false}\n  - {path: /, upstream: http://u}\n"), env(nil))
	require.NoError(t, err)
	assert.True(t, cfg.Routes[0].MethodOverride)
	assert.False(t, cfg.Routes[1].MethodOverride)
	assert.False(t, cfg.Routes[2].MethodOverride, "off by default: overrides are removed or refused")

	_, err = config.Parse([]byte("routes:\n  - {path: /a/, upstream: http://u, method_override: yes}\n  - {path: /b/, upstream: http://u, method_override: \"true\"}\n  - {path: /c/, upstream: http://u, method_override: [POST]}\n"), env(nil))
	require.Error(t, err, "a security switch is a YAML boolean, nothing that reads like one")
	assert.Contains(t, err.Error(), `routes[0].method_override: must be true or false, got the string "yes"`)
	assert.Contains(t, err.Error(), `routes[1].method_override: must be true or false, got the string "true"`)
	assert.Contains(t, err.Error(), `routes[2].method_override: must be true or false, got [POST]`)
}
