package compose_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"
)

// gatewayKeys are the keys deploy/config/gateway.yaml may use: a subset of
// what the gateway accepts (it refuses unknown keys), kept small so the
// sample stays obvious. A nil value is a leaf; a map is a nested mapping; a
// list element's keys are under "[]".
var gatewayKeys = map[string]any{
	"listen":          nil,
	"routes":          map[string]any{"[]": map[string]any{"path": nil, "upstream": nil}},
	"trusted_proxies": nil,
	"scorer":          map[string]any{"url": nil, "timeout": nil, "fail_mode": nil},
	"thresholds":      map[string]any{"block": nil},
	"ban_ttl":         nil,
	"events":          map[string]any{"spool_dir": nil},
}

// unknownYAMLKeys reports every key of node that allowed does not list, as
// a dotted path.
func unknownYAMLKeys(node any, allowed any, path string) []string {
	var bad []string
	switch n := node.(type) {
	case map[string]any:
		a, ok := allowed.(map[string]any)
		if !ok {
			return []string{path + " (mapping not allowed here)"}
		}
		for k, v := range n {
			sub, known := a[k]
			if !known {
				bad = append(bad, path+k)
				continue
			}
			bad = append(bad, unknownYAMLKeys(v, sub, path+k+".")...)
		}
	case []any:
		for i, v := range n {
			var sub any
			if a, ok := allowed.(map[string]any); ok {
				sub = a["[]"]
			}
			bad = append(bad, unknownYAMLKeys(v, sub, path+"["+strconv.Itoa(i)+"].")...)
		}
	}
	return bad
}

func TestGatewayConfigKeys(t *testing.T) {
	root := repoRoot(t)
	data, err := os.ReadFile(filepath.Join(root, "deploy", "config", "gateway.yaml"))
	require.NoError(t, err)
	var cfg map[string]any
	require.NoError(t, yaml.Unmarshal(data, &cfg))
	assert.Empty(t, unknownYAMLKeys(cfg, gatewayKeys, ""), "keys not in the allowed list")

	routes, ok := cfg["routes"].([]any)
	require.True(t, ok, "routes must be a list")
	require.NotEmpty(t, routes)
	assert.Equal(t, map[string]any{"path": "/", "upstream": "${BULWARK_UPSTREAM_URL}"}, routes[0])
	assert.Equal(t, []any{}, cfg["trusted_proxies"], "nothing sits in front of the gateway in compose")

	// The checks the unknown-key test does not make: self-test of the walker.
	assert.Equal(t, []string{"scorer.retries"}, unknownYAMLKeys(
		map[string]any{"scorer": map[string]any{"url": "x", "retries": 3}}, gatewayKeys, ""))
	assert.Equal(t, []string{"routes.[0].strip"}, unknownYAMLKeys(
		map[string]any{"routes": []any{map[string]any{"path": "/", "strip": true}}}, gatewayKeys, ""))
}

// TestGatewayConfigMatchesCompose checks that the config file and the
// gateway's compose environment say the same thing, and that every ${VAR}
// the file expands is set.
func TestGatewayConfigMatchesCompose(t *testing.T) {
	project, root := loadProject(t)
	gw := env(project.Services["gateway"])
	data, err := os.ReadFile(filepath.Join(root, "deploy", "config", "gateway.yaml"))
	require.NoError(t, err)

	var tree any
	require.NoError(t, yaml.Unmarshal(data, &tree))
	ref := regexp.MustCompile(`\$\{?([A-Za-z_][A-Za-z0-9_]*)`)
	for _, s := range yamlStrings(tree) {
		for _, m := range ref.FindAllStringSubmatch(s, -1) {
			assert.NotEmpty(t, gw[m[1]], "gateway.yaml expands $%s, which compose does not set for the gateway", m[1])
		}
	}

	var cfg struct {
		Listen string `yaml:"listen"`
		Scorer struct {
			URL string `yaml:"url"`
		} `yaml:"scorer"`
	}
	require.NoError(t, yaml.Unmarshal(data, &cfg))
	assert.Equal(t, gw["BULWARK_SCORER_URL"], cfg.Scorer.URL, "scorer.url vs BULWARK_SCORER_URL")
	if listen, ok := gw["BULWARK_LISTEN"]; ok {
		assert.Equal(t, listen, cfg.Listen, "listen vs BULWARK_LISTEN")
	}
	scorerPort := goServices["scorer"].port
	assert.Equal(t, "http://scorer:"+scorerPort, cfg.Scorer.URL, "scorer.url must reach the scorer service")
	assert.Equal(t, "http://shop:"+goServices["shop"].port, gw["BULWARK_UPSTREAM_URL"])
}

// yamlStrings returns every string value (not key) in a decoded YAML tree.
func yamlStrings(node any) []string {
	switch n := node.(type) {
	case string:
		return []string{n}
	case map[string]any:
		var out []string
		for _, v := range n {
			out = append(out, yamlStrings(v)...)
		}
		return out
	case []any:
		var out []string
		for _, v := range n {
			out = append(out, yamlStrings(v)...)
		}
		return out
	}
	return nil
}

// TestMongoInitMatchesGatewayIndexes checks that deploy/mongo/init.js names
// its indexes as the gateway does: MongoDB refuses an index whose keys exist
// under another name, so a mismatch would stop the gateway creating them.
func TestMongoInitMatchesGatewayIndexes(t *testing.T) {
	root := repoRoot(t)
	js, err := os.ReadFile(filepath.Join(root, "deploy", "mongo", "init.js"))
	require.NoError(t, err)

	dir := filepath.Join(root, "gateway", "internal", "events")
	files := goFiles(t, dir)
	require.NotEmpty(t, files, "no Go files in %s: where does the gateway create its indexes now?", dir)
	var names []string
	fset := token.NewFileSet()
	for _, path := range files {
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if f == nil {
			require.NoError(t, err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok || len(call.Args) != 1 {
				return true
			}
			sel, ok := call.Fun.(*ast.SelectorExpr)
			if !ok || sel.Sel.Name != "SetName" {
				return true
			}
			if lit, ok := call.Args[0].(*ast.BasicLit); ok && lit.Kind == token.STRING {
				if s, err := strconv.Unquote(lit.Value); err == nil {
					names = append(names, s)
				}
			}
			return true
		})
	}
	require.NotEmpty(t, names, "found no index names (SetName) in %s", dir)
	for _, name := range names {
		assert.Contains(t, string(js), `name: "`+name+`"`, "init.js must create the gateway's index %q", name)
	}
}
