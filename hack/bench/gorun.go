package main

import (
	"context"
	"fmt"
	"time"
)

// goConn is one Go system's client and worker on one queue.
type goConn interface {
	enqueue(ctx context.Context, i int) error
	// worker starts a worker of concurrency conc: started(i) when a handler starts job i,
	// finished() when the job is acknowledged (or, for asynq, when its handler returned: then
	// settle waits for the acknowledgements).
	worker(ctx context.Context, conc int, started func(i int), finished func()) (stop func(), err error)
	settle(ctx context.Context) error
	close()
}

// bulkConn is a goConn that can add many jobs in one call.
type bulkConn interface {
	// enqueueBulk adds the jobs with indexes [from, to) in one call.
	enqueueBulk(ctx context.Context, from, to int) error
}

type goSystem interface {
	open(e *env, queue string) (goConn, error)
}

// goRunner runs the scenarios for a Go system.
type goRunner struct{ sys goSystem }

func (g goRunner) run(ctx context.Context, e *env, scenario string, p params) (result, error) {
	c, err := g.open(ctx, e, p)
	if err != nil {
		return result{}, err
	}
	defer c.close()
	switch scenario {
	case "seq", "conc", "bulk":
		return g.enqueueScenario(ctx, e, c, scenario, p)
	case "drain":
		if err := forEach(ctx, p.DrainN, p.PrefillConc, c.enqueue); err != nil {
			return result{}, fmt.Errorf("prefill: %w", err)
		}
		return drain(ctx, e, c, p)
	case "pickup":
		cnt := newCounter(p.PickupN)
		pc := newPickupClock(p.PickupN)
		stop, err := c.worker(ctx, p.PickupConc, pc.started, cnt.inc)
		if err != nil {
			return result{}, err
		}
		defer stop()
		if err := sleepCtx(ctx, p.IdleBefore); err != nil { // the worker is idle, blocked
			return result{}, err
		}
		return measure(ctx, e, p.PickupN, func(r *result) error {
			if err := produce(ctx, p.PickupN, p.PickupEvery, pc, c.enqueue); err != nil {
				return err
			}
			if err := cnt.wait(ctx); err != nil {
				return err
			}
			if err := c.settle(ctx); err != nil {
				return err
			}
			latencyResult(r, pc.latencies())
			return nil
		})
	}
	return result{}, fmt.Errorf("scenario %q: not for this system", scenario)
}

// open warms up on another queue, flushes, and opens the measured queue.
func (g goRunner) open(ctx context.Context, e *env, p params) (goConn, error) {
	if err := g.warm(ctx, e, p); err != nil {
		return nil, fmt.Errorf("warm-up: %w", err)
	}
	if err := e.admin.FlushAll(ctx).Err(); err != nil {
		return nil, err
	}
	return g.sys.open(e, "bench")
}

// enqueueScenario measures scenario 1 (seq), 2 (conc) or 2b (bulk) on c.
func (g goRunner) enqueueScenario(ctx context.Context, e *env, c goConn, scenario string, p params) (result, error) {
	switch scenario {
	case "seq":
		return measure(ctx, e, p.SeqN, func(r *result) error {
			lat := make([]time.Duration, 0, p.SeqN)
			for i := range p.SeqN {
				t := time.Now()
				if err := c.enqueue(ctx, i); err != nil {
					return err
				}
				lat = append(lat, time.Since(t))
			}
			latencyResult(r, lat)
			return nil
		})
	case "conc":
		return measure(ctx, e, p.ConcN, func(r *result) error {
			return forEach(ctx, p.ConcN, p.ConcInflight, c.enqueue)
		})
	case "bulk":
		bc, ok := c.(bulkConn)
		if !ok {
			break
		}
		batches := (p.BulkN + p.BulkSize - 1) / p.BulkSize
		return measure(ctx, e, p.BulkN, func(r *result) error {
			return forEach(ctx, batches, p.ConcInflight, func(ctx context.Context, b int) error {
				return bc.enqueueBulk(ctx, b*p.BulkSize, min(p.BulkN, (b+1)*p.BulkSize))
			})
		})
	}
	return result{}, fmt.Errorf("scenario %q: not for this system", scenario)
}

// warm enqueues and drains a few jobs on another queue: connections, script caches.
func (g goRunner) warm(ctx context.Context, e *env, p params) error {
	if p.WarmN == 0 {
		return nil
	}
	c, err := g.sys.open(e, "warm")
	if err != nil {
		return err
	}
	defer c.close()
	if err := forEach(ctx, p.WarmN, 1, c.enqueue); err != nil {
		return err
	}
	cnt := newCounter(p.WarmN)
	stop, err := c.worker(ctx, 10, func(int) {}, cnt.inc)
	if err != nil {
		return err
	}
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := cnt.wait(ctx); err != nil {
		return err
	}
	return c.settle(ctx)
}

// measure brackets body with the clock and the CPU meters.
func measure(ctx context.Context, e *env, jobs int, body func(r *result) error) (result, error) {
	r := result{Jobs: jobs}
	m, err := startCPU(ctx, e.admin)
	if err != nil {
		return r, err
	}
	t := time.Now()
	if err := body(&r); err != nil {
		return r, err
	}
	r.Seconds = time.Since(t).Seconds()
	if err := m.stop(ctx); err != nil {
		return r, err
	}
	r.RedisUs, r.ClientUs = m.redisUs, m.processUs
	return r, nil
}

// drain measures one worker process at p.DrainConc draining the p.DrainN jobs enqueued before.
func drain(ctx context.Context, e *env, c goConn, p params) (result, error) {
	var stop func()
	defer func() {
		if stop != nil {
			stop()
		}
	}()
	return measure(ctx, e, p.DrainN, func(r *result) error {
		cnt := newCounter(p.DrainN)
		var err error
		if stop, err = c.worker(ctx, p.DrainConc, func(int) {}, cnt.inc); err != nil {
			return err
		}
		if err := cnt.wait(ctx); err != nil {
			return err
		}
		return c.settle(ctx)
	})
}
