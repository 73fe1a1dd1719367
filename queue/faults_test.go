package queue_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	. "github.com/onsi/gomega"
	"github.com/redis/go-redis/v9"

	"github.com/jengu/queue-operator/internal/testredis"
	"github.com/jengu/queue-operator/queue"
)

// runWorker leases and completes jobs until ctx ends, the way the worker runtime does: lease,
// and when nothing came, block on Redis until woken or due.
func runWorker(ctx context.Context, q *queue.Queue, name string, done chan<- string) {
	for ctx.Err() == nil {
		res, err := q.Lease(ctx, name, 1, time.Minute)
		if err != nil {
			continue
		}
		for _, j := range res.Jobs {
			if _, err := q.Complete(ctx, j.ID, j.Token, nil); err == nil {
				done <- j.ID
			}
		}
		if len(res.Jobs) == 0 {
			_ = q.WaitForJobs(ctx, res.RetryAt)
		}
	}
}

func TestIdleWorkerBlocksInsteadOfPolling(t *testing.T) {
	g := NewWithT(t)
	rdb := testredis.Shared(t)
	sent := &commandCounter{}
	rdb.AddHook(sent)
	q := newQueueOn(t, rdb) // the default idle wait, 5 s
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go runWorker(ctx, q, "idle", make(chan string, 1))

	// Let the worker settle into its blocking wait, then count what it sends for 5 s.
	time.Sleep(500 * time.Millisecond)
	before := sent.n.Load()
	time.Sleep(5 * time.Second)
	idle := sent.n.Load() - before
	t.Logf("idle worker sent %d commands in 5 s", idle)
	g.Expect(idle).To(BeNumerically("<=", 4), "an idle worker must block, not poll")
}

// commandCounter is a go-redis hook counting the commands a client sends.
type commandCounter struct{ n atomic.Int64 }

func (c *commandCounter) DialHook(next redis.DialHook) redis.DialHook { return next }

func (c *commandCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		c.n.Add(1)
		return next(ctx, cmd)
	}
}

func (c *commandCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		c.n.Add(int64(len(cmds)))
		return next(ctx, cmds)
	}
}

func TestIdleWorkerWakesForANewJob(t *testing.T) {
	g := NewWithT(t)
	// An idle wait far longer than the Eventually below: only the wake-up delivers the job.
	q := newQueue(t, queue.WithMaxIdleWait(time.Minute))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan string, 10)
	for w := range 3 {
		go runWorker(ctx, q, fmt.Sprintf("idle-%d", w), done)
	}
	time.Sleep(300 * time.Millisecond) // all three block
	for i := range 3 {
		enqueue(t, q, fmt.Sprintf("wake-%d", i))
		g.Eventually(done).WithTimeout(10 * time.Second).Should(Receive(Equal(fmt.Sprintf("wake-%d", i))))
	}
	// A delayed job wakes a blocked worker too, which then sleeps only until it is due.
	enqueue(t, q, "soon", func(r *queue.EnqueueRequest) { r.Delay = 1500 * time.Millisecond })
	g.Eventually(done).WithTimeout(10 * time.Second).Should(Receive(Equal("soon")))
}

func TestEventSubscriberResumesWithoutLosingEvents(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	q := newQueue(t)
	enqueue(t, q, "before")
	events, err := q.ReadEvents(ctx, queue.StreamStart, 100, 0)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(events).To(HaveLen(1))
	g.Expect(events[0].JobID).To(Equal("before"))
	g.Expect(events[0].Type).To(Equal("waiting"))
	last := events[0].StreamID
	job := leaseOne(t, q, "w")
	_, err = q.Remove(ctx, job.ID, "") // its active and removed events are missed too
	g.Expect(err).NotTo(HaveOccurred())

	// The subscriber is away for 5 s while jobs run.
	stop := time.After(5 * time.Second)
	produced := 0
loop:
	for {
		select {
		case <-stop:
			break loop
		case <-time.After(100 * time.Millisecond):
			id := fmt.Sprintf("during-%d", produced)
			enqueue(t, q, id)
			job := leaseOne(t, q, "w")
			_, err := q.Progress(ctx, job.ID, job.Token, 50, "")
			g.Expect(err).NotTo(HaveOccurred())
			_, err = q.Complete(ctx, job.ID, job.Token, nil)
			g.Expect(err).NotTo(HaveOccurred())
			produced++
		}
	}
	// It comes back with its last id and reads everything it missed, in order.
	var missed []queue.Event
	for {
		batch, err := q.ReadEvents(ctx, last, 50, 100*time.Millisecond)
		g.Expect(err).NotTo(HaveOccurred())
		if len(batch) == 0 {
			break
		}
		missed = append(missed, batch...)
		last = batch[len(batch)-1].StreamID
	}
	g.Expect(missed).To(HaveLen(2+produced*4), "waiting, active, progress and completed for each job")
	perJob := map[string][]string{}
	for _, e := range missed {
		perJob[e.JobID] = append(perJob[e.JobID], e.Type)
	}
	g.Expect(perJob["before"]).To(Equal([]string{"active", "removed"}))
	for i := range produced {
		g.Expect(perJob[fmt.Sprintf("during-%d", i)]).To(Equal([]string{"waiting", "active", "progress", "completed"}))
	}
}

func TestKilledRedisLosesNoAcknowledgedEnqueue(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	server := testredis.Start(t, "--appendonly", "yes", "--appendfsync", "everysec", "--maxmemory-policy", "noeviction")
	rdb := server.ClientFor(t)
	q := newQueueOn(t, rdb)

	type ack struct {
		id string
		at time.Time
	}
	var acks []ack
	deadline := time.Now().Add(3 * time.Second)
	for i := 0; time.Now().Before(deadline); i++ {
		id := fmt.Sprintf("acked-%d", i)
		if _, err := q.Enqueue(ctx, queue.EnqueueRequest{ID: id, UID: "u", MaxAttempts: 1}); err != nil {
			t.Fatalf("enqueue: %v", err)
		}
		acks = append(acks, ack{id, time.Now()})
	}
	killedAt := time.Now()
	server.Kill()
	server.Restart()

	kept := 0
	for _, a := range acks {
		_, err := q.Get(ctx, a.id)
		if err == nil {
			kept++
			continue
		}
		g.Expect(killedAt.Sub(a.at)).To(BeNumerically("<", time.Second),
			"job %s acknowledged %v before the kill was lost: %v", a.id, killedAt.Sub(a.at), err)
	}
	t.Logf("%d of %d acknowledged enqueues survived SIGKILL", kept, len(acks))
	counts, err := q.Counts(ctx)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(counts.Waiting).To(Equal(int64(kept)))
}

func TestScriptsRunOnARedisCluster(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	addrs := testredis.StartCluster(t, 3)
	rdb, err := queue.NewRedisClient("redis://" + addrs[0] + "?addr=" + addrs[1] + "&addr=" + addrs[2])
	g.Expect(err).NotTo(HaveOccurred())
	defer rdb.Close()
	_, isCluster := rdb.(*redis.ClusterClient)
	g.Expect(isCluster).To(BeTrue())

	clock := newFakeClock()
	engine := queue.New(rdb, queue.WithClock(clock))
	// Queues of different namespaces hash to different slots, so different masters.
	for _, ns := range []string{"alpha", "beta", "gamma", "delta"} {
		q := engine.Queue(ns, "competitor")
		g.Expect(q.SetRateLimit(ctx, 100, time.Minute)).To(Succeed())
		enqueue(t, q, "ok")
		enqueue(t, q, "retry")
		enqueue(t, q, "stall")
		res, err := q.Lease(ctx, "w", 3, 30*time.Second)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(res.Jobs).To(HaveLen(3), ns)
		byID := map[string]*queue.Record{}
		for _, j := range res.Jobs {
			byID[j.ID] = j
		}
		_, err = q.Progress(ctx, "ok", byID["ok"].Token, 50, "half")
		g.Expect(err).NotTo(HaveOccurred())
		_, err = q.Complete(ctx, "ok", byID["ok"].Token, []byte("r"))
		g.Expect(err).NotTo(HaveOccurred())
		_, err = q.Fail(ctx, "retry", byID["retry"].Token, queue.Failure{Kind: queue.FailRetry, Message: "x"})
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(q.Heartbeat(ctx, "stall", byID["stall"].Token, 30*time.Second)).To(Equal(queue.HeartbeatOK))
		clock.Advance(31 * time.Second)
		reclaimed, err := q.ReclaimStalled(ctx, 1)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(reclaimed).To(HaveLen(1))
		g.Expect(q.Pause(ctx)).To(Succeed())
		g.Expect(q.Resume(ctx)).To(Succeed())
		again, err := q.Lease(ctx, "w", 5, 30*time.Second)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(again.Jobs).To(HaveLen(2), "the retried and the reclaimed job")
		for _, j := range again.Jobs {
			_, err := q.Fail(ctx, j.ID, j.Token, queue.Failure{Kind: queue.FailPermanent})
			g.Expect(err).NotTo(HaveOccurred())
		}
		_, err = q.RetryFailed(ctx, "retry", "")
		g.Expect(err).NotTo(HaveOccurred())
		_, err = q.Remove(ctx, "retry", "")
		g.Expect(err).NotTo(HaveOccurred())
		_, _, err = q.Cancel(ctx, "stall", time.Hour)
		g.Expect(err).NotTo(HaveOccurred())
		_, err = q.SweepFinished(ctx, 0, 0, 10)
		g.Expect(err).NotTo(HaveOccurred())
		events, err := q.ReadEvents(ctx, queue.StreamStart, 1000, 0)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(events).NotTo(BeEmpty())
		counts, err := q.Counts(ctx)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(counts).To(Equal(queue.Counts{}), ns)
	}
	policy, err := queue.CheckEvictionPolicy(ctx, rdb, logr.Discard())
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(policy.Policy).NotTo(BeEmpty())
}

func TestEvictionPolicyCheck(t *testing.T) {
	tests := []struct {
		policy string
		ok     bool
	}{
		{"noeviction", true},
		{"allkeys-lru", false},
		{"volatile-ttl", false},
	}
	server := testredis.Start(t)
	rdb := server.ClientFor(t)
	for _, tt := range tests {
		t.Run(tt.policy, func(t *testing.T) {
			g := NewWithT(t)
			ctx := context.Background()
			g.Expect(rdb.ConfigSet(ctx, "maxmemory-policy", tt.policy).Err()).To(Succeed())
			got, err := queue.CheckEvictionPolicy(ctx, rdb, logr.Discard())
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(got).To(Equal(queue.EvictionPolicy{Policy: tt.policy, OK: tt.ok}))
		})
	}
}

func TestConcurrentWorkersCompleteEachJobOnce(t *testing.T) {
	g := NewWithT(t)
	q := newQueue(t)
	const jobs = 300
	for i := range jobs {
		enqueue(t, q, fmt.Sprintf("c-%d", i))
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan string, jobs*2)
	var wg sync.WaitGroup
	for w := range 6 {
		wg.Go(func() { runWorker(ctx, q, fmt.Sprintf("w%d", w), done) })
	}
	seen := map[string]int{}
	for len(seen) < jobs {
		select {
		case id := <-done:
			seen[id]++
		case <-time.After(30 * time.Second):
			t.Fatalf("only %d of %d jobs completed", len(seen), jobs)
		}
	}
	cancel()
	wg.Wait()
	close(done)
	for id := range done {
		seen[id]++
	}
	for id, n := range seen {
		g.Expect(n).To(Equal(1), "job %s completed %d times", id, n)
	}
}
