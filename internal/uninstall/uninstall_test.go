package uninstall_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	jobsv1alpha1 "github.com/jengu/queue-operator/api/v1alpha1"
	"github.com/jengu/queue-operator/controllers"
	"github.com/jengu/queue-operator/internal/testenv"
	"github.com/jengu/queue-operator/internal/testredis"
	"github.com/jengu/queue-operator/internal/uninstall"
	"github.com/jengu/queue-operator/queue"
)

var env *testenv.Env

func TestMain(m *testing.M) { testenv.Main(m, &env) }

var nsSeq atomic.Int32

func newNamespace(t *testing.T) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("uninstall-%d-%d", time.Now().Unix()%100000, nsSeq.Add(1))}}
	if err := env.Client.Create(context.Background(), ns); err != nil {
		t.Fatalf("create namespace: %v", err)
	}
	return ns.Name
}

// sample reads config/samples/<file> into obj, in namespace ns.
func sample(t *testing.T, file, ns string, obj client.Object) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "config", "samples", file))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(data, obj); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	obj.SetNamespace(ns)
}

// createJobs creates a sample job of every kind, stamped with the finalizer as the facade does,
// and a JobSchedule.
func createJobs(t *testing.T, ns string) []jobsv1alpha1.JobObject {
	t.Helper()
	ctx := context.Background()
	files := map[jobsv1alpha1.QueueName]string{jobsv1alpha1.QueueEnrichment: "enrichmentjob.yaml",
		jobsv1alpha1.QueueCompetitor: "competitorjob.yaml", jobsv1alpha1.QueueAnalytics: "analyticsjob.yaml"}
	var jobs []jobsv1alpha1.JobObject
	for _, kind := range jobsv1alpha1.JobKinds {
		job := kind.New()
		sample(t, files[kind.Queue], ns, job)
		jobsv1alpha1.Stamp(job, ns)
		if err := env.Client.Create(ctx, job); err != nil {
			t.Fatalf("create %s: %v", kind.Kind, err)
		}
		jobs = append(jobs, job)
	}
	schedule := &jobsv1alpha1.JobSchedule{}
	sample(t, "jobschedule.yaml", ns, schedule)
	if err := env.Client.Create(ctx, schedule); err != nil {
		t.Fatalf("create JobSchedule: %v", err)
	}
	return jobs
}

// left counts the namespace's jobs of every kind and its JobSchedules, through a direct client.
func left(ns string) func(Gomega) int {
	return func(g Gomega) int {
		n := 0
		for _, kind := range jobsv1alpha1.JobKinds {
			list := kind.NewList()
			g.Expect(env.Client.List(context.Background(), list, client.InNamespace(ns))).To(Succeed())
			n += len(list.Jobs())
		}
		schedules := &jobsv1alpha1.JobScheduleList{}
		g.Expect(env.Client.List(context.Background(), schedules, client.InNamespace(ns))).To(Succeed())
		return n + len(schedules.Items)
	}
}

func options(ns string, timeout time.Duration) uninstall.Options {
	return uninstall.Options{Namespace: ns, Timeout: timeout, PollInterval: 100 * time.Millisecond, Clock: clock.RealClock{}}
}

// startController runs the product's controller for namespace ns until the test ends.
func startController(t *testing.T, ns string) {
	t.Helper()
	opts := controllers.DefaultOptions()
	opts.HousekeepingInterval = 500 * time.Millisecond
	mgr, err := controllers.NewManager(env.Config, controllers.ManagerConfig{
		Redis: testredis.Shared(t), MetricsAddr: "0", ProbeAddr: "0", Namespaces: []string{ns}, Options: opts,
		SkipNameValidation: true,
	})
	if err != nil {
		t.Fatalf("new manager: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := mgr.Start(ctx); err != nil {
			t.Errorf("manager: %v", err)
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
}

// TestRunWhileTheControllerRuns: the controller removes every job's Redis record and releases
// its finalizer; Run removes none itself, and nothing is left.
func TestRunWhileTheControllerRuns(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	ns := newNamespace(t)
	startController(t, ns)
	engine := queue.New(testredis.Shared(t))
	for _, kind := range jobsv1alpha1.JobKinds {
		jq := &jobsv1alpha1.JobQueue{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: string(kind.Queue)},
			Spec: jobsv1alpha1.JobQueueSpec{Queue: kind.Queue}}
		g.Expect(env.Client.Create(ctx, jq)).To(Succeed())
	}
	jobs := createJobs(t, ns)
	for _, job := range jobs {
		g.Eventually(func() error {
			_, err := engine.Queue(ns, string(job.QueueName())).Get(ctx, job.GetName())
			return err
		}).WithTimeout(20*time.Second).Should(Succeed(), "the controller enqueues %s", job.GetName())
	}

	res, err := uninstall.Run(ctx, env.Client, options(ns, 30*time.Second))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(res.Released).To(BeEmpty(), "the controller released every finalizer")
	g.Expect(res.Jobs).To(Equal(3))
	g.Expect(res.Schedules).To(Equal(1))
	g.Expect(left(ns)(g)).To(BeZero())
	for _, job := range jobs {
		_, err := engine.Queue(ns, string(job.QueueName())).Get(ctx, job.GetName())
		g.Expect(errors.Is(err, queue.ErrNotFound)).To(BeTrue(), "the Redis record of %s is gone: %v", job.GetName(), err)
	}
}

// TestRunWithoutAController: no controller releases the finalizers, so after the timeout Run
// removes them itself; a job created meanwhile (a facade still running) goes too.
func TestRunWithoutAController(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	ns := newNamespace(t)
	jobs := createJobs(t, ns)

	const timeout = 2 * time.Second
	type outcome struct {
		res uninstall.Result
		err error
	}
	done := make(chan outcome, 1)
	start := time.Now()
	go func() {
		res, err := uninstall.Run(ctx, env.Client, options(ns, timeout))
		done <- outcome{res, err}
	}()
	// Once the first jobs are being deleted, a late one arrives.
	g.Eventually(func(g Gomega) {
		job := &jobsv1alpha1.EnrichmentJob{}
		g.Expect(env.Client.Get(ctx, client.ObjectKeyFromObject(jobs[0]), job)).To(Succeed())
		g.Expect(job.DeletionTimestamp).NotTo(BeNil())
	}).WithTimeout(10 * time.Second).Should(Succeed())
	late := &jobsv1alpha1.EnrichmentJob{}
	sample(t, "enrichmentjob.yaml", ns, late)
	late.Name = "enrich-0000late-1734512345000"
	jobsv1alpha1.Stamp(late, ns)
	g.Expect(env.Client.Create(ctx, late)).To(Succeed())

	var out outcome
	g.Eventually(done).WithTimeout(30 * time.Second).Should(Receive(&out))
	g.Expect(out.err).NotTo(HaveOccurred())
	g.Expect(time.Since(start)).To(BeNumerically(">=", timeout), "the controller gets its time first")
	g.Expect(out.res.Released).To(ConsistOf(
		uninstall.Job("EnrichmentJob/"+jobs[0].GetName()), uninstall.Job("CompetitorJob/"+jobs[1].GetName()),
		uninstall.Job("AnalyticsJob/"+jobs[2].GetName()), uninstall.Job("EnrichmentJob/"+late.Name)))
	g.Expect(out.res.Jobs).To(Equal(4))
	g.Expect(left(ns)(g)).To(BeZero())
}

// TestRunReportsJobsHeldByOtherFinalizers: Run removes only the product's finalizer; a job that
// another finalizer still holds is named in its error.
func TestRunReportsJobsHeldByOtherFinalizers(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	ns := newNamespace(t)
	job := &jobsv1alpha1.CompetitorJob{}
	sample(t, "competitorjob.yaml", ns, job)
	jobsv1alpha1.Stamp(job, ns)
	const foreign = "example.com/keep"
	job.Finalizers = append(job.Finalizers, foreign)
	g.Expect(env.Client.Create(ctx, job)).To(Succeed())

	_, err := uninstall.Run(ctx, env.Client, options(ns, 0))
	g.Expect(errors.Is(err, uninstall.ErrLeft)).To(BeTrue(), "%v", err)
	g.Expect(err.Error()).To(ContainSubstring("CompetitorJob/" + job.Name + " (finalizers " + foreign + ")"))
	g.Expect(env.Client.Get(ctx, client.ObjectKeyFromObject(job), job)).To(Succeed())
	g.Expect(job.Finalizers).To(Equal([]string{foreign}), "only the product's finalizer is removed")

	job.Finalizers = nil
	g.Expect(env.Client.Update(ctx, job)).To(Succeed())
	g.Eventually(left(ns)).Should(BeZero())
}
