package admin_test

import (
	"net/http"
	"os"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	"github.com/bulwarkgw/bulwark/gateway/internal/admin"
	"github.com/bulwarkgw/bulwark/gateway/internal/admin/admintest"
)

const specFile = "../../openapi.yaml"

func loadSpec(t *testing.T) map[string]any {
	t.Helper()
	b, err := os.ReadFile(specFile)
	require.NoError(t, err)
	var spec map[string]any
	require.NoError(t, yaml.Unmarshal(b, &spec))
	require.Equal(t, "3.1.0", spec["openapi"])
	return spec
}

var echoParam = regexp.MustCompile(`:([A-Za-z_][A-Za-z0-9_]*)`)

// TestOpenAPIDocumentsEveryAdminRoute checks openapi.yaml against the routes
// admin.New registers, both ways, so neither drifts from the other.
func TestOpenAPIDocumentsEveryAdminRoute(t *testing.T) {
	spec := loadSpec(t)
	paths, ok := spec["paths"].(map[string]any)
	require.True(t, ok, "paths")

	documented := map[string]bool{} // "GET /v1/admin/bans"
	for p, item := range paths {
		for method := range item.(map[string]any) {
			switch method {
			case "get", "put", "post", "delete", "patch", "head", "options", "trace":
				documented[strings.ToUpper(method)+" "+p] = true
			}
		}
	}

	d := admintest.NewFixture().Deps(admin.Auth{Token: "t"})
	d.Metrics = http.NotFoundHandler() // so that /metrics is registered too
	e, err := admin.New(d)
	require.NoError(t, err)
	registered := map[string]bool{}
	for _, r := range e.Routes() {
		key := r.Method + " " + echoParam.ReplaceAllString(r.Path, "{$1}")
		registered[key] = true
		assert.True(t, documented[key], "%s is served but not in openapi.yaml", key)
	}
	require.NotEmpty(t, registered)

	var extra []string
	for key := range documented {
		p := strings.SplitN(key, " ", 2)[1]
		onAdmin := strings.HasPrefix(p, "/admin/") || strings.HasPrefix(p, "/audit/") || strings.HasPrefix(p, "/v1/admin/") || p == "/metrics"
		if onAdmin && !registered[key] {
			extra = append(extra, key)
		}
	}
	sort.Strings(extra)
	assert.Empty(t, extra, "documented on the admin API but not served")

	for _, gw := range []string{"GET /healthz", "GET /readyz", "GET /health", "POST /auth", "POST /v1/check"} {
		assert.True(t, documented[gw], "gateway endpoint %s is documented", gw)
	}
}

// TestOpenAPIRefsResolve checks every local $ref points at something.
func TestOpenAPIRefsResolve(t *testing.T) {
	spec := loadSpec(t)
	var walk func(v any)
	n := 0
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			if ref, ok := v["$ref"].(string); ok {
				n++
				require.True(t, strings.HasPrefix(ref, "#/"), "only local refs: %s", ref)
				var cur any = spec
				for _, part := range strings.Split(strings.TrimPrefix(ref, "#/"), "/") {
					m, ok := cur.(map[string]any)
					require.True(t, ok, "%s does not resolve", ref)
					cur, ok = m[part]
					require.True(t, ok, "%s does not resolve", ref)
				}
			}
			for _, x := range v {
				walk(x)
			}
		case []any:
			for _, x := range v {
				walk(x)
			}
		}
	}
	walk(spec)
	assert.Greater(t, n, 50)
}
