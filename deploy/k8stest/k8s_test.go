package k8stest

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

const (
	baseDir    = "deploy/k8s/base"
	overlayDir = "deploy/k8s/overlays/example"
)

// The base and the example overlay both render, and hold what they should.
func TestKinds(t *testing.T) {
	for _, dir := range []string{baseDir, overlayDir} {
		t.Run(dir, func(t *testing.T) {
			r := render(t, dir)
			assert.ElementsMatch(t, []string{"gateway", "scorer", "dashboard"}, keys(r.Deployments))
			assert.ElementsMatch(t, []string{"gateway", "scorer", "dashboard"}, keys(r.Services))
			assert.ElementsMatch(t, []string{"gateway"}, keys(r.HPAs))
			assert.ElementsMatch(t, []string{"gateway"}, keys(r.PDBs))
			require.NotNil(t, r.configMap("gateway-config"))
			require.NotNil(t, r.configMap("bulwark-env"))
			if dir == overlayDir {
				assert.ElementsMatch(t, []string{"bulwark"}, keys(r.Namespaces))
				require.NotNil(t, r.secret("bulwark-secrets"))
				for _, d := range r.Deployments {
					assert.Equal(t, "bulwark", d.Namespace, d.Name)
				}
			} else {
				assert.Empty(t, r.Secrets, "the base holds no secrets: an overlay makes bulwark-secrets")
			}
		})
	}
}

// Every variable each service reads is set or has a reason not to be; every
// variable set is read (a typo would be ignored silently); and every
// reference resolves to a key of a rendered ConfigMap or Secret.
func TestEnvMatchesCode(t *testing.T) {
	root := repoRoot(t)
	for _, dir := range []string{baseDir, overlayDir} {
		r := render(t, dir)
		for name, svc := range services {
			t.Run(dir+"/"+name, func(t *testing.T) {
				c := r.container(t, name)
				set := map[string]corev1.EnvVar{}
				for _, e := range c.Env {
					_, dup := set[e.Name]
					assert.False(t, dup, "%s set twice", e.Name)
					set[e.Name] = e
				}
				assert.Empty(t, c.EnvFrom, "name each variable (env), so that this test sees it")
				for _, v := range requiredEnv[name] {
					assert.Contains(t, set, v, "the %s Deployment must set %s", name, v)
				}
				read := envReadByCode(t, root, svc.main)
				for v, where := range read {
					_, isSet := set[v]
					_, isOptional := optionalEnv[name][v]
					assert.True(t, isSet || isOptional,
						"%s reads %s (%s): set it in deploy/k8s or say in optionalEnv why not", name, v, where)
				}
				for v, e := range set {
					if strings.HasPrefix(v, "BULWARK_") {
						assert.Contains(t, read, v, "%s sets %s but the code never reads it", name, v)
					}
					r.checkRef(t, dir, e)
				}
			})
		}
	}
}

// checkRef fails when a variable's ConfigMap or Secret key does not exist.
// In the base, bulwark-secrets is the overlay's to make.
func (r *rendered) checkRef(t *testing.T, dir string, e corev1.EnvVar) {
	t.Helper()
	if e.ValueFrom == nil {
		return
	}
	if ref := e.ValueFrom.ConfigMapKeyRef; ref != nil {
		cm := r.configMapNamed(ref.Name)
		if assert.NotNil(t, cm, "%s: ConfigMap %s", e.Name, ref.Name) {
			assert.Contains(t, cm.Data, ref.Key, "%s: ConfigMap %s key %s", e.Name, ref.Name, ref.Key)
		}
	}
	if ref := e.ValueFrom.SecretKeyRef; ref != nil {
		optional := ref.Optional != nil && *ref.Optional
		s := r.secretNamed(ref.Name)
		if dir == baseDir && s == nil {
			assert.True(t, strings.HasPrefix(ref.Name, "bulwark-secrets"), "%s: Secret %s", e.Name, ref.Name)
			return
		}
		if assert.NotNil(t, s, "%s: Secret %s", e.Name, ref.Name) && !optional {
			assert.Contains(t, s.Data, ref.Key, "%s: Secret %s key %s", e.Name, ref.Name, ref.Key)
		}
	}
}

// The gateway and the dashboard share Redis keys and MongoDB documents: they
// must be pointed at the same ones.
func TestSharedSettingsAgree(t *testing.T) {
	r := render(t, overlayDir)
	gw, dash := r.container(t, "gateway"), r.container(t, "dashboard")
	for _, v := range []string{"BULWARK_REDIS_URL", "BULWARK_REDIS_PREFIX", "BULWARK_MONGO_URI", "BULWARK_MONGO_DB"} {
		a, b := envVar(gw, v), envVar(dash, v)
		require.NotNil(t, a, v)
		require.NotNil(t, b, v)
		assert.Equal(t, a.ValueFrom, b.ValueFrom, "%s differs between gateway and dashboard", v)
		assert.Equal(t, a.Value, b.Value, "%s differs between gateway and dashboard", v)
	}
}

// Probes hit paths the services register, on ports they listen on.
// The gateway's readiness probe follows redis.fail_mode: with fail open,
// /readyz would take every gateway out of the Service while Redis is down
// (SECURITY.md, "Redis outages"), so readiness is /healthz; with fail
// closed it is /readyz.
func TestProbes(t *testing.T) {
	root := repoRoot(t)
	r := render(t, overlayDir)
	for name, svc := range services {
		t.Run(name, func(t *testing.T) {
			served := servedPaths(t, root, svc.routes)
			c := r.container(t, name)
			for kind, p := range map[string]*corev1.Probe{"readiness": c.ReadinessProbe, "liveness": c.LivenessProbe} {
				require.NotNil(t, p, "%s has no %s probe", name, kind)
				require.NotNil(t, p.HTTPGet, "%s %s probe: httpGet", name, kind)
				assert.True(t, served[p.HTTPGet.Path], "%s %s probe %s: the service serves %v", name, kind, p.HTTPGet.Path, keys(served))
				assert.Equal(t, r.listenPort(t, name), containerPort(t, c, p.HTTPGet.Port), "%s %s probe port", name, kind)
			}
		})
	}
	cfg := r.gatewayConfig(t)
	want := "/healthz"
	if cfg.Redis.FailMode == "closed" {
		want = "/readyz"
	}
	assert.Equal(t, want, r.container(t, "gateway").ReadinessProbe.HTTPGet.Path,
		"gateway readiness with redis.fail_mode %q", cfg.Redis.FailMode)
}

// The container port is the port the service listens on, every Service
// selects the pods of one Deployment and reaches a declared port, and the
// admin listener is exposed by nothing.
func TestPortsAndSelectors(t *testing.T) {
	r := render(t, overlayDir)
	for name := range services {
		t.Run(name, func(t *testing.T) {
			c := r.container(t, name)
			require.Len(t, c.Ports, 1, "%s declares its one listener", name)
			assert.Equal(t, r.listenPort(t, name), c.Ports[0].ContainerPort)

			s := r.Services[name]
			require.NotNil(t, s)
			var selected []string
			for dn, d := range r.Deployments {
				if labels.SelectorFromSet(s.Spec.Selector).Matches(labels.Set(d.Spec.Template.Labels)) {
					selected = append(selected, dn)
				}
			}
			assert.Equal(t, []string{name}, selected, "Service %s selects", name)
			require.NotEmpty(t, s.Spec.Ports)
			for _, p := range s.Spec.Ports {
				assert.Equal(t, r.listenPort(t, name), containerPort(t, c, p.TargetPort), "Service %s port %s", name, p.Name)
			}
		})
	}
	d := r.Deployments["gateway"]
	sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
	require.NoError(t, err)
	assert.True(t, sel.Matches(labels.Set(d.Spec.Template.Labels)), "the gateway Deployment's selector matches its pods")

	// The admin API: loopback inside the pod, no port declared, no Service.
	cfg := r.gatewayConfig(t)
	admin := cfg.Admin.Listen
	if v := envVar(r.container(t, "gateway"), "BULWARK_ADMIN_LISTEN"); v != nil {
		admin = v.Value
	}
	if admin == "" {
		admin = "127.0.0.1:9090"
	}
	host, port, err := net.SplitHostPort(admin)
	require.NoError(t, err, "admin.listen %q", admin)
	assert.True(t, net.ParseIP(host) != nil && net.ParseIP(host).IsLoopback(), "admin.listen %q must stay on loopback in the pod", admin)
	for _, s := range r.Services {
		for _, p := range s.Spec.Ports {
			assert.NotEqual(t, port, p.TargetPort.String(), "Service %s exposes the admin port", s.Name)
		}
	}
}

// The autoscaler drives the gateway Deployment, which leaves the replica
// count to it; the disruption budget covers the gateway pods and no others.
func TestAutoscalerAndBudget(t *testing.T) {
	r := render(t, overlayDir)
	h := r.HPAs["gateway"]
	require.NotNil(t, h)
	ref := h.Spec.ScaleTargetRef
	assert.Equal(t, "apps/v1", ref.APIVersion)
	assert.Equal(t, "Deployment", ref.Kind)
	require.Contains(t, r.Deployments, ref.Name)
	assert.Equal(t, "gateway", ref.Name)
	assert.Nil(t, r.Deployments[ref.Name].Spec.Replicas, "the HPA owns the gateway's replica count: no replicas in the Deployment")
	require.NotNil(t, h.Spec.MinReplicas)
	assert.GreaterOrEqual(t, *h.Spec.MinReplicas, int32(2), "one gateway is one failure domain")
	assert.Greater(t, h.Spec.MaxReplicas, *h.Spec.MinReplicas)
	require.Len(t, h.Spec.Metrics, 1)
	require.NotNil(t, h.Spec.Metrics[0].Resource)
	assert.Equal(t, corev1.ResourceCPU, h.Spec.Metrics[0].Resource.Name)
	assert.NotNil(t, r.container(t, "gateway").Resources.Requests.Cpu(), "CPU utilisation needs a CPU request")

	pdb := r.PDBs["gateway"]
	require.NotNil(t, pdb)
	sel, err := metav1.LabelSelectorAsSelector(pdb.Spec.Selector)
	require.NoError(t, err)
	for name, d := range r.Deployments {
		assert.Equal(t, name == "gateway", sel.Matches(labels.Set(d.Spec.Template.Labels)), "PDB selects %s", name)
	}
	require.NotNil(t, pdb.Spec.MaxUnavailable)
	assert.Equal(t, intstr.FromInt32(1), *pdb.Spec.MaxUnavailable)
}

// The gateway's file: mounted where BULWARK_CONFIG says, every ${VAR} it
// expands is set, the spool directory is a writable volume, and the pod is
// given time for the preStop sleep plus shutdown_timeout.
func TestGatewayConfigWiring(t *testing.T) {
	r := render(t, overlayDir)
	d := r.Deployments["gateway"]
	c := r.container(t, "gateway")
	path := envVar(c, "BULWARK_CONFIG").Value
	mounts := map[string]corev1.VolumeMount{}
	for _, m := range c.VolumeMounts {
		mounts[m.MountPath] = m
	}
	volumes := map[string]corev1.Volume{}
	for _, v := range d.Spec.Template.Spec.Volumes {
		volumes[v.Name] = v
	}
	m, ok := mounts[strings.TrimSuffix(path, "/gateway.yaml")]
	require.True(t, ok, "nothing mounted at the directory of BULWARK_CONFIG %s", path)
	v := volumes[m.Name]
	require.NotNil(t, v.ConfigMap, "BULWARK_CONFIG's volume is a ConfigMap")
	cm := r.configMapNamed(v.ConfigMap.Name)
	require.NotNil(t, cm, v.ConfigMap.Name)
	require.Contains(t, cm.Data, "gateway.yaml")

	ref := regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)
	for _, mm := range ref.FindAllStringSubmatch(cm.Data["gateway.yaml"], -1) {
		assert.NotNil(t, envVar(c, mm[1]), "gateway.yaml expands ${%s}, which the Deployment does not set", mm[1])
	}

	cfg := r.gatewayConfig(t)
	if cfg.Events.SpoolDir != "" {
		sm, ok := mounts[cfg.Events.SpoolDir]
		require.True(t, ok, "events.spool_dir %s is not a volume: the root filesystem is read-only", cfg.Events.SpoolDir)
		assert.False(t, sm.ReadOnly)
		assert.NotNil(t, volumes[sm.Name].EmptyDir, "events.spool_dir volume")
	}

	shutdown := 10 * time.Second // shutdown_timeout's default
	if cfg.ShutdownTimeout != "" {
		var err error
		shutdown, err = time.ParseDuration(cfg.ShutdownTimeout)
		require.NoError(t, err)
	}
	var preStop time.Duration
	if c.Lifecycle != nil && c.Lifecycle.PreStop != nil && c.Lifecycle.PreStop.Sleep != nil {
		preStop = time.Duration(c.Lifecycle.PreStop.Sleep.Seconds) * time.Second
	}
	grace := d.Spec.Template.Spec.TerminationGracePeriodSeconds
	require.NotNil(t, grace, "terminationGracePeriodSeconds")
	assert.Greater(t, time.Duration(*grace)*time.Second, preStop+shutdown,
		"terminationGracePeriodSeconds must exceed the preStop sleep (%v) plus shutdown_timeout (%v)", preStop, shutdown)
}

// Non-root, read-only root filesystem, no capabilities, bounded resources.
func TestPodSecurity(t *testing.T) {
	r := render(t, overlayDir)
	for name := range services {
		t.Run(name, func(t *testing.T) {
			pod := r.Deployments[name].Spec.Template.Spec
			c := r.container(t, name)
			require.NotNil(t, pod.SecurityContext)
			require.NotNil(t, pod.SecurityContext.RunAsNonRoot)
			assert.True(t, *pod.SecurityContext.RunAsNonRoot)
			require.NotNil(t, pod.SecurityContext.RunAsUser)
			assert.Equal(t, int64(65532), *pod.SecurityContext.RunAsUser, "distroless's nonroot user")
			require.NotNil(t, pod.SecurityContext.SeccompProfile)
			assert.Equal(t, corev1.SeccompProfileTypeRuntimeDefault, pod.SecurityContext.SeccompProfile.Type)
			sc := c.SecurityContext
			require.NotNil(t, sc)
			require.NotNil(t, sc.ReadOnlyRootFilesystem)
			assert.True(t, *sc.ReadOnlyRootFilesystem)
			require.NotNil(t, sc.AllowPrivilegeEscalation)
			assert.False(t, *sc.AllowPrivilegeEscalation)
			require.NotNil(t, sc.Capabilities)
			assert.Equal(t, []corev1.Capability{"ALL"}, sc.Capabilities.Drop)
			assert.Empty(t, sc.Capabilities.Add)
			for _, res := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
				assert.Contains(t, c.Resources.Requests, res, "requests")
				assert.Contains(t, c.Resources.Limits, res, "limits")
			}
		})
	}
}

// The base names the images deploy/Dockerfile builds; the overlay gives
// each a registry and a tag.
func TestImages(t *testing.T) {
	base, overlay := render(t, baseDir), render(t, overlayDir)
	for name, svc := range services {
		assert.Equal(t, svc.image, base.container(t, name).Image)
		img := overlay.container(t, name).Image
		assert.Regexp(t, `^[a-z0-9.-]+/.+:[A-Za-z0-9._-]+$`, img, "%s: a registry and a tag", name)
		assert.NotContains(t, img, ":latest")
	}
}

// --- helpers

// gatewayFile is the part of the gateway's config file these tests read.
// config.Load itself is run on the file by gateway/internal/config's
// TestDeployConfigFilesLoad (this module cannot import gateway/internal).
type gatewayFile struct {
	Listen string `yaml:"listen"`
	Redis  struct {
		FailMode string `yaml:"fail_mode"`
	} `yaml:"redis"`
	Admin struct {
		Listen string `yaml:"listen"`
	} `yaml:"admin"`
	Events struct {
		SpoolDir string `yaml:"spool_dir"`
	} `yaml:"events"`
	ShutdownTimeout string `yaml:"shutdown_timeout"`
}

func (r *rendered) gatewayConfig(t *testing.T) gatewayFile {
	t.Helper()
	cm := r.configMap("gateway-config")
	require.NotNil(t, cm)
	var f gatewayFile
	require.NoError(t, yaml.Unmarshal([]byte(cm.Data["gateway.yaml"]), &f))
	return f
}

// listenPort is the port the service listens on: BULWARK_LISTEN, else
// (the gateway) listen in its config file, else the default in code.
func (r *rendered) listenPort(t *testing.T, name string) int32 {
	t.Helper()
	addr := services[name].listen
	if name == "gateway" {
		if l := r.gatewayConfig(t).Listen; l != "" {
			addr = l
		}
	}
	if v := envVar(r.container(t, name), "BULWARK_LISTEN"); v != nil {
		addr = v.Value
	}
	_, port, err := net.SplitHostPort(addr)
	require.NoError(t, err, "%s listen %q", name, addr)
	var n int32
	_, err = fmt.Sscan(port, &n)
	require.NoError(t, err, "%s listen %q", name, addr)
	return n
}

// containerPort resolves a probe's or a Service's port (a number or a name)
// to a port the container declares.
func containerPort(t *testing.T, c *corev1.Container, p intstr.IntOrString) int32 {
	t.Helper()
	for _, cp := range c.Ports {
		if (p.Type == intstr.String && cp.Name == p.StrVal) || (p.Type == intstr.Int && cp.ContainerPort == p.IntVal) {
			return cp.ContainerPort
		}
	}
	t.Errorf("%s: port %s is not one the container declares", c.Name, p.String())
	return 0
}

// container is the Deployment's one container, named like it.
func (r *rendered) container(t *testing.T, name string) *corev1.Container {
	t.Helper()
	d := r.Deployments[name]
	require.NotNil(t, d, "no Deployment %s", name)
	cs := d.Spec.Template.Spec.Containers
	require.Len(t, cs, 1, name)
	require.Equal(t, name, cs[0].Name)
	return &cs[0]
}

func envVar(c *corev1.Container, name string) *corev1.EnvVar {
	for i := range c.Env {
		if c.Env[i].Name == name {
			return &c.Env[i]
		}
	}
	return nil
}

// configMap finds a generated ConfigMap by its name before the hash suffix.
func (r *rendered) configMap(prefix string) *corev1.ConfigMap {
	for n, cm := range r.ConfigMaps {
		if n == prefix || strings.HasPrefix(n, prefix+"-") {
			return cm
		}
	}
	return nil
}

func (r *rendered) secret(prefix string) *corev1.Secret {
	for n, s := range r.Secrets {
		if n == prefix || strings.HasPrefix(n, prefix+"-") {
			return s
		}
	}
	return nil
}

// configMapNamed and secretNamed find a resource by its exact rendered
// name: a reference kustomize failed to rewrite to the hashed name misses.
func (r *rendered) configMapNamed(name string) *corev1.ConfigMap { return r.ConfigMaps[name] }
func (r *rendered) secretNamed(name string) *corev1.Secret       { return r.Secrets[name] }

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// The README's way to change the gateway's file in an overlay (a
// configMapGenerator of the same name, behavior: replace) works, and the
// Deployment follows the new name.
func TestOverlayReplacesGatewayConfig(t *testing.T) {
	root := repoRoot(t)
	dir := t.TempDir()
	base, err := filepath.Rel(dir, filepath.Join(root, baseDir))
	require.NoError(t, err)
	write := func(name, body string) {
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644))
	}
	write("gateway.yaml", "listen: \":8080\"\nroutes: [{path: /, upstream: \"${BULWARK_UPSTREAM_URL}\"}]\nshutdown_timeout: 5s\n")
	write("kustomization.yaml", `apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources: [`+base+`]
configMapGenerator:
  - name: gateway-config
    behavior: replace
    files: [gateway.yaml]
`)
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	m, err := k.Run(filesys.MakeFsOnDisk(), dir)
	require.NoError(t, err)
	r := newRendered()
	for _, res := range m.Resources() {
		y, err := res.AsYAML()
		require.NoError(t, err)
		require.NoError(t, r.add(y))
	}
	assert.Equal(t, "5s", r.gatewayConfig(t).ShutdownTimeout)
	var vol string
	for _, v := range r.Deployments["gateway"].Spec.Template.Spec.Volumes {
		if v.ConfigMap != nil {
			vol = v.ConfigMap.Name
		}
	}
	require.NotNil(t, r.configMapNamed(vol), "the Deployment mounts the replaced ConfigMap (%s)", vol)
	assert.Equal(t, "5s", func() string {
		var f gatewayFile
		require.NoError(t, yaml.Unmarshal([]byte(r.configMapNamed(vol).Data["gateway.yaml"]), &f))
		return f.ShutdownTimeout
	}())
}
