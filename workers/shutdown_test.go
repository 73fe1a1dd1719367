package workers_test

import (
	"context"
	"testing"
	"time"

	. "github.com/onsi/gomega"

	jobsv1alpha1 "github.com/jengu/queue-operator/api/v1alpha1"
	"github.com/jengu/queue-operator/queue"
	"github.com/jengu/queue-operator/workers"
)

// A job whose processor returns success as the shutdown grace runs out is completed, not handed
// back to be run again: its work is done.
func TestSuccessAtTheEndOfTheGraceCompletes(t *testing.T) {
	g := NewWithT(t)
	f := newFixture(t)
	job := f.job("enrich-last-moment-1")
	started := make(chan struct{})
	stop := f.run(workers.ProcessorFunc(func(ctx context.Context, _ workers.Task, _ workers.Progress) ([]byte, error) {
		close(started)
		<-ctx.Done() // the grace ran out; the work happens to finish just then
		return []byte(`{"rows":1}`), nil
	}), workers.WithShutdownGrace(300*time.Millisecond))
	g.Eventually(started).WithTimeout(timeout).Should(BeClosed())
	stop()
	record := f.record(job.Name)()
	g.Expect(record.State).To(Equal(queue.StateCompleted), "the success counts")
	g.Expect(string(record.Result)).To(Equal(`{"rows":1}`))
	g.Expect(record.AttemptsMade).To(Equal(1))
	g.Eventually(func() jobsv1alpha1.JobPhase { return f.status(job)().Phase }).WithTimeout(timeout).Should(Equal(jobsv1alpha1.PhaseCompleted))
}
