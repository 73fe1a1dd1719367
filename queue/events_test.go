package queue_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	. "github.com/onsi/gomega"

	"github.com/jengu/queue-operator/internal/testredis"
	"github.com/jengu/queue-operator/queue"
)

func TestFollowDeliversNewEventsInOrderAndRidesOutARedisRestart(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	server := testredis.Start(t)
	q := newQueueOn(t, server.ClientFor(t))
	enqueue(t, q, "before") // older than the follower: never delivered

	var (
		mu        sync.Mutex
		seen      []string // "type job", probes left out
		probeSeen atomic.Bool
		failures  atomic.Int64
	)
	followCtx, stop := context.WithCancel(ctx)
	defer stop()
	done := make(chan struct{})
	go func() {
		defer close(done)
		q.Follow(followCtx, func(e queue.Event) {
			if strings.HasPrefix(e.JobID, "probe-") {
				probeSeen.Store(true)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			seen = append(seen, e.Type+" "+e.JobID)
		}, queue.FollowBlock(100*time.Millisecond), queue.FollowOnError(func(error) { failures.Add(1) }))
	}()
	delivered := func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), seen...)
	}

	// Follow starts at the stream's end as it finds it when it starts; once it delivered a probe,
	// every later event is surely after that.
	probes := 0
	g.Eventually(func() bool {
		probes++
		enqueue(t, q, fmt.Sprintf("probe-%d", probes))
		return probeSeen.Load()
	}).WithTimeout(10 * time.Second).WithPolling(50 * time.Millisecond).Should(BeTrue())

	enqueue(t, q, "a")
	enqueue(t, q, "b")
	g.Eventually(delivered).WithTimeout(5 * time.Second).Should(Equal([]string{"waiting a", "waiting b"}))

	killed := time.Now()
	server.Kill()
	g.Eventually(failures.Load).WithTimeout(10*time.Second).Should(BeNumerically(">=", 2),
		"a failed read is reported, and retried")
	server.Restart()
	g.Expect(failures.Load()).To(BeNumerically("<=", int64(time.Since(killed)/time.Second)+2),
		"failed reads are retried once a second, not in a busy loop")

	g.Eventually(func() error {
		_, err := q.Enqueue(ctx, queue.EnqueueRequest{ID: "c", UID: "uid-c", Payload: []byte(`{}`)})
		return err
	}).WithTimeout(10 * time.Second).Should(Succeed())
	g.Eventually(delivered).WithTimeout(10*time.Second).Should(Equal([]string{"waiting a", "waiting b", "waiting c"}),
		"the follower goes on after the outage, after the last event it delivered")

	stop()
	g.Eventually(done).WithTimeout(5 * time.Second).Should(BeClosed())
	g.Expect(delivered()).To(Equal([]string{"waiting a", "waiting b", "waiting c"}))
}
