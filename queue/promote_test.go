package queue_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	. "github.com/onsi/gomega"

	"github.com/jengu/queue-operator/queue"
)

// Due delayed jobs move to waiting without a worker's lease doing it: with no worker running, a
// job whose backoff or delay has passed shows as waiting (and Counts says how many are due
// before that happens).
func TestPromoteDueWithoutAWorker(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	clock := newFakeClock()
	q := newQueue(t, queue.WithClock(clock))
	enqueue(t, q, "soon", func(r *queue.EnqueueRequest) { r.Delay = time.Second; r.Priority = 5 })
	enqueue(t, q, "later", func(r *queue.EnqueueRequest) { r.Delay = time.Hour })
	enqueue(t, q, "now")
	g.Expect(q.Counts(ctx)).To(Equal(queue.Counts{Waiting: 1, Delayed: 2}))

	clock.Advance(2 * time.Second)
	g.Expect(q.Counts(ctx)).To(Equal(queue.Counts{Waiting: 1, Delayed: 2, Due: 1}), "one delayed job is due")
	last, err := q.LastEventID(ctx)
	g.Expect(err).NotTo(HaveOccurred())
	before := get(t, q, "soon")

	g.Expect(q.PromoteDue(ctx)).To(Equal(1))
	g.Expect(q.Counts(ctx)).To(Equal(queue.Counts{Waiting: 2, Delayed: 1}))
	soon := get(t, q, "soon")
	g.Expect(soon.State).To(Equal(queue.StateWaiting))
	g.Expect(soon.Version).To(Equal(before.Version + 1))
	g.Expect(soon.DueAt.IsZero()).To(BeTrue())
	evs := eventsAfter(t, q, last)
	g.Expect(evs).To(HaveLen(1))
	g.Expect(evs[0]).To(And(HaveField("Type", "waiting"), HaveField("JobID", "soon"), HaveField("Version", soon.Version)))
	g.Expect(q.PromoteDue(ctx)).To(BeZero(), "nothing more is due")

	// The promoted job keeps its place by priority, as a lease's own promotion would.
	res, err := q.Lease(ctx, "w", 2, time.Minute)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(res.Jobs).To(HaveLen(2))
	g.Expect(res.Jobs[0].ID).To(Equal("soon"))
	g.Expect(res.Jobs[1].ID).To(Equal("now"))
}

// PromoteDue moves every due job, however many, in bounded script calls.
func TestPromoteDueMovesThemAll(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	clock := newFakeClock()
	q := newQueue(t, queue.WithClock(clock))
	const n = 2500
	reqs := make([]queue.EnqueueRequest, n)
	for i := range reqs {
		reqs[i] = queue.EnqueueRequest{ID: fmt.Sprintf("job-%04d", i), UID: "u", Delay: time.Duration(1+i%7) * time.Second}
	}
	_, err := q.EnqueueMany(ctx, reqs)
	g.Expect(err).NotTo(HaveOccurred())
	clock.Advance(10 * time.Second)
	g.Expect(q.Counts(ctx)).To(HaveField("Due", int64(n)))
	g.Expect(q.PromoteDue(ctx)).To(Equal(n))
	g.Expect(q.Counts(ctx)).To(Equal(queue.Counts{Waiting: n}))
}

// On Redis' clock (no clock injected), Due and PromoteDue go by Redis' time.
func TestPromoteDueOnRedisClock(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	q := newQueue(t)
	enqueue(t, q, "soon", func(r *queue.EnqueueRequest) { r.Delay = 300 * time.Millisecond })
	g.Expect(q.Counts(ctx)).To(HaveField("Due", int64(0)))
	g.Eventually(func() (queue.Counts, error) { return q.Counts(ctx) }).WithTimeout(5 * time.Second).
		Should(HaveField("Due", int64(1)))
	g.Expect(q.PromoteDue(ctx)).To(Equal(1))
	g.Expect(get(t, q, "soon").State).To(Equal(queue.StateWaiting))
}
