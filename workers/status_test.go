package workers_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	. "github.com/onsi/gomega"

	jobsv1alpha1 "github.com/jengu/queue-operator/api/v1alpha1"
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
