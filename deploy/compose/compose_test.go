package compose_test

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// goService is what the tests know about each service built from this repo.
type goService struct {
	module string // module directory, relative to the repo root
	main   string // main package, relative to the module
	port   string // default listen port (BULWARK_LISTEN); "" for a job
}

// goServices are the services built by deploy/Dockerfile (and deploy/build.sh).
var goServices = map[string]goService{
	"gateway":   {module: "gateway", main: "cmd/gateway", port: "8080"},
	"scorer":    {module: "scorer", main: "cmd/scorer", port: "8081"},
	"dashboard": {module: "dashboard", main: "cmd/dashboard", port: "8082"},
	"shop":      {module: "deploy", main: "cmd/shop", port: "9000"},
	// The traffic simulator: a job under the "attack" profile, no server.
	"simulator": {module: "deploy", main: "cmd/simulator"},
}

// goServiceNames returns the keys of goServices, sorted, so subtests run in a
// stable order.
func goServiceNames() []string {
	names := make([]string, 0, len(goServices))
	for name := range goServices {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// repoRoot walks up from the test's working directory to the directory that
// holds go.work.
func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	require.NoError(t, err)
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.work")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		require.NotEqual(t, dir, parent, "no go.work above the test's working directory")
		dir = parent
	}
}

// loadProject loads docker-compose.yml as `docker compose` would, with the
// repo root as working directory, but without the caller's environment or
// a .env file, so the result depends on the file alone.
func loadProject(t *testing.T) (*types.Project, string) {
	t.Helper()
	root := repoRoot(t)
	opts, err := cli.NewProjectOptions(
		[]string{filepath.Join(root, "docker-compose.yml")},
		cli.WithWorkingDirectory(root),
		cli.WithName("bulwark"),
		cli.WithEnv(nil),
		cli.WithProfiles([]string{"attack"}), // every service, the simulator too
	)
	require.NoError(t, err)
	project, err := cli.ProjectFromOptions(t.Context(), opts)
	require.NoError(t, err, "docker-compose.yml does not load")
	return project, root
}

// env returns the service's environment as plain strings.
func env(svc types.ServiceConfig) map[string]string {
	out := make(map[string]string, len(svc.Environment))
	for k, v := range svc.Environment {
		if v != nil {
			out[k] = *v
		} else {
			out[k] = ""
		}
	}
	return out
}

func TestComposeServices(t *testing.T) {
	project, _ := loadProject(t)
	assert.ElementsMatch(t,
		[]string{"redis", "mongo", "scorer", "gateway", "dashboard", "shop", "simulator"},
		project.ServiceNames())

	for _, name := range project.ServiceNames() {
		svc := project.Services[name]
		want := "unless-stopped"
		if goServices[name].port == "" && goServices[name].module != "" {
			want = "no" // a job runs once
		}
		assert.Equal(t, want, svc.Restart, "%s: restart", name)
	}
	assert.Equal(t, "redis:7-alpine", project.Services["redis"].Image)
	assert.Equal(t, "mongo:7", project.Services["mongo"].Image)

	// Our services write nothing to disk: all state is in Redis and MongoDB.
	// (A disk spool for events would need a volume for it, not a writable
	// root filesystem.)
	for _, name := range goServiceNames() {
		assert.True(t, project.Services[name].ReadOnly, "%s: read_only", name)
	}
}

func TestComposeBuild(t *testing.T) {
	project, root := loadProject(t)
	for _, name := range goServiceNames() {
		t.Run(name, func(t *testing.T) {
			svc, ok := project.Services[name]
			require.True(t, ok, "service missing")
			require.NotNil(t, svc.Build, "no build section")
			assert.Empty(t, svc.Image, "built services name no image")
			assert.Equal(t, filepath.Clean(root), filepath.Clean(svc.Build.Context), "build context must be the repo root")
			assert.Equal(t, "deploy/Dockerfile", svc.Build.Dockerfile)
			arg := svc.Build.Args["SERVICE"]
			if assert.NotNil(t, arg, "build arg SERVICE") {
				assert.Equal(t, name, *arg, "build arg SERVICE")
			}
		})
	}
}

// instructions reads a Dockerfile into its instructions, one string each,
// with line continuations joined and comments dropped.
func instructions(t *testing.T, path string) []string {
	t.Helper()
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	var out []string
	var cur strings.Builder
	for _, line := range strings.Split(string(data), "\n") {
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "#") || (trimmed == "" && cur.Len() == 0) {
			continue
		}
		if cont, ok := strings.CutSuffix(trimmed, `\`); ok {
			cur.WriteString(cont + " ")
			continue
		}
		cur.WriteString(trimmed)
		out = append(out, strings.Join(strings.Fields(cur.String()), " "))
		cur.Reset()
	}
	if cur.Len() > 0 {
		out = append(out, strings.Join(strings.Fields(cur.String()), " "))
	}
	return out
}

func TestDockerfile(t *testing.T) {
	root := repoRoot(t)
	ins := instructions(t, filepath.Join(root, "deploy", "Dockerfile"))

	// Split into stages: everything from one FROM to the next.
	var stages [][]string
	for _, in := range ins {
		if strings.HasPrefix(strings.ToUpper(in), "FROM ") {
			stages = append(stages, nil)
		}
		if len(stages) > 0 {
			stages[len(stages)-1] = append(stages[len(stages)-1], in)
		}
	}
	require.Len(t, stages, 3, "stages ui, build, runtime")
	assert.Contains(t, ins, "ARG SERVICE", "Dockerfile must declare ARG SERVICE")

	ui, build, runtime := stages[0], stages[1], stages[2]
	assert.Equal(t, "FROM node:20-bookworm-slim AS ui", ui[0])
	assert.Contains(t, ui, "RUN npm run build")

	assert.Equal(t, "FROM golang:1.26-bookworm AS build", build[0])
	assert.Contains(t, build, "ARG SERVICE", "ARG SERVICE must be redeclared in the build stage")
	assert.Contains(t, build, "COPY --from=ui /src/web/dist/app/ web/dist/app/")
	run := findInstruction(build, `RUN .*deploy/build\.sh "?\$\{SERVICE\}"? /out`)
	require.NotEmpty(t, run, "the build stage must run deploy/build.sh ${SERVICE} /out")
	for _, want := range []string{"/rootfs/app/service", "/rootfs/healthcheck", "/rootfs/data/geoip/demo-city.mmdb", "/rootfs/data/geoip/demo-asn.mmdb", "/rootfs/etc/bulwark/gateway.yaml"} {
		assert.Contains(t, run, want, "build stage must install %s", want)
	}

	assert.Equal(t, "FROM gcr.io/distroless/static-debian12:nonroot", runtime[0])
	assert.Contains(t, runtime, "COPY --from=build /rootfs/ /")
	assert.Contains(t, runtime, "USER nonroot:nonroot")
	assert.Contains(t, runtime, `ENTRYPOINT ["/app/service"]`)
	assert.Contains(t, runtime, "ENV BULWARK_GEOIP_DB=/data/geoip/demo-city.mmdb BULWARK_GEOIP_ASN_DB=/data/geoip/demo-asn.mmdb")
}

// findInstruction returns the first instruction matching the pattern.
func findInstruction(ins []string, pattern string) string {
	re := regexp.MustCompile(pattern)
	for _, in := range ins {
		if re.MatchString(in) {
			return in
		}
	}
	return ""
}

func TestComposeHealthchecks(t *testing.T) {
	project, _ := loadProject(t)
	for _, name := range project.ServiceNames() {
		t.Run(name, func(t *testing.T) {
			svc := project.Services[name]
			if gs, ok := goServices[name]; ok && gs.port == "" {
				require.NotNil(t, svc.HealthCheck)
				assert.True(t, svc.HealthCheck.Disable, "a job has no server to probe")
				return
			}
			require.NotNil(t, svc.HealthCheck, "no healthcheck")
			assert.False(t, svc.HealthCheck.Disable, "healthcheck disabled")
			require.NotEmpty(t, svc.HealthCheck.Test, "healthcheck has no test")

			gs, ok := goServices[name]
			if !ok {
				return
			}
			// The images have no shell: the probe must be exec form, run
			// /healthcheck, and hit the port the service listens on.
			assert.Equal(t, types.HealthCheckTest{"CMD", "/healthcheck", "http://127.0.0.1:" + gs.port + "/healthz"}, svc.HealthCheck.Test)
			if listen, ok := env(svc)["BULWARK_LISTEN"]; ok {
				assert.Equal(t, ":"+gs.port, listen, "BULWARK_LISTEN must match the port the healthcheck probes")
			}
		})
	}
	assert.Equal(t, types.HealthCheckTest{"CMD", "redis-cli", "ping"}, project.Services["redis"].HealthCheck.Test)
	assert.Equal(t, types.HealthCheckTest{"CMD", "mongosh", "--quiet", "--eval", "db.adminCommand('ping').ok"}, project.Services["mongo"].HealthCheck.Test)
}

// Redis keeps bans, login locks and keys in an append-only file on its
// volume, fsynced every second, so a restart forgets none of them (issue
// 12, item 9; the gateway's scenario test restarts a redis-server run this
// way and checks a ban and a lock still hold).
func TestComposeRedisPersists(t *testing.T) {
	project, _ := loadProject(t)
	redis := project.Services["redis"]
	require.NotEmpty(t, redis.Command, "redis: command")
	assert.Equal(t, "redis-server", redis.Command[0])
	opts := map[string]string{}
	for i := 1; i+1 < len(redis.Command); i += 2 {
		opts[redis.Command[i]] = redis.Command[i+1]
	}
	assert.Equal(t, "yes", opts["--appendonly"])
	assert.Equal(t, "everysec", opts["--appendfsync"])
	assert.Equal(t, "100", opts["--auto-aof-rewrite-percentage"], "rewrites on: the file would grow ~170 bytes per request forever")
	assert.Equal(t, "64mb", opts["--auto-aof-rewrite-min-size"])
	require.Len(t, redis.Volumes, 1)
	assert.Equal(t, "/data", redis.Volumes[0].Target, "the redis image's working directory: the file lives in the volume")
	assert.Equal(t, "volume", redis.Volumes[0].Type)
}

func TestComposeDependsOn(t *testing.T) {
	project, _ := loadProject(t)
	want := map[string][]string{
		"gateway":   {"mongo", "redis", "scorer", "shop"},
		"dashboard": {"mongo", "redis"},
		"simulator": {"gateway"},
	}
	for _, name := range project.ServiceNames() {
		svc := project.Services[name]
		var deps []string
		for dep, cfg := range svc.DependsOn {
			deps = append(deps, dep)
			assert.Equal(t, types.ServiceConditionHealthy, cfg.Condition, "%s → %s: condition", name, dep)
		}
		slices.Sort(deps)
		assert.Equal(t, want[name], deps, "%s: depends_on", name)
	}
}

func TestComposePorts(t *testing.T) {
	project, _ := loadProject(t)
	// Only the gateway (the product) and the dashboard are published.
	want := map[string][]string{
		"gateway":   {"8080:8080/tcp"},
		"dashboard": {"8082:8082/tcp"},
	}
	for _, name := range project.ServiceNames() {
		var got []string
		for _, p := range project.Services[name].Ports {
			got = append(got, p.Published+":"+itoa(p.Target)+"/"+p.Protocol)
		}
		assert.Equal(t, want[name], got, "%s: published ports", name)
		if gs, ok := goServices[name]; ok {
			for _, p := range project.Services[name].Ports {
				assert.Equal(t, gs.port, itoa(p.Target), "%s: published port must target the listen port", name)
			}
		}
	}
}

func itoa(n uint32) string { return strconv.FormatUint(uint64(n), 10) }

func TestComposeGatewayConfigFile(t *testing.T) {
	project, root := loadProject(t)
	gw := project.Services["gateway"]
	path := env(gw)["BULWARK_CONFIG"]
	require.Equal(t, "/etc/bulwark/gateway.yaml", path, "BULWARK_CONFIG")

	// The image has the file at that path (deploy/Dockerfile installs it) ...
	run := findInstruction(instructions(t, filepath.Join(root, "deploy", "Dockerfile")), `deploy/build\.sh`)
	assert.Contains(t, run, "deploy/config/gateway.yaml /rootfs"+path, "Dockerfile must install deploy/config/gateway.yaml at BULWARK_CONFIG")

	// ... and compose mounts the same file over it, read-only.
	var found bool
	for _, v := range gw.Volumes {
		if v.Target != path {
			continue
		}
		found = true
		assert.Equal(t, types.VolumeTypeBind, v.Type)
		assert.True(t, v.ReadOnly, "config mount must be read-only")
		assert.Equal(t, filepath.Join(root, "deploy", "config", "gateway.yaml"), v.Source)
		assert.FileExists(t, v.Source)
	}
	assert.True(t, found, "no volume mounts the gateway config at BULWARK_CONFIG")
}

// TestComposeAttackProfile: the simulator runs only with --profile attack,
// at the gateway, from the one address the gateway trusts to present
// clients in X-Forwarded-For.
func TestComposeAttackProfile(t *testing.T) {
	project, _ := loadProject(t)
	sim := project.Services["simulator"]
	assert.Equal(t, []string{"attack"}, sim.Profiles)
	assert.Equal(t, "http://gateway:8080", env(sim)["BULWARK_TARGET"])
	net, ok := sim.Networks["default"]
	require.True(t, ok && net != nil, "the simulator needs a fixed address on the default network")
	assert.Equal(t, env(project.Services["gateway"])["BULWARK_TRUSTED_PROXIES"], net.Ipv4Address,
		"the gateway must trust exactly the simulator's address")
	require.Contains(t, project.Networks, "default")
	ipam := project.Networks["default"].Ipam
	require.Len(t, ipam.Config, 1)
	assert.Equal(t, "172.28.0.0/24", ipam.Config[0].Subnet)
}

func TestComposeGeoIP(t *testing.T) {
	project, _ := loadProject(t)
	// Must be where deploy/Dockerfile puts the demo databases (TestDockerfile).
	scorer := env(project.Services["scorer"])
	assert.Equal(t, "/data/geoip/demo-city.mmdb", scorer["BULWARK_GEOIP_DB"])
	assert.Equal(t, "/data/geoip/demo-asn.mmdb", scorer["BULWARK_GEOIP_ASN_DB"])
}

func TestComposeMongoInit(t *testing.T) {
	project, root := loadProject(t)
	var script string
	for _, v := range project.Services["mongo"].Volumes {
		if strings.HasPrefix(v.Target, "/docker-entrypoint-initdb.d/") {
			assert.Equal(t, types.VolumeTypeBind, v.Type)
			assert.True(t, v.ReadOnly, "init script mount must be read-only")
			script = v.Source
		}
	}
	require.Equal(t, filepath.Join(root, "deploy", "mongo", "init.js"), script, "mongo must mount deploy/mongo/init.js into /docker-entrypoint-initdb.d/")
	data, err := os.ReadFile(script)
	require.NoError(t, err)
	js := string(data)

	// Not a JavaScript parser: just that the script names what compose and
	// the code expect.
	for _, name := range []string{"gateway", "dashboard"} {
		if db, ok := env(project.Services[name])["BULWARK_MONGO_DB"]; ok {
			assert.Contains(t, js, `getSiblingDB("`+db+`")`, "%s's BULWARK_MONGO_DB must be the database init.js creates", name)
		}
	}
	// The same keys, names and options as the gateway's EnsureIndexes.
	for _, want := range []string{
		`createCollection("events")`,
		`createIndex({ ts: 1 }, { name: "ts", expireAfterSeconds: 2592000 })`,
		`createIndex({ ip: 1, ts: -1 }, { name: "ip_ts" })`,
		`createIndex({ type: 1, ts: -1 }, { name: "type_ts" })`,
	} {
		assert.Contains(t, js, want)
	}
}
