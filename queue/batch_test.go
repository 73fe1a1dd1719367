package queue_test

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	. "github.com/onsi/gomega"
	"github.com/redis/go-redis/v9"

	"github.com/jengu/queue-operator/internal/testredis"
	"github.com/jengu/queue-operator/queue"
)

// jobKey is the record key of id in q (keys.go's layout), for tests that break records.
func jobKey(q *queue.Queue, id string) string {
	return "qo:{" + q.Namespace + "/" + q.Name + "}:job:" + id
}

func redisZ(at time.Time, id string) redis.Z {
	return redis.Z{Score: float64(at.UnixMilli()), Member: id}
}

// eventsAfter reads every retained event after the stream id after.
func eventsAfter(t *testing.T, q *queue.Queue, after string) []queue.Event {
	t.Helper()
	evs, err := q.ReadEvents(context.Background(), after, 10000, 0)
	if err != nil {
		t.Fatalf("read events: %v", err)
	}
	return evs
}

func TestLeasedJobIsTheStoredRecord(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	clock := newFakeClock()
	q := newQueue(t, queue.WithClock(clock))
	enqueue(t, q, "plain")
	enqueue(t, q, "urgent", func(r *queue.EnqueueRequest) {
		r.Priority = 7
		r.PayloadVersion = 3
		r.Backoff = queue.Backoff{Type: queue.BackoffFixed, Delay: time.Second, JitterPercent: 10}
	})
	enqueue(t, q, "retried")
	// "retried" fails once: it carries an error, a delay reason, an attempt and progress.
	first := leaseOne(t, q, "w")
	g.Expect(first.ID).To(Equal("urgent"))
	_, err := q.Release(ctx, first.ID, first.Token)
	g.Expect(err).NotTo(HaveOccurred())
	res, err := q.Lease(ctx, "w", 3, time.Minute)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(res.Jobs).To(HaveLen(3))
	for _, j := range res.Jobs {
		if j.ID != "retried" {
			_, err := q.Release(ctx, j.ID, j.Token)
			g.Expect(err).NotTo(HaveOccurred())
			continue
		}
		_, err := q.Progress(ctx, j.ID, j.Token, 30, "halfway")
		g.Expect(err).NotTo(HaveOccurred())
		_, err = q.Fail(ctx, j.ID, j.Token, queue.Failure{Kind: queue.FailRetry, Message: "boom"})
		g.Expect(err).NotTo(HaveOccurred())
	}
	clock.Advance(time.Minute)

	res, err = q.Lease(ctx, "worker-b", 10, 45*time.Second)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(res.Jobs).To(HaveLen(3))
	for _, j := range res.Jobs {
		stored := get(t, q, j.ID)
		g.Expect(cmp.Diff(stored, j)).To(BeEmpty(), "leased %s differs from its record", j.ID)
		g.Expect(j.State).To(Equal(queue.StateActive))
		g.Expect(j.Token).NotTo(Equal(fmt.Sprint(j.Version)), "the token is a nonce, not the version")
		g.Expect(j.Worker).To(Equal("worker-b"))
		g.Expect(j.LeaseUntil).To(Equal(clock.Now().Add(45 * time.Second)))
		g.Expect(j.DueAt.IsZero()).To(BeTrue())
	}
	retried := get(t, q, "retried")
	g.Expect(retried.Error).To(Equal("boom"))
	g.Expect(retried.AttemptsMade).To(Equal(1))
	g.Expect(retried.DelayReason).To(Equal(queue.DelayRetry))
}

func TestCompleteManyFencesEachJobByItsOwnToken(t *testing.T) {
	type outcome int
	const (
		completes outcome = iota
		lost
	)
	type item struct {
		id      string
		spoil   string // how the test makes the token stale: "", wrong, cancel, remove, takeover, dup
		outcome outcome
	}
	for _, tc := range []struct {
		name  string
		items []item
	}{
		{"all valid", []item{{"a", "", completes}, {"b", "", completes}, {"c", "", completes}}},
		{"one", []item{{"a", "", completes}}},
		{"all stale", []item{{"a", "wrong", lost}, {"b", "cancel", lost}}},
		{"mixed", []item{
			{"a", "", completes}, {"b", "wrong", lost}, {"c", "", completes}, {"d", "cancel", lost},
			{"e", "remove", lost}, {"f", "takeover", lost}, {"g", "", completes},
		}},
		{"duplicate in one batch", []item{{"a", "", completes}, {"a", "dup", lost}, {"b", "", completes}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			ctx := context.Background()
			clock := newFakeClock()
			q := newQueue(t, queue.WithClock(clock))
			seen := map[string]bool{}
			for _, it := range tc.items {
				if !seen[it.id] {
					seen[it.id] = true
					enqueue(t, q, it.id)
				}
			}
			res, err := q.Lease(ctx, "w", len(seen), 30*time.Second)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(res.Jobs).To(HaveLen(len(seen)))
			leased := map[string]*queue.Record{}
			for _, j := range res.Jobs {
				leased[j.ID] = j
			}
			var cs []queue.Completion
			for _, it := range tc.items {
				j := leased[it.id]
				token := j.Token
				switch it.spoil {
				case "wrong":
					token = "999999"
				case "cancel":
					_, _, err := q.Cancel(ctx, it.id, time.Hour)
					g.Expect(err).NotTo(HaveOccurred())
				case "remove":
					_, err := q.Remove(ctx, it.id, "")
					g.Expect(err).NotTo(HaveOccurred())
				case "takeover":
					// Its lease is reclaimed and another worker leases it: a new token.
					g.Expect(testredis.Shared(t).ZAdd(ctx, "qo:{"+q.Namespace+"/"+q.Name+"}:active",
						redisZ(clock.Now().Add(-time.Second), it.id)).Err()).To(Succeed())
					_, err := q.ReclaimStalled(ctx, 5)
					g.Expect(err).NotTo(HaveOccurred())
					again := leaseOne(t, q, "other")
					g.Expect(again.ID).To(Equal(it.id))
					g.Expect(again.Token).NotTo(Equal(j.Token))
				}
				cs = append(cs, queue.Completion{ID: it.id, Token: token, Result: []byte("r-" + it.id)})
			}
			before := map[string]*queue.Record{}
			for id := range seen {
				if j, err := q.Get(ctx, id); err == nil {
					before[id] = j
				}
			}
			last, err := q.LastEventID(ctx)
			g.Expect(err).NotTo(HaveOccurred())
			clock.Advance(time.Second)

			results, err := q.CompleteMany(ctx, cs)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(results).To(HaveLen(len(cs)))

			wantCompleted := map[string]int64{}
			for i, it := range tc.items {
				r := results[i]
				switch it.outcome {
				case completes:
					g.Expect(r.Err).NotTo(HaveOccurred(), it.id)
					g.Expect(r.Version).To(Equal(before[it.id].Version+1), "one bump for %s", it.id)
					wantCompleted[it.id] = r.Version
					stored := get(t, q, it.id)
					g.Expect(stored.State).To(Equal(queue.StateCompleted))
					g.Expect(stored.Version).To(Equal(r.Version))
					g.Expect(stored.AttemptsMade).To(Equal(1))
					g.Expect(stored.Progress).To(Equal(100))
					g.Expect(stored.Token).To(BeEmpty())
					g.Expect(stored.LeaseUntil.IsZero()).To(BeTrue())
					g.Expect(stored.FinishedAt).To(Equal(clock.Now()))
					g.Expect(string(stored.Result)).To(Equal("r-" + it.id))
				case lost:
					g.Expect(errors.Is(r.Err, queue.ErrLeaseLost)).To(BeTrue(), "%s: %v", it.id, r.Err)
					g.Expect(r.Version).To(BeZero())
					if it.spoil == "dup" {
						continue // the first entry completed it
					}
					if b := before[it.id]; b != nil {
						after := get(t, q, it.id)
						g.Expect(after.Version).To(Equal(b.Version), "a refused completion changes nothing")
						g.Expect(after.State).To(Equal(b.State))
						g.Expect(after.AttemptsMade).To(Equal(b.AttemptsMade))
					}
				}
			}

			// One completed event per completed job, carrying its version; nothing else.
			got := map[string]int64{}
			for _, ev := range eventsAfter(t, q, last) {
				g.Expect(ev.Type).To(Equal("completed"))
				g.Expect(got).NotTo(HaveKey(ev.JobID), "one event per job")
				got[ev.JobID] = ev.Version
			}
			g.Expect(got).To(Equal(wantCompleted))

			// Counts: the completed ones left the active set; stale ones are where they were.
			active := 0
			for id, b := range before {
				if _, done := wantCompleted[id]; !done && b.State == queue.StateActive {
					active++
				}
			}
			counts, err := q.Counts(ctx)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(counts.Completed).To(BeEquivalentTo(len(wantCompleted)))
			g.Expect(counts.Active).To(BeEquivalentTo(active))
			ids, err := q.IDs(ctx, queue.StateCompleted, 0, 100)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(ids).To(HaveLen(len(wantCompleted)))
		})
	}
}

func TestCompleteManyOfNothingAndOfMoreThanOneCall(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	q := newQueue(t)
	res, err := q.CompleteMany(ctx, nil)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(res).To(BeEmpty())

	const n = 1203 // more than one script call's batch
	for i := range n {
		enqueue(t, q, fmt.Sprintf("j%04d", i))
	}
	lease, err := q.Lease(ctx, "w", n, time.Minute)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(lease.Jobs).To(HaveLen(n))
	var cs []queue.Completion
	for i, j := range lease.Jobs {
		token := j.Token
		if i%100 == 7 {
			token = "stale"
		}
		cs = append(cs, queue.Completion{ID: j.ID, Token: token})
	}
	res, err = q.CompleteMany(ctx, cs)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(res).To(HaveLen(n))
	okCount := 0
	for i, r := range res {
		if i%100 == 7 {
			g.Expect(errors.Is(r.Err, queue.ErrLeaseLost)).To(BeTrue())
			continue
		}
		g.Expect(r.Err).NotTo(HaveOccurred())
		g.Expect(r.Version).To(Equal(lease.Jobs[i].Version + 1))
		okCount++
	}
	counts, err := q.Counts(ctx)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(counts).To(Equal(queue.Counts{Completed: int64(okCount), Active: int64(n - okCount)}))
}

func TestVersionsRiseStrictlyThroughBatchedLeaseAndCompletion(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	clock := newFakeClock()
	q := newQueue(t, queue.WithClock(clock))
	versions := map[string][]int64{}
	for i := range 8 {
		id := fmt.Sprintf("v%d", i)
		versions[id] = append(versions[id], enqueue(t, q, id, func(r *queue.EnqueueRequest) {
			r.Backoff = queue.Backoff{Type: queue.BackoffFixed, Delay: time.Second}
		}).Version)
	}
	// Round 1: leased in a batch, every job fails once (delayed), so round 2 promotes them.
	res, err := q.Lease(ctx, "w", 8, time.Minute)
	g.Expect(err).NotTo(HaveOccurred())
	for _, j := range res.Jobs {
		versions[j.ID] = append(versions[j.ID], j.Version)
		f, err := q.Fail(ctx, j.ID, j.Token, queue.Failure{Kind: queue.FailRetry})
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(f.State).To(Equal(queue.StateDelayed))
		versions[j.ID] = append(versions[j.ID], f.Version)
	}
	clock.Advance(time.Second)
	// Round 2: promoted (one bump each) and leased (another) in one call, completed in one call.
	res, err = q.Lease(ctx, "w", 8, time.Minute)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(res.Jobs).To(HaveLen(8))
	var cs []queue.Completion
	for _, j := range res.Jobs {
		prev := versions[j.ID][len(versions[j.ID])-1]
		g.Expect(j.Version).To(Equal(prev+2), "promotion and lease each bump %s", j.ID)
		versions[j.ID] = append(versions[j.ID], j.Version)
		cs = append(cs, queue.Completion{ID: j.ID, Token: j.Token})
	}
	done, err := q.CompleteMany(ctx, cs)
	g.Expect(err).NotTo(HaveOccurred())
	for i, r := range done {
		g.Expect(r.Err).NotTo(HaveOccurred())
		versions[cs[i].ID] = append(versions[cs[i].ID], r.Version)
	}
	for id, vs := range versions {
		g.Expect(vs).To(HaveLen(5))
		for i := 1; i < len(vs); i++ {
			g.Expect(vs[i]).To(BeNumerically(">", vs[i-1]), "%s versions %v", id, vs)
		}
		// And the events stream tells the same story, one event per transition.
		var evVersions []int64
		for _, ev := range eventsAfter(t, q, queue.StreamStart) {
			if ev.JobID == id {
				evVersions = append(evVersions, ev.Version)
			}
		}
		g.Expect(evVersions).To(HaveLen(6), "waiting, active, delayed, waiting, active, completed of %s", id)
		for i := 1; i < len(evVersions); i++ {
			g.Expect(evVersions[i]).To(Equal(evVersions[i-1]+1), "%s event versions %v", id, evVersions)
		}
	}
}

func TestBatchLeaseKeepsPriorityThenFIFO(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	q := newQueue(t)
	type entry struct {
		id       string
		priority int
		seq      int
	}
	var all []entry
	for i := range 40 {
		p := []int{0, 5, -3, 1000, 5, 0, -1000}[i%7]
		id := fmt.Sprintf("j%02d", i)
		enqueue(t, q, id, func(r *queue.EnqueueRequest) { r.Priority = p })
		all = append(all, entry{id, p, i})
	}
	// A record that vanished from under the waiting set is skipped.
	g.Expect(testredis.Shared(t).Del(ctx, jobKey(q, "j10")).Err()).To(Succeed())
	sort.SliceStable(all, func(a, b int) bool { return all[a].priority > all[b].priority })
	var want []string
	for _, e := range all {
		if e.id != "j10" {
			want = append(want, e.id)
		}
	}
	var got []string
	for {
		res, err := q.Lease(ctx, "w", 6, time.Minute)
		g.Expect(err).NotTo(HaveOccurred())
		for _, j := range res.Jobs {
			got = append(got, j.ID)
		}
		if len(res.Jobs) == 0 {
			break
		}
	}
	g.Expect(got).To(Equal(want))
}

func TestBatchLeaseStopsExactlyAtTheRateLimit(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	q, clock := rateLimitedQueue(t, 5, 12)
	// Records that vanished among the first pops are skipped, not counted as starts.
	g.Expect(testredis.Shared(t).Del(ctx, jobKey(q, "job-01"), jobKey(q, "job-03")).Err()).To(Succeed())
	last, err := q.LastEventID(ctx)
	g.Expect(err).NotTo(HaveOccurred())

	res, err := q.Lease(ctx, "w", 10, time.Hour)
	g.Expect(err).NotTo(HaveOccurred())
	var ids []string
	for _, j := range res.Jobs {
		ids = append(ids, j.ID)
	}
	g.Expect(ids).To(Equal([]string{"job-00", "job-02", "job-04", "job-05", "job-06"}))
	g.Expect(res.RetryAt).To(Equal(clock.Now().Add(time.Minute)))

	// The next one in line was popped over the limit: delayed to the window's end, seq kept.
	over := get(t, q, "job-07")
	g.Expect(over.State).To(Equal(queue.StateDelayed))
	g.Expect(over.DelayReason).To(Equal(queue.DelayRateLimited))
	g.Expect(over.DueAt).To(Equal(clock.Now().Add(time.Minute)))
	g.Expect(over.Seq).To(BeEquivalentTo(8))
	g.Expect(over.AttemptsMade).To(BeZero())
	counts, err := q.Counts(ctx)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(counts).To(Equal(queue.Counts{Active: 5, Delayed: 1, Waiting: 4}))
	var types []string
	for _, ev := range eventsAfter(t, q, last) {
		types = append(types, ev.Type+":"+ev.JobID)
	}
	g.Expect(types).To(Equal([]string{"active:job-00", "active:job-02", "active:job-04", "active:job-05",
		"active:job-06", "delayed:job-07"}))

	// Nothing more inside the window, one job at a time or many.
	for _, n := range []int{1, 10} {
		res, err = q.Lease(ctx, "w", n, time.Hour)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(res.Jobs).To(BeEmpty())
	}
	// The window moves on: the delayed job comes back first, at its place in line.
	clock.Advance(time.Minute)
	res, err = q.Lease(ctx, "w", 10, time.Hour)
	g.Expect(err).NotTo(HaveOccurred())
	ids = nil
	for _, j := range res.Jobs {
		ids = append(ids, j.ID)
	}
	g.Expect(ids).To(Equal([]string{"job-07", "job-08", "job-09", "job-10", "job-11"}))
}

func TestBatchLeaseRespectsTheRateLimitUnderConcurrentLeasers(t *testing.T) {
	for _, tc := range []struct{ rateMax, batch, workers int }{{10, 8, 4}, {7, 50, 6}, {25, 4, 8}, {1, 3, 3}} {
		t.Run(fmt.Sprintf("max%d-batch%d-workers%d", tc.rateMax, tc.batch, tc.workers), func(t *testing.T) {
			g := NewWithT(t)
			ctx := context.Background()
			const jobs = 60
			q, clock := rateLimitedQueue(t, tc.rateMax, jobs)
			startsIn := func() []*queue.Record { return leaseConcurrently(t, q, tc.workers, 5, tc.batch) }
			total := 0
			for window := 0; total < jobs; window++ {
				g.Expect(window).To(BeNumerically("<", 100))
				got := startsIn()
				g.Expect(len(got)).To(Equal(min(tc.rateMax, jobs-total)), "window %d", window)
				total += len(got)
				clock.Advance(30 * time.Second)
				g.Expect(startsIn()).To(BeEmpty(), "half a window later")
				clock.Advance(30 * time.Second)
			}
			counts, err := q.Counts(ctx)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(counts.Active).To(BeEquivalentTo(jobs))
		})
	}
}
