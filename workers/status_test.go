package workers_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	. "github.com/onsi/gomega"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	jobsv1alpha1 "github.com/jengu/queue-operator/api/v1alpha1"
	"github.com/jengu/queue-operator/jobstatus"
	"github.com/jengu/queue-operator/workers"
)

// A worker's status writer keeps per-job state only while it may still delay a write: jobs the
// worker handed off (released, retried or taken over elsewhere, never finished here) are
// forgotten, so a long-running worker's writer does not grow with every job it ever ran.
func TestStatusWriterForgetsJobsHandedOff(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	f := newFixture(t)
	const n = 25
	var jobs []*jobsv1alpha1.EnrichmentJob
	for i := range n {
		jobs = append(jobs, f.job(fmt.Sprintf("enrich-handoff-%02d", i)))
	}
	writer := workers.NewCRStatusWriter(f.kube, f.queue, func() jobsv1alpha1.JobObject { return &jobsv1alpha1.EnrichmentJob{} },
		200*time.Millisecond, testr.New(t))
	writerCtx, stopWriter := context.WithCancel(ctx)
	defer stopWriter()
	go writer.Run(writerCtx)

	res, err := f.queue.Lease(ctx, "test-worker", n, time.Minute)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(res.Jobs).To(HaveLen(n))
	for _, j := range res.Jobs {
		writer.Transition(j.ID)
		writer.Progress(j.ID)
	}
	for _, job := range jobs {
		g.Eventually(f.status(job)).WithTimeout(timeout).Should(HaveField("Phase", jobsv1alpha1.PhaseActive))
	}
	// The worker hands every job back (as when shutting down); nothing more is reported for them.
	for _, j := range res.Jobs {
		_, err := f.queue.Release(ctx, j.ID, j.Token)
		g.Expect(err).NotTo(HaveOccurred())
	}
	g.Eventually(writer.TrackedJobs).WithTimeout(timeout).Should(BeZero(), "jobs handed off are forgotten")
}

// A job's start is written only once it has run for the start delay: one that ends sooner costs
// its CR one status write, of its end, and one that runs longer shows Active while it runs.
func TestAJobThatEndsWithinTheStartDelayWritesOnlyItsEnd(t *testing.T) {
	cases := []struct {
		name       string
		runFor     time.Duration
		wantPhases []jobsv1alpha1.JobPhase
	}{
		{"ends at once", 0, []jobsv1alpha1.JobPhase{jobsv1alpha1.PhaseCompleted}},
		{"ends after the delay", 2 * workers.DefaultStartWriteDelay,
			[]jobsv1alpha1.JobPhase{jobsv1alpha1.PhaseActive, jobsv1alpha1.PhaseCompleted}},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			f := newFixture(t)
			job := f.job(fmt.Sprintf("enrich-start-delay-%d", i))
			phases := f.watchPhases(job)
			f.run(workers.ProcessorFunc(func(ctx context.Context, _ workers.Task, progress workers.Progress) ([]byte, error) {
				progress(10, "started")
				time.Sleep(tc.runFor)
				return nil, nil
			}))
			g.Eventually(f.status(job)).WithTimeout(timeout).Should(HaveField("Phase", jobsv1alpha1.PhaseCompleted))
			g.Eventually(phases).WithTimeout(timeout).Should(Equal(tc.wantPhases))
			g.Consistently(phases).WithTimeout(2 * workers.DefaultStartWriteDelay).Should(Equal(tc.wantPhases))
		})
	}
}

// A job's end is left to the controller, which writes it at once, for the end delay: when the
// CR shows the end by then the worker does not write it again (no second, conflicting write),
// and when it does not the worker writes it.
func TestAJobsEndIsLeftToTheControllerForTheEndDelay(t *testing.T) {
	cases := []struct {
		name             string
		controllerWrites bool
		wantPatches      int32
	}{
		{"the controller wrote it", true, 0},
		{"the controller is away", false, 1},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			ctx := context.Background()
			f := newFixture(t)
			job := f.job(fmt.Sprintf("enrich-end-left-%d", i))
			var patches atomic.Int32
			counting := interceptor.NewClient(env.WatchClient(), interceptor.Funcs{SubResourcePatch: func(ctx context.Context, c client.Client,
				sub string, obj client.Object, patch client.Patch, opts ...client.SubResourcePatchOption) error {
				patches.Add(1)
				return c.SubResource(sub).Patch(ctx, obj, patch, opts...)
			}})
			writer := workers.NewCRStatusWriter(counting, f.queue, func() jobsv1alpha1.JobObject { return &jobsv1alpha1.EnrichmentJob{} },
				time.Minute, testr.New(t))
			writerCtx, stopWriter := context.WithCancel(ctx)
			defer stopWriter()
			go writer.Run(writerCtx)

			res, err := f.queue.Lease(ctx, "test-worker", 1, time.Minute)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(res.Jobs).To(HaveLen(1))
			_, err = f.queue.Complete(ctx, res.Jobs[0].ID, res.Jobs[0].Token, nil)
			g.Expect(err).NotTo(HaveOccurred())
			writer.Transition(res.Jobs[0].ID)
			if tc.controllerWrites {
				// The controller hears of the end from Redis and writes it a moment later, within
				// the delay (here after the worker would have written it at once).
				time.Sleep(workers.DefaultEndWriteDelay / 3)
				record, err := f.queue.Get(ctx, job.Name)
				g.Expect(err).NotTo(HaveOccurred())
				stored := &jobsv1alpha1.EnrichmentJob{}
				g.Expect(f.kube.Get(ctx, client.ObjectKeyFromObject(job), stored)).To(Succeed())
				_, err = jobstatus.Sync(ctx, f.kube, stored, record)
				g.Expect(err).NotTo(HaveOccurred())
			}
			g.Eventually(f.status(job)).WithTimeout(timeout).Should(HaveField("Phase", jobsv1alpha1.PhaseCompleted))
			g.Eventually(patches.Load).WithTimeout(timeout).Should(Equal(tc.wantPatches))
			g.Consistently(patches.Load).WithTimeout(2 * workers.DefaultEndWriteDelay).Should(Equal(tc.wantPatches))
		})
	}
}

// A worker reads a CR from the kube-apiserver's watch cache, which may lag: a stale read costs a
// refused write and a re-read from etcd, never a wrong or lost status.
func TestAStaleReadOfTheCRStillEndsInTheRightStatus(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	f := newFixture(t)
	job := f.job("enrich-stale-read")
	stale := &jobsv1alpha1.EnrichmentJob{}
	g.Expect(f.kube.Get(ctx, client.ObjectKeyFromObject(job), stale)).To(Succeed())
	// The CR moves on (the controller shows it Waiting) after the cache's copy was taken.
	record, err := f.queue.Get(ctx, job.Name)
	g.Expect(err).NotTo(HaveOccurred())
	current := stale.DeepCopy()
	g.Expect(jobstatus.Sync(ctx, f.kube, current, record)).To(BeTrue())

	var staleReads atomic.Int32
	lagging := interceptor.NewClient(env.WatchClient(), interceptor.Funcs{Get: func(ctx context.Context, c client.WithWatch,
		key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
		for _, o := range opts {
			if get, ok := o.(*client.GetOptions); ok && get.Raw != nil && get.Raw.ResourceVersion == "0" {
				staleReads.Add(1)
				stale.DeepCopyInto(obj.(*jobsv1alpha1.EnrichmentJob))
				return nil
			}
		}
		return c.Get(ctx, key, obj, opts...)
	}})
	writer := workers.NewCRStatusWriter(lagging, f.queue, func() jobsv1alpha1.JobObject { return &jobsv1alpha1.EnrichmentJob{} },
		time.Minute, testr.New(t))

	res, err := f.queue.Lease(ctx, "test-worker", 1, time.Minute)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(res.Jobs).To(HaveLen(1))
	_, err = f.queue.Complete(ctx, res.Jobs[0].ID, res.Jobs[0].Token, nil)
	g.Expect(err).NotTo(HaveOccurred())
	writer.Transition(job.Name)
	writer.Flush(ctx) // an exiting worker writes the end at once

	g.Expect(staleReads.Load()).To(BeNumerically(">=", 1), "the writer reads from the watch cache")
	status := f.status(job)()
	g.Expect(status.Phase).To(Equal(jobsv1alpha1.PhaseCompleted))
	completed, err := f.queue.Get(ctx, job.Name)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(status.QueueVersion).To(Equal(completed.Version))
}
