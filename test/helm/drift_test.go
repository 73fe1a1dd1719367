package helm_test

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/yaml"

	"github.com/jengu/queue-operator/internal/testenv"
)

const regenerate = "run `make manifests`, which copies config/ into the chart"

// sameFiles fails unless the chart's copies are byte for byte the generated files.
func sameFiles(t *testing.T, pairs map[string]string) {
	t.Helper()
	root := testenv.RepoRoot()
	for chartFile, configFile := range pairs {
		want, err := os.ReadFile(filepath.Join(root, configFile))
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(filepath.Join(root, chartFile))
		if err != nil {
			t.Errorf("%s: %v: %s", chartFile, err, regenerate)
			continue
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs from %s: %s", chartFile, configFile, regenerate)
		}
	}
}

func TestChartCRDsAreTheGeneratedOnes(t *testing.T) {
	root := testenv.RepoRoot()
	names := func(dir string) []string {
		files, err := filepath.Glob(filepath.Join(root, dir, "*.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		for i, f := range files {
			files[i] = filepath.Base(f)
		}
		slices.Sort(files)
		return files
	}
	want, got := names("config/crd/bases"), names("charts/queue-operator/crds")
	if len(want) == 0 {
		t.Fatal("config/crd/bases has no CRDs")
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("charts/queue-operator/crds holds other files than config/crd/bases (-config +chart):\n%s%s", diff, regenerate)
	}
	pairs := map[string]string{}
	for _, name := range want {
		pairs[filepath.Join("charts/queue-operator/crds", name)] = filepath.Join("config/crd/bases", name)
	}
	sameFiles(t, pairs)
}

func TestChartRBACFilesAreTheGeneratedOnes(t *testing.T) {
	sameFiles(t, map[string]string{
		"charts/queue-operator/files/rbac/role.yaml":           "config/rbac/role.yaml",
		"charts/queue-operator/files/rbac/apiserver/role.yaml": "config/rbac/apiserver/role.yaml",
		"charts/queue-operator/files/rbac/worker/role.yaml":    "config/rbac/worker/role.yaml",
	})
}

// readClusterRole reads a generated ClusterRole of config/.
func readClusterRole(t *testing.T, file string) *rbacv1.ClusterRole {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), file))
	if err != nil {
		t.Fatal(err)
	}
	role := &rbacv1.ClusterRole{}
	if err := yaml.Unmarshal(data, role); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	return role
}

// renderedClusterRole is the chart's ClusterRole of that name, rendered with the default values
// and args.
func renderedClusterRole(t *testing.T, name string, args ...string) *rbacv1.ClusterRole {
	t.Helper()
	_, objs := render(t, "qo", "jobs", append(args, requiredValues...)...)
	obj := find(objs, "ClusterRole", name)
	if obj == nil {
		t.Fatalf("the chart renders no ClusterRole %s", name)
	}
	role := &rbacv1.ClusterRole{}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(obj.Object, role); err != nil {
		t.Fatal(err)
	}
	return role
}

func TestRenderedClusterRolesHaveTheGeneratedRules(t *testing.T) {
	for file, name := range map[string]string{
		"config/rbac/role.yaml":           "qo-queue-operator-controller",
		"config/rbac/apiserver/role.yaml": "qo-queue-operator-apiserver",
	} {
		want, got := readClusterRole(t, file), renderedClusterRole(t, name)
		if diff := cmp.Diff(want.Rules, got.Rules); diff != "" {
			t.Errorf("ClusterRole %s does not have the rules of %s (-config +chart):\n%s", name, file, diff)
		}
	}
}

// TestWorkerRulesAreTheGeneratedOnes: the worker ClusterRole is config/rbac/worker/role.yaml,
// except Secret reads: none by default, only the listed names with credentialSecretNames.
func TestWorkerRulesAreTheGeneratedOnes(t *testing.T) {
	generated := readClusterRole(t, "config/rbac/worker/role.yaml")
	var others []rbacv1.PolicyRule
	var secrets *rbacv1.PolicyRule
	for _, r := range generated.Rules {
		if slices.Contains(r.Resources, "secrets") {
			secrets = r.DeepCopy()
			continue
		}
		others = append(others, r)
	}
	if secrets == nil {
		t.Fatal("config/rbac/worker/role.yaml has no Secret rule: the workers read credential Secrets")
	}
	got := renderedClusterRole(t, "qo-queue-operator-worker")
	if diff := cmp.Diff(others, got.Rules); diff != "" {
		t.Errorf("the default worker ClusterRole is not the generated rules without Secrets (-want +got):\n%s", diff)
	}
	secrets.ResourceNames = []string{"serpapi", "calendarific"}
	want := append([]rbacv1.PolicyRule{*secrets}, others...)
	got = renderedClusterRole(t, "qo-queue-operator-worker", "--set", "workerServiceAccount.credentialSecretNames={serpapi,calendarific}")
	if diff := cmp.Diff(want, got.Rules); diff != "" {
		t.Errorf("the worker ClusterRole with credentialSecretNames (-want +got):\n%s", diff)
	}
}
