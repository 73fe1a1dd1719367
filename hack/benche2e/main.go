// Command benche2e measures an enrichment job's path through the custom resources (`make
// bench-e2e`): an envtest control plane, the controller and the REST facade in this process,
// worker processes of bin/queue-operator against a local fake Open-Meteo, and the Redis and
// PostgreSQL of hack/with-services.sh. It drives POST /api/files/:id/enrich open-loop at each
// rate and prints one table: latencies, throughput, kube-apiserver requests, etcd growth and CPU
// per job.
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	jobsv1alpha1 "github.com/jengu/queue-operator/api/v1alpha1"
	"github.com/jengu/queue-operator/apiserver"
	"github.com/jengu/queue-operator/controllers"
	"github.com/jengu/queue-operator/internal/devenv"
	"github.com/jengu/queue-operator/internal/scheme"
	"github.com/jengu/queue-operator/internal/workercmd"
	"github.com/jengu/queue-operator/queue"
	"github.com/jengu/queue-operator/store"
)

type flags struct {
	workers, concurrency, jobs, users, pollers int
	rates                                      []float64
	retention, rateTimeout                     time.Duration
	bin, crdDir, namespace, logDir             string
}

func parseFlags() (flags, error) {
	var f flags
	var rates string
	flag.IntVar(&f.workers, "workers", 2, "worker processes")
	flag.IntVar(&f.concurrency, "concurrency", 16, "jobs at once per worker (ENRICHMENT_WORKER_CONCURRENCY)")
	flag.IntVar(&f.jobs, "jobs", 300, "jobs per rate")
	flag.IntVar(&f.users, "users", 20, "users, each with one property; jobs go to them in turn")
	flag.IntVar(&f.pollers, "pollers", 32, "GET /api/jobs/:id requests at once")
	flag.StringVar(&rates, "rates", "25,50,100", "POST rates (jobs/s), comma-separated")
	flag.DurationVar(&f.retention, "retention", 30*time.Second, "the JobQueue's retention of finished jobs (TTL deletion)")
	flag.DurationVar(&f.rateTimeout, "rate-timeout", 3*time.Minute, "longest a rate may take from first POST to last completion")
	flag.StringVar(&f.bin, "bin", "bin/queue-operator", "the queue-operator binary the workers run")
	flag.StringVar(&f.crdDir, "crd-dir", "config/crd/bases", "the CRDs")
	flag.StringVar(&f.namespace, "namespace", "bench", "namespace of the jobs")
	flag.StringVar(&f.logDir, "log-dir", ".dev/bench-e2e", "where the components' logs go")
	flag.Parse()
	for _, r := range strings.Split(rates, ",") {
		v, err := strconv.ParseFloat(strings.TrimSpace(r), 64)
		if err != nil || v <= 0 {
			return f, fmt.Errorf("-rates: %q is not a positive number", r)
		}
		f.rates = append(f.rates, v)
	}
	if f.workers < 1 || f.jobs < 1 || f.users < 1 || f.pollers < 1 || f.concurrency < 1 {
		return f, fmt.Errorf("-workers, -concurrency, -jobs, -users and -pollers must be positive")
	}
	return f, nil
}

func main() {
	f, err := parseFlags()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err = run(ctx, f)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench-e2e:", err)
		os.Exit(1)
	}
}

func progress(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s bench-e2e: %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}

// fileLogger writes a component's log to a file.
func fileLogger(path string) (logr.Logger, func(), error) {
	file, err := os.Create(path)
	if err != nil {
		return logr.Discard(), nil, err
	}
	return funcr.New(func(prefix, args string) {
		fmt.Fprintln(file, time.Now().Format("15:04:05.000"), prefix, args)
	}, funcr.Options{}), func() { _ = file.Close() }, nil
}

func run(ctx context.Context, f flags) error {
	bin, err := filepath.Abs(f.bin)
	if err != nil {
		return err
	}
	if _, err := os.Stat(bin); err != nil {
		return fmt.Errorf("worker binary (make build): %w", err)
	}
	if err := os.MkdirAll(f.logDir, 0o755); err != nil {
		return err
	}
	log, closeLog, err := fileLogger(filepath.Join(f.logDir, "harness.log"))
	if err != nil {
		return err
	}
	defer closeLog()
	ctrllog.SetLogger(log)

	// The control plane.
	progress("starting etcd and kube-apiserver (KUBEBUILDER_ASSETS=%s)", os.Getenv("KUBEBUILDER_ASSETS"))
	env := &envtest.Environment{CRDDirectoryPaths: []string{f.crdDir}, ErrorIfCRDPathMissing: true}
	if _, err := env.Start(); err != nil {
		_ = env.Stop()
		return fmt.Errorf("start control plane (is KUBEBUILDER_ASSETS set?): %w", err)
	}
	defer func() {
		progress("stopping the control plane")
		_ = env.Stop()
	}()
	admin, err := env.AddUser(envtest.User{Name: "bench-admin", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return err
	}
	cfg := admin.Config()
	kubeconfig, err := admin.KubeConfig()
	if err != nil {
		return err
	}
	kubeconfigPath, err := filepath.Abs(filepath.Join(f.logDir, "kubeconfig"))
	if err != nil {
		return err
	}
	if err := os.WriteFile(kubeconfigPath, kubeconfig, 0o600); err != nil {
		return err
	}
	kube, err := client.New(cfg, client.Options{Scheme: scheme.New()})
	if err != nil {
		return err
	}
	if err := kube.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: f.namespace}}); err != nil {
		return fmt.Errorf("namespace: %w", err)
	}
	off := false
	jq := &jobsv1alpha1.JobQueue{
		ObjectMeta: metav1.ObjectMeta{Name: string(jobsv1alpha1.QueueEnrichment), Namespace: f.namespace},
		Spec: jobsv1alpha1.JobQueueSpec{
			Queue:       jobsv1alpha1.QueueEnrichment,
			RateLimit:   &jobsv1alpha1.RateLimit{Unlimited: true},
			Retention:   jobsv1alpha1.Retention{Completed: metav1.Duration{Duration: f.retention}, Failed: metav1.Duration{Duration: f.retention}},
			Autoscaling: jobsv1alpha1.Autoscaling{Enabled: &off},
		},
	}
	if err := kube.Create(ctx, jq); err != nil {
		return fmt.Errorf("JobQueue: %w", err)
	}

	// Redis, PostgreSQL, the controller and the facade.
	rdb, err := queue.NewRedisClient(os.Getenv("REDIS_URL"))
	if err != nil {
		return fmt.Errorf("redis (hack/with-services.sh sets REDIS_URL): %w", err)
	}
	defer rdb.Close()
	db, err := store.OpenFromEnv(ctx, os.Getenv, log.WithName("store"))
	if err != nil {
		return err
	}
	defer db.Close()
	ctrlCfg := rest.CopyConfig(cfg)
	ctrlCfg.QPS, ctrlCfg.Burst = controllers.DefaultKubeQPS, controllers.DefaultKubeBurst // as the controller command
	opts := controllers.DefaultOptions()
	opts.History = db
	mgr, err := controllers.NewManager(ctrlCfg, controllers.ManagerConfig{Redis: rdb, MetricsAddr: "0", ProbeAddr: "0",
		Namespaces: []string{f.namespace}, Options: opts, Logger: log.WithName("controller")})
	if err != nil {
		return err
	}
	runCtx, cancelRun := context.WithCancel(ctx)
	defer cancelRun()
	mgrDone := make(chan struct{})
	go func() {
		defer close(mgrDone)
		if err := mgr.Start(runCtx); err != nil {
			log.Error(err, "Controller manager stopped")
		}
	}()
	defer func() { cancelRun(); <-mgrDone }()

	server, err := apiserver.Connect(runCtx, cfg, apiserver.Config{Namespace: f.namespace, Redis: rdb, Store: db,
		JWTSecret: []byte(devenv.JWTSecret())}, apiserver.WithLogger(log.WithName("apiserver")))
	if err != nil {
		return fmt.Errorf("facade: %w", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	go func() {
		if err := server.Serve(runCtx, l, nil); err != nil {
			log.Error(err, "Facade stopped")
		}
	}()
	api := &apiClient{base: "http://" + l.Addr().String(), http: &http.Client{Transport: &http.Transport{
		MaxIdleConns: 512, MaxIdleConnsPerHost: 512}}}

	weather := newFakeOpenMeteo()
	defer weather.Close()

	// Users, properties, tokens.
	users := make([]user, f.users)
	for i := range users {
		name, property := fmt.Sprintf("bench-user-%02d", i), fmt.Sprintf("bench-property-%02d", i)
		if err := devenv.SeedProperty(ctx, db, name, property, 30); err != nil {
			return err
		}
		token, err := devenv.SignToken(name)
		if err != nil {
			return err
		}
		users[i] = user{token: token, property: property}
	}

	// Workers.
	procs, stopWorkers, err := startWorkers(f, bin, kubeconfigPath, weather.URL)
	if err != nil {
		return err
	}
	defer stopWorkers()
	for _, name := range []string{"kube-apiserver", "etcd"} {
		pid, err := childByName(name)
		if err != nil {
			return err
		}
		procs = append(procs, proc{name: name, pid: pid})
	}
	procs = append(procs, proc{name: "harness (controller+facade)", pid: os.Getpid()})

	hc, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return err
	}
	etcdURL := env.ControlPlane.Etcd.URL.String()
	m := &measurer{hc: hc, host: cfg.Host, etcdURL: etcdURL, kube: kube, namespace: f.namespace, procs: procs}

	// A warm-up: every worker up and the path exercised once, then its jobs gone.
	progress("warm-up: %d jobs, then waiting for their TTL deletion (%s retention)", 2*f.workers, f.retention)
	records := queue.New(rdb).Queue(f.namespace, string(jobsv1alpha1.QueueEnrichment))
	recordTimes := func(ctx context.Context, id string) (time.Time, time.Time, error) {
		record, err := records.Get(ctx, id)
		if err != nil {
			return time.Time{}, time.Time{}, err
		}
		return record.ProcessedAt, record.FinishedAt, nil
	}
	warm := runRate(ctx, api, users, recordTimes, 10, 2*f.workers, f.pollers, 2*time.Minute)
	if s := summarize(warm); s.completed != len(warm) {
		return fmt.Errorf("warm-up: %d of %d jobs completed (first error: %s; logs in %s)", s.completed, len(warm), s.firstErr, f.logDir)
	}
	if err := m.waitNoJobs(ctx, f.retention+2*time.Minute); err != nil {
		return err
	}

	var rows []rateRow
	for _, rate := range f.rates {
		before, err := m.snapshot(ctx)
		if err != nil {
			return err
		}
		progress("rate %g/s: %d jobs", rate, f.jobs)
		results := runRate(ctx, api, users, recordTimes, rate, f.jobs, f.pollers, f.rateTimeout)
		s := summarize(results)
		progress("rate %g/s: %d accepted, %d completed, %d failed (first error: %s)", rate, s.accepted, s.completed, s.failed, s.firstErr)
		done, err := m.snapshot(ctx)
		if err != nil {
			return err
		}
		objects, err := m.objectSizes(ctx)
		if err != nil {
			return err
		}
		progress("rate %g/s: waiting for the TTL deletions", rate)
		ttlErr := m.waitNoJobs(ctx, f.retention+2*time.Minute)
		gone, err := m.snapshot(ctx)
		if err != nil {
			return err
		}
		rows = append(rows, rateRow{rate: rate, s: s, before: before, done: done, gone: gone, objects: objects, ttlErr: ttlErr})
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	printReport(os.Stdout, f, rows, procs)
	return nil
}

// startWorkers runs the worker processes, their logs in the log dir; the returned function
// stops them with SIGTERM (SIGKILL after 30 s).
func startWorkers(f flags, bin, kubeconfig, weatherURL string) ([]proc, func(), error) {
	var cmds []*exec.Cmd
	var procs []proc
	stop := func() {
		for _, cmd := range cmds {
			_ = cmd.Process.Signal(syscall.SIGTERM)
		}
		for _, cmd := range cmds {
			done := make(chan struct{})
			go func() { _ = cmd.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(30 * time.Second):
				_ = cmd.Process.Kill()
				<-done
			}
		}
	}
	for i := 0; i < f.workers; i++ {
		logFile, err := os.Create(filepath.Join(f.logDir, fmt.Sprintf("worker-%d.log", i)))
		if err != nil {
			stop()
			return nil, nil, err
		}
		args := workercmd.Command{Queue: jobsv1alpha1.QueueEnrichment, Namespace: f.namespace, MetricsAddr: workercmd.MetricsOff}.Args()
		cmd := exec.Command(bin, args...)
		cmd.Env = append(os.Environ(), "KUBECONFIG="+kubeconfig,
			"OPEN_METEO_ARCHIVE_URL="+weatherURL+"/v1/archive", "OPEN_METEO_FORECAST_URL="+weatherURL+"/v1/forecast",
			"ENRICHMENT_WORKER_CONCURRENCY="+strconv.Itoa(f.concurrency))
		cmd.Stdout, cmd.Stderr = logFile, logFile
		if err := cmd.Start(); err != nil {
			_ = logFile.Close()
			stop()
			return nil, nil, fmt.Errorf("start worker: %w", err)
		}
		_ = logFile.Close() // the child has its own descriptor
		cmds = append(cmds, cmd)
		procs = append(procs, proc{name: fmt.Sprintf("worker-%d", i), pid: cmd.Process.Pid})
	}
	return procs, stop, nil
}
