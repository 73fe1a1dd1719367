package controllers_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"github.com/redis/go-redis/v9"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"

	jobsv1alpha1 "github.com/jengu/queue-operator/api/v1alpha1"
	"github.com/jengu/queue-operator/controllers"
	"github.com/jengu/queue-operator/internal/testenv"
	"github.com/jengu/queue-operator/internal/testredis"
	"github.com/jengu/queue-operator/queue"
)

var env *testenv.Env

func TestMain(m *testing.M) { testenv.Main(m, &env) }

var nsSeq atomic.Int32

// fixture is one test's namespace, Redis and running controller.
type fixture struct {
	t      *testing.T
	ns     string
	rdb    redis.UniversalClient
	engine *queue.Engine
	c      client.Client
	stop   context.CancelFunc
	done   chan struct{}
}

// testOptions are short versions of the production timings.
func testOptions() controllers.Options {
	return controllers.Options{
		ResyncPeriod:         2 * time.Second,
		RedisDownGrace:       3 * time.Second,
		HousekeepingInterval: 500 * time.Millisecond,
		OrphanAge:            time.Second,
		MaxStalls:            1,
		Clock:                clock.RealClock{},
	}
}

// newFixture creates a namespace of the test's own and starts a controller scoped to it,
// against rdb (the shared Redis when nil).
func newFixture(t *testing.T, rdb redis.UniversalClient, opts controllers.Options) *fixture {
	t.Helper()
	if rdb == nil {
		rdb = testredis.Shared(t)
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("ctl-%d-%d", time.Now().Unix()%100000, nsSeq.Add(1))}}
	if err := env.Client.Create(context.Background(), ns); err != nil {
		t.Fatalf("create namespace: %v", err)
	}
	f := &fixture{t: t, ns: ns.Name, rdb: rdb, engine: queue.New(rdb), c: env.Client}
	f.start(opts)
	t.Cleanup(f.stopController)
	return f
}

func (f *fixture) start(opts controllers.Options) {
	f.t.Helper()
	mgr, err := controllers.NewManager(env.Config, controllers.ManagerConfig{
		Redis: f.rdb, MetricsAddr: "0", ProbeAddr: "0", Namespaces: []string{f.ns}, Options: opts,
		SkipNameValidation: true,
	})
	if err != nil {
		f.t.Fatalf("new manager: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	f.stop, f.done = cancel, make(chan struct{})
	go func() {
		defer close(f.done)
		if err := mgr.Start(ctx); err != nil {
			f.t.Errorf("manager: %v", err)
		}
	}()
}

func (f *fixture) stopController() {
	if f.stop != nil {
		f.stop()
		<-f.done
		f.stop = nil
	}
}

// jobQueue creates the namespace's JobQueue for q with a short backoff.
func (f *fixture) jobQueue(q jobsv1alpha1.QueueName, mutate ...func(*jobsv1alpha1.JobQueue)) *jobsv1alpha1.JobQueue {
	f.t.Helper()
	attempts := int32(3)
	jq := &jobsv1alpha1.JobQueue{
		ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: string(q)},
		Spec: jobsv1alpha1.JobQueueSpec{Queue: q, Retry: jobsv1alpha1.RetryPolicy{Attempts: &attempts,
			Backoff: jobsv1alpha1.Backoff{Type: jobsv1alpha1.BackoffFixed, Delay: metav1.Duration{Duration: 300 * time.Millisecond}, Multiplier: 1}}},
	}
	for _, m := range mutate {
		m(jq)
	}
	if err := f.c.Create(context.Background(), jq); err != nil {
		f.t.Fatalf("create JobQueue: %v", err)
	}
	return jq
}

func (f *fixture) queue(q jobsv1alpha1.QueueName) *queue.Queue {
	return f.engine.Queue(f.ns, string(q))
}

func (f *fixture) enrichmentJob(name string) *jobsv1alpha1.EnrichmentJob {
	return &jobsv1alpha1.EnrichmentJob{
		ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: name},
		Spec: jobsv1alpha1.EnrichmentJobSpec{
			JobCommonSpec: jobsv1alpha1.JobCommonSpec{PropertyID: "prop-1", UserID: "user-1"},
			EnrichmentFields: jobsv1alpha1.EnrichmentFields{
				Location:    jobsv1alpha1.GeoLocation{Latitude: 41.38, Longitude: 2.17},
				CountryCode: "ES",
			},
		},
	}
}

func (f *fixture) create(obj client.Object) {
	f.t.Helper()
	if err := f.c.Create(context.Background(), obj); err != nil {
		f.t.Fatalf("create %s: %v", obj.GetName(), err)
	}
}

// status reads a job's status through the direct client.
func (f *fixture) status(obj jobsv1alpha1.JobObject) func() jobsv1alpha1.JobStatus {
	return func() jobsv1alpha1.JobStatus {
		o := obj.DeepCopyObject().(client.Object)
		if err := f.c.Get(context.Background(), client.ObjectKeyFromObject(o), o); err != nil {
			return jobsv1alpha1.JobStatus{Message: "get: " + err.Error()}
		}
		return *o.(jobsv1alpha1.JobObject).JobStatus()
	}
}

func (f *fixture) phase(obj jobsv1alpha1.JobObject) func() jobsv1alpha1.JobPhase {
	return func() jobsv1alpha1.JobPhase { return f.status(obj)().Phase }
}

// annotateRetry asks for a retry of job with token, as kubectl annotate or the facade does.
func (f *fixture) annotateRetry(g Gomega, job *jobsv1alpha1.EnrichmentJob, token string) {
	obj := &jobsv1alpha1.EnrichmentJob{}
	g.Expect(f.c.Get(context.Background(), client.ObjectKeyFromObject(job), obj)).To(Succeed())
	before := obj.DeepCopy()
	obj.SetAnnotations(map[string]string{jobsv1alpha1.AnnotationRetry: token})
	g.Expect(f.c.Patch(context.Background(), obj, client.MergeFrom(before))).To(Succeed())
}

// leaseOne leases the job when it is due, failing the test if it does not come.
func (f *fixture) leaseOne(g Gomega, q *queue.Queue, worker string) *queue.Record {
	var job *queue.Record
	g.Eventually(func() int {
		res, err := q.Lease(context.Background(), worker, 1, 30*time.Second)
		g.Expect(err).NotTo(HaveOccurred())
		if len(res.Jobs) == 1 {
			job = res.Jobs[0]
		}
		return len(res.Jobs)
	}).WithTimeout(10 * time.Second).WithPolling(50 * time.Millisecond).Should(Equal(1))
	return job
}

// waitingEnrichmentJob creates the enrichment JobQueue and a job, and waits for it to be Waiting.
func (f *fixture) waitingEnrichmentJob(g Gomega, name string) (*jobsv1alpha1.EnrichmentJob, *queue.Queue) {
	f.jobQueue(jobsv1alpha1.QueueEnrichment)
	job := f.enrichmentJob(name)
	f.create(job)
	g.Eventually(f.phase(job)).WithTimeout(timeout).Should(Equal(jobsv1alpha1.PhaseWaiting))
	return job, f.queue(jobsv1alpha1.QueueEnrichment)
}
