package node

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// containerdConfig is containerd's configuration (format 3, containerd 2.x): everything under the
// node's directory, the CRI plugin on overlayfs with Debian's runc and cgroupfs, the pause image
// the node imports, and the ptp network.
func containerdConfig(dir, runc, sandboxImage string) string {
	r := func(p string) string { return filepath.Join(dir, "containerd", p) }
	return fmt.Sprintf(`version = 3
root = %[1]q
state = %[2]q
# NRI would listen on /var/run/nri, outside the node's directory; nothing here uses it.
disabled_plugins = ['io.containerd.nri.v1.nri']

[grpc]
  address = %[3]q

[plugins]
  [plugins.'io.containerd.internal.v1.opt']
    path = %[4]q
  [plugins.'io.containerd.grpc.v1.cri']
    disable_tcp_service = true
    stream_server_address = '127.0.0.1'
  [plugins.'io.containerd.cri.v1.images']
    snapshotter = 'overlayfs'
    [plugins.'io.containerd.cri.v1.images'.pinned_images]
      sandbox = %[5]q
  [plugins.'io.containerd.cri.v1.runtime']
    # The machine withholds CAP_SYS_RESOURCE: without this runc fails with
    # "can't get final child's PID from pipe" when it lowers a container's OOM score.
    restrict_oom_score_adj = true
    netns_mounts_under_state_dir = true
    [plugins.'io.containerd.cri.v1.runtime'.cni]
      bin_dirs = ['/usr/lib/cni']
      conf_dir = %[6]q
    [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
      runtime_type = 'io.containerd.runc.v2'
      [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
        BinaryName = %[7]q
        # runc's state, by default under /run/containerd/runc, outside the node's directory.
        Root = %[8]q
        SystemdCgroup = false
`, r("root"), r("state"), r("containerd.sock"), r("opt"), sandboxImage, filepath.Join(dir, "cni", "net.d"), runc, r("runc"))
}

// cniConfig is the pod network: a veth pair per pod (ptp), addresses from PodCIDR, no NAT.
func cniConfig(dir string) string {
	return fmt.Sprintf(`{
  "cniVersion": "1.0.0",
  "name": "node",
  "plugins": [{
    "type": "ptp",
    "ipMasq": false,
    "ipam": {
      "type": "host-local",
      "ranges": [[{"subnet": %q}]],
      "routes": [{"dst": "0.0.0.0/0"}],
      "dataDir": %q
    }
  }]
}
`, PodCIDR, filepath.Join(dir, "cni", "ipam"))
}

// kubeletConfig is the KubeletConfiguration for this machine: cgroup v1 (refused by default since
// 1.35) with the cgroupfs driver under the node's own cgroup, no iptables chains (no kube-proxy),
// client certificates checked against the cluster CA and requests authorized by the API server,
// evictions that a nearly full disk does not trigger.
func kubeletConfig(dir, cgroup, caFile string) string {
	return fmt.Sprintf(`apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
failCgroupV1: false
cgroupDriver: cgroupfs
cgroupRoot: /%s
makeIPTablesUtilChains: false
failSwapOn: false
address: %s
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
containerRuntimeEndpoint: unix://%s
podLogsDir: %s
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: %s}
authorization:
  mode: Webhook
evictionHard:
  memory.available: "50Mi"
  nodefs.available: "1%%"
  imagefs.available: "1%%"
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
serializeImagePulls: false
maxPods: 60
`, cgroup, NodeIP, filepath.Join(dir, "containerd", "containerd.sock"), filepath.Join(dir, "pod-logs"), caFile)
}

// makeCgroup creates the node's cgroup in every v1 hierarchy (the kubelet wants its cgroupRoot to
// exist), with cpuset's CPUs and memory nodes copied from the root so processes may join it.
func makeCgroup(cgroup string) error {
	if err := checkCgroupV1(cgroupMount); err != nil {
		return err
	}
	hierarchies, err := os.ReadDir(cgroupMount)
	if err != nil {
		return err
	}
	for _, h := range hierarchies {
		root := filepath.Join(cgroupMount, h.Name())
		if _, err := os.Stat(filepath.Join(root, "cgroup.procs")); err != nil {
			continue
		}
		dir := filepath.Join(root, cgroup)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("cgroup %s: %w", dir, err)
		}
		if h.Name() == "cpuset" {
			for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
				v, err := os.ReadFile(filepath.Join(root, f))
				if err != nil {
					return err
				}
				if err := os.WriteFile(filepath.Join(dir, f), []byte(strings.TrimSpace(string(v))), 0o644); err != nil {
					return fmt.Errorf("cgroup %s: %w", f, err)
				}
			}
		}
	}
	return nil
}
