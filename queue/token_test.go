package queue_test

import (
	"context"
	"errors"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"github.com/redis/go-redis/v9"

	"github.com/jengu/queue-operator/internal/testredis"
	"github.com/jengu/queue-operator/queue"
)

// snapshot is a queue's keys as an older RDB or AOF would hold them.
type snapshot map[string]string // key -> DUMP, "" for a key that did not exist

func takeSnapshot(t *testing.T, rdb *redis.Client, keys []string) snapshot {
	t.Helper()
	s := snapshot{}
	for _, k := range keys {
		d, err := rdb.Dump(context.Background(), k).Result()
		if err != nil && !errors.Is(err, redis.Nil) {
			t.Fatalf("dump %s: %v", k, err)
		}
		s[k] = d
	}
	return s
}

// restore puts the keys back as they were: Redis restarted from the older file, or a replica
// that had not seen the later writes took over.
func (s snapshot) restore(t *testing.T, rdb *redis.Client) {
	t.Helper()
	ctx := context.Background()
	for k, d := range s {
		var err error
		if d == "" {
			err = rdb.Del(ctx, k).Err()
		} else {
			err = rdb.RestoreReplace(ctx, k, 0, d).Err()
		}
		if err != nil {
			t.Fatalf("restore %s: %v", k, err)
		}
	}
}

// After Redis rolls back, a record's version goes back and the same version is leased again: the
// second lease's token still differs from the first's, so the first holder, which never learned
// of the rollback, cannot complete the job the second holder now runs.
func TestLeaseTokensDifferAfterARollback(t *testing.T) {
	for _, clock := range []struct {
		name string
		opts []queue.Option
	}{
		{"redis clock", nil},
		{"injected clock", []queue.Option{queue.WithClock(newFakeClock())}},
	} {
		t.Run(clock.name, func(t *testing.T) {
			g := NewWithT(t)
			ctx := context.Background()
			rdb := testredis.Shared(t)
			q := newQueueOn(t, rdb, clock.opts...)
			enqueue(t, q, "job")
			before := takeSnapshot(t, rdb, queue.RedisKeys(q, "job"))

			first := leaseOne(t, q, "worker-a")
			before.restore(t, rdb)
			second := leaseOne(t, q, "worker-b")
			g.Expect(second.Version).To(Equal(first.Version), "the rollback hands the same version out again")
			g.Expect(second.Token).NotTo(Equal(first.Token))

			_, err := q.Complete(ctx, first.ID, first.Token, []byte(`"a"`))
			g.Expect(errors.Is(err, queue.ErrLeaseLost)).To(BeTrue(), "the first holder's completion: %v", err)
			g.Expect(q.Heartbeat(ctx, first.ID, first.Token, time.Minute)).To(Equal(queue.HeartbeatLost))
			_, err = q.Complete(ctx, second.ID, second.Token, []byte(`"b"`))
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(string(get(t, q, "job").Result)).To(Equal(`"b"`))
		})
	}
}

// Tokens of one Lease call differ from each other, and from those of every other call.
func TestLeaseTokensAreUnique(t *testing.T) {
	g := NewWithT(t)
	q := newQueue(t)
	for _, id := range []string{"a", "b", "c", "d"} {
		enqueue(t, q, id)
	}
	seen := map[string]bool{}
	for range 2 {
		res, err := q.Lease(context.Background(), "w", 2, time.Minute)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(res.Jobs).To(HaveLen(2))
		for _, j := range res.Jobs {
			g.Expect(seen).NotTo(HaveKey(j.Token))
			seen[j.Token] = true
			g.Expect(get(t, q, j.ID).Token).To(Equal(j.Token), "the record holds the token handed out")
		}
	}
}
