package main

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/jengu/queue-operator/queue"
)

// ours is this repository's engine (package queue). Unless keepCompleted, its queues delete
// completed records (Queue.SetRemoveOnComplete), as asynq (no Retention) and BullMQ
// (removeOnComplete) do here. Its worker acknowledges with CompleteMany through one acker
// goroutine (see worker); concurrent Enqueue calls share script calls (the engine's combiner).
type ours struct {
	// hook, when set, is added to each client (the profile's per-command timings).
	hook redis.Hook
	// keepCompleted keeps completed records (the engine's default).
	keepCompleted bool
}

const oursNamespace = "bench"

type oursConn struct {
	e    *env
	rdb  *redis.Client
	q    *queue.Queue
	name string
}

func (o ours) open(e *env, name string) (goConn, error) {
	rdb := redis.NewClient(&redis.Options{Addr: e.addr}) // go-redis defaults, as a user would
	if o.hook != nil {
		rdb.AddHook(o.hook)
	}
	q := queue.New(rdb).Queue(oursNamespace, name)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := q.SetRemoveOnComplete(ctx, !o.keepCompleted); err != nil {
		_ = rdb.Close()
		return nil, err
	}
	return &oursConn{e: e, rdb: rdb, q: q, name: name}, nil
}

// enqueueBulk adds jobs [from, to) with one EnqueueMany call.
func (c *oursConn) enqueueBulk(ctx context.Context, from, to int) error {
	rs := make([]queue.EnqueueRequest, 0, to-from)
	for i := from; i < to; i++ {
		rs = append(rs, queue.EnqueueRequest{ID: jobID(i), UID: "bench", Payload: c.e.payload})
	}
	res, err := c.q.EnqueueMany(ctx, rs)
	if err != nil {
		return err
	}
	for _, r := range res {
		if r.Err != nil {
			return r.Err
		}
	}
	return nil
}

func (c *oursConn) close() { _ = c.rdb.Close() }

func (c *oursConn) enqueue(ctx context.Context, i int) error {
	_, err := c.q.Enqueue(ctx, queue.EnqueueRequest{ID: jobID(i), UID: "bench", Payload: c.e.payload})
	return err
}

func (c *oursConn) settle(context.Context) error { return nil } // finished() follows Complete

const leaseDuration = 30 * time.Second

// worker is the engine's worker loop: lease as many jobs as there are free slots, run each
// handler in a goroutine, and block on WaitForJobs when the queue gave fewer jobs than asked (it
// was empty then; an enqueue after that wakes the wait). A handler's completion goes to one
// acker goroutine, which sends in one CompleteMany call whatever completions piled up while its
// previous call was in flight: no timer, so an idle worker's lone completion leaves at once. A
// job holds its slot until its completion is acknowledged, so at most conc jobs are leased.
func (c *oursConn) worker(ctx context.Context, conc int, started func(int), finished func()) (func(), error) {
	ctx, cancel := context.WithCancel(ctx)
	busy := make(chan struct{}, conc) // one token per leased job not yet acknowledged
	freed := make(chan struct{}, 1)
	acks := make(chan queue.Completion, conc) // never blocks: at most conc jobs are out
	var handlers sync.WaitGroup
	loopDone, ackerDone := make(chan struct{}), make(chan struct{})
	var loopErr error

	go func() { // the acker
		defer close(ackerDone)
		batch := make([]queue.Completion, 0, conc)
		for {
			select {
			case <-ctx.Done():
				return
			case a := <-acks:
				batch = append(batch[:0], a)
			}
		more:
			for {
				select {
				case a := <-acks:
					batch = append(batch, a)
				default:
					break more
				}
			}
			res, err := c.q.CompleteMany(ctx, batch)
			if err != nil && ctx.Err() == nil {
				fmt.Printf("ours: complete %d jobs: %v\n", len(batch)-len(res), err)
			}
			for i := range batch {
				switch {
				case i >= len(res): // the call failed: unknown, not counted
				case res[i].Err != nil:
					fmt.Printf("ours: complete %s: %v\n", batch[i].ID, res[i].Err)
				default:
					finished()
				}
				<-busy
			}
			select {
			case freed <- struct{}{}:
			default:
			}
		}
	}()

	go func() {
		defer close(loopDone)
		for ctx.Err() == nil {
			free := conc - len(busy)
			if free == 0 {
				select {
				case <-freed:
				case <-ctx.Done():
				}
				continue
			}
			res, err := c.q.Lease(ctx, "bench-worker", free, leaseDuration)
			if err != nil {
				if ctx.Err() == nil {
					loopErr = err
					fmt.Printf("ours: lease: %v\n", err)
				}
				return
			}
			for _, j := range res.Jobs {
				busy <- struct{}{}
				handlers.Add(1)
				go func() {
					defer handlers.Done()
					if i, ok := jobIndex(j.ID); ok {
						started(i)
					}
					// the no-op handler, then its completion to the acker
					acks <- queue.Completion{ID: j.ID, Token: j.Token}
				}()
			}
			if len(res.Jobs) < free {
				if err := c.q.WaitForJobs(ctx, res.RetryAt); err != nil && ctx.Err() == nil &&
					!errors.Is(err, context.Canceled) {
					fmt.Printf("ours: wait: %v\n", err)
					time.Sleep(10 * time.Millisecond)
				}
			}
		}
	}()
	stop := func() {
		cancel()
		// Wake a loop blocked in BZPOPMIN (the engine's marker key) so it sees the cancel.
		bg, done := context.WithTimeout(context.Background(), time.Second)
		defer done()
		_ = c.e.admin.ZAdd(bg, "qo:{"+oursNamespace+"/"+c.name+"}:marker", redis.Z{Member: "ready"}).Err()
		select {
		case <-loopDone:
		case <-time.After(7 * time.Second):
		}
		handlers.Wait()
		<-ackerDone
		_ = loopErr
	}
	return stop, nil
}
