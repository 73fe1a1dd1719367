package queue_test

import (
	"context"
	"errors"
	"testing"

	. "github.com/onsi/gomega"

	"github.com/jengu/queue-operator/queue"
)

func TestRaiseVersionLiftsOnlyARecordBelowTheFloor(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	q := newQueue(t)
	created := enqueue(t, q, "job")

	v, err := q.RaiseVersion(ctx, "job", "uid-job", created.Version-1)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(v).To(Equal(created.Version), "already above the floor: unchanged")

	v, err = q.RaiseVersion(ctx, "job", "uid-job", created.Version+10)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(v).To(Equal(created.Version + 11))
	g.Expect(get(t, q, "job").Version).To(Equal(created.Version + 11))
	g.Expect(get(t, q, "job").State).To(Equal(queue.StateWaiting), "only the version moves")

	_, err = q.RaiseVersion(ctx, "job", "another-owner", 100)
	g.Expect(errors.Is(err, queue.ErrNotFound)).To(BeTrue(), "another owner's record: %v", err)
}
