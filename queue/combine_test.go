package queue

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jengu/queue-operator/internal/testredis"
)

// pendingCalls is how many Enqueue calls wait in q's combiner.
func pendingCalls(q *Queue) int {
	q.comb.mu.Lock()
	defer q.comb.mu.Unlock()
	return len(q.comb.pending)
}

// Calls made while the queue's calls in flight are at the bound wait, go together once one
// finishes, and one whose context ends before it is sent is never sent.
func TestCombinedEnqueuesWaitForTheCallInFlight(t *testing.T) {
	ctx := context.Background()
	q := New(testredis.Shared(t)).Queue("combine-"+time.Now().Format("150405.000000"), "q")
	t.Cleanup(func() { _, _ = q.Remove(ctx, "kept", ""); _, _ = q.Remove(ctx, "cancelled", "") })

	// Pretend the calls in flight are at the bound.
	q.comb.mu.Lock()
	q.comb.inflight = maxEnqueuesInFlight
	q.comb.mu.Unlock()

	type outcome struct {
		res EnqueueResult
		err error
	}
	kept, cancelled := make(chan outcome, 1), make(chan outcome, 1)
	go func() {
		res, err := q.Enqueue(ctx, EnqueueRequest{ID: "kept", UID: "u", Payload: []byte("p")})
		kept <- outcome{res, err}
	}()
	cctx, cancel := context.WithCancel(ctx)
	go func() {
		res, err := q.Enqueue(cctx, EnqueueRequest{ID: "cancelled", UID: "u", Payload: []byte("p")})
		cancelled <- outcome{res, err}
	}()
	for pendingCalls(q) < 2 {
		time.Sleep(time.Millisecond) // both calls are queued behind the one "in flight"
	}
	cancel()
	if o := <-cancelled; !errors.Is(o.err, context.Canceled) {
		t.Fatalf("cancelled enqueue: %+v, want context.Canceled", o)
	}
	select {
	case o := <-kept:
		t.Fatalf("an enqueue returned while the call in flight had not finished: %+v", o)
	default:
	}

	// The call in flight finishes: the pending ones go.
	q.sendPendingEnqueues()
	if o := <-kept; o.err != nil || !o.res.Created {
		t.Fatalf("kept enqueue: %+v", o)
	}
	if _, err := q.Get(ctx, "cancelled"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("the cancelled enqueue was sent: %v", err)
	}
	for {
		q.comb.mu.Lock()
		idle := q.comb.inflight == 0 && len(q.comb.pending) == 0
		q.comb.mu.Unlock()
		if idle {
			break
		}
		time.Sleep(time.Millisecond) // the sender goroutine marks the queue idle after its batch
	}
	// Idle again: the next call goes at once, alone.
	if res, err := q.Enqueue(ctx, EnqueueRequest{ID: "kept", UID: "u"}); err != nil || res.Created {
		t.Fatalf("repeat enqueue: %+v, %v", res, err)
	}
}
