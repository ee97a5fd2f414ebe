package k8stest

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

// rendered is one kustomization's output, decoded.
type rendered struct {
	Deployments map[string]*appsv1.Deployment
	Services    map[string]*corev1.Service
	ConfigMaps  map[string]*corev1.ConfigMap // by name as rendered (hash suffix included)
	Secrets     map[string]*corev1.Secret
	Namespaces  map[string]*corev1.Namespace
	HPAs        map[string]*autoscalingv2.HorizontalPodAutoscaler
	PDBs        map[string]*policyv1.PodDisruptionBudget
}

// render runs kustomize on dir (relative to the repo root) and decodes every
// resource strictly.
func render(t *testing.T, dir string) *rendered {
	t.Helper()
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	m, err := k.Run(filesys.MakeFsOnDisk(), filepath.Join(repoRoot(t), dir))
	require.NoError(t, err, "kustomize build %s", dir)
	out := newRendered()
	for _, r := range m.Resources() {
		y, err := r.AsYAML()
		require.NoError(t, err)
		require.NoError(t, out.add(y), "%s %s/%s", dir, r.GetKind(), r.GetName())
	}
	return out
}

func newRendered() *rendered {
	return &rendered{
		Deployments: map[string]*appsv1.Deployment{},
		Services:    map[string]*corev1.Service{},
		ConfigMaps:  map[string]*corev1.ConfigMap{},
		Secrets:     map[string]*corev1.Secret{},
		Namespaces:  map[string]*corev1.Namespace{},
		HPAs:        map[string]*autoscalingv2.HorizontalPodAutoscaler{},
		PDBs:        map[string]*policyv1.PodDisruptionBudget{},
	}
}

// add decodes one resource into its API type, refusing unknown and
// duplicate fields, and files it by kind and name.
func (out *rendered) add(doc []byte) error {
	var meta struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
	}
	if err := yaml.Unmarshal(doc, &meta); err != nil {
		return err
	}
	switch meta.APIVersion + " " + meta.Kind {
	case "apps/v1 Deployment":
		return decodeInto(doc, out.Deployments, func(o *appsv1.Deployment) string { return o.Name })
	case "v1 Service":
		return decodeInto(doc, out.Services, func(o *corev1.Service) string { return o.Name })
	case "v1 ConfigMap":
		return decodeInto(doc, out.ConfigMaps, func(o *corev1.ConfigMap) string { return o.Name })
	case "v1 Secret":
		return decodeInto(doc, out.Secrets, func(o *corev1.Secret) string { return o.Name })
	case "v1 Namespace":
		return decodeInto(doc, out.Namespaces, func(o *corev1.Namespace) string { return o.Name })
	case "autoscaling/v2 HorizontalPodAutoscaler":
		return decodeInto(doc, out.HPAs, func(o *autoscalingv2.HorizontalPodAutoscaler) string { return o.Name })
	case "policy/v1 PodDisruptionBudget":
		return decodeInto(doc, out.PDBs, func(o *policyv1.PodDisruptionBudget) string { return o.Name })
	}
	return fmt.Errorf("apiVersion %q kind %q: not a kind this test knows; add it to rendered", meta.APIVersion, meta.Kind)
}

func decodeInto[T any](doc []byte, into map[string]*T, name func(*T) string) error {
	// The API server's own rules: field names match case-sensitively
	// (encoding/json would take httpget for httpGet), unknown and duplicate
	// fields are errors.
	js, err := yaml.YAMLToJSONStrict(doc)
	if err != nil {
		return err
	}
	obj := new(T)
	strict, err := kjson.UnmarshalStrict(js, obj)
	if err != nil {
		return err
	}
	if len(strict) > 0 {
		return errors.Join(strict...)
	}
	n := name(obj)
	if _, dup := into[n]; dup {
		return fmt.Errorf("two resources named %q", n)
	}
	into[n] = obj
	return nil
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

// TestStrictDecodeRefusesTypos proves the decoding above is strict: a
// misspelt field, which kubectl apply might drop with a warning, fails.
func TestStrictDecodeRefusesTypos(t *testing.T) {
	good := `apiVersion: apps/v1
kind: Deployment
metadata: {name: x}
spec:
  selector: {matchLabels: {a: b}}
  template:
    metadata: {labels: {a: b}}
    spec:
      containers:
        - name: x
          image: x
          readinessProbe: {httpGet: {path: /healthz, port: 80}}
`
	require.NoError(t, (&rendered{Deployments: map[string]*appsv1.Deployment{}}).add([]byte(good)))
	for _, typo := range []struct{ from, to string }{
		{"readinessProbe", "readinesProbe"},
		{"httpGet", "httpget"},
		{"matchLabels", "matchLabel"},
	} {
		bad := []byte(replaceOnce(good, typo.from, typo.to))
		err := (&rendered{Deployments: map[string]*appsv1.Deployment{}}).add(bad)
		require.Error(t, err, "%s → %s must be refused", typo.from, typo.to)
		require.Contains(t, err.Error(), "unknown field")
	}
	// A duplicate field is refused too.
	dup := replaceOnce(good, "image: x", "image: x\n          image: y")
	require.Error(t, (&rendered{Deployments: map[string]*appsv1.Deployment{}}).add([]byte(dup)))
	// And a kind the test does not know.
	require.Error(t, (&rendered{}).add([]byte("apiVersion: v1\nkind: Pod\nmetadata: {name: x}\n")))
}

func replaceOnce(s, old, new string) string {
	for i := 0; i+len(old) <= len(s); i++ {
		if s[i:i+len(old)] == old {
			return s[:i] + new + s[i+len(old):]
		}
	}
	panic("replaceOnce: " + old + " not found")
}
