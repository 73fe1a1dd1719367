package queue_test

import (
	"context"
	"testing"

	. "github.com/onsi/gomega"

	"github.com/jengu/queue-operator/internal/testredis"
)

func TestEpochChangesOnlyWhenRedisLosesTheQueue(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	server := testredis.Start(t)
	rdb := server.ClientFor(t)
	q := newQueueOn(t, rdb)

	first, isNew, err := q.Epoch(ctx)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(isNew).To(BeTrue(), "made by the first call")
	again, isNew, err := q.Epoch(ctx)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(isNew).To(BeFalse())
	g.Expect(again).To(Equal(first))

	g.Expect(q.Pause(ctx)).To(Succeed(), "other settings in the meta hash leave it alone")
	g.Expect(q.Resume(ctx)).To(Succeed())
	again, _, err = q.Epoch(ctx)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(again).To(Equal(first))

	g.Expect(rdb.FlushAll(ctx).Err()).To(Succeed())
	after, isNew, err := q.Epoch(ctx)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(isNew).To(BeTrue())
	g.Expect(after).NotTo(Equal(first), "a flushed Redis has a new epoch")
}
