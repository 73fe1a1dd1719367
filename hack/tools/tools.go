//go:build tools

// Package tools pins the Kubernetes binaries built from the Go module proxy, because nothing
// else can be downloaded here: etcd, kube-apiserver and kubectl for envtest and `make dev`, and
// kubelet, kube-controller-manager and kube-scheduler for the single-node cluster of test/node.
package tools

import (
	_ "go.etcd.io/etcd/server/v3"
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubectl"
	_ "k8s.io/kubernetes/cmd/kubelet"
)
