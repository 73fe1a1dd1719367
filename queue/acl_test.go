package queue_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"github.com/redis/go-redis/v9"

	"github.com/jengu/queue-operator/internal/testredis"
	"github.com/jengu/queue-operator/queue"
)

// TestNamespaceACLUserRunsItsQueuesOnly: a Redis user with NamespaceACL's rules runs a job of
// its namespace's queue the whole way a worker and the facade do (lease, heartbeat, progress,
// complete, read, count, events) on a real redis-server, and is refused every key of another
// namespace.
func TestNamespaceACLUserRunsItsQueuesOnly(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	admin := testredis.Shared(t)
	suffix := fmt.Sprintf("%d-%d", time.Now().UnixNano()%1_000_000, namespaceSeq.Add(1))
	own, other := "acl-a-"+suffix, "acl-b-"+suffix
	user := "qo-" + own
	args := []any{"ACL", "SETUSER", user, "on", ">pw-" + suffix}
	for _, r := range queue.NamespaceACL(own) {
		args = append(args, r)
	}
	g.Expect(admin.Do(ctx, args...).Err()).To(Succeed())
	t.Cleanup(func() { admin.Do(context.Background(), "ACL", "DELUSER", user) })

	// The controller (admin here) enqueues in both namespaces.
	controller := queue.New(admin)
	for _, ns := range []string{own, other} {
		_, err := controller.Queue(ns, "enrichment").Enqueue(ctx, queue.EnqueueRequest{ID: "job-1", UID: "uid-1",
			Payload: []byte(`{}`), MaxAttempts: 3, Backoff: queue.SeedBackoff, Timeout: time.Minute})
		g.Expect(err).NotTo(HaveOccurred())
	}

	opts := *admin.Options()
	opts.Username, opts.Password = user, "pw-"+suffix
	rdb := redis.NewClient(&opts)
	t.Cleanup(func() { _ = rdb.Close() })
	g.Expect(rdb.Ping(ctx).Err()).To(Succeed())
	worker := queue.New(rdb)

	q := worker.Queue(own, "enrichment")
	lease, err := q.Lease(ctx, "w", 1, time.Minute)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(lease.Jobs).To(HaveLen(1))
	job := lease.Jobs[0]
	_, err = q.Heartbeat(ctx, job.ID, job.Token, time.Minute)
	g.Expect(err).NotTo(HaveOccurred())
	_, err = q.Progress(ctx, job.ID, job.Token, 50, "half")
	g.Expect(err).NotTo(HaveOccurred())
	_, err = q.Complete(ctx, job.ID, job.Token, []byte(`{"ok":true}`))
	g.Expect(err).NotTo(HaveOccurred())
	record, err := q.Get(ctx, job.ID)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(record.State).To(Equal(queue.StateCompleted))
	counts, err := q.Counts(ctx)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(counts.Completed).To(Equal(int64(1)))
	events, err := q.ReadEvents(ctx, "0", 100, 0)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(events).NotTo(BeEmpty())

	refused := func(err error) {
		g.ExpectWithOffset(1, err).To(HaveOccurred())
		g.ExpectWithOffset(1, err.Error()).To(ContainSubstring("NOPERM"))
	}
	theirs := worker.Queue(other, "enrichment")
	_, err = theirs.Lease(ctx, "w", 1, time.Minute)
	refused(err)
	_, err = theirs.Get(ctx, "job-1")
	refused(err)
	_, err = theirs.Counts(ctx)
	refused(err)
	refused(rdb.Keys(ctx, "*").Err())
	// Key patterns do not filter SCAN and RANDOMKEY: they would list other namespaces' keys.
	refused(rdb.Scan(ctx, 0, "*", 100).Err())
	refused(rdb.RandomKey(ctx).Err())
	refused(rdb.Do(ctx, "SCRIPT", "FLUSH").Err())
	refused(rdb.Do(ctx, "FUNCTION", "FLUSH").Err())
	refused(rdb.FlushAll(ctx).Err())
	refused(rdb.Do(ctx, "CONFIG", "SET", "maxmemory-policy", "allkeys-lru").Err())
	// Still there, untouched.
	theirRecord, err := controller.Queue(other, "enrichment").Get(ctx, "job-1")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(theirRecord.State).To(Equal(queue.StateWaiting))
}
