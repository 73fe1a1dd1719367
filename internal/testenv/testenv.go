// Package testenv starts the real control plane (etcd and kube-apiserver, through envtest) that
// integration tests run against, with the product's CRDs installed.
package testenv

import (
	"fmt"
	"os"
	"path/filepath"
	goruntime "runtime"
	"testing"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/jengu/queue-operator/internal/scheme"
)

// Env is a running control plane.
type Env struct {
	*envtest.Environment
	// Config reaches the kube-apiserver as an administrator.
	Config *rest.Config
	// Client is a direct (uncached) client with the product's scheme.
	Client client.Client
	// Scheme knows the built-in kinds, CRDs and jobs.jengu.io/v1alpha1.
	Scheme *runtime.Scheme
}

// NewScheme is the product's scheme (scheme.New) plus the CRDs, which the tests read.
func NewScheme() *runtime.Scheme {
	s := scheme.New()
	utilruntime.Must(apiextensionsv1.AddToScheme(s))
	return s
}

// RepoRoot is the repository's top directory.
func RepoRoot() string {
	_, file, _, _ := goruntime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// Start starts etcd and kube-apiserver from KUBEBUILDER_ASSETS and installs the CRDs. It fails,
// rather than skips, when the binaries are missing: `make test` builds them.
func Start() (*Env, error) {
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		return nil, fmt.Errorf("KUBEBUILDER_ASSETS is not set: run the tests with `make test`, which builds etcd and kube-apiserver")
	}
	scheme := NewScheme()
	env := &envtest.Environment{
		CRDDirectoryPaths:     []string{filepath.Join(RepoRoot(), "config", "crd", "bases")},
		ErrorIfCRDPathMissing: true,
		Scheme:                scheme,
	}
	cfg, err := env.Start()
	if err != nil {
		_ = env.Stop() // Start leaves the processes running when a later step (CRD install) fails.
		return nil, fmt.Errorf("start envtest: %w", err)
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		_ = env.Stop()
		return nil, fmt.Errorf("client: %w", err)
	}
	return &Env{Environment: env, Config: cfg, Client: c, Scheme: scheme}, nil
}

// WatchClient is a direct client that can also watch.
func (e *Env) WatchClient() client.WithWatch {
	c, err := client.NewWithWatch(e.Config, client.Options{Scheme: e.Scheme})
	if err != nil {
		panic(fmt.Sprintf("watch client: %v", err))
	}
	return c
}

// KubeconfigFile writes an administrator's kubeconfig for this control plane into dir, for
// kubectl, and returns its path.
func (e *Env) KubeconfigFile(dir string) (string, error) {
	user, err := e.AddUser(envtest.User{Name: "test-admin", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return "", fmt.Errorf("add user: %w", err)
	}
	data, err := user.KubeConfig()
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, "kubeconfig")
	return path, os.WriteFile(path, data, 0o600)
}

// Kubectl is the kubectl built beside the control plane's binaries.
func Kubectl() string {
	return filepath.Join(os.Getenv("KUBEBUILDER_ASSETS"), "kubectl")
}

// Main runs a test binary's tests against a control plane it starts first and stops last; *env
// is set for the tests. Use it as the package's TestMain.
func Main(m *testing.M, env **Env) {
	var err error
	*env, err = Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	if err := (*env).Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "stop control plane:", err)
	}
	os.Exit(code)
}
