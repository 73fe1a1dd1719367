package queue_test

import (
	"context"
	"errors"
	"testing"
	"time"

	. "github.com/onsi/gomega"

	"github.com/jengu/queue-operator/queue"
)

// A worker's stray leases (leased to it by a call whose reply it never got) go back to waiting,
// uncounted and at their place in line; the jobs it runs, and other workers' jobs, keep theirs.
func TestReleaseWorkerLeasesHandsBackOnlyStrays(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	clock := newFakeClock()
	q := newQueue(t, queue.WithClock(clock))
	for _, id := range []string{"a", "b", "c", "d"} {
		enqueue(t, q, id)
	}
	res, err := q.Lease(ctx, "w1", 2, time.Minute) // a and b; w1 learns only of a
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(res.Jobs).To(HaveLen(2))
	other := leaseOne(t, q, "w2") // c
	before := get(t, q, "b")
	last, err := q.LastEventID(ctx)
	g.Expect(err).NotTo(HaveOccurred())

	released, err := q.ReleaseWorkerLeases(ctx, "w1", []string{"a"})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(released).To(Equal([]string{"b"}))
	b := get(t, q, "b")
	g.Expect(b.State).To(Equal(queue.StateWaiting))
	g.Expect(b.AttemptsMade).To(BeZero())
	g.Expect(b.Stalls).To(BeZero())
	g.Expect(b.Token).To(BeEmpty())
	g.Expect(b.Worker).To(BeEmpty())
	g.Expect(b.Version).To(Equal(before.Version + 1))
	evs := eventsAfter(t, q, last)
	g.Expect(evs).To(HaveLen(1))
	g.Expect(evs[0]).To(And(HaveField("Type", "waiting"), HaveField("JobID", "b"), HaveField("Version", b.Version),
		HaveField("Fields", HaveKeyWithValue("reason", "released"))))
	g.Expect(get(t, q, "a").State).To(Equal(queue.StateActive))
	g.Expect(q.Heartbeat(ctx, other.ID, other.Token, time.Minute)).To(Equal(queue.HeartbeatOK))
	g.Expect(q.Counts(ctx)).To(Equal(queue.Counts{Active: 2, Waiting: 2}))

	// b is first in line again, before d.
	g.Expect(leaseOne(t, q, "w1").ID).To(Equal("b"))
	released, err = q.ReleaseWorkerLeases(ctx, "w1", []string{"a", "b"})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(released).To(BeEmpty())
}

// The record keeps its last lease's token after the lease ends, so a holder whose reply was lost
// can tell whether its own call ended the lease.
func TestLastLeaseOutlivesTheLease(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	q := newQueue(t)
	enqueue(t, q, "job")
	first := leaseOne(t, q, "w")
	rec, last, err := q.LastLease(ctx, "job")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(last).To(Equal(first.Token))
	g.Expect(rec.State).To(Equal(queue.StateActive))

	_, err = q.Fail(ctx, first.ID, first.Token, queue.Failure{Kind: queue.FailRateLimited, RetryAfter: time.Millisecond})
	g.Expect(err).NotTo(HaveOccurred())
	rec, last, err = q.LastLease(ctx, "job")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(last).To(Equal(first.Token), "kept after the lease ended")
	g.Expect(rec.Token).To(BeEmpty())
	g.Expect(rec.State).To(Equal(queue.StateDelayed))

	var second *queue.Record
	g.Eventually(func() (int, error) {
		res, err := q.Lease(ctx, "w", 1, time.Minute)
		if len(res.Jobs) == 1 {
			second = res.Jobs[0]
		}
		return len(res.Jobs), err
	}).WithTimeout(5 * time.Second).Should(Equal(1))
	_, err = q.Complete(ctx, second.ID, second.Token, nil)
	g.Expect(err).NotTo(HaveOccurred())
	rec, last, err = q.LastLease(ctx, "job")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(last).To(Equal(second.Token))
	g.Expect(rec.State).To(Equal(queue.StateCompleted))

	_, _, err = q.LastLease(ctx, "nope")
	g.Expect(errors.Is(err, queue.ErrNotFound)).To(BeTrue(), "%v", err)
}
