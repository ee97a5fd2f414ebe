package compose_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// modulePrefix is the import path prefix of every module in this repo; a
// module's directory is the rest of its path (…/bulwark/deploy → deploy/).
const modulePrefix = "github.com/bulwarkgw/bulwark/"

// envName is a string literal that is exactly an environment variable name
// of ours. Variables only tests read (BULWARK_TEST_*) are not deployment
// settings and are left out.
var envName = regexp.MustCompile(`^BULWARK_[A-Z0-9_]+$`)

// requiredEnv are the variables compose must set for each service: without
// them the service would talk to the wrong place (or to nothing).
var requiredEnv = map[string][]string{
	"gateway":   {"BULWARK_CONFIG", "BULWARK_REDIS_URL", "BULWARK_MONGO_URI", "BULWARK_SCORER_URL", "BULWARK_UPSTREAM_URL"},
	"scorer":    {"BULWARK_GEOIP_DB", "BULWARK_GEOIP_ASN_DB"},
	"dashboard": {"BULWARK_REDIS_URL", "BULWARK_MONGO_URI"},
	"shop":      {},
	"simulator": {"BULWARK_TARGET"},
}

// optionalEnv are variables a service reads that compose may leave unset,
// because the default in code is right for the stack. Each says why.
var optionalEnv = map[string]map[string]string{
	"gateway": {
		"BULWARK_LISTEN":         "defaults to :8080",
		"BULWARK_GATEWAY_ID":     "defaults to the host name, unique per container",
		"BULWARK_REDIS_PREFIX":   "default key prefix, the same in the dashboard",
		"BULWARK_MONGO_DB":       "defaults to bulwark, the database deploy/mongo/init.js creates",
		"BULWARK_ADMIN_TOKEN":    "the admin API stays off until an operator sets a token (README: admin API)",
		"BULWARK_ADMIN_LISTEN":   "defaults to loopback 127.0.0.1:9090; never published by compose",
		"BULWARK_REDIS_TIMEOUT":  "the 100ms default suits a Redis on the same network",
		"BULWARK_SCORER_TIMEOUT": "scorer.timeout comes from the config file",
	},
	"scorer": {
		"BULWARK_LISTEN":      "defaults to :8081",
		"BULWARK_CONFIG":      "built-in weights and thresholds",
		"BULWARK_PROFILE":     "the built-in default profile",
		"BULWARK_LOG_LEVEL":   "defaults to info",
		"BULWARK_DNS_SERVER":  "crawlers are verified by reverse DNS through the system's resolver",
		"BULWARK_DNS_TIMEOUT": "defaults to 2s per crawler verification",
	},
	"dashboard": {
		"BULWARK_LISTEN":                "defaults to :8082",
		"BULWARK_REDIS_PREFIX":          "default key prefix, the same in the gateway",
		"BULWARK_MONGO_DB":              "defaults to bulwark, the database deploy/mongo/init.js creates",
		"BULWARK_COST_PER_REQUEST":      "a default estimate of backend cost per request",
		"BULWARK_DASHBOARD_ID":          "defaults to dashboard-<hostname>, written on unban events",
		"BULWARK_DASHBOARD_ADMIN_TOKEN": "a secret: unset keeps the dashboard read-only; never committed to compose",
		"BULWARK_DASHBOARD_USER":        "optional basic-auth login, with BULWARK_DASHBOARD_PASSWORD",
		"BULWARK_DASHBOARD_PASSWORD":    "a secret: optional basic-auth login; never committed to compose",
		"BULWARK_DASHBOARD_ORIGINS":     "extra websocket origins; the dashboard's own host is always allowed",
	},
	"shop": {
		"BULWARK_LISTEN": "defaults to :9000",
	},
	"simulator": {},
}

// envReadByCode returns every BULWARK_* variable the service's main package
// and the repo packages it imports (transitively, test files excluded) name
// in a string literal, with the file of one occurrence each.
//
// Any literal that is exactly a variable name counts, wherever it is: code
// reads variables through getenv, os.Getenv, os.LookupEnv or a named
// constant, and all of those hold the name as such a literal. Only the
// packages main imports are read, so a variable of another command in the
// same module (bulwarkctl, geoipgen) is not taken for the service's. A name
// built at run time (prefix + "REDIS_URL") would be missed: don't.
func envReadByCode(t *testing.T, root, service string) map[string]string {
	t.Helper()
	gs := goServices[service]
	mainImport := modulePrefix + gs.module + "/" + gs.main
	found := map[string]string{}
	seen := map[string]bool{}
	queue := []string{mainImport}
	for len(queue) > 0 {
		imp := queue[0]
		queue = queue[1:]
		if seen[imp] {
			continue
		}
		seen[imp] = true
		dir := filepath.Join(root, filepath.FromSlash(strings.TrimPrefix(imp, modulePrefix)))
		files := goFiles(t, dir)
		if imp == mainImport {
			require.NotEmpty(t, files, "%s: no Go files in %s: is the service written yet?", service, dir)
		}
		fset := token.NewFileSet()
		for _, path := range files {
			// Code is written concurrently with this test: use whatever part
			// of a file parses, and say so.
			f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
			if err != nil {
				t.Logf("%s: parse %s: %v", service, path, err)
			}
			if f == nil {
				continue
			}
			for _, is := range f.Imports {
				p, err := strconv.Unquote(is.Path.Value)
				if err == nil && strings.HasPrefix(p, modulePrefix) {
					queue = append(queue, p)
				}
			}
			ast.Inspect(f, func(n ast.Node) bool {
				lit, ok := n.(*ast.BasicLit)
				if !ok || lit.Kind != token.STRING {
					return true
				}
				s, err := strconv.Unquote(lit.Value)
				if err != nil || !envName.MatchString(s) || strings.HasPrefix(s, "BULWARK_TEST_") {
					return true
				}
				if _, ok := found[s]; !ok {
					rel, _ := filepath.Rel(root, path)
					found[s] = rel
				}
				return true
			})
		}
	}
	return found
}

// goFiles lists the non-test .go files of one package directory.
func goFiles(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if os.IsNotExist(err) {
		return nil
	}
	require.NoError(t, err)
	var files []string
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
			continue
		}
		files = append(files, filepath.Join(dir, name))
	}
	return files
}

func TestComposeEnvMatchesCode(t *testing.T) {
	project, root := loadProject(t)
	for _, name := range goServiceNames() {
		t.Run(name, func(t *testing.T) {
			set := env(project.Services[name])
			for _, v := range requiredEnv[name] {
				assert.NotEmpty(t, set[v], "compose must set %s for %s", v, name)
			}

			read := envReadByCode(t, root, name)
			names := make([]string, 0, len(read))
			for v := range read {
				names = append(names, v)
			}
			slices.Sort(names)
			t.Logf("%s reads %v", name, names)

			// Everything the code reads is set, or has a documented default.
			for _, v := range names {
				_, isSet := set[v]
				_, isOptional := optionalEnv[name][v]
				assert.True(t, isSet || isOptional,
					"%s reads %s (%s) but compose does not set it and it is not in optionalEnv", name, v, read[v])
			}
			// Everything compose sets is read: a typo here would otherwise
			// be silently ignored.
			for v := range set {
				if !strings.HasPrefix(v, "BULWARK_") {
					continue
				}
				_, isRead := read[v]
				assert.True(t, isRead, "compose sets %s for %s but the code never reads it", v, name)
			}
		})
	}
}

// TestComposeSharedSettingsAgree checks that the gateway and the dashboard,
// which share Redis keys and MongoDB documents, are pointed at the same ones.
func TestComposeSharedSettingsAgree(t *testing.T) {
	project, _ := loadProject(t)
	gw, dash := env(project.Services["gateway"]), env(project.Services["dashboard"])
	for _, v := range []string{"BULWARK_REDIS_URL", "BULWARK_REDIS_PREFIX", "BULWARK_MONGO_URI", "BULWARK_MONGO_DB"} {
		assert.Equal(t, gw[v], dash[v], "%s differs between gateway and dashboard", v)
	}
}
