package queue

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// LeaseResult is what one Lease call got.
type LeaseResult struct {
	Jobs []*Record
	// RetryAt is when more may be leased, if fewer jobs than asked came: the next delayed job's
	// due time or the end of a rate-limit window. Zero: only a new job would help. It is on this
	// host's clock (WaitForJobs' too), although the records' times are on the scripts' (Redis').
	RetryAt time.Time
	// Paused is true when the queue is paused.
	Paused bool
}

// Lease leases up to count jobs to worker for leaseDuration: due delayed jobs are promoted
// first, higher priority goes first, FIFO within a priority; a paused or rate-limited queue
// gives nothing. Each job's Token fences its lease.
func (q *Queue) Lease(ctx context.Context, worker string, count int, leaseDuration time.Duration) (LeaseResult, error) {
	k := q.keys
	leaseMs := leaseDuration.Milliseconds()
	nonce := leaseNonce()
	res, err := scriptLease.Run(ctx, q.c.rdb,
		[]string{k.wait, k.delayed, k.active, k.meta, k.limiter, k.events, k.marker, k.stats},
		k.jobPrefix, q.now(), leaseMs, worker, count, q.c.eventsMaxLen, nonce).Slice()
	if err != nil {
		return LeaseResult{}, fmt.Errorf("lease from %s/%s: %w", q.Namespace, q.Name, err)
	}
	if len(res) < 2 {
		return LeaseResult{}, fmt.Errorf("lease from %s/%s: the script replied %d values", q.Namespace, q.Name, len(res))
	}
	out := LeaseResult{}
	now := toInt64(res[1]) // the scripts' time: Redis' unless a clock was injected
	switch retry := toInt64(res[0]); {
	case retry < 0:
		out.Paused = true
	case retry > 0:
		out.RetryAt = q.hostTime(retry, now)
	}
	processed, until := strconv.FormatInt(now, 10), strconv.FormatInt(now+leaseMs, 10)
	for i, raw := range res[2:] {
		fields, err := pairsToMap(raw)
		if err != nil {
			return out, fmt.Errorf("lease from %s/%s: %w", q.Namespace, q.Name, err)
		}
		// The script returns the record as it was before the lease, with its new version: these
		// are the other fields the lease wrote (lease.lua).
		token := nonce + "-" + strconv.Itoa(i+1)
		fields["state"], fields["token"], fields["lastToken"], fields["worker"] = string(StateActive), token, token, worker
		fields["processedAt"], fields["leaseUntil"], fields["dueAt"] = processed, until, "0"
		job, err := decodeRecord(fields)
		if err != nil {
			return out, fmt.Errorf("lease from %s/%s: %w", q.Namespace, q.Name, err)
		}
		out.Jobs = append(out.Jobs, job)
	}
	return out, nil
}

// leaseNonce makes a lease's token unique: a token is the call's nonce and the job's place in the
// call's reply, never the record's version, which can come back after Redis rolls back (lease.lua).
func leaseNonce() string {
	var b [8]byte
	_, _ = crand.Read(b[:]) // it never fails: Go crashes the program if the system's source does
	return hex.EncodeToString(b[:])
}

// hostTime is the scripts' time ms (of a script that worked at scriptNow) on this host's clock,
// which may be off from Redis' own: a wait for it then lasts as long as it should.
func (q *Queue) hostTime(ms, scriptNow int64) time.Time {
	if q.c.scriptClock {
		return time.UnixMilli(ms)
	}
	return q.c.clock.Now().Add(time.Duration(ms-scriptNow) * time.Millisecond)
}

// WaitForJobs blocks until a job may be ready (an enqueue, a retry, a resume woke the queue),
// until retryAt, or for the engine's maximum idle wait, whichever comes first. It never polls in
// a loop: the wait is one blocking Redis command.
func (q *Queue) WaitForJobs(ctx context.Context, retryAt time.Time) error {
	wait := q.c.maxIdleWait
	if !retryAt.IsZero() {
		if d := retryAt.Sub(q.c.clock.Now()); d < wait {
			wait = d
		}
	}
	if wait <= 0 {
		return nil
	}
	if wait < time.Second {
		// BZPOPMIN through go-redis takes whole seconds; a sub-second wait is for a job due
		// within it, so sleeping is as good.
		t := time.NewTimer(wait)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
			return nil
		}
	}
	err := q.c.rdb.BZPopMin(ctx, wait.Truncate(time.Second), q.keys.marker).Err()
	if err != nil && !errors.Is(err, redis.Nil) {
		return fmt.Errorf("wait for jobs on %s/%s: %w", q.Namespace, q.Name, err)
	}
	return nil
}

// HeartbeatStatus is what a heartbeat learned.
type HeartbeatStatus string

const (
	// HeartbeatOK: the lease is extended.
	HeartbeatOK HeartbeatStatus = "ok"
	// HeartbeatCancelled: the job was cancelled; stop working on it.
	HeartbeatCancelled HeartbeatStatus = "cancelled"
	// HeartbeatRemoved: the record is gone (removed, or its CR deleted); stop working on it.
	HeartbeatRemoved HeartbeatStatus = "removed"
	// HeartbeatLost: another lease holds the job; stop working on it.
	HeartbeatLost HeartbeatStatus = "lost"
)

// Heartbeat extends a lease by leaseDuration from now and says whether to go on.
func (q *Queue) Heartbeat(ctx context.Context, id, token string, leaseDuration time.Duration) (HeartbeatStatus, error) {
	s, err := scriptHeartbeat.Run(ctx, q.c.rdb, []string{q.keys.job(id), q.keys.active},
		id, token, q.now(), leaseDuration.Milliseconds()).Text()
	if err != nil {
		return "", fmt.Errorf("heartbeat %s: %w", id, err)
	}
	return HeartbeatStatus(s), nil
}

// Progress records a leased job's progress (0-100) and a short message.
func (q *Queue) Progress(ctx context.Context, id, token string, percent int, message string) (int64, error) {
	if percent < 0 || percent > 100 {
		return 0, fmt.Errorf("progress %s: %d out of 0..100", id, percent)
	}
	v, err := scriptProgress.Run(ctx, q.c.rdb, []string{q.keys.job(id), q.keys.events},
		id, token, percent, truncate(message, 256), q.c.eventsMaxLen).Int64()
	return v, leaseErr("progress", id, err)
}

// Complete finishes a leased job with a small result. It is CompleteMany of one job.
func (q *Queue) Complete(ctx context.Context, id, token string, result []byte) (int64, error) {
	res, err := q.completeMany(ctx, []Completion{{ID: id, Token: token, Result: result}})
	if err != nil {
		return 0, fmt.Errorf("complete %s: %w", id, err)
	}
	return res[0].Version, res[0].Err
}

// Completion is one leased job to finish: its id, its lease token and its small result.
type Completion struct {
	ID, Token string
	Result    []byte
}

// CompleteResult is what became of one Completion: the job's new version, or Err (wrapping
// ErrLeaseLost when its token no longer holds the job; that completion does not count).
type CompleteResult struct {
	Version int64
	Err     error
}

// completeManyBatch bounds the jobs of one script call, so one call never holds Redis long.
const completeManyBatch = 500

// CompleteMany finishes leased jobs in one script call (one per 500 jobs): each job is fenced
// by its own token, gets its own version bump and its own completed event, exactly as Complete
// does. A stale token fails only its own job (Err wraps ErrLeaseLost); the others complete.
// The returned error is for a script call as a whole (Redis unreachable): the results then
// returned, fewer than cs, are those of the calls that went through, in order; whether the
// jobs after them completed is unknown (a retry with the same tokens is safe: a job that did
// complete refuses it with ErrLeaseLost).
func (q *Queue) CompleteMany(ctx context.Context, cs []Completion) ([]CompleteResult, error) {
	res, err := q.completeMany(ctx, cs)
	if err != nil {
		return res, fmt.Errorf("complete %d jobs on %s/%s: %w", len(cs), q.Namespace, q.Name, err)
	}
	return res, nil
}

func (q *Queue) completeMany(ctx context.Context, cs []Completion) ([]CompleteResult, error) {
	out := make([]CompleteResult, 0, len(cs))
	k := q.keys
	for len(cs) > 0 {
		batch := cs[:min(len(cs), completeManyBatch)]
		cs = cs[len(batch):]
		keys := make([]string, 0, 5+len(batch))
		keys = append(keys, k.active, k.completed, k.events, k.meta, k.stats)
		args := make([]any, 0, 2+3*len(batch))
		args = append(args, q.now(), q.c.eventsMaxLen)
		for _, c := range batch {
			keys = append(keys, k.job(c.ID))
			args = append(args, c.ID, c.Token, c.Result)
		}
		res, err := scriptComplete.Run(ctx, q.c.rdb, keys, args...).Slice()
		if err != nil {
			return out, err
		}
		if len(res) != len(batch) {
			return out, fmt.Errorf("complete script replied %d results for %d jobs", len(res), len(batch))
		}
		for i, r := range res {
			if v := toInt64(r); v > 0 {
				out = append(out, CompleteResult{Version: v})
			} else {
				out = append(out, CompleteResult{Err: fmt.Errorf("complete %s: %w", batch[i].ID, ErrLeaseLost)})
			}
		}
	}
	return out, nil
}

// FailureKind says how a failed attempt goes on.
type FailureKind string

const (
	// FailRetry counts the attempt and retries after the backoff, or moves the job to the dead
	// letter set after its last attempt.
	FailRetry FailureKind = "retry"
	// FailPermanent counts the attempt and moves the job to the dead letter set at once
	// (invalid data: retrying cannot help).
	FailPermanent FailureKind = "permanent"
	// FailRateLimited counts nothing: the outside API is rate limiting. The job comes back
	// after RetryAfter, and the queue leases nothing until then.
	FailRateLimited FailureKind = "ratelimited"
)

// Failure is a failed attempt.
type Failure struct {
	Kind       FailureKind
	Message    string
	RetryAfter time.Duration // FailRateLimited only
	// TimedOut says the attempt ran out of the job's timeout (FailRetry): the engine's
	// statistics count it as a timeout instead of an error.
	TimedOut bool
}

// FailResult says where the job went.
type FailResult struct {
	State   State // delayed or failed
	Version int64
	DueAt   time.Time // when a delayed job is due
}

// Fail ends a leased job's attempt.
func (q *Queue) Fail(ctx context.Context, id, token string, f Failure) (FailResult, error) {
	switch f.Kind {
	case FailRetry, FailPermanent, FailRateLimited:
	default:
		return FailResult{}, fmt.Errorf("fail %s: unknown failure kind %q", id, f.Kind)
	}
	k := q.keys
	res, err := scriptFail.Run(ctx, q.c.rdb,
		[]string{k.job(id), k.active, k.delayed, k.failed, k.meta, k.events, k.marker, k.stats},
		id, token, truncate(f.Message, 1024), q.now(), string(f.Kind), f.RetryAfter.Milliseconds(),
		rand.Float64(), q.c.eventsMaxLen, boolArg(f.TimedOut)).Slice()
	if err != nil {
		return FailResult{}, leaseErr("fail", id, err)
	}
	out := FailResult{State: State(toString(res[0])), Version: toInt64(res[1])}
	if due := toInt64(res[2]); due > 0 {
		out.DueAt = time.UnixMilli(due)
	}
	return out, nil
}

// LastLease reads a job's record and the token of its last lease, which the record keeps after
// the lease ends (its Token is cleared then). A worker whose Complete, Fail or Release reply was
// lost, and whose retry was refused (ErrLeaseLost), reads it to learn whether its call went
// through: while the last lease is its own, no lease has been taken since, so the job's state is
// the one its own call left, unless a stall reclaim (which counts a stall), a cancel or a later
// move of the job's own (a due job promoted, a DLQ retry) came after. ErrNotFound when the record
// is gone (removed, or completed on a queue that does not keep completed records).
func (q *Queue) LastLease(ctx context.Context, id string) (*Record, string, error) {
	f, err := q.c.rdb.HGetAll(ctx, q.keys.job(id)).Result()
	if err != nil {
		return nil, "", fmt.Errorf("last lease of %s: %w", id, err)
	}
	if len(f) == 0 {
		return nil, "", fmt.Errorf("last lease of %s: %w", id, ErrNotFound)
	}
	r, err := decodeRecord(f)
	if err != nil {
		return nil, "", err
	}
	return r, f["lastToken"], nil
}

// Release hands a leased job back to waiting, at its place in line, without counting the
// attempt: its worker is shutting down.
func (q *Queue) Release(ctx context.Context, id, token string) (int64, error) {
	k := q.keys
	v, err := scriptRelease.Run(ctx, q.c.rdb, []string{k.job(id), k.active, k.wait, k.events, k.marker},
		id, token, q.c.eventsMaxLen).Int64()
	return v, leaseErr("release", id, err)
}

// boolArg is a flag argument of a script: '1' or '0'.
func boolArg(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

func toInt64(v any) int64 {
	switch n := v.(type) {
	case int64:
		return n
	case string:
		i, _ := strconv.ParseInt(n, 10, 64)
		return i
	}
	return 0
}

func toString(v any) string {
	s, _ := v.(string)
	return s
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
