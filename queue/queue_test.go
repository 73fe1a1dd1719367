package queue_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	. "github.com/onsi/gomega"

	"github.com/jengu/queue-operator/internal/testredis"
	"github.com/jengu/queue-operator/queue"
)

func TestLifecycleRecordsEveryField(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	clock := newFakeClock()
	q := newQueue(t, queue.WithClock(clock))
	t0 := clock.Now()

	res := enqueue(t, q, "enrich-1")
	g.Expect(res).To(Equal(queue.EnqueueResult{Created: true, Version: 1, State: queue.StateWaiting}))

	clock.Advance(time.Second)
	job := leaseOne(t, q, "worker-a")
	g.Expect(job.ID).To(Equal("enrich-1"))
	g.Expect(job.UID).To(Equal("uid-enrich-1"))
	g.Expect(string(job.Payload)).To(Equal(`{"propertyId":"p1"}`))
	g.Expect(job.PayloadVersion).To(Equal(1))
	g.Expect(job.State).To(Equal(queue.StateActive))
	g.Expect(job.Worker).To(Equal("worker-a"))
	g.Expect(job.CreatedAt).To(Equal(t0))
	g.Expect(job.ProcessedAt).To(Equal(t0.Add(time.Second)))
	g.Expect(job.LeaseUntil).To(Equal(t0.Add(31 * time.Second)))
	g.Expect(job.MaxAttempts).To(Equal(5))
	g.Expect(job.Backoff).To(Equal(queue.SeedBackoff))
	g.Expect(job.Timeout).To(Equal(5 * time.Minute))
	g.Expect(job.Token).NotTo(BeEmpty())

	v, err := q.Progress(ctx, job.ID, job.Token, 45, "weather fetched")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(v).To(BeNumerically(">", job.Version))
	stored := get(t, q, job.ID)
	g.Expect(stored.Progress).To(Equal(45))
	g.Expect(stored.ProgressMessage).To(Equal("weather fetched"))

	clock.Advance(2 * time.Second)
	v2, err := q.Complete(ctx, job.ID, job.Token, []byte(`{"rows":3}`))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(v2).To(BeNumerically(">", v))
	done := get(t, q, job.ID)
	g.Expect(done.State).To(Equal(queue.StateCompleted))
	g.Expect(done.Progress).To(Equal(100))
	g.Expect(done.AttemptsMade).To(Equal(1))
	g.Expect(done.FinishedAt).To(Equal(t0.Add(3 * time.Second)))
	g.Expect(string(done.Result)).To(Equal(`{"rows":3}`))

	counts, err := q.Counts(ctx)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(counts).To(Equal(queue.Counts{Completed: 1}))
}

func TestBackoffTimelineIsTheSeeds(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	clock := newFakeClock()
	q := newQueue(t, queue.WithClock(clock))
	enqueue(t, q, "enrich-backoff")

	// Attempts 1-4 fail and wait 5, 25, 125, 625 s; attempt 5 fails for good.
	var waits []time.Duration
	var versions []int64
	for attempt := 1; attempt <= 5; attempt++ {
		job := leaseOne(t, q, "w")
		g.Expect(job.AttemptsMade).To(Equal(attempt - 1))
		versions = append(versions, job.Version)
		res, err := q.Fail(ctx, job.ID, job.Token, queue.Failure{Kind: queue.FailRetry, Message: "Weather API timeout"})
		g.Expect(err).NotTo(HaveOccurred())
		versions = append(versions, res.Version)
		if attempt == 5 {
			g.Expect(res.State).To(Equal(queue.StateFailed))
			break
		}
		g.Expect(res.State).To(Equal(queue.StateDelayed))
		wait := res.DueAt.Sub(clock.Now())
		waits = append(waits, wait)

		// Not a millisecond early.
		clock.Advance(wait - time.Millisecond)
		early, err := q.Lease(ctx, "w", 1, time.Minute)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(early.Jobs).To(BeEmpty(), "attempt %d leased before its backoff ended", attempt+1)
		g.Expect(early.RetryAt).To(Equal(res.DueAt))
		clock.Advance(time.Millisecond)
	}
	want := []time.Duration{5 * time.Second, 25 * time.Second, 125 * time.Second, 625 * time.Second}
	if diff := cmp.Diff(want, waits); diff != "" {
		t.Fatalf("backoff timeline (-want +got):\n%s", diff)
	}
	for i := 1; i < len(versions); i++ {
		g.Expect(versions[i]).To(BeNumerically(">", versions[i-1]), "versions %v must rise strictly", versions)
	}

	failed := get(t, q, "enrich-backoff")
	g.Expect(failed.State).To(Equal(queue.StateFailed))
	g.Expect(failed.AttemptsMade).To(Equal(5))
	g.Expect(failed.Error).To(Equal("Weather API timeout"))
	dlq, total, err := q.List(ctx, queue.StateFailed, 0, 10)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(total).To(Equal(int64(1)))
	g.Expect(dlq[0].ID).To(Equal("enrich-backoff"))

	// Retry from the dead letter set resets attempts, and the version keeps rising.
	v, err := q.RetryFailed(ctx, "enrich-backoff", "")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(v).To(BeNumerically(">", versions[len(versions)-1]))
	again := leaseOne(t, q, "w")
	g.Expect(again.AttemptsMade).To(BeZero())
	_, err = q.RetryFailed(ctx, "enrich-backoff", "")
	g.Expect(errors.Is(err, queue.ErrWrongState)).To(BeTrue(), "retrying an active job: %v", err)
}

func TestJitterShortensTheDelayWithinItsPercent(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	clock := newFakeClock()
	q := newQueue(t, queue.WithClock(clock))
	for i := range 20 {
		id := fmt.Sprintf("jitter-%d", i)
		enqueue(t, q, id, func(r *queue.EnqueueRequest) {
			r.Backoff = queue.Backoff{Type: queue.BackoffFixed, Delay: 10 * time.Second, JitterPercent: 50}
		})
		job := leaseOne(t, q, "w")
		res, err := q.Fail(ctx, job.ID, job.Token, queue.Failure{Kind: queue.FailRetry, Message: "x"})
		g.Expect(err).NotTo(HaveOccurred())
		wait := res.DueAt.Sub(clock.Now())
		g.Expect(wait).To(BeNumerically(">", 5*time.Second))
		g.Expect(wait).To(BeNumerically("<=", 10*time.Second))
	}
}

func TestPermanentFailureGoesStraightToTheDeadLetterSet(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	q := newQueue(t)
	enqueue(t, q, "enrich-invalid")
	job := leaseOne(t, q, "w")
	res, err := q.Fail(ctx, job.ID, job.Token, queue.Failure{Kind: queue.FailPermanent, Message: "property deleted"})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(res.State).To(Equal(queue.StateFailed))
	stored := get(t, q, job.ID)
	g.Expect(stored.AttemptsMade).To(Equal(1))
	g.Expect(stored.Error).To(Equal("property deleted"))
}

func TestPriorityThenFIFO(t *testing.T) {
	g := NewWithT(t)
	q := newQueue(t)
	for _, j := range []struct {
		id       string
		priority int
	}{{"low", -5}, {"normal-1", 0}, {"urgent-1", 10}, {"normal-2", 0}, {"urgent-2", 10}, {"top", 1000}} {
		enqueue(t, q, j.id, func(r *queue.EnqueueRequest) { r.Priority = j.priority })
	}
	res, err := q.Lease(context.Background(), "w", 10, time.Minute)
	g.Expect(err).NotTo(HaveOccurred())
	var order []string
	for _, j := range res.Jobs {
		order = append(order, j.ID)
	}
	g.Expect(order).To(Equal([]string{"top", "urgent-1", "urgent-2", "normal-1", "normal-2", "low"}))
}

func TestCountRecords(t *testing.T) {
	g := NewWithT(t)
	q := newQueue(t)
	enqueue(t, q, "a")
	enqueue(t, q, "b")
	for _, tc := range []struct {
		ids  []string
		want int64
	}{{nil, 0}, {[]string{"a"}, 1}, {[]string{"a", "b", "c"}, 2}, {[]string{"x", "y"}, 0}} {
		n, err := q.CountRecords(context.Background(), tc.ids)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(n).To(Equal(tc.want), "%v", tc.ids)
	}
}

func TestDelayedJobBecomesDue(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	clock := newFakeClock()
	q := newQueue(t, queue.WithClock(clock))
	res := enqueue(t, q, "later", func(r *queue.EnqueueRequest) { r.Delay = 10 * time.Second })
	g.Expect(res.State).To(Equal(queue.StateDelayed))
	lease, err := q.Lease(ctx, "w", 1, time.Minute)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(lease.Jobs).To(BeEmpty())
	g.Expect(lease.RetryAt).To(Equal(clock.Now().Add(10 * time.Second)))
	clock.Advance(10 * time.Second)
	g.Expect(leaseOne(t, q, "w").ID).To(Equal("later"))
}

func TestEnqueueIsIdempotentUnderConcurrentDuplicates(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	q := newQueue(t)
	var wg sync.WaitGroup
	var mu sync.Mutex
	created := 0
	for range 20 {
		wg.Go(func() {
			res, err := q.Enqueue(ctx, queue.EnqueueRequest{ID: "dup", UID: "uid-1", MaxAttempts: 1})
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(res.Version).To(Equal(int64(1)))
			if res.Created {
				mu.Lock()
				created++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	g.Expect(created).To(Equal(1))
	counts, err := q.Counts(ctx)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(counts.Waiting).To(Equal(int64(1)))
}

func TestRecreatedOwnerReplacesOnlyAFinishedRecord(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	q := newQueue(t)
	first := enqueue(t, q, "job", func(r *queue.EnqueueRequest) { r.UID = "uid-old" })

	_, err := q.Enqueue(ctx, queue.EnqueueRequest{ID: "job", UID: "uid-new"})
	g.Expect(errors.Is(err, queue.ErrConflict)).To(BeTrue(), "a live record of another owner must be refused: %v", err)

	job := leaseOne(t, q, "w")
	_, err = q.Complete(ctx, job.ID, job.Token, nil)
	g.Expect(err).NotTo(HaveOccurred())

	res, err := q.Enqueue(ctx, queue.EnqueueRequest{ID: "job", UID: "uid-new", MaxAttempts: 1})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(res.Created).To(BeTrue())
	g.Expect(res.Version).To(BeNumerically(">", first.Version))
	stored := get(t, q, "job")
	g.Expect(stored.UID).To(Equal("uid-new"))
	g.Expect(stored.State).To(Equal(queue.StateWaiting))
	counts, err := q.Counts(ctx)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(counts).To(Equal(queue.Counts{Waiting: 1}), "the old record left no trace in the state sets")

	// Removing with the old owner's uid leaves the new record alone.
	removed, err := q.Remove(ctx, "job", "uid-old")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(removed).To(BeFalse())
	g.Expect(get(t, q, "job").UID).To(Equal("uid-new"))
}

func TestStalledLeaseIsTakenOverAndTheLateCompletionRefused(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	clock := newFakeClock()
	q := newQueue(t, queue.WithClock(clock))
	enqueue(t, q, "stall")

	first := leaseOne(t, q, "worker-a")
	g.Expect(q.Heartbeat(ctx, first.ID, first.Token, 30*time.Second)).To(Equal(queue.HeartbeatOK))
	clock.Advance(29 * time.Second)
	reclaimed, err := q.ReclaimStalled(ctx, 1)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(reclaimed).To(BeEmpty(), "the heartbeat extended the lease")

	// worker-a stops heartbeating.
	clock.Advance(2 * time.Second)
	reclaimed, err = q.ReclaimStalled(ctx, 1)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(reclaimed).To(HaveLen(1))
	g.Expect(reclaimed[0].State).To(Equal(queue.StateWaiting))

	second := leaseOne(t, q, "worker-b")
	g.Expect(second.Token).NotTo(Equal(first.Token))
	g.Expect(second.AttemptsMade).To(Equal(1), "the stalled attempt counts")

	_, err = q.Progress(ctx, first.ID, first.Token, 50, "")
	g.Expect(errors.Is(err, queue.ErrLeaseLost)).To(BeTrue(), "stale progress: %v", err)
	g.Expect(q.Heartbeat(ctx, first.ID, first.Token, time.Minute)).To(Equal(queue.HeartbeatLost))

	_, err = q.Complete(ctx, second.ID, second.Token, []byte("b"))
	g.Expect(err).NotTo(HaveOccurred())
	_, err = q.Complete(ctx, first.ID, first.Token, []byte("a"))
	g.Expect(errors.Is(err, queue.ErrLeaseLost)).To(BeTrue(), "late completion: %v", err)
	_, err = q.Fail(ctx, first.ID, first.Token, queue.Failure{Kind: queue.FailRetry})
	g.Expect(errors.Is(err, queue.ErrLeaseLost)).To(BeTrue(), "late failure: %v", err)

	done := get(t, q, "stall")
	g.Expect(done.State).To(Equal(queue.StateCompleted))
	g.Expect(string(done.Result)).To(Equal("b"))
	g.Expect(done.AttemptsMade).To(Equal(2))
	counts, err := q.Counts(ctx)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(counts).To(Equal(queue.Counts{Completed: 1}), "completed once")
}

func TestTooManyStallsFailTheJob(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	clock := newFakeClock()
	q := newQueue(t, queue.WithClock(clock))
	enqueue(t, q, "crashy")
	for stall := 1; stall <= 2; stall++ {
		leaseOne(t, q, "w")
		clock.Advance(31 * time.Second)
		reclaimed, err := q.ReclaimStalled(ctx, 1)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(reclaimed).To(HaveLen(1))
		if stall == 1 {
			g.Expect(reclaimed[0].State).To(Equal(queue.StateWaiting))
		} else {
			g.Expect(reclaimed[0].State).To(Equal(queue.StateFailed))
		}
	}
	failed := get(t, q, "crashy")
	g.Expect(failed.Error).To(ContainSubstring("stalled"))
	g.Expect(failed.Stalls).To(Equal(2))
}

func TestCancelAndRemoveReachTheWorkerAtItsHeartbeat(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	q := newQueue(t)
	enqueue(t, q, "to-cancel")
	enqueue(t, q, "to-remove")
	res, err := q.Lease(ctx, "w", 2, time.Minute)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(res.Jobs).To(HaveLen(2))
	cancelled, removed := res.Jobs[0], res.Jobs[1]

	state, _, err := q.Cancel(ctx, cancelled.ID, time.Hour)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(state).To(Equal(queue.StateCancelled))
	g.Expect(q.Heartbeat(ctx, cancelled.ID, cancelled.Token, time.Minute)).To(Equal(queue.HeartbeatCancelled))
	_, err = q.Complete(ctx, cancelled.ID, cancelled.Token, nil)
	g.Expect(errors.Is(err, queue.ErrLeaseLost)).To(BeTrue())

	gone, err := q.Remove(ctx, removed.ID, "")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(gone).To(BeTrue())
	g.Expect(q.Heartbeat(ctx, removed.ID, removed.Token, time.Minute)).To(Equal(queue.HeartbeatRemoved))
	_, err = q.Get(ctx, removed.ID)
	g.Expect(errors.Is(err, queue.ErrNotFound)).To(BeTrue())

	counts, err := q.Counts(ctx)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(counts).To(Equal(queue.Counts{}))
}

func TestPauseStopsLeasingAndKeepsJobs(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	q := newQueue(t)
	enqueue(t, q, "a")
	enqueue(t, q, "b")
	g.Expect(q.Pause(ctx)).To(Succeed())
	res, err := q.Lease(ctx, "w", 5, time.Minute)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(res.Paused).To(BeTrue())
	g.Expect(res.Jobs).To(BeEmpty())
	counts, err := q.Counts(ctx)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(counts).To(Equal(queue.Counts{Paused: 2, IsPaused: true}))

	g.Expect(q.Resume(ctx)).To(Succeed())
	res, err = q.Lease(ctx, "w", 5, time.Minute)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(res.Jobs).To(HaveLen(2))
}

func TestRateLimitHoldsAcrossConcurrentWorkers(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	q, clock := rateLimitedQueue(t, 10, 35)

	// Four workers lease as fast as they can; the window admits 10 starts, whatever the race.
	startsIn := func() []*queue.Record { return leaseConcurrently(t, q, 4, 10, 3) }
	first := startsIn()
	g.Expect(first).To(HaveLen(10))

	// Jobs over the limit were not started: delayed to the window's end, no attempt counted.
	delayed, _, err := q.List(ctx, queue.StateDelayed, 0, 100)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(delayed).NotTo(BeEmpty())
	for _, j := range delayed {
		g.Expect(j.AttemptsMade).To(BeZero())
		g.Expect(j.DelayReason).To(Equal(queue.DelayRateLimited))
		g.Expect(j.DueAt).To(Equal(clock.Now().Add(time.Minute)))
	}
	res, err := q.Lease(ctx, "late", 1, time.Hour)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(res.Jobs).To(BeEmpty())
	g.Expect(res.RetryAt).To(Equal(clock.Now().Add(time.Minute)))

	clock.Advance(59 * time.Second)
	g.Expect(startsIn()).To(BeEmpty(), "still inside the first window")
	clock.Advance(time.Second)
	g.Expect(startsIn()).To(HaveLen(10), "the next window admits the next 10")

	// FIFO survives the detour through the delayed set.
	var ids []string
	for _, j := range first {
		ids = append(ids, j.ID)
	}
	g.Expect(ids).To(ConsistOf("job-00", "job-01", "job-02", "job-03", "job-04", "job-05", "job-06", "job-07", "job-08", "job-09"))
}

func TestOutsideRateLimitDelaysUncountedAndPausesLeasing(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	clock := newFakeClock()
	q := newQueue(t, queue.WithClock(clock))
	enqueue(t, q, "limited")
	enqueue(t, q, "next")
	job := leaseOne(t, q, "w")
	res, err := q.Fail(ctx, job.ID, job.Token, queue.Failure{Kind: queue.FailRateLimited, Message: "HTTP 429", RetryAfter: 30 * time.Second})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(res.State).To(Equal(queue.StateDelayed))
	g.Expect(res.DueAt).To(Equal(clock.Now().Add(30 * time.Second)))
	stored := get(t, q, "limited")
	g.Expect(stored.AttemptsMade).To(BeZero(), "a rate-limited attempt is not counted")

	lease, err := q.Lease(ctx, "w", 1, time.Minute)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(lease.Jobs).To(BeEmpty(), "the queue leases nothing while the outside API limits it")
	g.Expect(lease.RetryAt).To(Equal(res.DueAt))

	clock.Advance(30 * time.Second)
	lease, err = q.Lease(ctx, "w", 2, time.Minute)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(lease.Jobs).To(HaveLen(2))
	g.Expect(lease.Jobs[0].ID).To(Equal("limited"), "it keeps its place in line")
}

func TestSweepDeletesFinishedRecordsPastRetention(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	clock := newFakeClock()
	q := newQueue(t, queue.WithClock(clock))
	enqueue(t, q, "done")
	enqueue(t, q, "dead")
	a, b := leaseOne(t, q, "w"), leaseOne(t, q, "w")
	_, err := q.Complete(ctx, a.ID, a.Token, nil)
	g.Expect(err).NotTo(HaveOccurred())
	_, err = q.Fail(ctx, b.ID, b.Token, queue.Failure{Kind: queue.FailPermanent})
	g.Expect(err).NotTo(HaveOccurred())

	clock.Advance(24*time.Hour + time.Second)
	n, err := q.SweepFinished(ctx, 24*time.Hour, 7*24*time.Hour, 100)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(n).To(Equal(1))
	_, err = q.Get(ctx, "done")
	g.Expect(errors.Is(err, queue.ErrNotFound)).To(BeTrue())
	g.Expect(get(t, q, "dead").State).To(Equal(queue.StateFailed), "failed jobs are kept 7 days")

	clock.Advance(6 * 24 * time.Hour)
	n, err = q.SweepFinished(ctx, 24*time.Hour, 7*24*time.Hour, 100)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(n).To(Equal(1))
	counts, err := q.Counts(ctx)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(counts).To(Equal(queue.Counts{}))
}

func TestListPages(t *testing.T) {
	g := NewWithT(t)
	q := newQueue(t)
	for i := range 7 {
		enqueue(t, q, fmt.Sprintf("j%d", i))
	}
	page, total, err := q.List(context.Background(), queue.StateWaiting, 3, 3)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(total).To(Equal(int64(7)))
	var ids []string
	for _, j := range page {
		ids = append(ids, j.ID)
	}
	g.Expect(ids).To(Equal([]string{"j3", "j4", "j5"}))
}

func TestEveryTransitionBumpsTheVersion(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	clock := newFakeClock()
	q := newQueue(t, queue.WithClock(clock))
	versions := []int64{enqueue(t, q, "v").Version}
	job := leaseOne(t, q, "w") // active
	versions = append(versions, job.Version)
	v, err := q.Progress(ctx, job.ID, job.Token, 10, "")
	g.Expect(err).NotTo(HaveOccurred())
	versions = append(versions, v)
	f, err := q.Fail(ctx, job.ID, job.Token, queue.Failure{Kind: queue.FailRetry}) // delayed
	g.Expect(err).NotTo(HaveOccurred())
	versions = append(versions, f.Version)
	clock.Advance(5 * time.Second)
	job = leaseOne(t, q, "w") // waiting (promoted), then active again
	versions = append(versions, job.Version)
	v, err = q.Complete(ctx, job.ID, job.Token, nil)
	g.Expect(err).NotTo(HaveOccurred())
	versions = append(versions, v)
	for i := 1; i < len(versions); i++ {
		g.Expect(versions[i]).To(BeNumerically(">", versions[i-1]), "versions %v", versions)
	}
}

func TestScriptsReloadAfterRedisForgetsThem(t *testing.T) {
	g := NewWithT(t)
	server := testredis.Start(t)
	rdb := server.ClientFor(t)
	q := newQueueOn(t, rdb)
	enqueue(t, q, "before-flush")
	// A restarted or failed-over Redis has no scripts cached: EVALSHA answers NOSCRIPT.
	g.Expect(rdb.ScriptFlush(context.Background()).Err()).To(Succeed())
	enqueue(t, q, "after-flush")
	res, err := q.Lease(context.Background(), "w", 2, time.Minute)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(res.Jobs).To(HaveLen(2))
}

func TestReEnqueueStartsAboveTheVersionFloor(t *testing.T) {
	g := NewWithT(t)
	q := newQueue(t)
	res := enqueue(t, q, "lost", func(r *queue.EnqueueRequest) { r.MinVersion = 41 })
	g.Expect(res.Version).To(Equal(int64(42)))
}

func TestReleaseHandsBackUncounted(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	q := newQueue(t)
	enqueue(t, q, "first")
	enqueue(t, q, "second")
	job := leaseOne(t, q, "w")
	_, err := q.Release(ctx, job.ID, job.Token)
	g.Expect(err).NotTo(HaveOccurred())
	again := leaseOne(t, q, "w2")
	g.Expect(again.ID).To(Equal("first"), "it keeps its place in line")
	g.Expect(again.AttemptsMade).To(BeZero())
	_, err = q.Release(ctx, job.ID, job.Token)
	g.Expect(errors.Is(err, queue.ErrLeaseLost)).To(BeTrue())
}
