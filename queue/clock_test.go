package queue_test

import (
	"context"
	"testing"
	"time"

	. "github.com/onsi/gomega"

	"github.com/jengu/queue-operator/internal/testredis"
	"github.com/jengu/queue-operator/queue"
)

// skewedClock is a host clock off from the true time by a fixed amount.
type skewedClock struct{ skew time.Duration }

func (c skewedClock) Now() time.Time { return time.Now().Add(c.skew) }

// Leases are stamped and reclaimed by one clock, Redis', whatever the hosts' clocks say: a worker
// whose clock runs an hour late keeps its lease against a controller whose clock runs an hour
// early, and a worker an hour early loses a lease it stops renewing to a controller an hour late
// within the lease's time, not two hours later.
func TestLeasesKeepToRedisClockWhateverTheHostsSay(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	rdb := testredis.Shared(t)
	late := newQueueOn(t, rdb, queue.WithHostClock(skewedClock{-time.Hour}))
	// The same queue seen from hosts whose clocks differ.
	early := queue.New(rdb, queue.WithHostClock(skewedClock{time.Hour})).Queue(late.Namespace, late.Name)

	enqueue(t, late, "renewed")
	enqueue(t, late, "abandoned")
	const lease = 3 * time.Second

	// The late worker leases and renews; the early controller sweeps for stalls all along.
	res, err := late.Lease(ctx, "late-worker", 1, lease)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(res.Jobs).To(HaveLen(1))
	renewed := res.Jobs[0]
	g.Consistently(func(g Gomega) {
		g.Expect(late.Heartbeat(ctx, renewed.ID, renewed.Token, lease)).To(Equal(queue.HeartbeatOK))
		reclaimed, err := early.ReclaimStalled(ctx, 5)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(reclaimed).To(BeEmpty(), "a renewed lease is not reclaimed")
	}).WithTimeout(2 * lease).WithPolling(300 * time.Millisecond).Should(Succeed())

	// The early worker leases and stops renewing; the late controller reclaims it once the lease
	// ends by Redis' clock.
	res, err = early.Lease(ctx, "early-worker", 1, lease)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(res.Jobs).To(HaveLen(1))
	abandoned := res.Jobs[0]
	g.Expect(abandoned.ID).To(Equal("abandoned"))
	g.Expect(abandoned.LeaseUntil).To(BeTemporally("~", time.Now().Add(lease), time.Second),
		"the lease says when it ends by Redis' clock")
	g.Eventually(func() ([]queue.Reclaimed, error) { return late.ReclaimStalled(ctx, 5) }).
		WithTimeout(lease + 10*time.Second).WithPolling(200 * time.Millisecond).
		Should(ContainElement(HaveField("ID", "abandoned")))
}

// A worker whose host clock is off still waits the right time for a delayed job: the lease's
// RetryAt is on the host's own clock.
func TestRetryAtIsOnTheHostClock(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	rdb := testredis.Shared(t)
	host := skewedClock{time.Hour}
	q := newQueueOn(t, rdb, queue.WithHostClock(host))
	enqueue(t, q, "later", func(r *queue.EnqueueRequest) { r.Delay = 30 * time.Second })
	res, err := q.Lease(ctx, "w", 1, time.Minute)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(res.Jobs).To(BeEmpty())
	g.Expect(res.RetryAt).To(BeTemporally("~", host.Now().Add(30*time.Second), 2*time.Second))
	g.Expect(get(t, q, "later").DueAt).To(BeTemporally("~", time.Now().Add(30*time.Second), 2*time.Second),
		"the record holds Redis' time")
}
