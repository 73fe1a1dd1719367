package queue

import (
	"context"
	"fmt"

	"github.com/redis/go-redis/v9"
)

// Counts is the number of jobs in each state.
type Counts struct {
	Waiting, Active, Delayed, Completed, Failed int64
	// Paused holds the waiting jobs while the queue is paused (Waiting is then 0).
	Paused   int64
	IsPaused bool
	// Due counts the delayed jobs (among Delayed) whose due time has come: a lease or PromoteDue
	// has yet to move them to waiting.
	Due int64
}

// Counts reads the number of jobs per state, in O(1) (Due in O(log n)), in one round trip.
func (q *Queue) Counts(ctx context.Context) (Counts, error) {
	k := q.keys
	res, err := scriptCounts.Run(ctx, q.c.rdb, []string{k.wait, k.delayed, k.active, k.completed, k.failed, k.meta},
		q.now()).Int64Slice()
	if err == nil && len(res) != 7 {
		err = fmt.Errorf("the script replied %d values", len(res))
	}
	if err != nil {
		return Counts{}, fmt.Errorf("counts of %s/%s: %w", q.Namespace, q.Name, err)
	}
	c := Counts{Waiting: res[0], Delayed: res[1], Active: res[2], Completed: res[3], Failed: res[4],
		IsPaused: res[5] == 1, Due: res[6]}
	if c.IsPaused {
		c.Paused, c.Waiting = c.Waiting, 0
	}
	return c, nil
}

// CountRecords says how many of ids have a record in the queue, in one EXISTS (the keys share
// the queue's hash slot).
func (q *Queue) CountRecords(ctx context.Context, ids []string) (int64, error) {
	if len(ids) == 0 {
		return 0, nil
	}
	keys := make([]string, len(ids))
	for i, id := range ids {
		keys[i] = q.keys.job(id)
	}
	n, err := q.c.rdb.Exists(ctx, keys...).Result()
	if err != nil {
		return 0, fmt.Errorf("count records of %s/%s: %w", q.Namespace, q.Name, err)
	}
	return n, nil
}

// Get reads one job.
func (q *Queue) Get(ctx context.Context, id string) (*Record, error) {
	f, err := q.c.rdb.HGetAll(ctx, q.keys.job(id)).Result()
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", id, err)
	}
	if len(f) == 0 {
		return nil, fmt.Errorf("get %s: %w", id, ErrNotFound)
	}
	return decodeRecord(f)
}

// List reads up to limit jobs in a state from offset: waiting in lease order, delayed by due
// time, active by lease expiry, completed and failed newest first. It returns the state's
// total too.
func (q *Queue) List(ctx context.Context, state State, offset, limit int) ([]*Record, int64, error) {
	set := q.keys.stateSet(state)
	if set == "" {
		return nil, 0, fmt.Errorf("list %s: no listing for this state", state)
	}
	if limit <= 0 {
		return nil, 0, nil
	}
	start, stop := int64(offset), int64(offset+limit-1)
	var ids []string
	var err error
	if state == StateCompleted || state == StateFailed {
		ids, err = q.c.rdb.ZRevRange(ctx, set, start, stop).Result()
	} else {
		ids, err = q.c.rdb.ZRange(ctx, set, start, stop).Result()
	}
	if err != nil {
		return nil, 0, fmt.Errorf("list %s: %w", state, err)
	}
	pipe := q.c.rdb.Pipeline()
	total := pipe.ZCard(ctx, set)
	gets := make([]*redis.MapStringStringCmd, len(ids))
	for i, id := range ids {
		gets[i] = pipe.HGetAll(ctx, q.keys.job(id))
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, 0, fmt.Errorf("list %s: %w", state, err)
	}
	jobs := make([]*Record, 0, len(ids))
	for _, g := range gets {
		if len(g.Val()) == 0 {
			continue // removed between the two reads
		}
		j, err := decodeRecord(g.Val())
		if err != nil {
			return nil, 0, err
		}
		jobs = append(jobs, j)
	}
	return jobs, total.Val(), nil
}

// IDs lists the ids of the jobs in a state, up to limit from offset, without reading records.
func (q *Queue) IDs(ctx context.Context, state State, offset, limit int) ([]string, error) {
	set := q.keys.stateSet(state)
	if set == "" {
		return nil, fmt.Errorf("ids %s: no listing for this state", state)
	}
	ids, err := q.c.rdb.ZRange(ctx, set, int64(offset), int64(offset+limit-1)).Result()
	if err != nil {
		return nil, fmt.Errorf("ids %s of %s/%s: %w", state, q.Namespace, q.Name, err)
	}
	return ids, nil
}
