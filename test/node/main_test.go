// Package node_test installs the chart on a real single-node cluster (internal/node: kubelet,
// containerd, runc, the control plane) with the product's own image, and drives it as a user
// would: the REST facade's pod, worker pods that scale on queue depth, pods deleted and killed
// mid-job, an upgrade and an uninstall.
package node_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/jengu/queue-operator/internal/node"
	"github.com/jengu/queue-operator/internal/testenv"
)

// TestMain runs the tests inside a network namespace of their own (node.Supervise), which puts
// the machine back as it found it when they end.
func TestMain(m *testing.M) {
	if _, inside := node.Inside(); inside {
		os.Exit(m.Run())
	}
	deps := exec.Command(filepath.Join(testenv.RepoRoot(), "hack", "install-node-deps.sh"))
	deps.Stdout, deps.Stderr = os.Stderr, os.Stderr
	if err := deps.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "test/node: hack/install-node-deps.sh:", err)
		os.Exit(1)
	}
	code, err := node.Supervise("qo-test-node")
	if err != nil {
		fmt.Fprintln(os.Stderr, "test/node:", err)
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}
