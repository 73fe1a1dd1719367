// Package faults runs the whole system — the kube-apiserver (envtest), the controller, the REST
// facade, several worker processes, Redis and PostgreSQL — under a fixed schedule of injected
// faults while a few hundred jobs go through the REST API, then checks that nothing was lost,
// repeated or stuck. The worker processes are real OS processes (test/faults/faultworker), so
// SIGKILL and SIGTERM are real; Redis and PostgreSQL are private servers the suite kills and
// restarts.
package faults

import (
	"cmp"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/jackc/pgx/v5/pgxpool"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	jobsv1alpha1 "github.com/jengu/queue-operator/api/v1alpha1"
	"github.com/jengu/queue-operator/apiserver"
	"github.com/jengu/queue-operator/internal/testenv"
	"github.com/jengu/queue-operator/internal/testpg"
	"github.com/jengu/queue-operator/internal/testproxy"
	"github.com/jengu/queue-operator/internal/testredis"
	"github.com/jengu/queue-operator/queue"
	"github.com/jengu/queue-operator/store"
	"github.com/jengu/queue-operator/test/faults/faultproc"
)

var env *testenv.Env

func TestMain(m *testing.M) { testenv.Main(m, &env) }

const (
	jobCount = 300
	// burst jobs are submitted together just before each fault, so that every fault meets
	// jobs waiting and running; the others trickle in evenly over trickleOver.
	burst       = 20
	trickleOver = 90 * time.Second
	suiteUser   = "faults-user"
	// The JobQueue's retention, hence every job's TTL.
	retainCompleted = 15 * time.Second
	retainFailed    = 40 * time.Second
	// ttlMargin is how late past its TTL a CR may still be seen, besides any time the
	// controller could not act (cut, restarting): the controller's requeue, this suite's watch,
	// and a controller back from an outage working through every CR with one reconcile worker
	// (about 15 s for 300 CRs was seen). A CR that never goes, or waits for something slower,
	// still shows.
	ttlMargin = 30 * time.Second
	// How long Redis and PostgreSQL stay down when the schedule crashes them: about what a
	// restart takes in a cluster.
	redisDown    = 3 * time.Second
	postgresDown = 3 * time.Second
	// hardDeadline bounds the whole test; go test's default -timeout is 10 minutes.
	hardDeadline = 8 * time.Minute
)

// faultAt is when each fault of the schedule begins, from the first submission.
var faultAt = []time.Duration{6 * time.Second, 12 * time.Second, 18 * time.Second, 24 * time.Second,
	30 * time.Second, 54 * time.Second, 61 * time.Second, 68 * time.Second}

// slot is one submission of the schedule.
type slot struct {
	at time.Duration
	// burstOf is the fault (1-based) the job comes just before, 0 for the trickle.
	burstOf int
}

// submitSchedule is when each job is submitted, from the first submission: a burst half a second
// before each fault, the rest evenly spread.
func submitSchedule() []slot {
	var slots []slot
	for i, f := range faultAt {
		for range burst {
			slots = append(slots, slot{at: f - 500*time.Millisecond, burstOf: i + 1})
		}
	}
	trickle := jobCount - len(slots)
	for i := range trickle {
		slots = append(slots, slot{at: time.Duration(i) * trickleOver / time.Duration(trickle)})
	}
	slices.SortStableFunc(slots, func(a, b slot) int { return cmp.Compare(a.at, b.at) })
	return slots
}

// propertyFor is the behaviour of the i-th job: every 20th fails permanently, and of those one
// in three is retried and fails again, one in three is retried and completes.
func propertyFor(i int) string {
	if i%20 != 19 {
		return faultproc.PropertyOK
	}
	switch (i / 20) % 3 {
	case 0:
		return faultproc.PropertyFail
	case 1:
		return faultproc.PropertyRetryFail
	}
	return faultproc.PropertyRetryOK
}

func isRetried(property string) bool {
	return property == faultproc.PropertyRetryFail || property == faultproc.PropertyRetryOK
}

// job is one job the suite submitted.
type job struct {
	index       int
	burstOf     int
	id          string
	property    string
	submittedAt time.Time
	submitErr   error
	// The retry through POST /api/jobs/:id/retry, for the jobs whose property asks for one.
	retriedAt  time.Time
	retryTries int
	retryErr   error
}

// fault is one injected fault.
type fault struct {
	n          int
	name       string
	start, end time.Time
	detail     string
	// controllerOutage: the controller could not act meanwhile (TTL deletions wait).
	controllerOutage bool
	// jobs are the jobs the fault hit directly (held by a killed worker, in a lost reply).
	jobs []string
}

// suite is the state the test's goroutines share.
type suite struct {
	t      *testing.T
	start  time.Time
	mu     sync.Mutex
	jobs   []*job
	faults []*fault
}

func (s *suite) rel(at time.Time) string {
	if at.IsZero() {
		return "@never"
	}
	return fmt.Sprintf("@%+.1fs", at.Sub(s.start).Seconds())
}

func (s *suite) snapshot() []job {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]job, len(s.jobs))
	for i, j := range s.jobs {
		out[i] = *j
	}
	return out
}

// inject runs one fault and records it; its detail says what exactly happened.
func (s *suite) inject(name string, outage bool, do func(f *fault) string) {
	f := &fault{name: name, start: time.Now(), controllerOutage: outage}
	s.t.Logf("fault %d: %s %s", len(s.faults)+1, name, s.rel(f.start))
	f.detail = do(f)
	f.end = time.Now()
	s.mu.Lock()
	f.n = len(s.faults) + 1
	s.faults = append(s.faults, f)
	s.mu.Unlock()
	s.t.Logf("fault %d: %s done %s: %s", f.n, name, s.rel(f.end), f.detail)
}

// waitFor waits with Gomega's Eventually for cond; on timeout it reports the failure without
// stopping the test (the verdict still runs) and returns false.
func waitFor(t *testing.T, what string, timeout, poll time.Duration, cond func() bool) bool {
	failed := false
	g := NewGomega(func(message string, _ ...int) {
		failed = true
		t.Logf("waited %s for %s in vain", timeout, what)
	})
	g.Eventually(cond).WithTimeout(timeout).WithPolling(poll).Should(BeTrue(), what)
	return !failed
}

// sleepUntil sleeps until at or until ctx ends; false when ctx ended.
func sleepUntil(ctx context.Context, at time.Time) bool {
	d := time.Until(at)
	if d <= 0 {
		return ctx.Err() == nil
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-timer.C:
		return true
	}
}

func TestFaults(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), hardDeadline)
	defer cancel()
	g := NewWithT(t)
	logDir := os.Getenv("FAULTS_LOG_DIR")
	if logDir == "" {
		logDir = t.TempDir()
	} else {
		g.Expect(os.MkdirAll(logDir, 0o755)).To(Succeed())
	}
	t.Logf("component logs in %s (set FAULTS_LOG_DIR to keep them)", logDir)
	workerBin := buildWorker(ctx, t, t.TempDir())

	// Redis with AOF fsynced at every write: a kill -9 loses nothing Redis acknowledged.
	redisSrv := testredis.Start(t, "--appendonly", "yes", "--appendfsync", "always", "--maxmemory-policy", "noeviction")
	pg := testpg.Start(t)
	g.Expect(store.Migrate(ctx, pg.URL(), logr.Discard())).To(Succeed())
	db, err := store.Open(ctx, pg.URL())
	g.Expect(err).NotTo(HaveOccurred())
	t.Cleanup(db.Close)
	pool, err := pgxpool.New(ctx, pg.URL())
	g.Expect(err).NotTo(HaveOccurred())
	t.Cleanup(pool.Close)
	_, err = pool.Exec(ctx, faultproc.Schema)
	g.Expect(err).NotTo(HaveOccurred())
	for _, p := range []string{faultproc.PropertyOK, faultproc.PropertyFail, faultproc.PropertyRetryFail, faultproc.PropertyRetryOK} {
		_, err := db.UpsertProperty(ctx, store.Property{ID: p, UserID: suiteUser, CountryCode: "ES",
			Location: &store.Location{Latitude: 41.3874, Longitude: 2.1686}})
		g.Expect(err).NotTo(HaveOccurred())
	}

	ns := fmt.Sprintf("faults-%d", time.Now().UnixNano()%1_000_000)
	g.Expect(env.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})).To(Succeed())
	g.Expect(env.Client.Create(ctx, &jobsv1alpha1.JobQueue{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "enrichment"},
		Spec: jobsv1alpha1.JobQueueSpec{
			Queue:       jobsv1alpha1.QueueEnrichment,
			Concurrency: ptr.To[int32](2),
			Retry: jobsv1alpha1.RetryPolicy{Attempts: ptr.To[int32](5), Backoff: jobsv1alpha1.Backoff{
				Type: jobsv1alpha1.BackoffExponential, Delay: metav1.Duration{Duration: time.Second}, Multiplier: 2}},
			RateLimit:   &jobsv1alpha1.RateLimit{Max: 1000, Duration: metav1.Duration{Duration: time.Second}},
			Timeout:     metav1.Duration{Duration: 30 * time.Second},
			Retention:   jobsv1alpha1.Retention{Completed: metav1.Duration{Duration: retainCompleted}, Failed: metav1.Duration{Duration: retainFailed}},
			Autoscaling: jobsv1alpha1.Autoscaling{Enabled: ptr.To(false)},
		}})).To(Succeed())

	// The controller and the workers reach the kube-apiserver through a proxy the suite cuts;
	// the facade and the suite's own watch go straight.
	kubeProxy := testproxy.Start(t, hostOf(env.Config))
	controllerCfg := rest.CopyConfig(env.Config)
	controllerCfg.Host = "https://" + kubeProxy.Addr()
	controllerCfg.QPS, controllerCfg.Burst = 50, 100
	workerKubeconfig, err := writeKubeconfig(env, t.TempDir(), kubeProxy.Addr())
	g.Expect(err).NotTo(HaveOccurred())
	controllerLog := fileLogger(t, filepath.Join(logDir, "controller.log"))
	logf.SetLogger(controllerLog) // code that logs without a logger in its context
	controller := startController(t, controllerCfg, redisSrv.URL(), ns, db, controllerLog.WithValues("run", 1))

	secret := []byte("faults-jwt-secret-faults-jwt-secret-faults")
	facadeRedis, err := queue.NewRedisClient(redisSrv.URL())
	g.Expect(err).NotTo(HaveOccurred())
	t.Cleanup(func() { _ = facadeRedis.Close() })
	facadeCtx, stopFacade := context.WithCancel(ctx)
	t.Cleanup(stopFacade)
	facade, err := apiserver.Connect(facadeCtx, env.Config, apiserver.Config{Namespace: ns, Redis: facadeRedis, Store: db,
		JWTSecret: secret}, apiserver.WithLogger(fileLogger(t, filepath.Join(logDir, "facade.log"))))
	g.Expect(err).NotTo(HaveOccurred())
	listener := listenLoopback(t)
	go func() { _ = facade.Serve(facadeCtx, listener, nil) }()
	api, err := newRESTClient("http://"+listener.Addr().String(), secret, suiteUser)
	g.Expect(err).NotTo(HaveOccurred())

	tr, err := startTracker(ctx, env, ns)
	g.Expect(err).NotTo(HaveOccurred())

	// Three workers straight to Redis, a fourth through the proxy that loses a lease reply.
	dropper := startLeaseReplyDropper(t, redisSrv.Addr())
	spec := workerSpec{bin: workerBin, namespace: ns, databaseURL: pg.URL(), kubeconfig: workerKubeconfig, logDir: logDir}
	var workersMu sync.Mutex
	live := map[string]*workerProc{}
	all := []*workerProc{}
	startWorker := func(id, redisURL string) *workerProc {
		w := spec.start(t, id, redisURL)
		workersMu.Lock()
		defer workersMu.Unlock()
		live[id] = w
		all = append(all, w)
		return w
	}
	for _, id := range []string{"w1", "w2", "w3"} {
		startWorker(id, redisSrv.URL())
	}
	startWorker("w4-leaseproxy", "redis://"+dropper.Addr()+"/0")

	s := &suite{t: t, start: time.Now()}

	// The frontend: jobs through POST /api/files/:id/enrich, as submitSchedule says. A request that
	// fails (the facade reads PostgreSQL) is repeated with the same Idempotency-Key.
	submitCtx, stopSubmitting := context.WithCancel(ctx)
	defer stopSubmitting()
	submitted := make(chan struct{})
	go func() {
		defer close(submitted)
		for i, slot := range submitSchedule() {
			if !sleepUntil(submitCtx, s.start.Add(slot.at)) {
				return
			}
			j := &job{index: i, property: propertyFor(i), burstOf: slot.burstOf}
			for try := 0; try < 30 && submitCtx.Err() == nil; try++ {
				if j.id, j.submitErr = api.enqueue(submitCtx, j.property, fmt.Sprintf("%s-job-%d", ns, i)); j.submitErr == nil {
					break
				}
				sleepUntil(submitCtx, time.Now().Add(time.Second))
			}
			j.submittedAt = time.Now()
			s.mu.Lock()
			s.jobs = append(s.jobs, j)
			s.mu.Unlock()
		}
	}()

	// The user retrying failed jobs: each job whose property asks for it is retried once, as
	// soon as the REST API shows it failed.
	retryCtx, stopRetrying := context.WithCancel(ctx)
	defer stopRetrying()
	retrierDone := make(chan struct{})
	go func() {
		defer close(retrierDone)
		ticker := time.NewTicker(500 * time.Millisecond)
		defer ticker.Stop()
		for {
			select {
			case <-retryCtx.Done():
				return
			case <-ticker.C:
			}
			s.mu.Lock()
			var due []*job
			for _, j := range s.jobs {
				if isRetried(j.property) && j.id != "" && j.retriedAt.IsZero() && j.retryTries < 10 {
					due = append(due, j)
				}
			}
			s.mu.Unlock()
			for _, j := range due {
				status, err := api.status(retryCtx, j.id)
				if err != nil || status != "failed" {
					continue
				}
				_, err = api.retry(retryCtx, j.id)
				s.mu.Lock()
				j.retryTries++
				j.retryErr = err
				if err == nil {
					j.retriedAt = time.Now()
				}
				s.mu.Unlock()
			}
		}
	}()

	// The schedule: one fault after another, a few seconds apart, while jobs keep coming.
	inFlight := func(worker string, recent bool) []string {
		q := `SELECT job_id FROM fault_runs WHERE worker = $1 AND finished_at IS NULL`
		if recent {
			q += ` AND started_at > clock_timestamp() - interval '1 second'`
		}
		rows, err := pool.Query(ctx, q+` ORDER BY id`, worker)
		if err != nil {
			return nil
		}
		defer rows.Close()
		var ids []string
		for rows.Next() {
			var id string
			if rows.Scan(&id) == nil {
				ids = append(ids, id)
			}
		}
		return ids
	}
	waitMidJob := func(w *workerProc) {
		waitFor(t, w.id+" to be mid-job", 15*time.Second, 20*time.Millisecond, func() bool { return len(inFlight(w.id, true)) > 0 })
	}
	at := func(d time.Duration) { sleepUntil(ctx, s.start.Add(d)) }
	redisClient := redisSrv.ClientFor(t)

	at(faultAt[0])
	s.inject("SIGKILL of worker w1 mid-job", false, func(f *fault) string {
		w := live["w1"]
		waitMidJob(w)
		w.signal(syscall.SIGKILL, "SIGKILL")
		<-w.done
		f.jobs = inFlight(w.id, false)
		startWorker("w1b", redisSrv.URL())
		return fmt.Sprintf("killed pid %d holding %v; started w1b", w.cmd.Process.Pid, f.jobs)
	})

	at(faultAt[1])
	s.inject("SIGTERM of worker w2 (graceful drain)", false, func(f *fault) string {
		w := live["w2"]
		waitMidJob(w)
		running := inFlight(w.id, false)
		f.jobs = running
		w.signal(syscall.SIGTERM, "SIGTERM")
		exited := waitFor(t, "w2 to drain and exit after SIGTERM", 30*time.Second, 100*time.Millisecond, w.exited)
		startWorker("w2b", redisSrv.URL())
		if !exited {
			t.Errorf("worker w2 did not exit within 30 s of SIGTERM")
			return fmt.Sprintf("SIGTERM with %v running: did not exit in 30 s; started w2b", running)
		}
		return fmt.Sprintf("SIGTERM with %v running; exit %v, still unfinished %v; started w2b", running, w.exitErr, inFlight(w.id, false))
	})

	at(faultAt[2])
	s.inject("Redis kill -9, restart from AOF 3 s later", false, func(*fault) string {
		before, _ := redisClient.DBSize(ctx).Result()
		began := time.Now()
		redisSrv.Kill()
		sleepUntil(ctx, began.Add(redisDown))
		redisSrv.Restart()
		after, _ := redisClient.DBSize(ctx).Result()
		return fmt.Sprintf("%d keys before the kill, %d after the restart (same port, AOF); down %s", before, after, time.Since(began).Round(time.Millisecond))
	})

	at(faultAt[3])
	s.inject("Redis FLUSHALL", false, func(*fault) string {
		before, _ := redisClient.DBSize(ctx).Result()
		if err := redisClient.FlushAll(ctx).Err(); err != nil {
			t.Errorf("FLUSHALL: %v", err)
			return "FLUSHALL failed: " + err.Error()
		}
		return fmt.Sprintf("flushed %d keys", before)
	})

	at(faultAt[4])
	s.inject("kube-apiserver cut for 20 s (controller and workers)", true, func(*fault) string {
		kubeProxy.SetUp(false)
		sleepUntil(ctx, time.Now().Add(20*time.Second))
		kubeProxy.SetUp(true)
		return "every connection through the proxy closed, new ones refused, for 20 s"
	})

	at(faultAt[5])
	s.inject("controller stopped and restarted", true, func(*fault) string {
		controller.stop()
		sleepUntil(ctx, time.Now().Add(2*time.Second))
		controller = startController(t, controllerCfg, redisSrv.URL(), ns, db, controllerLog.WithValues("run", 2))
		return "manager stopped (context cancelled), a new manager started 2 s later"
	})

	at(faultAt[6])
	s.inject("PostgreSQL crash and restart 3 s later", false, func(*fault) string {
		began := time.Now()
		if err := pg.Stop("immediate"); err != nil {
			t.Errorf("stop PostgreSQL: %v", err)
		}
		sleepUntil(ctx, began.Add(postgresDown))
		if err := pg.Start(); err != nil {
			t.Fatalf("start PostgreSQL again: %v", err)
		}
		return fmt.Sprintf("pg_ctl stop -m immediate (no checkpoint, recovery at start), started again; down %s", time.Since(began).Round(time.Millisecond))
	})

	at(faultAt[7])
	s.inject("lease reply lost (worker w4-leaseproxy)", false, func(f *fault) string {
		dropper.Arm()
		if !waitFor(t, "a lease reply to drop", 30*time.Second, 50*time.Millisecond, func() bool { return dropper.Dropped() != nil }) {
			t.Errorf("no lease reply of w4-leaseproxy carried a job within 30 s: the fault was not injected")
			return "not injected: no lease carried a job"
		}
		d := dropper.Dropped()
		f.jobs = d.Jobs
		return fmt.Sprintf("the lease of %v ran in Redis; its reply was swallowed and the worker's connection closed", d.Jobs)
	})

	select {
	case <-submitted:
	case <-ctx.Done():
	}
	submittedAll := time.Now()
	t.Logf("all jobs submitted %s", s.rel(submittedAll))

	// Every job ends: its CR terminal (or gone after being terminal), and a retried job terminal
	// again after its retry.
	settled := func() []string {
		var open []string
		for _, j := range s.snapshot() {
			if j.id == "" {
				continue
			}
			l, ok := tr.get(j.id)
			switch {
			case !ok || !l.phase.IsFinished():
				open = append(open, j.id)
			case isRetried(j.property) && j.retryTries < 10 && (j.retriedAt.IsZero() || !l.lastNonTerminal.After(j.retriedAt)):
				open = append(open, j.id)
			}
		}
		return open
	}
	waitFor(t, "every job to reach a terminal phase", 120*time.Second, time.Second, func() bool { return len(settled()) == 0 })
	stopRetrying()
	<-retrierDone
	t.Logf("settled %s", s.rel(time.Now()))

	// What the REST API says while the CRs live (some have expired already: then the history).
	apiLive := map[string]string{}
	waitFor(t, "the REST API to answer completed or failed for every job", 30*time.Second, time.Second, func() bool {
		done := true
		for _, j := range s.snapshot() {
			if j.id == "" || apiLive[j.id] == "completed" || apiLive[j.id] == "failed" {
				continue
			}
			st, err := api.status(ctx, j.id)
			if err != nil {
				st = "error: " + err.Error()
			}
			apiLive[j.id] = st
			if st != "completed" && st != "failed" {
				done = false
			}
		}
		return done
	})

	// Every CR goes once its TTL has passed.
	jobs := s.snapshot()
	faults := func() []*fault { s.mu.Lock(); defer s.mu.Unlock(); return append([]*fault(nil), s.faults...) }()
	lastDue := time.Now()
	for _, j := range jobs {
		if l, ok := tr.get(j.id); ok {
			if due := ttlDue(l, faults); due.After(lastDue) {
				lastDue = due
			}
		}
	}
	waitFor(t, "every CR to expire", max(time.Until(lastDue)+5*time.Second, 10*time.Second), time.Second, func() bool {
		for _, j := range jobs {
			if l, ok := tr.get(j.id); j.id != "" && (!ok || l.deletedAt.IsZero()) {
				return false
			}
		}
		return true
	})
	// Past the TTL the REST API answers from the history.
	apiHistory := map[string]string{}
	for _, j := range jobs {
		if j.id == "" {
			continue
		}
		st, err := api.status(ctx, j.id)
		if err != nil {
			st = "error: " + err.Error()
		}
		apiHistory[j.id] = st
	}

	// Stop the workers as Kubernetes would, then read what they did.
	workersMu.Lock()
	for _, w := range all {
		if !w.exited() {
			w.signal(syscall.SIGTERM, "SIGTERM at the end")
		}
	}
	workersMu.Unlock()
	for _, w := range all {
		select {
		case <-w.done:
		case <-time.After(30 * time.Second):
			t.Errorf("worker %s did not stop within 30 s of SIGTERM", w.id)
		}
	}
	controller.stop()
	stopFacade()
	for _, w := range all {
		w.mu.Lock()
		sig := w.signalled
		w.mu.Unlock()
		if sig == "" || (sig != "SIGKILL" && w.exitErr != nil) {
			t.Errorf("worker %s ended unexpectedly (signal sent: %q): %v (log %s)", w.id, sig, w.exitErr, w.logPath)
		}
		if data, err := os.ReadFile(w.logPath); err == nil && strings.Contains(string(data), "DATA RACE") {
			t.Errorf("worker %s reported a data race: see %s", w.id, w.logPath)
		}
	}

	facts, err := readFacts(context.Background(), pool, ns)
	g.Expect(err).NotTo(HaveOccurred())
	v := judge(s, jobs, faults, tr, facts, apiLive, apiHistory, workersSaid(logDir))
	v.report(t, s, jobs, faults, tr, facts, logDir)
}
