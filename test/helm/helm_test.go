// Package helm_test checks the Helm chart charts/queue-operator: it lints, renders with the
// default and other values, applies the rendered objects to a real kube-apiserver, grants the
// components the rights they need there, and carries the generated CRDs and RBAC unchanged.
package helm_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/jengu/queue-operator/internal/devenv"
	"github.com/jengu/queue-operator/internal/testenv"
)

var env *testenv.Env

func TestMain(m *testing.M) { testenv.Main(m, &env) }

// chartDir is the chart under test.
func chartDir() string { return filepath.Join(testenv.RepoRoot(), "charts", "queue-operator") }

// requiredValues are the values an install must give (README: `helm install ... --set`).
var requiredValues = []string{
	"--set", "redis.url=redis://redis.example:6379/0",
	"--set", "database.url=postgres://app:pw@postgres.example:5432/app",
	"--set", "apiserver.jwtSecret=test-jwt-secret",
	"--set", "auth.issuer=https://project-ref.supabase.co/auth/v1",
}

// helm runs the helm binary `make test` installs (env HELM) and returns its stdout.
func helm(t *testing.T, args ...string) (string, error) {
	t.Helper()
	bin := os.Getenv("HELM")
	if bin == "" {
		t.Fatal("HELM is not set: run the tests with `make test`, which installs helm into bin/ and passes its path")
	}
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("HELM=%s: %v (run `make test`, which installs it)", bin, err)
	}
	cmd := exec.Command(bin, args...)
	// Keep helm's cache, config and data out of the user's home.
	home := t.TempDir()
	cmd.Env = append(os.Environ(), "HELM_CACHE_HOME="+filepath.Join(home, "cache"),
		"HELM_CONFIG_HOME="+filepath.Join(home, "config"), "HELM_DATA_HOME="+filepath.Join(home, "data"))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("helm %s: %w\n%s%s", strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String(), nil
}

// render is `helm template` of the chart as release in namespace, without the CRDs (testenv
// installed them), written to a file; it returns the file and the objects.
func render(t *testing.T, release, namespace string, args ...string) (string, []*unstructured.Unstructured) {
	t.Helper()
	out, err := helm(t, append([]string{"template", release, chartDir(), "--namespace", namespace, "--skip-crds"}, args...)...)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "rendered.yaml")
	if err := os.WriteFile(file, []byte(out), 0o600); err != nil {
		t.Fatal(err)
	}
	objs, err := devenv.ReadManifests(file)
	if err != nil {
		t.Fatalf("parse the rendered chart: %v\n%s", err, out)
	}
	return file, objs
}

var namespaceSeq atomic.Int32

// newNamespace creates a namespace of the test's own.
func newNamespace(t *testing.T, prefix string) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("%s-%d", prefix, namespaceSeq.Add(1))}}
	if err := env.Client.Create(context.Background(), ns); err != nil {
		t.Fatalf("create namespace: %v", err)
	}
	return ns.Name
}

// kubectlApply applies a file server-side with the kubectl built beside the control plane.
func kubectlApply(t *testing.T, namespace, file string) {
	t.Helper()
	dir := t.TempDir()
	kubeconfig, err := env.KubeconfigFile(dir)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(testenv.Kubectl(), "--kubeconfig", kubeconfig, "apply", "--server-side",
		"--field-manager", "helm-test", "-n", namespace, "-f", file)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("kubectl apply --server-side -n %s -f %s: %v\n%s", namespace, file, err, out)
	}
	t.Logf("kubectl apply:\n%s", out)
}

// install renders the chart and applies it to the test kube-apiserver in namespace.
func install(t *testing.T, release, namespace string, args ...string) []*unstructured.Unstructured {
	t.Helper()
	file, objs := render(t, release, namespace, args...)
	kubectlApply(t, namespace, file)
	return objs
}

// find returns the rendered object of that kind and name, or nil.
func find(objs []*unstructured.Unstructured, kind, name string) *unstructured.Unstructured {
	for _, o := range objs {
		if o.GetKind() == kind && o.GetName() == name {
			return o
		}
	}
	return nil
}

// kinds counts the rendered objects by kind.
func kinds(objs []*unstructured.Unstructured) map[string]int {
	n := map[string]int{}
	for _, o := range objs {
		n[o.GetKind()]++
	}
	return n
}
