package queue_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	. "github.com/onsi/gomega"
	"github.com/redis/go-redis/v9"

	"github.com/jengu/queue-operator/internal/testredis"
	"github.com/jengu/queue-operator/queue"
)

// seedRequest is a request with the seed's enrichment settings.
func seedRequest(id string) queue.EnqueueRequest {
	return queue.EnqueueRequest{ID: id, UID: "uid-" + id, Payload: []byte(`{"propertyId":"p1"}`),
		MaxAttempts: 5, Backoff: queue.SeedBackoff, Timeout: 5 * time.Minute}
}

func TestEnqueueManyAddsEachJobAsEnqueueDoes(t *testing.T) {
	ctx := context.Background()
	withDefaults := func(id string) queue.EnqueueRequest {
		return queue.EnqueueRequest{ID: id, UID: "u", Payload: []byte("x")}
	}
	tests := []struct {
		name string
		req  queue.EnqueueRequest
	}{
		{"seed settings", seedRequest("seed")},
		{"defaults only", withDefaults("defaults")},
		{"priority and payload version", func() queue.EnqueueRequest {
			r := seedRequest("urgent")
			r.Priority, r.PayloadVersion = -7, 3
			return r
		}()},
		{"fixed backoff with jitter", func() queue.EnqueueRequest {
			r := seedRequest("jitter")
			r.Backoff = queue.Backoff{Type: queue.BackoffFixed, Delay: time.Second, JitterPercent: 10}
			return r
		}()},
		{"delayed", func() queue.EnqueueRequest {
			r := seedRequest("later")
			r.Delay = time.Minute
			return r
		}()},
		{"version floor", func() queue.EnqueueRequest {
			r := withDefaults("floored")
			r.MinVersion = 41
			return r
		}()},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			clock := newFakeClock()
			single, many := newQueue(t, queue.WithClock(clock)), newQueue(t, queue.WithClock(clock))
			want, err := single.Enqueue(ctx, tc.req)
			g.Expect(err).NotTo(HaveOccurred())
			got, err := many.EnqueueMany(ctx, []queue.EnqueueRequest{tc.req})
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(got).To(Equal([]queue.EnqueueManyResult{{EnqueueResult: want}}))

			a, b := get(t, single, tc.req.ID), get(t, many, tc.req.ID)
			g.Expect(cmp.Diff(a, b)).To(BeEmpty())
			// Get gives back every setting of the request, stored or defaulted.
			g.Expect(b.PayloadVersion).To(Equal(max(tc.req.PayloadVersion, 1)))
			g.Expect(b.MaxAttempts).To(Equal(max(tc.req.MaxAttempts, 1)))
			g.Expect(b.Priority).To(Equal(tc.req.Priority))
			g.Expect(b.Timeout).To(Equal(tc.req.Timeout))
			wantBackoff := tc.req.Backoff
			if wantBackoff.Type == "" {
				wantBackoff.Type = queue.BackoffFixed
			}
			g.Expect(b.Backoff).To(Equal(wantBackoff))
			g.Expect(b.Version).To(Equal(max(tc.req.MinVersion, 0) + 1))

			evs := eventsAfter(t, many, queue.StreamStart)
			g.Expect(evs).To(HaveLen(1))
			g.Expect(evs[0].JobID).To(Equal(tc.req.ID))
			g.Expect(evs[0].Type).To(Equal(string(b.State)))
			g.Expect(evs[0].Version).To(Equal(b.Version))
		})
	}
}

func TestEnqueueManyReportsEachRequestOnItsOwn(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	q := newQueue(t)
	enqueue(t, q, "live")
	bad := seedRequest("bad")
	bad.Priority = 2000
	other := seedRequest("live")
	other.UID = "someone-else"
	res, err := q.EnqueueMany(ctx, []queue.EnqueueRequest{
		seedRequest("a"),
		{ID: "no-uid"},
		bad,
		seedRequest("live"), // same id and uid: exists
		other,               // same id, other uid, live: conflict
		seedRequest("a"),    // a duplicate within the call sees the first
		seedRequest("b"),
	})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(res).To(HaveLen(7))
	g.Expect(res[0]).To(Equal(queue.EnqueueManyResult{EnqueueResult: queue.EnqueueResult{Created: true, Version: 1, State: queue.StateWaiting}}))
	g.Expect(res[1].Err).To(HaveOccurred())
	g.Expect(res[2].Err).To(HaveOccurred())
	g.Expect(res[3]).To(Equal(queue.EnqueueManyResult{EnqueueResult: queue.EnqueueResult{Version: 1, State: queue.StateWaiting}}))
	g.Expect(errors.Is(res[4].Err, queue.ErrConflict)).To(BeTrue(), "%v", res[4].Err)
	g.Expect(res[5]).To(Equal(queue.EnqueueManyResult{EnqueueResult: queue.EnqueueResult{Version: 1, State: queue.StateWaiting}}))
	g.Expect(res[6].Created).To(BeTrue())

	ids, err := q.IDs(ctx, queue.StateWaiting, 0, 10)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(ids).To(Equal([]string{"live", "a", "b"}), "FIFO in the order given")
	_, err = q.Get(ctx, "bad")
	g.Expect(errors.Is(err, queue.ErrNotFound)).To(BeTrue())
}

// A call of jobs none of which existed before still sees its own duplicates, and its waiting
// jobs go in priority order, FIFO within a priority, delayed ones to the delayed set.
func TestEnqueueManyOfNewJobsSeesItsOwnDuplicates(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	q := newQueue(t)
	withPriority := func(id string, p int) queue.EnqueueRequest {
		r := seedRequest(id)
		r.Priority = p
		return r
	}
	other := seedRequest("x")
	other.UID = "someone-else"
	later := seedRequest("later")
	later.Delay = time.Minute
	res, err := q.EnqueueMany(ctx, []queue.EnqueueRequest{
		seedRequest("x"),
		withPriority("urgent", 5),
		other,            // same id, other uid, created just before: conflict
		seedRequest("x"), // same id and uid: exists
		later,
		seedRequest("y"),
		withPriority("low", -5),
	})
	g.Expect(err).NotTo(HaveOccurred())
	created := func(s queue.State) queue.EnqueueManyResult {
		return queue.EnqueueManyResult{EnqueueResult: queue.EnqueueResult{Created: true, Version: 1, State: s}}
	}
	g.Expect(res[0]).To(Equal(created(queue.StateWaiting)))
	g.Expect(res[1]).To(Equal(created(queue.StateWaiting)))
	g.Expect(errors.Is(res[2].Err, queue.ErrConflict)).To(BeTrue(), "%v", res[2].Err)
	g.Expect(res[3]).To(Equal(queue.EnqueueManyResult{EnqueueResult: queue.EnqueueResult{Version: 1, State: queue.StateWaiting}}))
	g.Expect(res[4]).To(Equal(created(queue.StateDelayed)))
	g.Expect(res[5]).To(Equal(created(queue.StateWaiting)))
	g.Expect(res[6]).To(Equal(created(queue.StateWaiting)))

	ids, err := q.IDs(ctx, queue.StateWaiting, 0, 10)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(ids).To(Equal([]string{"urgent", "x", "y", "low"}))
	ids, err = q.IDs(ctx, queue.StateDelayed, 0, 10)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(ids).To(Equal([]string{"later"}))
	g.Expect(get(t, q, "x").UID).To(Equal("uid-x"))
	g.Expect(eventsAfter(t, q, queue.StreamStart)).To(HaveLen(5), "one event per created job")

	// A later call's jobs go after this one's, however many sequence numbers it left unused.
	enqueue(t, q, "z")
	ids, err = q.IDs(ctx, queue.StateWaiting, 0, 10)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(ids).To(Equal([]string{"urgent", "x", "y", "z", "low"}))
}

func TestEnqueueManyOfNothingAndOfMoreThanOneCall(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	q := newQueue(t)
	res, err := q.EnqueueMany(ctx, nil)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(res).To(BeEmpty())

	const n = 450 // more than one script call's bound
	rs := make([]queue.EnqueueRequest, n)
	for i := range rs {
		rs[i] = seedRequest(fmt.Sprintf("j%03d", i))
	}
	res, err = q.EnqueueMany(ctx, rs)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(res).To(HaveLen(n))
	for _, r := range res {
		g.Expect(r.Err).NotTo(HaveOccurred())
		g.Expect(r.Created).To(BeTrue())
	}
	ids, err := q.IDs(ctx, queue.StateWaiting, 0, n)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(ids).To(HaveLen(n))
	for i, id := range ids {
		g.Expect(id).To(Equal(rs[i].ID), "FIFO across calls")
	}
	g.Expect(eventsAfter(t, q, queue.StreamStart)).To(HaveLen(n))
}

// A record written before Enqueue stopped storing its defaults and zeros (every field present)
// still leases, completes and reads as before.
func TestRecordWithEveryFieldStoredStillWorks(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	clock := newFakeClock()
	q := newQueue(t, queue.WithClock(clock))
	rdb := testredis.Shared(t)
	now := clock.Now().UnixMilli()
	g.Expect(rdb.HSet(ctx, jobKey(q, "old"), "id", "old", "uid", "uid-old", "payload", "p", "pv", 1,
		"priority", 0, "seq", 1, "attempts", 0, "maxAttempts", 1, "stalls", 0, "backoffType", "fixed",
		"backoffDelay", 0, "backoffMult", 0, "backoffJitter", 0, "timeout", 0, "state", "waiting",
		"progress", 0, "createdAt", now, "version", 1).Err()).To(Succeed())
	base := "qo:{" + q.Namespace + "/" + q.Name + "}:"
	g.Expect(rdb.ZAdd(ctx, base+"wait", redis.Z{Score: 1000e12 + 1, Member: "old"}).Err()).To(Succeed())
	g.Expect(rdb.HSet(ctx, base+"meta", "seq", 1).Err()).To(Succeed())
	enqueue(t, q, "new", func(r *queue.EnqueueRequest) {
		*r = queue.EnqueueRequest{ID: "new", UID: "uid-new", Payload: []byte("p")}
	})

	res, err := q.Lease(ctx, "w", 2, time.Minute)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(res.Jobs).To(HaveLen(2))
	g.Expect(res.Jobs[0].ID).To(Equal("old"), "the older seq first")
	for _, j := range res.Jobs {
		g.Expect(cmp.Diff(get(t, q, j.ID), j)).To(BeEmpty())
		g.Expect(j.MaxAttempts).To(Equal(1))
		g.Expect(j.PayloadVersion).To(Equal(1))
		g.Expect(j.Backoff).To(Equal(queue.Backoff{Type: queue.BackoffFixed}))
	}
	// Out of attempts either way: a retry fails both for good.
	for _, j := range res.Jobs {
		f, err := q.Fail(ctx, j.ID, j.Token, queue.Failure{Kind: queue.FailRetry, Message: "x"})
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(f.State).To(Equal(queue.StateFailed))
	}
}

func TestConcurrentEnqueuesShareCallsAndKeepEveryGuarantee(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	// A private client counting the script calls: the engine combines concurrent Enqueue calls.
	rdb := redis.NewClient(testredis.Shared(t).Options())
	t.Cleanup(func() { _ = rdb.Close() })
	var calls atomic.Int64
	rdb.AddHook(countHook{&calls})
	q := newQueueOn(t, rdb)
	other := queue.New(rdb).Queue(q.Namespace, q.Name) // another Queue value of the same queue

	const goroutines, perGoroutine = 16, 40
	var wg sync.WaitGroup
	results := make([][]queue.EnqueueResult, goroutines)
	for w := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			qq := q
			if w%2 == 1 {
				qq = other
			}
			for i := range perGoroutine {
				// Every job is enqueued twice, by two goroutines: one creates it, one finds it.
				id := fmt.Sprintf("j%d-%d", w/2, i)
				res, err := qq.Enqueue(ctx, queue.EnqueueRequest{ID: id, UID: "u-" + id, Payload: []byte("p")})
				if err != nil {
					t.Errorf("enqueue %s: %v", id, err)
					return
				}
				results[w] = append(results[w], res)
			}
		}()
	}
	wg.Wait()
	created := 0
	for _, rs := range results {
		for _, r := range rs {
			g.Expect(r.Version).To(Equal(int64(1)))
			g.Expect(r.State).To(Equal(queue.StateWaiting))
			if r.Created {
				created++
			}
		}
	}
	const jobs = goroutines / 2 * perGoroutine
	g.Expect(created).To(Equal(jobs), "each job created exactly once")
	counts, err := q.Counts(ctx)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(counts.Waiting).To(Equal(int64(jobs)))
	evs := eventsAfter(t, q, queue.StreamStart)
	g.Expect(evs).To(HaveLen(jobs), "one event per created job")
	seen := map[string]bool{}
	for _, e := range evs {
		g.Expect(e.Type).To(Equal("waiting"))
		g.Expect(seen[e.JobID]).To(BeFalse())
		seen[e.JobID] = true
	}
	t.Logf("%d enqueues in %d script calls", goroutines*perGoroutine, calls.Load())
}

// countHook counts the commands a client sends.
type countHook struct{ n *atomic.Int64 }

func (countHook) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h countHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.n.Add(1)
		return next(ctx, cmd)
	}
}
func (countHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

func TestRemoveOnCompleteDeletesTheRecordAndStillEmitsTheEvent(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	clock := newFakeClock()
	q := newQueue(t, queue.WithClock(clock))
	g.Expect(q.SetRemoveOnComplete(ctx, true)).To(Succeed())
	for _, id := range []string{"a", "b", "c"} {
		enqueue(t, q, id)
	}
	res, err := q.Lease(ctx, "w", 3, time.Minute)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(res.Jobs).To(HaveLen(3))
	a, b, c := res.Jobs[0], res.Jobs[1], res.Jobs[2]
	after, err := q.LastEventID(ctx)
	g.Expect(err).NotTo(HaveOccurred())

	out, err := q.CompleteMany(ctx, []queue.Completion{{ID: a.ID, Token: a.Token, Result: []byte("r")}, {ID: b.ID, Token: "stale"}})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(out[0]).To(Equal(queue.CompleteResult{Version: a.Version + 1}))
	g.Expect(errors.Is(out[1].Err, queue.ErrLeaseLost)).To(BeTrue())

	_, err = q.Get(ctx, a.ID)
	g.Expect(errors.Is(err, queue.ErrNotFound)).To(BeTrue(), "the completed record is gone")
	g.Expect(get(t, q, b.ID).State).To(Equal(queue.StateActive), "a refused completion changes nothing")
	evs := eventsAfter(t, q, after)
	g.Expect(evs).To(HaveLen(1))
	g.Expect(evs[0].Type).To(Equal("completed"))
	g.Expect(evs[0].JobID).To(Equal(a.ID))
	g.Expect(evs[0].Version).To(Equal(a.Version + 1))
	counts, err := q.Counts(ctx)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(counts).To(Equal(queue.Counts{Active: 2}))
	// A second completion with the same token is refused.
	_, err = q.Complete(ctx, a.ID, a.Token, nil)
	g.Expect(errors.Is(err, queue.ErrLeaseLost)).To(BeTrue())
	// Failures are kept either way.
	f, err := q.Fail(ctx, b.ID, b.Token, queue.Failure{Kind: queue.FailPermanent, Message: "bad"})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(get(t, q, b.ID).Version).To(Equal(f.Version))

	// Back to keeping: the next completion keeps its record.
	g.Expect(q.SetRemoveOnComplete(ctx, false)).To(Succeed())
	v, err := q.Complete(ctx, c.ID, c.Token, []byte("kept"))
	g.Expect(err).NotTo(HaveOccurred())
	kept := get(t, q, c.ID)
	g.Expect(kept.State).To(Equal(queue.StateCompleted))
	g.Expect(kept.Version).To(Equal(v))
	g.Expect(string(kept.Result)).To(Equal("kept"))
}
