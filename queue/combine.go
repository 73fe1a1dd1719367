package queue

import (
	"context"
	"fmt"
	"runtime"
	"sync"
)

// combiner merges the concurrent Enqueue calls of one queue into shared script calls (group
// commit): a call that finds no enqueue of its queue in flight is sent at once, alone, from its
// own goroutine; calls made while one is in flight wait for it and then go together, as one
// enqueue.lua call of many jobs. There is no timer: a lone or sequential Enqueue waits for
// nothing, and under concurrency each job costs a share of one round trip instead of a whole one.
// Every job is still added exactly as alone (idempotent, its own version and event); a batch's
// jobs are applied in arrival order.
//
// The Engine holds one combiner per queue, so Queue values made for each call (as a reconciler
// does) still combine.
type combiner struct {
	mu       sync.Mutex
	inflight int // enqueue calls of this queue in flight
	pending  []*enqueueCall
}

// maxEnqueuesInFlight is how many enqueue calls of one queue the combiner keeps in flight; a
// call made while that many are finds them and waits for the next.
var maxEnqueuesInFlight = 1

// enqueueCall is one Enqueue waiting to be sent.
type enqueueCall struct {
	ctx  context.Context
	req  EnqueueRequest // normalized
	done chan struct{}  // closed once res is set
	res  EnqueueManyResult
}

// combinerFor returns the combiner of the queue whose keys start with base.
func (c *Engine) combinerFor(base string) *combiner {
	if v, ok := c.combiners.Load(base); ok {
		return v.(*combiner)
	}
	v, _ := c.combiners.LoadOrStore(base, &combiner{})
	return v.(*combiner)
}

// enqueue adds one normalized request through the queue's combiner.
func (q *Queue) enqueueCombined(ctx context.Context, r EnqueueRequest) EnqueueManyResult {
	b := q.comb
	b.mu.Lock()
	if b.inflight < maxEnqueuesInFlight && len(b.pending) == 0 {
		// Room in flight: go now, alone, from this goroutine.
		b.inflight++
		b.mu.Unlock()
		res := q.sendEnqueues(ctx, []EnqueueRequest{r})[0]
		q.sendPendingEnqueues()
		return res
	}
	call := &enqueueCall{ctx: ctx, req: r, done: make(chan struct{})}
	b.pending = append(b.pending, call)
	b.mu.Unlock()
	select {
	case <-call.done:
		return call.res
	case <-ctx.Done():
		// Not sent yet: it will not be (the sender skips calls whose context ended). Sent: it may
		// or may not have been added, as with any call cut short.
		return EnqueueManyResult{Err: fmt.Errorf("enqueue %s: %w", r.ID, ctx.Err())}
	}
}

// sendPendingEnqueues is called by whoever finished the call in flight. It hands the calls that
// piled up meanwhile to a sender goroutine, which sends them as one call and goes on while more
// pile up; with none pending the queue is idle again. Finished callers return at once: none
// waits for another's jobs.
func (q *Queue) sendPendingEnqueues() {
	batch := q.takePendingEnqueues()
	if batch == nil {
		return
	}
	go func() {
		for ; batch != nil; batch = q.takePendingEnqueues() {
			reqs := make([]EnqueueRequest, len(batch))
			for i, call := range batch {
				reqs[i] = call.req
			}
			// The callers' own contexts bound their waits; the shared call must not end because
			// one of them gave up, so it runs on the first one's values without its cancellation.
			res := q.sendEnqueues(context.WithoutCancel(batch[0].ctx), reqs)
			for i, call := range batch {
				call.res = res[i]
				close(call.done)
			}
			// Let the callers just woken run before looking for more: one that enqueues again
			// right away (a loop, a busy producer) then joins the next batch instead of finding
			// the queue idle and going alone while the rest wait behind it. Without this yield,
			// 8 such callers alternate batches of 1 and 7; with it they go 7-8 at a time. It
			// waits for nothing but goroutines already runnable.
			runtime.Gosched()
		}
	}()
}

// takePendingEnqueues takes up to enqueueManyBatch pending calls whose callers still wait, or
// returns nil and marks the queue idle when there are none.
func (q *Queue) takePendingEnqueues() []*enqueueCall {
	b := q.comb
	b.mu.Lock()
	defer b.mu.Unlock()
	var batch []*enqueueCall
	n := 0
	for _, call := range b.pending {
		n++
		if call.ctx.Err() != nil {
			close(call.done) // its caller has returned already
			continue
		}
		batch = append(batch, call)
		if len(batch) == enqueueManyBatch {
			break
		}
	}
	b.pending = b.pending[n:]
	if len(b.pending) == 0 {
		b.pending = nil
	}
	if batch == nil {
		b.inflight--
	}
	return batch
}

// sendEnqueues runs one enqueue.lua call and returns one result per request; a failed call
// gives every request its error.
func (q *Queue) sendEnqueues(ctx context.Context, rs []EnqueueRequest) []EnqueueManyResult {
	res, err := q.enqueueBatch(ctx, rs)
	if err != nil {
		res = make([]EnqueueManyResult, len(rs))
		for i, r := range rs {
			res[i].Err = fmt.Errorf("enqueue %s: %w", r.ID, err)
		}
	}
	return res
}
