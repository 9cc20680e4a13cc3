// Package deploy holds kanon's deployment files — the Dockerfile,
// kube-apiserver's audit policy and webhook kubeconfig, plain Kubernetes
// manifests (kubernetes/) and a kustomize base (kustomize/) — and the
// tests that render the kustomize base with kustomize's own library and
// decode every object strictly into the Kubernetes API types (cert-manager
// and Prometheus operator objects into structs of their documented
// fields), so that a typo in a field is a test failure, not a rollout's.
package deploy
