package k8stest

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// What the tests know of each service built from this repo, and where to
// look in its code.
type service struct {
	main   string // main package, relative to the repo root
	routes string // the package that registers the service's HTTP routes
	image  string // the image name in the base (deploy/Dockerfile, SERVICE=…)
	listen string // default listen address in code
}

var services = map[string]service{
	// gateway/internal/server/routes.go: e.GET("/healthz"), "/readyz", "/health".
	"gateway": {main: "gateway/cmd/gateway", routes: "gateway/internal/server", image: "bulwark-gateway", listen: ":8080"},
	// scorer/internal/server/routes.go: e.GET("/healthz"), ...
	"scorer": {main: "scorer/cmd/scorer", routes: "scorer/internal/server", image: "bulwark-scorer", listen: ":8081"},
	// dashboard/internal/server/server.go: e.GET("/healthz"), ...
	"dashboard": {main: "dashboard/cmd/dashboard", routes: "dashboard/internal/server", image: "bulwark-dashboard", listen: ":8082"},
}

const modulePrefix = "github.com/bulwarkgw/bulwark/"

// envName is a string literal that is exactly one of our variable names.
// BULWARK_TEST_* are read by tests only.
var envName = regexp.MustCompile(`^BULWARK_[A-Z0-9_]+$`)

// requiredEnv must be set in each Deployment: without them the service
// talks to the wrong place, or to nothing, or (the admin token) the
// operator has no way to turn its feature on without editing the base.
var requiredEnv = map[string][]string{
	"gateway": {"BULWARK_CONFIG", "BULWARK_REDIS_URL", "BULWARK_MONGO_URI", "BULWARK_MONGO_DB",
		"BULWARK_SCORER_URL", "BULWARK_UPSTREAM_URL", "BULWARK_ADMIN_TOKEN", "BULWARK_TRUSTED_PROXIES"},
	"scorer":    {"BULWARK_LISTEN", "BULWARK_GEOIP_DB", "BULWARK_GEOIP_ASN_DB"},
	"dashboard": {"BULWARK_LISTEN", "BULWARK_REDIS_URL", "BULWARK_MONGO_URI", "BULWARK_MONGO_DB"},
}

// optionalEnv are variables a service reads that the manifests may leave
// unset, each with why.
var optionalEnv = map[string]map[string]string{
	"gateway": {
		"BULWARK_LISTEN":         "listen comes from the config file (gateway-config.yaml)",
		"BULWARK_ADMIN_LISTEN":   "admin.listen's default, 127.0.0.1:9090: inside the pod only",
		"BULWARK_REDIS_TIMEOUT":  "redis.timeout's default or the config file",
		"BULWARK_SCORER_TIMEOUT": "scorer.timeout comes from the config file",
	},
	"scorer": {
		"BULWARK_CONFIG":      "built-in weights and thresholds",
		"BULWARK_PROFILE":     "the built-in default profile",
		"BULWARK_LOG_LEVEL":   "defaults to info",
		"BULWARK_DNS_SERVER":  "crawlers are verified by reverse DNS through the system's resolver",
		"BULWARK_DNS_TIMEOUT": "defaults to 2s per crawler verification",
	},
	"dashboard": {
		"BULWARK_COST_PER_REQUEST":  "a default estimate of backend cost per request",
		"BULWARK_DASHBOARD_ORIGINS": "extra websocket origins; an overlay with an ingress host adds it",
	},
}

// envReadByCode returns every BULWARK_* variable named in a string literal
// by the service's main package and the repo packages it imports
// (transitively, test files excluded), with the file of one occurrence.
// Code reads variables through getenv, os.Getenv or a named constant
// (gateway/internal/config's Env*), all of which hold the name as such a
// literal. A name built at run time would be missed: don't.
func envReadByCode(t *testing.T, root, main string) map[string]string {
	t.Helper()
	found := map[string]string{}
	seen := map[string]bool{}
	queue := []string{modulePrefix + main}
	for len(queue) > 0 {
		imp := queue[0]
		queue = queue[1:]
		if seen[imp] {
			continue
		}
		seen[imp] = true
		for _, f := range parsePackage(t, root, strings.TrimPrefix(imp, modulePrefix)) {
			for _, is := range f.file.Imports {
				p, err := strconv.Unquote(is.Path.Value)
				if err == nil && strings.HasPrefix(p, modulePrefix) {
					queue = append(queue, p)
				}
			}
			ast.Inspect(f.file, func(n ast.Node) bool {
				if s, ok := stringLit(n); ok && envName.MatchString(s) && !strings.HasPrefix(s, "BULWARK_TEST_") {
					if _, ok := found[s]; !ok {
						found[s] = f.path
					}
				}
				return true
			})
		}
	}
	require.NotEmpty(t, found, "%s reads no BULWARK_* variable? the scan is broken", main)
	return found
}

// servedPaths returns the literal paths the package registers with GET
// (echo's e.GET("/healthz", ...)): the paths a probe may hit.
func servedPaths(t *testing.T, root, pkg string) map[string]bool {
	t.Helper()
	paths := map[string]bool{}
	for _, f := range parsePackage(t, root, pkg) {
		ast.Inspect(f.file, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok || len(call.Args) < 2 {
				return true
			}
			sel, ok := call.Fun.(*ast.SelectorExpr)
			if !ok || sel.Sel.Name != "GET" {
				return true
			}
			if s, ok := stringLit(call.Args[0]); ok && strings.HasPrefix(s, "/") {
				paths[s] = true
			}
			return true
		})
	}
	require.NotEmpty(t, paths, "no e.GET(\"/...\") in %s: where are the routes registered now?", pkg)
	return paths
}

type parsedFile struct {
	path string // relative to the repo root
	file *ast.File
}

// parsePackage parses the non-test Go files of one directory.
func parsePackage(t *testing.T, root, dir string) []parsedFile {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(root, filepath.FromSlash(dir)))
	if os.IsNotExist(err) {
		return nil
	}
	require.NoError(t, err)
	var out []parsedFile
	fset := token.NewFileSet()
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
			continue
		}
		rel := dir + "/" + name
		f, err := parser.ParseFile(fset, filepath.Join(root, filepath.FromSlash(rel)), nil, parser.SkipObjectResolution)
		require.NoError(t, err)
		out = append(out, parsedFile{path: rel, file: f})
	}
	return out
}

func stringLit(n ast.Node) (string, bool) {
	lit, ok := n.(*ast.BasicLit)
	if !ok || lit.Kind != token.STRING {
		return "", false
	}
	s, err := strconv.Unquote(lit.Value)
	return s, err == nil
}

// TestCodeScans checks the scanners above find what is known to be there,
// so that the manifest checks cannot pass by finding nothing.
func TestCodeScans(t *testing.T) {
	root := repoRoot(t)
	gw := envReadByCode(t, root, services["gateway"].main)
	require.Contains(t, gw, "BULWARK_REDIS_URL")
	require.Contains(t, gw, "BULWARK_ADMIN_TOKEN")
	require.NotContains(t, gw, "BULWARK_GEOIP_DB", "the gateway does not read the scorer's variables")
	paths := servedPaths(t, root, services["gateway"].routes)
	require.True(t, paths["/healthz"] && paths["/readyz"], "%v", paths)
	require.False(t, paths["/"])
}
