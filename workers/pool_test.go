package workers_test

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	jobsv1alpha1 "github.com/jengu/queue-operator/api/v1alpha1"
	"github.com/jengu/queue-operator/internal/testenv"
	"github.com/jengu/queue-operator/internal/testpg"
	"github.com/jengu/queue-operator/internal/testproxy"
	"github.com/jengu/queue-operator/internal/testredis"
	"github.com/jengu/queue-operator/queue"
	"github.com/jengu/queue-operator/store"
	"github.com/jengu/queue-operator/workers"
)

var env *testenv.Env

func TestMain(m *testing.M) {
	if os.Getenv("WORKER_PROCESS_NAMESPACE") != "" {
		os.Exit(workerProcessMain())
	}
	testenv.Main(m, &env)
}

const timeout = 15 * time.Second

var seq atomic.Int32

// fixture is one test's namespace, queue, and a pool that runs its processor.
type fixture struct {
	t     *testing.T
	ns    string
	queue *queue.Queue
	// kube is the client the pool's status writer uses.
	kube client.Client
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("wk-%d-%d", time.Now().Unix()%100000, seq.Add(1))}}
	if err := env.Client.Create(context.Background(), ns); err != nil {
		t.Fatalf("create namespace: %v", err)
	}
	return &fixture{t: t, ns: ns.Name, kube: env.Client, queue: queue.New(testredis.Shared(t), queue.WithMaxIdleWait(time.Second)).Queue(ns.Name, string(jobsv1alpha1.QueueEnrichment))}
}

// job creates an EnrichmentJob CR and enqueues it with the CR's UID, as the controller does.
func (f *fixture) job(name string, mutate ...func(*queue.EnqueueRequest)) *jobsv1alpha1.EnrichmentJob {
	f.t.Helper()
	job := &jobsv1alpha1.EnrichmentJob{
		ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: name},
		Spec: jobsv1alpha1.EnrichmentJobSpec{
			JobCommonSpec:    jobsv1alpha1.JobCommonSpec{PropertyID: "prop-1", UserID: "user-1"},
			EnrichmentFields: jobsv1alpha1.EnrichmentFields{Location: jobsv1alpha1.GeoLocation{Latitude: 41.38, Longitude: 2.17}},
		},
	}
	if err := env.Client.Create(context.Background(), job); err != nil {
		f.t.Fatalf("create job: %v", err)
	}
	req := queue.EnqueueRequest{ID: name, UID: string(job.UID), Payload: []byte(`{"propertyId":"prop-1"}`), MaxAttempts: 3,
		Backoff: queue.Backoff{Type: queue.BackoffFixed, Delay: 100 * time.Millisecond}, Timeout: time.Minute}
	for _, m := range mutate {
		m(&req)
	}
	if _, err := f.queue.Enqueue(context.Background(), req); err != nil {
		f.t.Fatalf("enqueue: %v", err)
	}
	return job
}

// run starts a pool with a status writer; the returned function stops it and waits.
func (f *fixture) run(p workers.Processor, opts ...workers.Option) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	writerCtx, cancelWriter := context.WithCancel(context.Background())
	writer := workers.NewCRStatusWriter(f.kube, f.queue,
		func() jobsv1alpha1.JobObject { return &jobsv1alpha1.EnrichmentJob{} }, time.Second, testr.New(f.t))
	writerDone := make(chan struct{})
	go func() { defer close(writerDone); writer.Run(writerCtx) }()
	opts = append([]workers.Option{workers.WithConcurrency(3), workers.WithLease(2*time.Second, 200*time.Millisecond),
		workers.WithStatus(writer), workers.WithLogger(testr.New(f.t)), workers.WithWorkerID("test-worker")}, opts...)
	pool := workers.NewPool(f.queue, p, opts...)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = pool.Run(ctx)
	}()
	stopped := false
	stop = func() {
		if !stopped {
			stopped = true
			cancel() // as SIGTERM: the pool drains, then the writer flushes what it reported
			<-done
			writer.Flush(context.Background())
			cancelWriter()
			<-writerDone
		}
	}
	f.t.Cleanup(stop)
	return stop
}

func (f *fixture) record(id string) func() *queue.Record {
	return func() *queue.Record {
		j, err := f.queue.Get(context.Background(), id)
		if err != nil {
			return &queue.Record{Error: err.Error()}
		}
		return j
	}
}

func (f *fixture) status(job *jobsv1alpha1.EnrichmentJob) func() jobsv1alpha1.JobStatus {
	return func() jobsv1alpha1.JobStatus {
		obj := &jobsv1alpha1.EnrichmentJob{}
		if err := env.Client.Get(context.Background(), client.ObjectKeyFromObject(job), obj); err != nil {
			return jobsv1alpha1.JobStatus{Message: err.Error()}
		}
		return obj.Status
	}
}

// watchPhases records the phase of each status write to job's CR from now on.
func (f *fixture) watchPhases(job *jobsv1alpha1.EnrichmentJob) func() []jobsv1alpha1.JobPhase {
	f.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	f.t.Cleanup(cancel)
	w, err := env.WatchClient().Watch(ctx, &jobsv1alpha1.EnrichmentJobList{}, client.InNamespace(f.ns),
		client.MatchingFields{"metadata.name": job.Name})
	if err != nil {
		f.t.Fatalf("watch %s: %v", job.Name, err)
	}
	var mu sync.Mutex
	var phases []jobsv1alpha1.JobPhase
	go func() {
		defer w.Stop()
		var version int64
		for e := range w.ResultChan() {
			obj, ok := e.Object.(*jobsv1alpha1.EnrichmentJob)
			if !ok || obj.Status.QueueVersion == version {
				continue
			}
			version = obj.Status.QueueVersion
			mu.Lock()
			phases = append(phases, obj.Status.Phase)
			mu.Unlock()
		}
	}()
	return func() []jobsv1alpha1.JobPhase {
		mu.Lock()
		defer mu.Unlock()
		return append([]jobsv1alpha1.JobPhase(nil), phases...)
	}
}

func TestJobCompletesWithProgressOnTheCR(t *testing.T) {
	g := NewWithT(t)
	f := newFixture(t)
	job := f.job("enrich-ok-1")
	release := make(chan struct{})
	f.run(workers.ProcessorFunc(func(ctx context.Context, j workers.Task, progress workers.Progress) ([]byte, error) {
		progress(50, "weather fetched")
		<-release
		return []byte(`{"rows":3}`), nil
	}))
	g.Eventually(func() jobsv1alpha1.JobStatus { return f.status(job)() }).WithTimeout(timeout).Should(
		And(HaveField("Phase", jobsv1alpha1.PhaseActive), HaveField("Progress", int32(50)), HaveField("Worker", "test-worker")))
	close(release)
	g.Eventually(func() jobsv1alpha1.JobPhase { return f.status(job)().Phase }).WithTimeout(timeout).Should(Equal(jobsv1alpha1.PhaseCompleted))
	g.Expect(f.status(job)().Progress).To(Equal(int32(100)))
	g.Expect(string(f.record(job.Name)().Result)).To(Equal(`{"rows":3}`))
}

func TestPanicIsAFailedAttemptThenRetried(t *testing.T) {
	g := NewWithT(t)
	f := newFixture(t)
	job := f.job("enrich-panic-1")
	f.run(workers.ProcessorFunc(func(ctx context.Context, j workers.Task, _ workers.Progress) ([]byte, error) {
		if j.Attempt == 1 {
			panic("nil map in processor")
		}
		return nil, nil
	}))
	g.Eventually(func() jobsv1alpha1.JobPhase { return f.status(job)().Phase }).WithTimeout(timeout).Should(Equal(jobsv1alpha1.PhaseCompleted))
	g.Expect(f.record(job.Name)().AttemptsMade).To(Equal(2))
	g.Expect(f.status(job)().AttemptsMade).To(Equal(int32(2)))
}

func TestPermanentErrorGoesToTheDeadLetterSetAtOnce(t *testing.T) {
	g := NewWithT(t)
	f := newFixture(t)
	job := f.job("enrich-invalid-1")
	f.run(workers.ProcessorFunc(func(context.Context, workers.Task, workers.Progress) ([]byte, error) {
		return nil, workers.Permanent(errors.New("property prop-1 no longer exists"))
	}))
	g.Eventually(func() jobsv1alpha1.JobPhase { return f.status(job)().Phase }).WithTimeout(timeout).Should(Equal(jobsv1alpha1.PhaseFailed))
	status := f.status(job)()
	g.Expect(status.AttemptsMade).To(Equal(int32(1)))
	g.Expect(status.Message).To(ContainSubstring("no longer exists"))
}

func TestRateLimitedAttemptIsNotCounted(t *testing.T) {
	g := NewWithT(t)
	f := newFixture(t)
	job := f.job("enrich-429-1")
	var mu sync.Mutex
	var attempts []int
	var calls atomic.Int32
	f.run(workers.ProcessorFunc(func(_ context.Context, j workers.Task, _ workers.Progress) ([]byte, error) {
		mu.Lock()
		attempts = append(attempts, j.Attempt)
		mu.Unlock()
		if calls.Add(1) == 1 {
			return nil, workers.RateLimited(errors.New("HTTP 429 from Open-Meteo"), 300*time.Millisecond)
		}
		return nil, nil
	}), workers.WithConcurrency(1))
	g.Eventually(func() jobsv1alpha1.JobPhase { return f.status(job)().Phase }).WithTimeout(timeout).Should(Equal(jobsv1alpha1.PhaseCompleted))
	mu.Lock()
	defer mu.Unlock()
	g.Expect(attempts).To(Equal([]int{1, 1}), "the rate-limited attempt was not counted")
	g.Expect(f.record(job.Name)().AttemptsMade).To(Equal(1))
}

func TestTimeoutCancelsTheJobContext(t *testing.T) {
	g := NewWithT(t)
	f := newFixture(t)
	job := f.job("enrich-slow-1", func(r *queue.EnqueueRequest) { r.Timeout = 300 * time.Millisecond; r.MaxAttempts = 1 })
	sawCancel := make(chan struct{}, 1)
	f.run(workers.ProcessorFunc(func(ctx context.Context, _ workers.Task, _ workers.Progress) ([]byte, error) {
		<-ctx.Done()
		sawCancel <- struct{}{}
		return nil, ctx.Err()
	}))
	g.Eventually(sawCancel).WithTimeout(timeout).Should(Receive())
	g.Eventually(func() jobsv1alpha1.JobPhase { return f.status(job)().Phase }).WithTimeout(timeout).Should(Equal(jobsv1alpha1.PhaseFailed))
	g.Expect(f.record(job.Name)().Error).To(ContainSubstring("timed out after 300ms"))
	stats, err := f.queue.Stats(context.Background())
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(stats.Failed).To(Equal(map[string]uint64{queue.FailedTimeout: 1}), "the engine counts it as a timeout, not an error")
}

func TestRemovedJobIsCancelledWithinAHeartbeat(t *testing.T) {
	g := NewWithT(t)
	f := newFixture(t)
	job := f.job("enrich-cancel-1")
	started, cancelled := make(chan struct{}), make(chan error, 1)
	f.run(workers.ProcessorFunc(func(ctx context.Context, _ workers.Task, _ workers.Progress) ([]byte, error) {
		close(started)
		<-ctx.Done()
		cancelled <- context.Cause(ctx)
		return nil, ctx.Err()
	}))
	g.Eventually(started).WithTimeout(timeout).Should(BeClosed())
	_, err := f.queue.Remove(context.Background(), job.Name, "")
	g.Expect(err).NotTo(HaveOccurred())
	// The heartbeat runs every 200 ms; allow a few for a loaded machine.
	var cause error
	g.Eventually(cancelled).WithTimeout(timeout).Should(Receive(&cause))
	g.Expect(cause).To(MatchError(ContainSubstring("removed")))
}

func TestShutdownHandsUnfinishedJobsBack(t *testing.T) {
	g := NewWithT(t)
	f := newFixture(t)
	job := f.job("enrich-long-1")
	started := make(chan struct{})
	stop := f.run(workers.ProcessorFunc(func(ctx context.Context, _ workers.Task, _ workers.Progress) ([]byte, error) {
		close(started)
		<-ctx.Done() // a long job: it ends only when the worker gives up on it
		return nil, ctx.Err()
	}), workers.WithShutdownGrace(300*time.Millisecond))
	g.Eventually(started).WithTimeout(timeout).Should(BeClosed())
	stop()
	record := f.record(job.Name)()
	g.Expect(record.State).To(Equal(queue.StateWaiting), "handed back")
	g.Expect(record.AttemptsMade).To(BeZero(), "no attempt counted")
	g.Eventually(func() jobsv1alpha1.JobPhase { return f.status(job)().Phase }).WithTimeout(timeout).Should(Equal(jobsv1alpha1.PhaseWaiting))
}

func TestAPIServerOutageDoesNotStopProcessing(t *testing.T) {
	g := NewWithT(t)
	f := newFixture(t)
	job := f.job("enrich-outage-1")
	// The pool reaches the kube-apiserver through a proxy the test cuts for 20 s.
	apiserver, err := url.Parse(env.Config.Host)
	g.Expect(err).NotTo(HaveOccurred())
	proxy := testproxy.Start(t, apiserver.Host)
	cfg := rest.CopyConfig(env.Config)
	cfg.Host = "https://" + proxy.Addr()
	f.kube, err = client.New(cfg, client.Options{Scheme: env.Scheme})
	g.Expect(err).NotTo(HaveOccurred())

	release := make(chan struct{})
	f.run(workers.ProcessorFunc(func(ctx context.Context, _ workers.Task, progress workers.Progress) ([]byte, error) {
		<-release
		progress(80, "almost")
		return []byte(`{"ok":true}`), nil
	}))
	g.Eventually(func() jobsv1alpha1.JobPhase { return f.status(job)().Phase }).WithTimeout(timeout).Should(Equal(jobsv1alpha1.PhaseActive))

	proxy.SetUp(false)
	down := time.Now()
	close(release)
	g.Eventually(func() queue.State { return f.record(job.Name)().State }).WithTimeout(timeout).Should(Equal(queue.StateCompleted),
		"processing goes on while the API server is away")
	g.Expect(f.status(job)().Phase).To(Equal(jobsv1alpha1.PhaseActive), "the CR could not be written yet")
	time.Sleep(20*time.Second - time.Since(down))
	proxy.SetUp(true)
	g.Eventually(func() jobsv1alpha1.JobPhase { return f.status(job)().Phase }).WithTimeout(45*time.Second).
		Should(Equal(jobsv1alpha1.PhaseCompleted), "the CR catches up after the outage")
}

func TestKubeSecretsReadsOnlyTheUsersLabelledCredentials(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	secret := func(name string, labels map[string]string, data map[string][]byte) {
		s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: name, Labels: labels}, Data: data}
		if err := env.Client.Create(ctx, s); err != nil {
			t.Fatalf("create secret: %v", err)
		}
	}
	owned := func(user string) map[string]string {
		return map[string]string{jobsv1alpha1.LabelCredential: "true", jobsv1alpha1.LabelCredentialOwner: user}
	}
	key := map[string][]byte{"calendarificApiKey": []byte("k-123")}
	secret("calendarific", owned("user-1"), key)
	secret("unlabelled", map[string]string{jobsv1alpha1.LabelCredentialOwner: "user-1"}, key)
	secret("unowned", map[string]string{jobsv1alpha1.LabelCredential: "true"}, key)
	secret("of-user-2", owned("user-2"), key)
	secret("empty", owned("user-1"), nil)
	secrets := workers.KubeSecrets{Client: env.Client}
	tests := []struct {
		name, want, wantDetail string
	}{
		{"calendarific", "k-123", ""},
		{"unlabelled", "", "not labelled"},
		{"unowned", "", `labelled jobs.jengu.io/user="", the job's user is "user-1"`},
		{"of-user-2", "", `labelled jobs.jengu.io/user="user-2", the job's user is "user-1"`},
		{"empty", "", "no key"},
		{"missing", "", "not found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			got, err := secrets.SecretValue(ctx, workers.CredentialRef{Namespace: f.ns, Name: tt.name, Key: "calendarificApiKey", UserID: "user-1"})
			if tt.wantDetail == "" {
				g.Expect(err).NotTo(HaveOccurred())
				g.Expect(got).To(Equal(tt.want))
				return
			}
			var permanent *workers.PermanentError
			g.Expect(errors.As(err, &permanent)).To(BeTrue(), "%v", err)
			g.Expect(err.Error()).To(ContainSubstring(tt.wantDetail), "the detail, for the log and the Events")
			g.Expect(workers.PublicReason(err, nil)).To(Equal(`credential Secret "`+tt.name+`" cannot be used by this job: `+
				`it must exist in the job's namespace, be labelled jobs.jengu.io/credential=true and jobs.jengu.io/user=<the job's userId>, `+
				`and hold the key calendarificApiKey`), "one message for the user, whatever the cause")
		})
	}
}

func TestFinishedJobsAreRecordedInTheHistory(t *testing.T) {
	g := NewWithT(t)
	f := newFixture(t)
	db := testpg.OpenShared(t)
	ctx := context.Background()
	property := "prop-h-" + f.ns
	if _, err := db.UpsertProperty(ctx, store.Property{ID: property, UserID: "user-h"}); err != nil {
		t.Fatal(err)
	}
	// Each job names a stored input (as an AnalyticsJob's inputRef does) under its own name.
	ok, bad := "enrich-hist-ok-"+f.ns, "enrich-hist-bad-"+f.ns
	for _, id := range []string{ok, bad} {
		if err := db.SaveAnalyticsInput(ctx, store.AnalyticsInput{ID: id, PropertyID: property, UserID: "user-h",
			Rows: []byte(`[{"date":"2026-01-01","price":1}]`)}); err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range []string{ok, bad} {
		f.job(id, func(r *queue.EnqueueRequest) {
			r.Payload = []byte(`{"propertyId":"` + property + `","userId":"user-h","inputRef":"` + id + `"}`)
		})
	}
	f.run(workers.ProcessorFunc(func(_ context.Context, j workers.Task, _ workers.Progress) ([]byte, error) {
		if j.ID == bad {
			return nil, workers.Permanent(errors.New("no location for property prop-h"))
		}
		return []byte(`{"rows":7}`), nil
	}), workers.WithResults(db))

	result := func(id string) func() store.JobResult {
		return func() store.JobResult {
			r, _ := db.GetJobResult(context.Background(), f.ns, id)
			return r
		}
	}
	g.Eventually(result(ok)).WithTimeout(timeout).Should(And(
		HaveField("Status", store.JobCompleted), HaveField("Queue", "enrichment"), HaveField("Namespace", f.ns),
		HaveField("UserID", "user-h"), HaveField("PropertyID", property), HaveField("Attempts", 1)))
	g.Expect(string(result(ok)().Result)).To(MatchJSON(`{"rows":7}`))
	g.Eventually(result(bad)).WithTimeout(timeout).Should(And(
		HaveField("Status", store.JobFailed), HaveField("Error", ContainSubstring("no location")), HaveField("Attempts", 1)))

	// The completed job's input went with its history row; the failed one's stays for a retry
	// from the dead letter set (the controller releases it when the CR expires).
	_, err := db.GetAnalyticsInput(ctx, ok)
	g.Expect(err).To(MatchError(store.ErrNotFound))
	_, err = db.GetAnalyticsInput(ctx, bad)
	g.Expect(err).NotTo(HaveOccurred())
}
