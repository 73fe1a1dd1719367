// Command benche2e measures an enrichment job's path through the custom resources (`make
// bench-e2e`): an envtest control plane, the controller and the REST facade in this process,
// worker processes of bin/queue-operator against a local fake Open-Meteo, and the Redis and
// PostgreSQL of hack/with-services.sh. Beside it, on the same Redis, PostgreSQL and fake
// Open-Meteo, it runs the seed's own stack (a Node API server over BullMQ and Node workers,
// hack/bench/bullmq/seedstack.js). It drives POST /api/files/:id/enrich open-loop at each rate,
// the two systems one after the other at each rate, optionally searches for the highest rate
// each keeps within the goals, and prints one table: latencies, throughput, kube-apiserver
// requests, etcd growth and CPU per job, and the ratios of ours to the seed's.
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
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
	"github.com/redis/go-redis/v9"
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
	workers, concurrency, jobs, users, pollers, searchSteps int
	rates                                                   []float64
	systems                                                 []string
	retention, rateTimeout                                  time.Duration
	bin, crdDir, namespace, logDir, seedDir, nodeBin        string
	profile                                                 bool
}

func parseFlags() (flags, error) {
	var f flags
	var rates, systems string
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
	flag.StringVar(&systems, "systems", systemOurs+","+systemSeed, "systems to drive: ours (the CR path) and seed (BullMQ and Node, the seed's own stack)")
	flag.StringVar(&f.seedDir, "seed-dir", "hack/bench/bullmq", "directory of seedstack.js and its install.sh")
	flag.StringVar(&f.nodeBin, "node", "node", "the Node binary the seed's stack runs on")
	flag.BoolVar(&f.profile, "profile", false, "write CPU profiles of the kube-apiserver over each rate's posting and of this process (driver, controller, facade) to -log-dir (kube-apiserver-<rate>.pprof, harness-<rate>.pprof)")
	flag.IntVar(&f.searchSteps, "search", 0, "after the rates, this many more per system, bisecting between the highest rate within the goals and the lowest beyond them (doubling while every rate is within)")
	flag.Parse()
	for _, name := range strings.Split(systems, ",") {
		switch name = strings.TrimSpace(name); name {
		case systemOurs, systemSeed:
			f.systems = append(f.systems, name)
		default:
			return f, fmt.Errorf("-systems: %q is neither %s nor %s", name, systemOurs, systemSeed)
		}
	}
	if len(f.systems) == 0 {
		return f, fmt.Errorf("-systems: none")
	}
	for _, r := range strings.Split(rates, ",") {
		v, err := strconv.ParseFloat(strings.TrimSpace(r), 64)
		if err != nil || v <= 0 {
			return f, fmt.Errorf("-rates: %q is not a positive number", r)
		}
		f.rates = append(f.rates, v)
	}
	if f.workers < 1 || f.jobs < 1 || f.users < 1 || f.pollers < 1 || f.concurrency < 1 || f.searchSteps < 0 {
		return f, fmt.Errorf("-workers, -concurrency, -jobs, -users and -pollers must be positive, -search not negative")
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
	if err := os.MkdirAll(f.logDir, 0o755); err != nil {
		return err
	}
	log, closeLog, err := fileLogger(filepath.Join(f.logDir, "harness.log"))
	if err != nil {
		return err
	}
	defer closeLog()
	ctrllog.SetLogger(log)

	// What both systems share: Redis, PostgreSQL, the fake Open-Meteo, the users.
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
	weather := newFakeOpenMeteo()
	defer weather.Close()
	users, err := seedUsers(ctx, db, f.users)
	if err != nil {
		return err
	}
	systems, stop, err := startSystems(ctx, f, log, rdb, db, weather.URL)
	defer stop()
	if err != nil {
		return err
	}
	if err := warmUp(ctx, f, systems, users); err != nil {
		return err
	}
	rows, err := measureRates(ctx, f, systems, users)
	if err != nil {
		return err
	}
	printReport(os.Stdout, f, rows)
	return nil
}

// seedUsers gives n users a property with pricing rows each, and a token.
func seedUsers(ctx context.Context, db *store.Store, n int) ([]user, error) {
	users := make([]user, n)
	for i := range users {
		name, property := fmt.Sprintf("bench-user-%02d", i), fmt.Sprintf("bench-property-%02d", i)
		if err := devenv.SeedProperty(ctx, db, name, property, 30); err != nil {
			return nil, err
		}
		token, err := devenv.SignToken(name)
		if err != nil {
			return nil, err
		}
		users[i] = user{token: token, property: property}
	}
	return users, nil
}

// startSystems starts the systems f names, each measured with Redis, PostgreSQL and this
// process; stop stops the ones started, also after an error.
func startSystems(ctx context.Context, f flags, log logr.Logger, rdb redis.UniversalClient, db *store.Store, weatherURL string) ([]*system, func(), error) {
	var systems []*system
	var stops stopper
	services, err := serviceProcs(ctx, rdb, os.Getenv("DATABASE_URL"))
	if err != nil {
		return nil, stops.stop, err
	}
	for _, name := range f.systems {
		var s *system
		var stop func()
		var err error
		switch name {
		case systemOurs:
			s, stop, err = startOurs(ctx, f, log, rdb, db, weatherURL)
		case systemSeed:
			progress("starting the seed's stack (BullMQ and Node)")
			s, stop, err = startSeed(f, weatherURL, devenv.JWTSecret(), devenv.Issuer, db.Schema())
		}
		if err != nil {
			return nil, stops.stop, err
		}
		stops.add(stop)
		s.procs = append(s.procs, services...)
		s.procs = append(s.procs, proc{name: harnessProc, pid: os.Getpid()})
		systems = append(systems, s)
	}
	return systems, stops.stop, nil
}

// stopper runs the stop functions added to it, the last added first.
type stopper []func()

func (s *stopper) add(stop func()) { *s = append(*s, stop) }

func (s *stopper) stop() {
	for i := len(*s) - 1; i >= 0; i-- {
		(*s)[i]()
	}
}

// warmUp brings every worker of each system up and exercises its path once, then waits for
// its jobs to be gone.
func warmUp(ctx context.Context, f flags, systems []*system, users []user) error {
	for _, s := range systems {
		progress("%s: warm-up, %d jobs", s.name, 2*f.workers)
		warm := runRate(ctx, s, users, 10, 2*f.workers, f.pollers, 2*time.Minute)
		if sum := summarize(warm); sum.completed != len(warm) {
			return fmt.Errorf("%s warm-up: %d of %d jobs completed (first error: %s; logs in %s)", s.name, sum.completed, len(warm), sum.firstErr, f.logDir)
		}
		if s.cr != nil {
			if err := s.cr.waitNoJobs(ctx, f.retention+2*time.Minute); err != nil {
				return err
			}
		}
	}
	return nil
}

// measureRates measures each rate on each system in turn, then searches each system's highest
// rate within the goals. It searches no lower than the rate whose jobs take 80% of
// -rate-timeout to post: a slower run could not finish within it.
func measureRates(ctx context.Context, f flags, systems []*system, users []user) ([]rateRow, error) {
	var rows []rateRow
	for _, rate := range f.rates {
		for _, s := range systems {
			row, err := measureRate(ctx, f, s, users, rate)
			if err != nil {
				return nil, err
			}
			rows = append(rows, row)
		}
	}
	slowest := max(1, float64(f.jobs)/(0.8*f.rateTimeout.Seconds()))
	for _, s := range systems {
		for step := 0; step < f.searchSteps; step++ {
			rate, ok := nextSearchRate(rowsOf(rows, s.name), slowest)
			if !ok {
				break
			}
			row, err := measureRate(ctx, f, s, users, rate)
			if err != nil {
				return nil, err
			}
			rows = append(rows, row)
		}
	}
	return rows, nil
}

// harnessProc is this process: the driver, and for ours the controller and the facade too.
const harnessProc = "harness (driver; ours: + controller, facade)"

// measureRate drives one system at one rate and measures it: to the last completion, and on the
// CR path etcd's share of the live jobs, then to their TTL deletions.
func measureRate(ctx context.Context, f flags, s *system, users []user, rate float64) (rateRow, error) {
	row := rateRow{system: s.name, rate: rate, procs: s.procs, cr: s.cr != nil}
	var err error
	if s.cr != nil {
		if err := s.cr.deleteEvents(ctx); err != nil { // the previous rate's, so that only this rate's count
			return row, err
		}
	}
	if row.before, err = s.snapshot(ctx, true); err != nil {
		return row, err
	}
	progress("%s, rate %g/s: %d jobs", s.name, rate, f.jobs)
	stopProfiles, err := startProfiles(ctx, f, s, rate)
	if err != nil {
		return row, err
	}
	results := runRate(ctx, s, users, rate, f.jobs, f.pollers, f.rateTimeout)
	if err := stopProfiles(); err != nil {
		return row, err
	}
	row.s = summarize(results)
	row.s.jobs = f.jobs
	progress("%s, rate %g/s: %d accepted, %d completed, %d failed (first error: %s)", s.name, rate, row.s.accepted, row.s.completed, row.s.failed, row.s.firstErr)
	if s.cr != nil {
		if err := s.cr.waitFinished(ctx, time.Minute); err != nil {
			return row, err
		}
	}
	time.Sleep(time.Second) // the last completion's CPU
	if row.done, err = s.snapshot(ctx, false); err != nil {
		return row, err
	}
	row.sized, row.gone = row.done, row.done
	if s.cr == nil {
		return row, ctx.Err()
	}
	if row.objects, err = s.cr.objectSizes(ctx); err != nil {
		return row, err
	}
	if row.compactedInUse, err = s.cr.compactedInUse(ctx); err != nil {
		return row, err
	}
	// What a live job holds once its Event expired (an hour after it, by the kube-apiserver's
	// --event-ttl): the same without the Events.
	if err := s.cr.deleteEvents(ctx); err != nil {
		return row, err
	}
	if row.compactedNoEvents, err = s.cr.compactedInUse(ctx); err != nil {
		return row, err
	}
	// The TTL deletions' CPU is counted from here, past the harness's compactions.
	if row.sized, err = s.snapshot(ctx, false); err != nil {
		return row, err
	}
	progress("%s, rate %g/s: waiting for the TTL deletions", s.name, rate)
	row.ttlErr = s.cr.waitNoJobs(ctx, f.retention+2*time.Minute)
	if row.gone, err = s.snapshot(ctx, false); err != nil {
		return row, err
	}
	return row, ctx.Err()
}

// startOurs runs the CR path: an envtest control plane with a JobQueue without a rate limit,
// the controller and the facade in this process, and f.workers worker processes.
func startOurs(ctx context.Context, f flags, log logr.Logger, rdb redis.UniversalClient, db *store.Store, weatherURL string) (*system, func(), error) {
	bin, err := filepath.Abs(f.bin)
	if err != nil {
		return nil, nil, err
	}
	if _, err := os.Stat(bin); err != nil {
		return nil, nil, fmt.Errorf("worker binary (make build): %w", err)
	}
	var stops stopper
	fail := func(err error) (*system, func(), error) {
		stops.stop()
		return nil, nil, err
	}
	cp, err := startControlPlane(ctx, f, &stops)
	if err != nil {
		return fail(err)
	}
	api, err := startControllerAndFacade(ctx, f, log, rdb, db, cp.cfg, &stops)
	if err != nil {
		return fail(err)
	}
	records := queue.New(rdb).Queue(f.namespace, string(jobsv1alpha1.QueueEnrichment))
	s := &system{name: systemOurs, api: api,
		times: func(ctx context.Context, id string, _ map[string]any) (time.Time, time.Time, error) {
			record, err := records.Get(ctx, id)
			if err != nil {
				return time.Time{}, time.Time{}, err
			}
			return record.ProcessedAt, record.FinishedAt, nil
		},
	}

	procs, stopWorkers, err := startWorkers(f, bin, cp.kubeconfigPath, weatherURL)
	if err != nil {
		return fail(err)
	}
	stops.add(stopWorkers)
	for _, name := range []string{"kube-apiserver", "etcd"} {
		pid, err := childByName(name)
		if err != nil {
			return fail(err)
		}
		procs = append(procs, proc{name: name, pid: pid})
	}
	s.procs = procs
	hc, err := rest.HTTPClientFor(cp.cfg)
	if err != nil {
		return fail(err)
	}
	s.cr = &measurer{hc: hc, host: cp.cfg.Host, etcdURL: cp.env.ControlPlane.Etcd.URL.String(), kube: cp.kube,
		namespace: f.namespace, exampleDir: f.logDir}
	return s, stops.stop, nil
}

// controlPlane is a running envtest kube-apiserver and etcd, reached as an admin.
type controlPlane struct {
	env            *envtest.Environment
	cfg            *rest.Config
	kubeconfigPath string // for the worker processes
	kube           client.Client
}

// startControlPlane starts etcd and the kube-apiserver with the CRDs, and creates the namespace
// and its enrichment JobQueue: no rate limit, no autoscaling, f.retention.
func startControlPlane(ctx context.Context, f flags, stops *stopper) (*controlPlane, error) {
	progress("starting etcd and kube-apiserver (KUBEBUILDER_ASSETS=%s)", os.Getenv("KUBEBUILDER_ASSETS"))
	cp := &controlPlane{env: &envtest.Environment{CRDDirectoryPaths: []string{f.crdDir}, ErrorIfCRDPathMissing: true}}
	stops.add(func() {
		progress("stopping the control plane")
		_ = cp.env.Stop()
	})
	if _, err := cp.env.Start(); err != nil {
		return nil, fmt.Errorf("start control plane (is KUBEBUILDER_ASSETS set?): %w", err)
	}
	admin, err := cp.env.AddUser(envtest.User{Name: "bench-admin", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return nil, err
	}
	cp.cfg = admin.Config()
	kubeconfig, err := admin.KubeConfig()
	if err != nil {
		return nil, err
	}
	if cp.kubeconfigPath, err = filepath.Abs(filepath.Join(f.logDir, "kubeconfig")); err != nil {
		return nil, err
	}
	if err := os.WriteFile(cp.kubeconfigPath, kubeconfig, 0o600); err != nil {
		return nil, err
	}
	if cp.kube, err = client.New(cp.cfg, client.Options{Scheme: scheme.New()}); err != nil {
		return nil, err
	}
	if err := cp.kube.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: f.namespace}}); err != nil {
		return nil, fmt.Errorf("namespace: %w", err)
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
	if err := cp.kube.Create(ctx, jq); err != nil {
		return nil, fmt.Errorf("JobQueue: %w", err)
	}
	return cp, nil
}

// startControllerAndFacade runs the controller manager and the REST facade in this process, and
// returns a client of the facade.
func startControllerAndFacade(ctx context.Context, f flags, log logr.Logger, rdb redis.UniversalClient, db *store.Store,
	cfg *rest.Config, stops *stopper) (*apiClient, error) {
	ctrlCfg := rest.CopyConfig(cfg)
	ctrlCfg.QPS, ctrlCfg.Burst = controllers.DefaultKubeQPS, controllers.DefaultKubeBurst // as the controller command
	opts := controllers.DefaultOptions()
	opts.History = db
	mgr, err := controllers.NewManager(ctrlCfg, controllers.ManagerConfig{Redis: rdb, MetricsAddr: "0", ProbeAddr: "0",
		Namespaces: []string{f.namespace}, Options: opts, Logger: log.WithName("controller")})
	if err != nil {
		return nil, err
	}
	runCtx, cancelRun := context.WithCancel(ctx)
	mgrDone := make(chan struct{})
	go func() {
		defer close(mgrDone)
		if err := mgr.Start(runCtx); err != nil {
			log.Error(err, "Controller manager stopped")
		}
	}()
	stops.add(func() { cancelRun(); <-mgrDone })

	server, err := apiserver.Connect(runCtx, cfg, apiserver.Config{Namespace: f.namespace, Redis: rdb, Store: db,
		JWTSecret: []byte(devenv.JWTSecret()), Issuer: devenv.Issuer}, apiserver.WithLogger(log.WithName("apiserver")))
	if err != nil {
		return nil, fmt.Errorf("facade: %w", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	go func() {
		if err := server.Serve(runCtx, l, nil); err != nil {
			log.Error(err, "Facade stopped")
		}
	}()
	return newAPIClient("http://" + l.Addr().String()), nil
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
