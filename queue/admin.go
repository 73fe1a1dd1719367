package queue

import (
	"context"
	"fmt"
	"time"
)

// RetryFailed moves a job from the dead letter set back to waiting, with its attempts reset. A
// non-empty token acts at most once: the record keeps it (Record.RetryToken), and a second call
// with it returns ErrRetryTokenUsed.
func (q *Queue) RetryFailed(ctx context.Context, id, token string) (int64, error) {
	k := q.keys
	v, err := scriptRetry.Run(ctx, q.c.rdb, []string{k.job(id), k.failed, k.wait, k.events, k.marker, k.stats},
		id, q.c.eventsMaxLen, token).Int64()
	return v, stateErr("retry", id, err)
}

// Cancel cancels a job that has not finished; its record is kept for keep. A worker holding it
// learns it at its next heartbeat. It returns the job's state afterwards.
func (q *Queue) Cancel(ctx context.Context, id string, keep time.Duration) (State, int64, error) {
	k := q.keys
	res, err := scriptCancel.Run(ctx, q.c.rdb, []string{k.job(id), k.wait, k.delayed, k.active, k.events, k.stats},
		id, q.now(), q.c.eventsMaxLen, keep.Milliseconds()).Slice()
	if err != nil {
		return "", 0, stateErr("cancel", id, err)
	}
	return State(toString(res[0])), toInt64(res[1]), nil
}

// RemoveOption configures Remove.
type RemoveOption func(*removeOptions)

type removeOptions struct{ cancel bool }

// RemoveAsCancel says the removal cancels the job (its CR was deleted before it finished): a
// record that had not finished counts in the stats as cancelled. Without it a removal counts
// nothing (a finished job's record going with its CR, an orphan, a rolled-back record).
func RemoveAsCancel() RemoveOption { return func(o *removeOptions) { o.cancel = true } }

// Remove deletes a job's record wherever it is. With a non-empty uid, only the record of that
// owner is removed (a recreated CR's new record is left alone). It reports whether a record
// went.
func (q *Queue) Remove(ctx context.Context, id, uid string, opts ...RemoveOption) (bool, error) {
	var o removeOptions
	for _, opt := range opts {
		opt(&o)
	}
	k := q.keys
	v, err := scriptRemove.Run(ctx, q.c.rdb,
		[]string{k.job(id), k.events, k.stats, k.wait, k.delayed, k.active, k.completed, k.failed},
		id, q.c.eventsMaxLen, uid, boolArg(o.cancel)).Int64()
	if err != nil {
		return false, fmt.Errorf("remove %s: %w", id, err)
	}
	return v > 0, nil
}

// Reclaimed is a job whose lease expired.
type Reclaimed struct {
	ID      string
	State   State // waiting again, or failed when out of attempts or stalls
	Version int64
}

// ReclaimStalled returns jobs whose lease expired (dead worker) to waiting, counting the
// attempt; a job stalled more than maxStalls times, or out of attempts, fails.
func (q *Queue) ReclaimStalled(ctx context.Context, maxStalls int) ([]Reclaimed, error) {
	k := q.keys
	res, err := scriptReclaim.Run(ctx, q.c.rdb, []string{k.active, k.wait, k.failed, k.events, k.marker, k.stats},
		k.jobPrefix, q.now(), maxStalls, 1000, q.c.eventsMaxLen).Slice()
	if err != nil {
		return nil, fmt.Errorf("reclaim stalled on %s/%s: %w", q.Namespace, q.Name, err)
	}
	var out []Reclaimed
	for i := 0; i+2 < len(res); i += 3 {
		out = append(out, Reclaimed{ID: toString(res[i]), State: State(toString(res[i+1])), Version: toInt64(res[i+2])})
	}
	return out, nil
}

// SweepFinished deletes completed records older than keepCompleted and failed ones older than
// keepFailed, up to batch of each per call. It walks the finished sets by time, never the
// keyspace.
func (q *Queue) SweepFinished(ctx context.Context, keepCompleted, keepFailed time.Duration, batch int) (int, error) {
	now := q.c.clock.Now()
	n, err := scriptSweep.Run(ctx, q.c.rdb, []string{q.keys.completed, q.keys.failed},
		q.keys.jobPrefix, now.Add(-keepCompleted).UnixMilli(), now.Add(-keepFailed).UnixMilli(), batch).Int()
	if err != nil {
		return 0, fmt.Errorf("sweep %s/%s: %w", q.Namespace, q.Name, err)
	}
	return n, nil
}

// Pause stops the queue leasing; its jobs stay.
func (q *Queue) Pause(ctx context.Context) error { return q.setPaused(ctx, true) }

// Resume lets the queue lease again.
func (q *Queue) Resume(ctx context.Context) error { return q.setPaused(ctx, false) }

func (q *Queue) setPaused(ctx context.Context, paused bool) error {
	flag := "0"
	if paused {
		flag = "1"
	}
	if err := scriptPause.Run(ctx, q.c.rdb, []string{q.keys.meta, q.keys.events, q.keys.marker}, flag, q.c.eventsMaxLen).Err(); err != nil {
		return fmt.Errorf("pause=%v %s/%s: %w", paused, q.Namespace, q.Name, err)
	}
	return nil
}

// SetRateLimit caps job starts to max per window across all workers; max 0 removes the cap.
func (q *Queue) SetRateLimit(ctx context.Context, max int, window time.Duration) error {
	err := q.c.rdb.HSet(ctx, q.keys.meta, "rateMax", max, "rateDuration", window.Milliseconds()).Err()
	if err != nil {
		return fmt.Errorf("set rate limit of %s/%s: %w", q.Namespace, q.Name, err)
	}
	return nil
}

// SetRemoveOnComplete says whether the queue deletes a job's record when the job completes
// (true) instead of keeping it in the completed set until SweepFinished or Remove (false, the
// default). It is the queue's setting, in Redis, so every worker follows it. A removed record's
// 'completed' event still carries the job's final version, but Get then finds nothing
// (ErrNotFound), Counts counts no completed jobs, and Enqueue of the same id and UID adds the
// job anew: use it for queues whose results nobody reads from the record. It saves Redis time and
// memory per job. Failed and cancelled records are kept either way.
func (q *Queue) SetRemoveOnComplete(ctx context.Context, remove bool) error {
	flag := "0"
	if remove {
		flag = "1"
	}
	if err := q.c.rdb.HSet(ctx, q.keys.meta, "removeOnComplete", flag).Err(); err != nil {
		return fmt.Errorf("set removeOnComplete of %s/%s: %w", q.Namespace, q.Name, err)
	}
	return nil
}

// promoteBatch bounds the delayed jobs one promote.lua call moves, so one call never holds Redis
// long.
const promoteBatch = 1000

// PromoteDue moves every delayed job whose due time has come to waiting (at its place in line,
// versioned and evented, as a lease would), in script calls of up to 1,000 jobs, and wakes a
// worker. Leases promote due jobs too, but only when a worker leases: with none running, a due
// job would stay delayed. It returns how many jobs it moved.
func (q *Queue) PromoteDue(ctx context.Context) (int, error) {
	k := q.keys
	total := 0
	for {
		res, err := scriptPromote.Run(ctx, q.c.rdb, []string{k.delayed, k.wait, k.events, k.marker},
			k.jobPrefix, q.now(), q.c.eventsMaxLen, promoteBatch).Int64Slice()
		if err == nil && len(res) != 2 {
			err = fmt.Errorf("the script replied %d values", len(res))
		}
		if err != nil {
			return total, fmt.Errorf("promote due jobs of %s/%s: %w", q.Namespace, q.Name, err)
		}
		total += int(res[0])
		if res[1] < promoteBatch {
			return total, nil
		}
	}
}

// ReleaseWorkerLeases hands back to waiting, with no attempt counted, every job leased to worker
// whose id is not in running, and returns their ids. A worker whose Lease call failed calls it:
// when the script ran and only its reply was lost, the jobs are leased to the worker, which does
// not run them, and would otherwise wait for the stall sweep, which counts an attempt and a stall.
// Each job is released as Release releases it (versioned, evented), and a worker is woken. A
// worker's id must be its own: the leases of another worker of the same id are released too.
func (q *Queue) ReleaseWorkerLeases(ctx context.Context, worker string, running []string) ([]string, error) {
	k := q.keys
	args := make([]any, 0, 3+len(running))
	args = append(args, k.jobPrefix, worker, q.c.eventsMaxLen)
	for _, id := range running {
		args = append(args, id)
	}
	ids, err := scriptStrays.Run(ctx, q.c.rdb, []string{k.active, k.wait, k.events, k.marker}, args...).StringSlice()
	if err != nil {
		return nil, fmt.Errorf("release the leases of worker %s on %s/%s: %w", worker, q.Namespace, q.Name, err)
	}
	return ids, nil
}
