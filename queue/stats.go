package queue

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// A queue's lifetime statistics live in its stats hash: counters and two duration histograms
// that the scripts bump in the same call as the transition they count (complete.lua, fail.lua,
// reclaim.lua, lease.lua, retry.lua, cancel.lua, remove.lua). Each event is counted exactly
// once, whichever worker or controller replica caused it, and the counts outlive every process:
// a worker restarted or scaled to zero loses nothing. They go only with Redis' own data (a flush,
// a restart without persistence), which Prometheus reads as a counter reset.

// Failure reasons of jobs that ended failed (Stats.Failed).
const (
	// FailedPermanent: the processor said retrying cannot help (invalid data).
	FailedPermanent = "permanent"
	// FailedExhausted: the last attempt failed with an error.
	FailedExhausted = "exhausted"
	// FailedStalled: its worker stopped renewing the lease once too often, or on the last attempt.
	FailedStalled = "stalled"
	// FailedTimeout: the last attempt ran out of the job's timeout.
	FailedTimeout = "timeout"
)

// FailedReasons lists every failure reason, in a fixed order.
var FailedReasons = []string{FailedPermanent, FailedExhausted, FailedStalled, FailedTimeout}

// Retry reasons of jobs that went back to the queue for another attempt (Stats.Retried).
const (
	// RetriedError: an attempt failed with an error; the job waits out its backoff.
	RetriedError = "error"
	// RetriedTimeout: an attempt ran out of the job's timeout; the job waits out its backoff.
	RetriedTimeout = "timeout"
	// RetriedStalled: its worker stopped renewing the lease; the job waits again.
	RetriedStalled = "stalled"
	// RetriedManual: someone moved it back from the dead letter set (RetryFailed).
	RetriedManual = "manual"
)

// RetriedReasons lists every retry reason, in a fixed order.
var RetriedReasons = []string{RetriedError, RetriedTimeout, RetriedStalled, RetriedManual}

// StatsBuckets are the upper bounds of the duration histograms' buckets; a last, unbounded
// bucket follows. The scripts get them in milliseconds (scripts.go writes them into the prelude).
var StatsBuckets = []time.Duration{
	50 * time.Millisecond, 100 * time.Millisecond, 250 * time.Millisecond, 500 * time.Millisecond,
	time.Second, 2500 * time.Millisecond, 5 * time.Second, 10 * time.Second, 30 * time.Second,
	time.Minute, 2 * time.Minute, 5 * time.Minute, 10 * time.Minute, 30 * time.Minute, time.Hour,
}

// Histogram is a duration histogram of the stats hash.
type Histogram struct {
	// Counts holds one count per bucket of StatsBuckets plus the unbounded one; they are not
	// cumulative: an observation counts in the first bucket whose bound it does not exceed.
	Counts []uint64
	// Sum is the sum of the observations.
	Sum time.Duration
}

// Count is the number of observations.
func (h Histogram) Count() uint64 {
	var n uint64
	for _, c := range h.Counts {
		n += c
	}
	return n
}

// Stats are a queue's lifetime counters.
type Stats struct {
	// Completed counts jobs that completed.
	Completed uint64
	// Failed counts jobs that ended failed (in the dead letter set), by FailedReasons.
	Failed map[string]uint64
	// Retried counts jobs sent back for another attempt, by RetriedReasons.
	Retried map[string]uint64
	// Cancelled counts jobs cancelled before they finished (Cancel, or Remove with
	// RemoveAsCancel).
	Cancelled uint64
	// RateLimited counts times a job was held back, delayed, by a rate limit: the queue's own,
	// or an outside API's (FailRateLimited).
	RateLimited uint64
	// Pickup observes, at a job's first lease, the time from its enqueue to that start.
	Pickup Histogram
	// Run observes, at a job's end (completed or failed), the time from the start of its last
	// attempt to its end.
	Run Histogram
}

// The stats hash's fields. Histograms: <name>:<bucket index, 1-based> and <name>:sum (ms).
const (
	statCompleted   = "completed"
	statCancelled   = "cancelled"
	statRateLimited = "ratelimited"
	statFailed      = "failed:"  // + reason
	statRetried     = "retried:" // + reason
	statPickup      = "pickup"
	statRun         = "run"
)

// Stats reads the queue's lifetime counters.
func (q *Queue) Stats(ctx context.Context) (Stats, error) {
	all, err := q.c.ReadStats(ctx, q)
	if err != nil {
		return Stats{}, err
	}
	return all[0], nil
}

// ReadStats reads the lifetime counters of queues in one round trip (a pipeline), in order.
func (c *Engine) ReadStats(ctx context.Context, queues ...*Queue) ([]Stats, error) {
	if len(queues) == 0 {
		return nil, nil
	}
	cmds := make([]*redis.MapStringStringCmd, len(queues))
	_, err := c.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, q := range queues {
			cmds[i] = p.HGetAll(ctx, q.keys.stats)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read queue stats: %w", err)
	}
	out := make([]Stats, len(queues))
	for i, cmd := range cmds {
		if out[i], err = decodeStats(cmd.Val()); err != nil {
			return nil, fmt.Errorf("stats of %s/%s: %w", queues[i].Namespace, queues[i].Name, err)
		}
	}
	return out, nil
}

func decodeStats(f map[string]string) (Stats, error) {
	s := Stats{Failed: map[string]uint64{}, Retried: map[string]uint64{},
		Pickup: Histogram{Counts: make([]uint64, len(StatsBuckets)+1)},
		Run:    Histogram{Counts: make([]uint64, len(StatsBuckets)+1)}}
	for field, raw := range f {
		n, err := strconv.ParseUint(raw, 10, 64)
		if err != nil {
			return s, fmt.Errorf("field %s: %q is not a count", field, raw)
		}
		name, sub, _ := strings.Cut(field, ":")
		switch name {
		case statCompleted:
			s.Completed = n
		case statCancelled:
			s.Cancelled = n
		case statRateLimited:
			s.RateLimited = n
		case strings.TrimSuffix(statFailed, ":"):
			s.Failed[sub] = n
		case strings.TrimSuffix(statRetried, ":"):
			s.Retried[sub] = n
		case statPickup:
			decodeBucket(&s.Pickup, sub, n)
		case statRun:
			decodeBucket(&s.Run, sub, n)
		}
	}
	return s, nil
}

func decodeBucket(h *Histogram, sub string, n uint64) {
	if sub == "sum" {
		h.Sum = time.Duration(n) * time.Millisecond
		return
	}
	if i, err := strconv.Atoi(sub); err == nil && i >= 1 && i <= len(h.Counts) {
		h.Counts[i-1] = n
	}
}

// statsPrelude is the Lua table of the histograms' bucket bounds in ms, prepended to the
// scripts, so the bounds are written once (StatsBuckets).
func statsPrelude() string {
	bounds := make([]string, len(StatsBuckets))
	for i, b := range StatsBuckets {
		bounds[i] = strconv.FormatInt(b.Milliseconds(), 10)
	}
	return "local statsBucketsMs = {" + strings.Join(bounds, ", ") + "}\n"
}
