package queue_test

import (
	"context"
	"errors"
	"testing"

	. "github.com/onsi/gomega"

	"github.com/jengu/queue-operator/queue"
)

func TestARetryTokenActsAtMostOnce(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	q := newQueue(t)
	failNow := func() {
		t.Helper()
		job := leaseOne(t, q, "w")
		_, err := q.Fail(ctx, job.ID, job.Token, queue.Failure{Kind: queue.FailPermanent, Message: "broken"})
		g.Expect(err).NotTo(HaveOccurred())
	}
	enqueue(t, q, "job")
	failNow()

	_, err := q.RetryFailed(ctx, "job", "token-1")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(get(t, q, "job").RetryToken).To(Equal("token-1"))
	failNow()
	_, err = q.RetryFailed(ctx, "job", "token-1")
	g.Expect(errors.Is(err, queue.ErrRetryTokenUsed)).To(BeTrue(), "the same token again: %v", err)
	g.Expect(get(t, q, "job").State).To(Equal(queue.StateFailed), "not retried twice")

	_, err = q.RetryFailed(ctx, "job", "token-2")
	g.Expect(err).NotTo(HaveOccurred(), "a new token acts")
	g.Expect(get(t, q, "job").State).To(Equal(queue.StateWaiting))
	_, err = q.RetryFailed(ctx, "job", "token-2")
	g.Expect(errors.Is(err, queue.ErrRetryTokenUsed)).To(BeTrue(), "a used token says so before the state: %v", err)
}

func TestAJobEnqueuedForARetryTokenRefusesIt(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	q := newQueue(t)
	enqueue(t, q, "job", func(r *queue.EnqueueRequest) { r.RetryToken = "token-1" })
	g.Expect(get(t, q, "job").RetryToken).To(Equal("token-1"))
	job := leaseOne(t, q, "w")
	_, err := q.Fail(ctx, job.ID, job.Token, queue.Failure{Kind: queue.FailPermanent, Message: "broken"})
	g.Expect(err).NotTo(HaveOccurred())
	_, err = q.RetryFailed(ctx, "job", "token-1")
	g.Expect(errors.Is(err, queue.ErrRetryTokenUsed)).To(BeTrue(), "the token it was enqueued for: %v", err)
}
