//go:build tools

// Package tools pins the Kubernetes binaries that envtest and `make dev` run: kube-apiserver,
// etcd and kubectl, built from the Go module proxy because nothing else can be downloaded here.
package tools

import (
	_ "go.etcd.io/etcd/server/v3"
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
