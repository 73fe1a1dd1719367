// Package testprom gives tests a real Prometheus: Debian's prometheus package (prometheus and
// promtool), installed by hack/install-prometheus.sh when missing.
package testprom

import (
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/jengu/queue-operator/internal/testenv"
)

var (
	once       sync.Once
	installErr error
	installOut []byte
)

// Ensure installs Prometheus when prometheus or promtool is missing, and fails the test when
// that cannot be done.
func Ensure(t testing.TB) {
	t.Helper()
	once.Do(func() {
		cmd := exec.Command(filepath.Join(testenv.RepoRoot(), "hack", "install-prometheus.sh"))
		installOut, installErr = cmd.CombinedOutput()
	})
	if installErr != nil {
		t.Fatalf("Prometheus is needed: %v\n%s", installErr, installOut)
	}
}

// Promtool runs promtool with args in dir and returns its output, failing the test when it
// fails.
func Promtool(t testing.TB, dir string, args ...string) string {
	t.Helper()
	Ensure(t)
	cmd := exec.Command("promtool", args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("promtool %v: %v\n%s", args, err, out)
	}
	return string(out)
}
