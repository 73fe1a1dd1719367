// Package devenv runs the product's local environment for `make dev`: a real control plane
// (etcd and kube-apiserver, through envtest) with the CRDs and the sample JobQueues installed,
// and the controller, beside the Redis and PostgreSQL that hack/with-services.sh started.
package devenv

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	jobsv1alpha1 "github.com/jengu/queue-operator/api/v1alpha1"
	"github.com/jengu/queue-operator/controllers"
	"github.com/jengu/queue-operator/internal/scheme"
	"github.com/jengu/queue-operator/internal/workercmd"
	"github.com/jengu/queue-operator/queue"
	"github.com/jengu/queue-operator/store"
)

// Options says where the environment finds its manifests and writes its state.
type Options struct {
	// CRDDir holds the generated CRDs (config/crd/bases).
	CRDDir string
	// SamplesDir holds the samples; the JobQueues among them are installed.
	SamplesDir string
	// StateDir receives the kubeconfig.
	StateDir string
	// Namespace the samples go to.
	Namespace string
	// Out receives the instructions printed once the environment is up.
	Out io.Writer
	// WorkerQueues are the queues that have a processor in this build: one worker process
	// (`queue-operator worker --queue Q`) runs for each.
	WorkerQueues []jobsv1alpha1.QueueName
	// APIAddress is where the REST facade listens (":3001").
	APIAddress string
	// WorkerEnv is added to the worker processes' environment (the stand-ins' URLs under
	// FAKE_APIS).
	WorkerEnv []string
	// FakeAPIs says the workers talk to loopback stand-ins of the outside APIs.
	FakeAPIs bool
	// ScrapeInterval is the scrape and rule evaluation interval of the printed Prometheus
	// config.
	ScrapeInterval time.Duration
	// Prometheus starts a Prometheus (PrometheusBinary) on the printed config.
	Prometheus bool
}

// Run starts the control plane, installs CRDs and sample JobQueues, prints how to use it, and
// stops everything when ctx ends.
func Run(ctx context.Context, log logr.Logger, opts Options) error {
	env := &envtest.Environment{
		CRDDirectoryPaths:     []string{opts.CRDDir},
		ErrorIfCRDPathMissing: true,
	}
	log.Info("Starting the control plane", "assets", os.Getenv("KUBEBUILDER_ASSETS"))
	if _, err := env.Start(); err != nil {
		_ = env.Stop() // Start leaves the processes running when a later step (CRD install) fails.
		return fmt.Errorf("start control plane (is KUBEBUILDER_ASSETS set? `make dev` sets it): %w", err)
	}
	defer func() {
		log.Info("Stopping the control plane")
		if err := env.Stop(); err != nil {
			log.Error(err, "Stop control plane")
		}
	}()

	admin, err := env.AddUser(envtest.User{Name: "dev-admin", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return fmt.Errorf("add admin user: %w", err)
	}
	kubeconfig, err := admin.KubeConfig()
	if err != nil {
		return fmt.Errorf("render kubeconfig: %w", err)
	}
	if err := os.MkdirAll(opts.StateDir, 0o755); err != nil {
		return fmt.Errorf("create state dir: %w", err)
	}
	kubeconfigPath, err := filepath.Abs(filepath.Join(opts.StateDir, "kubeconfig"))
	if err != nil {
		return err
	}
	if err := os.WriteFile(kubeconfigPath, kubeconfig, 0o600); err != nil {
		return fmt.Errorf("write kubeconfig: %w", err)
	}

	c, err := client.New(admin.Config(), client.Options{Scheme: scheme.New()})
	if err != nil {
		return fmt.Errorf("client: %w", err)
	}
	installed, err := installJobQueues(ctx, c, opts.SamplesDir, opts.Namespace)
	if err != nil {
		return err
	}
	rdb, err := queue.NewRedisClient(os.Getenv("REDIS_URL"))
	if err != nil {
		return fmt.Errorf("redis (hack/with-services.sh sets REDIS_URL): %w", err)
	}
	defer rdb.Close()
	controllers.CheckRedis(ctx, rdb, log)
	db, err := store.OpenFromEnv(ctx, os.Getenv, log)
	if err != nil {
		return err
	}
	defer db.Close()
	controllerOpts := controllers.DefaultOptions()
	controllerOpts.History = db
	controllerMetrics, err := serveControllerMetrics(ctx, log)
	if err != nil {
		return err
	}
	mgr, err := controllers.NewManager(admin.Config(), controllers.ManagerConfig{
		Redis: rdb, MetricsAddr: "0", ProbeAddr: "0", Options: controllerOpts, Logger: log.WithName("controller"),
	})
	if err != nil {
		return err
	}
	if err := seedDemo(ctx, db); err != nil {
		return err
	}
	workerMetrics, stopWorkers, err := startWorkers(ctx, log, kubeconfigPath, opts)
	if err != nil {
		return err
	}
	defer stopWorkers()
	facade, ops, err := startFacade(ctx, log, admin.Config(), rdb, db, opts)
	if err != nil {
		return err
	}
	demoToken, err := signDemoToken(jwtSecret())
	if err != nil {
		return err
	}
	printUsage(opts.Out, kubeconfigPath, opts.SamplesDir, installed, opts)
	promConfig, err := writeScrapeConfig(opts, scrapeTargets{facade: ops, controller: controllerMetrics, workers: workerMetrics})
	if err != nil {
		return err
	}
	if opts.Prometheus {
		url, stopPrometheus, err := startPrometheus(log, opts, promConfig)
		if err != nil {
			return err
		}
		defer stopPrometheus()
		fmt.Fprintf(opts.Out, "Prometheus on %s (its alerts: %s/alerts)\n\n", url, url)
	}
	printAPIUsage(opts.Out, facade, ops, demoToken, opts.SamplesDir)
	log.Info("Starting the controller")
	return mgr.Start(ctx)
}

// startWorkers runs one worker process per queue with a processor, as plain processes of this
// binary, each with its metrics on a loopback port of its own (returned); the returned function
// stops them with SIGTERM, as Kubernetes would.
func startWorkers(ctx context.Context, log logr.Logger, kubeconfig string, opts Options) ([]string, func(), error) {
	self, err := os.Executable()
	if err != nil {
		return nil, nil, err
	}
	var cmds []*exec.Cmd
	var metricsAddrs []string
	stop := func() {
		for _, cmd := range cmds {
			_ = cmd.Process.Signal(syscall.SIGTERM)
		}
		for _, cmd := range cmds {
			_ = cmd.Wait()
		}
	}
	// Chosen together, so that no two workers are given the same port.
	freeAddrs, err := freeLoopbackAddresses(len(opts.WorkerQueues))
	if err != nil {
		return nil, nil, err
	}
	for i, queueName := range opts.WorkerQueues {
		metricsAddr := freeAddrs[i]
		args := workercmd.Command{Queue: queueName, Namespace: opts.Namespace, MetricsAddr: metricsAddr}.Args()
		cmd := exec.Command(self, args...)
		cmd.Env = append(append(os.Environ(), opts.WorkerEnv...), "KUBECONFIG="+kubeconfig)
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		if err := cmd.Start(); err != nil {
			stop()
			return nil, nil, fmt.Errorf("start %s worker: %w", queueName, err)
		}
		log.Info("Started a worker", "queue", queueName, "pid", cmd.Process.Pid, "metrics", metricsAddr)
		cmds = append(cmds, cmd)
		metricsAddrs = append(metricsAddrs, metricsAddr)
	}
	return metricsAddrs, stop, nil
}

// installJobQueues creates every JobQueue found in the samples directory, keeping existing ones.
func installJobQueues(ctx context.Context, c client.Client, dir, namespace string) ([]string, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		return nil, err
	}
	var installed []string
	for _, file := range files {
		objs, err := ReadManifests(file)
		if err != nil {
			return nil, err
		}
		for _, obj := range objs {
			if obj.GetKind() != "JobQueue" {
				continue
			}
			obj.SetNamespace(namespace)
			if err := c.Create(ctx, obj); err != nil && !apierrors.IsAlreadyExists(err) {
				return nil, fmt.Errorf("create JobQueue %s from %s: %w", obj.GetName(), file, err)
			}
			installed = append(installed, obj.GetName())
		}
	}
	return installed, nil
}

// ReadManifests decodes every object of a multi-document YAML file.
func ReadManifests(file string) ([]*unstructured.Unstructured, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	decoder := utilyaml.NewYAMLOrJSONDecoder(f, 4096)
	var objs []*unstructured.Unstructured
	for {
		obj := &unstructured.Unstructured{}
		if err := decoder.Decode(&obj.Object); err != nil {
			if errors.Is(err, io.EOF) {
				return objs, nil
			}
			return nil, fmt.Errorf("decode %s: %w", file, err)
		}
		if len(obj.Object) > 0 {
			objs = append(objs, obj)
		}
	}
}

func workersLine(queues []jobsv1alpha1.QueueName) string {
	if len(queues) == 0 {
		return "none yet (the processors are later issues)"
	}
	names := make([]string, len(queues))
	for i, q := range queues {
		names[i] = string(q)
	}
	return strings.Join(names, ", ")
}

func printUsage(out io.Writer, kubeconfig, samples string, queues []string, opts Options) {
	apis := "the real ones (Open-Meteo over the internet; holidays offline unless CALENDARIFIC_API_KEY is set)"
	if opts.FakeAPIs {
		apis = "loopback stand-ins (FAKE_APIS): every job completes offline"
	}
	lines := []string{
		"",
		"queue-operator dev environment is up (Ctrl-C stops everything).",
		"",
		"  Kubernetes API:  export KUBECONFIG=" + kubeconfig,
		"  JobQueues:       " + strings.Join(queues, ", "),
		"  Redis:           " + os.Getenv("REDIS_URL"),
		"  PostgreSQL:      " + os.Getenv("DATABASE_URL"),
		"",
		"Try (the kubectl built by hack/build-tools.sh is in KUBEBUILDER_ASSETS):",
		"  export KUBECONFIG=" + kubeconfig + " PATH=" + os.Getenv("KUBEBUILDER_ASSETS") + ":$PATH",
		"  kubectl get jobqueues",
		"  kubectl apply -f " + filepath.Join(samples, "enrichmentjob.yaml"),
		"  kubectl get queuejobs",
		"  kubectl apply -f " + filepath.Join(samples, "jobschedule.yaml") + "   # every night: enrich, then analyse",
		"  kubectl get jobschedules",
		"",
		"Running: the controller, the REST facade, and a worker for each queue with a processor: " + workersLine(opts.WorkerQueues) + ".",
		"Outside APIs: " + apis + ".",
		"",
	}
	fmt.Fprintln(out, strings.Join(lines, "\n"))
}
