package queue_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/jengu/queue-operator/internal/testredis"
	"github.com/jengu/queue-operator/queue"
)

// fakeClock is a clock tests move by hand.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.UnixMilli(1_800_000_000_000)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

var namespaceSeq atomic.Int64

// newQueue returns a queue of a namespace of the test's own on the shared Redis.
func newQueue(t *testing.T, opts ...queue.Option) *queue.Queue {
	t.Helper()
	return newQueueOn(t, testredis.Shared(t), opts...)
}

func newQueueOn(t *testing.T, rdb redis.UniversalClient, opts ...queue.Option) *queue.Queue {
	t.Helper()
	ns := fmt.Sprintf("t%d-%d", time.Now().UnixNano()%1_000_000, namespaceSeq.Add(1))
	return queue.New(rdb, opts...).Queue(ns, "enrichment")
}

// enqueue adds a job with the seed's enrichment settings, failing the test on error.
func enqueue(t *testing.T, q *queue.Queue, id string, mutate ...func(*queue.EnqueueRequest)) queue.EnqueueResult {
	t.Helper()
	r := queue.EnqueueRequest{ID: id, UID: "uid-" + id, Payload: []byte(`{"propertyId":"p1"}`),
		MaxAttempts: 5, Backoff: queue.SeedBackoff, Timeout: 5 * time.Minute}
	for _, m := range mutate {
		m(&r)
	}
	res, err := q.Enqueue(context.Background(), r)
	if err != nil {
		t.Fatalf("enqueue %s: %v", id, err)
	}
	return res
}

// leaseOne leases exactly one job, failing the test otherwise.
// rateLimitedQueue is a queue on a fake clock that starts at most max jobs a minute, with jobs
// job-00, job-01, ... waiting.
func rateLimitedQueue(t *testing.T, max, jobs int) (*queue.Queue, *fakeClock) {
	t.Helper()
	clock := newFakeClock()
	q := newQueue(t, queue.WithClock(clock))
	if err := q.SetRateLimit(context.Background(), max, time.Minute); err != nil {
		t.Fatalf("set rate limit: %v", err)
	}
	for i := range jobs {
		enqueue(t, q, fmt.Sprintf("job-%02d", i))
	}
	return q, clock
}

// leaseConcurrently has workers lease batches of batch, rounds times each, all at once, and
// returns every job started.
func leaseConcurrently(t *testing.T, q *queue.Queue, workers, rounds, batch int) []*queue.Record {
	var mu sync.Mutex
	var wg sync.WaitGroup
	var started []*queue.Record
	for w := range workers {
		wg.Go(func() {
			for range rounds {
				res, err := q.Lease(context.Background(), fmt.Sprintf("worker-%d", w), batch, time.Hour)
				if err != nil {
					t.Errorf("lease: %v", err)
					return
				}
				mu.Lock()
				started = append(started, res.Jobs...)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return started
}

func leaseOne(t *testing.T, q *queue.Queue, worker string) *queue.Record {
	t.Helper()
	res, err := q.Lease(context.Background(), worker, 1, 30*time.Second)
	if err != nil {
		t.Fatalf("lease: %v", err)
	}
	if len(res.Jobs) != 1 {
		t.Fatalf("lease got %d jobs, want 1 (retryAt %v, paused %v)", len(res.Jobs), res.RetryAt, res.Paused)
	}
	return res.Jobs[0]
}

func get(t *testing.T, q *queue.Queue, id string) *queue.Record {
	t.Helper()
	j, err := q.Get(context.Background(), id)
	if err != nil {
		t.Fatalf("get %s: %v", id, err)
	}
	return j
}
