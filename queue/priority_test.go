package queue_test

import (
	"context"
	"errors"
	"testing"

	. "github.com/onsi/gomega"

	"github.com/jengu/queue-operator/queue"
)

func TestSetPriorityMovesAWaitingJobInLine(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	q := newQueue(t)
	for _, id := range []string{"a", "b", "c"} {
		enqueue(t, q, id)
	}
	changed, err := q.SetPriority(ctx, "c", "uid-c", 5)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(changed).To(BeTrue())
	changed, err = q.SetPriority(ctx, "c", "uid-c", 5)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(changed).To(BeFalse(), "the same priority again changes nothing")
	before := get(t, q, "c").Version

	g.Expect(leaseOne(t, q, "w").ID).To(Equal("c"), "the raised job goes first")
	g.Expect(leaseOne(t, q, "w").ID).To(Equal("a"), "the others keep their FIFO order")
	g.Expect(get(t, q, "c").Version).To(Equal(before+1), "a priority change is no transition; the lease is")

	_, err = q.SetPriority(ctx, "b", "uid-b", -3)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(get(t, q, "b").Priority).To(Equal(-3))
	_, err = q.SetPriority(ctx, "b", "someone-else", 1)
	g.Expect(errors.Is(err, queue.ErrNotFound)).To(BeTrue(), "another owner's record: %v", err)
	_, err = q.SetPriority(ctx, "b", "uid-b", 1001)
	g.Expect(err).To(HaveOccurred(), "out of bounds")
}
