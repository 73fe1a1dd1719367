#!/usr/bin/env bash
# Builds the Kubernetes test binaries (etcd, kube-apiserver, kubectl) from the Go module proxy,
# pinned by hack/tools/go.mod, into a cache outside the work tree keyed by the pins, so that a fresh
# clone on the same machine reuses them. Prints the directory to use as KUBEBUILDER_ASSETS.
#
#   hack/build-tools.sh            build what is missing, print the assets directory
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
tools="$root/hack/tools"
k8s_version=$(awk '$1 == "k8s.io/kubernetes" {print $2}' "$tools/go.mod")
key=$(cat "$tools/go.mod" "$tools/go.sum" "$0" | sha256sum | cut -c1-12)
cache=${QUEUE_OPERATOR_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/queue-operator/tools}
out="$cache/k8s-$k8s_version-$key"
mkdir -p "$out"

# Without these stamps the binaries report v0.0.0-master, and kubectl warns about version skew.
minor=$(echo "$k8s_version" | cut -d. -f2)
ldflags="-s -w \
 -X k8s.io/component-base/version.gitVersion=$k8s_version \
 -X k8s.io/component-base/version.gitMajor=1 \
 -X k8s.io/component-base/version.gitMinor=$minor \
 -X k8s.io/client-go/pkg/version.gitVersion=$k8s_version \
 -X k8s.io/client-go/pkg/version.gitMajor=1 \
 -X k8s.io/client-go/pkg/version.gitMinor=$minor"

build() { # name package
  local name=$1 pkg=$2
  [ -x "$out/$name" ] && return 0
  echo "building $name ($pkg) into $out; cold this takes minutes" >&2
  (cd "$tools" && CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" -o "$out/$name.tmp" "$pkg")
  mv "$out/$name.tmp" "$out/$name"
}

build etcd go.etcd.io/etcd/server/v3
build kube-apiserver k8s.io/kubernetes/cmd/kube-apiserver
build kubectl k8s.io/kubernetes/cmd/kubectl
echo "$out"
