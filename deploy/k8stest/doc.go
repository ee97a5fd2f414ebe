// Package k8stest holds the tests of the Kubernetes manifests in
// deploy/k8s: the kustomize base and the example overlay are rendered with
// kustomize's Go API, every resource is decoded strictly into the
// Kubernetes API types, and the result is checked against the code (the
// environment variables each service reads, the paths it serves, the ports
// it listens on) and against itself (selectors, the autoscaler's target,
// the shutdown budget).
package k8stest
