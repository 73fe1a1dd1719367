#!/usr/bin/env bash
# Builds the Kubernetes binaries the tests run from the Go module proxy, pinned by hack/tools/go.mod,
# into a cache outside the work tree keyed by the pins, so that a fresh clone on the same machine
# reuses them. Prints the directory (KUBEBUILDER_ASSETS for envtest; test/node finds the rest there).
#
#   hack/build-tools.sh         etcd, kube-apiserver, kubectl (envtest, make dev)
#   hack/build-tools.sh node    also kubelet, kube-controller-manager, kube-scheduler and containerd
#                               (containerd, containerd-shim-runc-v2, ctr) for the single-node cluster
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
tools="$root/hack/tools"
containerd_version=v2.4.2
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

declare -A packages=(
  [etcd]=go.etcd.io/etcd/server/v3
  [kube-apiserver]=k8s.io/kubernetes/cmd/kube-apiserver
  [kubectl]=k8s.io/kubernetes/cmd/kubectl
  [kubelet]=k8s.io/kubernetes/cmd/kubelet
  [kube-controller-manager]=k8s.io/kubernetes/cmd/kube-controller-manager
  [kube-scheduler]=k8s.io/kubernetes/cmd/kube-scheduler
)
wanted=(etcd kube-apiserver kubectl)
[ "${1:-}" = node ] && wanted+=(kubelet kube-controller-manager kube-scheduler)

# One `go build` for every missing binary: the packages they share (most of Kubernetes) are
# compiled once, with both cores busy, instead of once per binary.
missing=()
for name in "${wanted[@]}"; do [ -x "$out/$name" ] || missing+=("$name"); done
if [ ${#missing[@]} -gt 0 ]; then
  echo "building ${missing[*]} into $out; cold this takes tens of minutes" >&2
  tmp=$(mktemp -d "$out/.build.XXXXXX")
  pkgs=()
  for name in "${missing[@]}"; do pkgs+=("${packages[$name]}"); done
  (cd "$tools" && CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" -o "$tmp/" "${pkgs[@]}")
  [ -e "$tmp/server" ] && mv "$tmp/server" "$tmp/etcd" # go names etcd's binary after .../server/v3
  for name in "${missing[@]}"; do mv "$tmp/$name" "$out/$name"; done
  rmdir "$tmp"
fi

if [ "${1:-}" = node ] && ! [ -x "$out/containerd-shim-runc-v2" ]; then
  echo "building containerd $containerd_version into $out" >&2
  tmp=$(mktemp -d "$out/.build.XXXXXX")
  module=github.com/containerd/containerd/v2
  GOBIN="$tmp" CGO_ENABLED=0 GOFLAGS=-trimpath go install \
    -ldflags "-s -w -X $module/version.Version=$containerd_version" \
    "$module/cmd/containerd@$containerd_version" "$module/cmd/ctr@$containerd_version" \
    "$module/cmd/containerd-shim-runc-v2@$containerd_version"
  mv "$tmp/containerd" "$tmp/ctr" "$out/" && mv "$tmp/containerd-shim-runc-v2" "$out/"
  rmdir "$tmp"
fi
echo "$out"
