package queue_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/jengu/queue-operator/internal/testredis"
	"github.com/jengu/queue-operator/queue"
)

// bucketOf is the index of the StatsBuckets bucket that counts d.
func bucketOf(d time.Duration) int {
	for i, le := range queue.StatsBuckets {
		if d <= le {
			return i
		}
	}
	return len(queue.StatsBuckets)
}

// histogram is a Histogram of the given observations.
func histogram(ds ...time.Duration) queue.Histogram {
	h := queue.Histogram{Counts: make([]uint64, len(queue.StatsBuckets)+1)}
	for _, d := range ds {
		h.Counts[bucketOf(d)]++
		h.Sum += d
	}
	return h
}

// TestStatsCountEveryWayAJobEnds drives jobs down each path the engine knows and reads the
// queue's lifetime counters: each transition counts once, under its reason, in the script that
// makes it.
func TestStatsCountEveryWayAJobEnds(t *testing.T) {
	ctx := context.Background()
	clock := newFakeClock()
	q := newQueue(t, queue.WithClock(clock))
	one := func(r *queue.EnqueueRequest) { r.MaxAttempts = 1 }
	enqueue(t, q, "completes")
	enqueue(t, q, "permanent")
	enqueue(t, q, "timeout", one)
	enqueue(t, q, "exhausted", one)
	enqueue(t, q, "retries")
	enqueue(t, q, "stalls")
	enqueue(t, q, "cancelled")
	enqueue(t, q, "removed")
	clock.Advance(2 * time.Second) // each waits 2 s for its first start

	leased := map[string]*queue.Record{}
	for range 6 {
		r := leaseOne(t, q, "w1")
		leased[r.ID] = r
	}
	clock.Advance(3 * time.Second) // each runs 3 s
	if _, err := q.Complete(ctx, "completes", leased["completes"].Token, []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	fail := func(id string, f queue.Failure) {
		t.Helper()
		if _, err := q.Fail(ctx, id, leased[id].Token, f); err != nil {
			t.Fatalf("fail %s: %v", id, err)
		}
	}
	fail("permanent", queue.Failure{Kind: queue.FailPermanent, Message: "bad data"})
	fail("timeout", queue.Failure{Kind: queue.FailRetry, Message: "job timed out", TimedOut: true})
	fail("exhausted", queue.Failure{Kind: queue.FailRetry, Message: "boom"})
	fail("retries", queue.Failure{Kind: queue.FailRetry, Message: "boom"})
	// The lease of "stalls" runs out: it waits again, a stall counted.
	clock.Advance(time.Minute)
	if _, err := q.ReclaimStalled(ctx, 5); err != nil {
		t.Fatal(err)
	}
	if _, err := q.Remove(ctx, "cancelled", "", queue.RemoveAsCancel()); err != nil {
		t.Fatal(err)
	}
	if _, err := q.Remove(ctx, "removed", ""); err != nil { // a removal that cancels nothing
		t.Fatal(err)
	}
	if _, err := q.RetryFailed(ctx, "exhausted", ""); err != nil {
		t.Fatal(err)
	}
	// A second start of a job is no pickup: "stalls" and "exhausted" start again.
	clock.Advance(time.Second)
	for range 2 {
		leaseOne(t, q, "w2")
	}
	// Removing a finished job, even as a cancel, cancels nothing.
	if _, err := q.Remove(ctx, "completes", "", queue.RemoveAsCancel()); err != nil {
		t.Fatal(err)
	}

	got, err := q.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	pickup := []time.Duration{}
	for range 6 {
		pickup = append(pickup, 2*time.Second)
	}
	want := queue.Stats{
		Completed: 1,
		Failed:    map[string]uint64{queue.FailedPermanent: 1, queue.FailedTimeout: 1, queue.FailedExhausted: 1},
		Retried:   map[string]uint64{queue.RetriedError: 1, queue.RetriedStalled: 1, queue.RetriedManual: 1},
		Cancelled: 1,
		Pickup:    histogram(pickup...),
		Run:       histogram(3*time.Second, 3*time.Second, 3*time.Second, 3*time.Second),
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("stats (-want +got):\n%s", diff)
	}
}

func TestStatsCountTheLastStallAsAFailure(t *testing.T) {
	ctx := context.Background()
	clock := newFakeClock()
	q := newQueue(t, queue.WithClock(clock))
	enqueue(t, q, "stalls", func(r *queue.EnqueueRequest) { r.MaxAttempts = 1 })
	leaseOne(t, q, "w1")
	clock.Advance(time.Minute)
	if _, err := q.ReclaimStalled(ctx, 5); err != nil {
		t.Fatal(err)
	}
	got, err := q.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got.Failed[queue.FailedStalled] != 1 || got.Run.Count() != 1 || len(got.Retried) != 0 {
		t.Errorf("stats = %+v, want one stalled failure with its run time and no retry", got)
	}
}

func TestStatsCountJobsHeldBackByARateLimit(t *testing.T) {
	ctx := context.Background()
	q, _ := rateLimitedQueue(t, 1, 3)
	// The window admits one start: the second job popped goes delayed, held back by the limit.
	if _, err := q.Lease(ctx, "w1", 3, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	got, err := q.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got.RateLimited != 1 || got.Pickup.Count() != 1 {
		t.Errorf("rate limited %d, pickups %d; want 1 and 1", got.RateLimited, got.Pickup.Count())
	}
	// An outside API's rate limit counts too.
	r := leaseOneAfter(t, q)
	if _, err := q.Fail(ctx, r.ID, r.Token, queue.Failure{Kind: queue.FailRateLimited, RetryAfter: time.Second}); err != nil {
		t.Fatal(err)
	}
	if got, _ = q.Stats(ctx); got.RateLimited != 2 {
		t.Errorf("rate limited %d, want 2", got.RateLimited)
	}
}

// leaseOneAfter leases the job that is active now: the first one the rate-limited queue started.
func leaseOneAfter(t *testing.T, q *queue.Queue) *queue.Record {
	t.Helper()
	jobs, _, err := q.List(context.Background(), queue.StateActive, 0, 1)
	if err != nil || len(jobs) != 1 {
		t.Fatalf("active jobs: %v, %v", jobs, err)
	}
	return jobs[0]
}

func TestReadStatsOfSeveralQueuesAtOnce(t *testing.T) {
	ctx := context.Background()
	a, b := newQueue(t), newQueue(t)
	enqueue(t, a, "job")
	r := leaseOne(t, a, "w")
	if _, err := a.Complete(ctx, r.ID, r.Token, nil); err != nil {
		t.Fatal(err)
	}
	stats, err := queue.New(testredis.Shared(t)).ReadStats(ctx, a, b)
	if err != nil {
		t.Fatal(err)
	}
	if len(stats) != 2 || stats[0].Completed != 1 || stats[1].Completed != 0 {
		t.Errorf("stats = %+v, want one completed in the first queue only", stats)
	}
}
