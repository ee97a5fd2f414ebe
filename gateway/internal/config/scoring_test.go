package config_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulwarkgw/bulwark/gateway/internal/config"
	"github.com/bulwarkgw/bulwark/gateway/internal/pathnorm"
)

func TestScoringDefaults(t *testing.T) {
	cfg, err := config.Parse([]byte("routes: [{path: /, upstream: http://u}]\n"), env(nil))
	require.NoError(t, err)
	assert.True(t, cfg.Scoring.SensitivePaths["/auth"])
	assert.True(t, cfg.Scoring.SensitivePaths["/api/checkout"])
	assert.Equal(t, time.Minute, cfg.Scoring.VisitWindow)
	assert.Equal(t, time.Second, cfg.Scoring.CacheTTL)
	assert.Equal(t, 0.2, cfg.Scoring.CacheTolerance)
	assert.True(t, cfg.Scoring.FastPath)
}

// TestScoringSeed002 is the scenarios' test config for the seed-002 profile.
func TestScoringSeed002(t *testing.T) {
	doc := "routes: [{path: /, upstream: http://u}]\n" +
		"thresholds: {block: 0.7, throttle: 0.7}\n" +
		"scoring:\n  sensitive_paths: [/api/login, /api/register, /API/Data/]\n  visit_window: 3s\n  cache_ttl: 0s\n"
	cfg, err := config.Parse([]byte(doc), env(nil))
	require.NoError(t, err)
	// As configured: each route's equivalence keys them (server runtime).
	assert.Equal(t, map[string]bool{"/api/login": true, "/api/register": true, "/API/Data/": true}, cfg.Scoring.SensitivePaths)
	assert.Equal(t, 3*time.Second, cfg.Scoring.VisitWindow)
	assert.Zero(t, cfg.Scoring.CacheTTL)
	assert.Equal(t, 0.7, cfg.BlockAt)
	assert.Equal(t, 0.7, cfg.ThrottleAt)
}

func TestScoringBad(t *testing.T) {
	doc := "routes: [{path: /, upstream: http://u}]\n" +
		"scoring:\n  sensitive_paths: [login]\n  visit_window: 10ms\n  cache_ttl: 2m\n  cache_tolerance: 1.5\n  bogus: 1\n"
	_, err := config.Parse([]byte(doc), env(nil))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "scoring.bogus: unknown key")
	doc = "routes: [{path: /, upstream: http://u}]\n" +
		"scoring:\n  sensitive_paths: [login]\n  visit_window: 10ms\n  cache_ttl: 2m\n  cache_tolerance: 1.5\n"
	_, err = config.Parse([]byte(doc), env(nil))
	require.Error(t, err)
	for _, w := range []string{
		`scoring.sensitive_paths[0]: must start with '/', got "login"`,
		"scoring.visit_window: must be at least 1s",
		"scoring.cache_ttl: must be at most 1m",
		"scoring.cache_tolerance: must be in [0, 1], got 1.5",
	} {
		assert.Contains(t, err.Error(), w)
	}
}

// The page-asset extensions and probe paths: the curated defaults, a list
// that replaces them, an empty list, and entries refused by key and index.
func TestScoringAssetsAndProbes(t *testing.T) {
	cfg, err := config.Parse([]byte("routes: [{path: /, upstream: http://u}]\n"), env(nil))
	require.NoError(t, err)
	assert.True(t, cfg.Scoring.AssetExtensions.Asset("GET", "/static/app.css"))
	assert.False(t, cfg.Scoring.AssetExtensions.Asset("GET", "/api/data.json"))
	assert.True(t, cfg.Scoring.ProbePaths.Probe("/wp-login.php"))
	assert.True(t, cfg.Scoring.ProbePaths.Probe("/.git/config"))
	assert.False(t, cfg.Scoring.ProbePaths.Probe("/.well-known/security.txt"))

	doc := "routes: [{path: /, upstream: http://u}]\n" +
		"scoring:\n  asset_extensions: []\n  probe_paths: [/.env, '*.sql']\n"
	cfg, err = config.Parse([]byte(doc), env(nil))
	require.NoError(t, err)
	assert.False(t, cfg.Scoring.AssetExtensions.Asset("GET", "/static/app.css"), "an empty list: nothing is an asset")
	assert.True(t, cfg.Scoring.ProbePaths.Probe("/db.sql"))
	assert.False(t, cfg.Scoring.ProbePaths.Probe("/wp-login.php"), "the list replaces the default: a WordPress site drops the wp entries")

	doc = "routes: [{path: /, upstream: http://u}]\n" +
		"scoring:\n  asset_extensions: [css, '*.js']\n  probe_paths: [/.env, wp-admin]\n"
	_, err = config.Parse([]byte(doc), env(nil))
	require.Error(t, err)
	assert.Contains(t, err.Error(), `scoring.asset_extensions[1]: must be an extension of letters and digits (css, .woff2), got "*.js"`)
	assert.Contains(t, err.Error(), `scoring.probe_paths[1]: must be a path prefix ("/wp-admin", "/.env.*"), a suffix ("*.sql", "*/.env") or a segment anywhere ("*/fckeditor/*"), got "wp-admin"`)
}

func TestPathEquivalence(t *testing.T) {
	doc := "routes:\n" +
		"  - {path: /, upstream: http://u}\n" +
		"  - {path: /exact, upstream: http://u, path_equivalence: {case_insensitive: false, format_suffixes: []}}\n" +
		"path_equivalence: {params: false, format_suffixes: [.JSON, .proto]}\n"
	cfg, err := config.Parse([]byte(doc), env(nil))
	require.NoError(t, err)
	top := cfg.PathEquivalence
	assert.Equal(t, &pathnorm.Equivalence{Fold: true, TrimDots: true, Suffixes: []string{".json", ".proto"}}, top)
	assert.Same(t, top, cfg.Routes[0].Equivalence, "a route without its own shares the top level's")
	assert.Equal(t, &pathnorm.Equivalence{TrimDots: true}, cfg.Routes[1].Equivalence, "keys the route sets win, the rest are the top level's")

	cfg, err = config.Parse([]byte("routes: [{path: /, upstream: http://u}]\n"), env(nil))
	require.NoError(t, err)
	assert.Equal(t, pathnorm.Lenient(), cfg.PathEquivalence, "lenient by default")

	for doc, want := range map[string]string{
		"routes: [{path: /, upstream: http://u}]\npath_equivalence: {format_suffixes: [json]}\n":  "path_equivalence.format_suffixes[0]",
		"routes: [{path: /, upstream: http://u, path_equivalence: {format_suffixes: [.a/b]}}]\n":  "routes[0].path_equivalence.format_suffixes[0]",
		"routes: [{path: /admin, upstream: http://u}, {path: /Admin, upstream: http://v}]\n":      "routes[1].path",
		"routes: [{path: /, upstream: http://u}]\nlogin_protection: {duplicate_fields: middle}\n": "login_protection.duplicate_fields",
	} {
		_, err := config.Parse([]byte(doc), env(nil))
		require.Error(t, err, doc)
		assert.Contains(t, err.Error(), want)
	}
}
