// Package queue is the Redis queue engine: jobs with priorities, delays, leases fenced by tokens,
// heartbeats, retries with backoff, a dead letter set, a global rate limit, pause, retention and
// an event stream. Every multi-key change is one Lua script. It knows nothing of Kubernetes.
package queue

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"github.com/redis/go-redis/v9"
)

var (
	// ErrNotFound: no record with this id.
	ErrNotFound = errors.New("job not found")
	// ErrLeaseLost: the token no longer holds the job (it stalled and was taken over, or was
	// cancelled or removed). The caller's work on it does not count.
	ErrLeaseLost = errors.New("lease lost")
	// ErrConflict: a live job has this id under another owner UID.
	ErrConflict = errors.New("a live job with this id belongs to another owner")
	// ErrWrongState: the operation does not apply to the job's state (retrying a job that is
	// not failed).
	ErrWrongState = errors.New("job is in the wrong state")
)

// Clock tells the time; tests inject one.
type Clock interface{ Now() time.Time }

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

// Engine is the queue engine over one Redis (single node, Sentinel or Cluster).
type Engine struct {
	rdb          redis.UniversalClient
	clock        Clock
	log          logr.Logger
	eventsMaxLen int64
	maxIdleWait  time.Duration
	combiners    sync.Map // queue key prefix -> *combiner: concurrent Enqueue calls share script calls
}

// Option configures an Engine.
type Option func(*Engine)

// WithClock sets the clock whose time the scripts use.
func WithClock(c Clock) Option { return func(cl *Engine) { cl.clock = c } }

// WithLogger sets the logger.
func WithLogger(l logr.Logger) Option { return func(cl *Engine) { cl.log = l } }

// WithEventsMaxLen caps each queue's event stream (approximately; default 10,000 events).
func WithEventsMaxLen(n int64) Option { return func(cl *Engine) { cl.eventsMaxLen = n } }

// WithMaxIdleWait bounds how long an idle worker blocks before it looks again (default 5 s).
func WithMaxIdleWait(d time.Duration) Option { return func(cl *Engine) { cl.maxIdleWait = d } }

// New returns an engine over rdb.
func New(rdb redis.UniversalClient, opts ...Option) *Engine {
	c := &Engine{rdb: rdb, clock: realClock{}, log: logr.Discard(), eventsMaxLen: 10000, maxIdleWait: 5 * time.Second}
	for _, o := range opts {
		o(c)
	}
	return c
}

// Redis is the client the engine runs on.
func (c *Engine) Redis() redis.UniversalClient { return c.rdb }

// Queue is one queue of one namespace.
type Queue struct {
	c    *Engine
	keys keys
	comb *combiner
	// Namespace and Name identify the queue.
	Namespace, Name string
}

// Queue returns the queue name in namespace.
func (c *Engine) Queue(namespace, name string) *Queue {
	k := newKeys(namespace, name)
	return &Queue{c: c, keys: k, comb: c.combinerFor(k.meta), Namespace: namespace, Name: name}
}

func (q *Queue) now() int64 { return q.c.clock.Now().UnixMilli() }

// EnqueueRequest is a job to add.
type EnqueueRequest struct {
	ID             string
	UID            string
	Payload        []byte
	PayloadVersion int // default 1
	Priority       int // higher is more urgent; [-1000, 1000]
	Delay          time.Duration
	MaxAttempts    int // attempts in all, the first included; default 1
	Backoff        Backoff
	Timeout        time.Duration
	// MinVersion puts the new record's version above it. A job re-enqueued after Redis lost it
	// passes its CR's status.queueVersion, so the new record's status writes are not stale.
	MinVersion int64
}

// EnqueueResult says what Enqueue did.
type EnqueueResult struct {
	// Created is false when the same id and UID was already there (nothing changed).
	Created bool
	Version int64
	State   State
}

// Enqueue adds a job. It is idempotent: the same id and UID returns the existing job unchanged.
// The same id with another UID replaces a finished record and is refused (ErrConflict) while the
// old one is live. Concurrent calls on one queue share script calls (see combiner): one that
// finds none in flight is sent at once.
func (q *Queue) Enqueue(ctx context.Context, r EnqueueRequest) (EnqueueResult, error) {
	r, err := normalizeEnqueue(r)
	if err != nil {
		return EnqueueResult{}, err
	}
	res := q.enqueueCombined(ctx, r)
	return res.EnqueueResult, res.Err
}

// EnqueueManyResult is what became of one request of EnqueueMany: what Enqueue would have
// returned for it.
type EnqueueManyResult struct {
	EnqueueResult
	// Err is this request's own error: invalid (no id or uid, priority out of range; it was not
	// sent), or ErrConflict wrapped. The other requests are not affected.
	Err error
}

// enqueueManyBatch bounds the jobs of one script call, so one call never holds Redis long.
const enqueueManyBatch = 200

// EnqueueMany adds jobs in one script call (one per 200 jobs), each exactly as Enqueue adds it:
// idempotent on id and UID, its own version and its own event, in the order given (a later
// request for the same id sees the earlier one). A request's own failure is in its result's
// Err. The returned error is for a script call as a whole (Redis unreachable): the results then
// returned, fewer than rs, are those of the calls that went through, in order; whether the jobs
// after them were added is unknown (retrying them is safe: Enqueue is idempotent).
func (q *Queue) EnqueueMany(ctx context.Context, rs []EnqueueRequest) ([]EnqueueManyResult, error) {
	out := make([]EnqueueManyResult, 0, len(rs))
	for len(rs) > 0 {
		chunk := rs[:min(len(rs), enqueueManyBatch)]
		rs = rs[len(chunk):]
		valid := make([]EnqueueRequest, 0, len(chunk))
		errs := make([]error, len(chunk))
		for i, r := range chunk {
			if r, errs[i] = normalizeEnqueue(r); errs[i] == nil {
				valid = append(valid, r)
			}
		}
		var res []EnqueueManyResult
		if len(valid) > 0 {
			var err error
			if res, err = q.enqueueBatch(ctx, valid); err != nil {
				return out, fmt.Errorf("enqueue %d jobs on %s/%s: %w", len(valid), q.Namespace, q.Name, err)
			}
		}
		for _, err := range errs {
			if err != nil {
				out = append(out, EnqueueManyResult{Err: err})
				continue
			}
			out = append(out, res[0])
			res = res[1:]
		}
	}
	return out, nil
}

// normalizeEnqueue checks a request and fills in its defaults.
func normalizeEnqueue(r EnqueueRequest) (EnqueueRequest, error) {
	if r.ID == "" || r.UID == "" {
		return r, fmt.Errorf("enqueue: id and uid are required")
	}
	if r.Priority < -1000 || r.Priority > 1000 {
		return r, fmt.Errorf("enqueue %s: priority %d out of [-1000, 1000]", r.ID, r.Priority)
	}
	if r.PayloadVersion == 0 {
		r.PayloadVersion = 1
	}
	if r.MaxAttempts < 1 {
		r.MaxAttempts = 1
	}
	if r.Backoff.Type == "" {
		r.Backoff.Type = BackoffFixed
	}
	return r, nil
}

// enqueueBatch runs enqueue.lua once for normalized requests and returns one result per request.
func (q *Queue) enqueueBatch(ctx context.Context, rs []EnqueueRequest) ([]EnqueueManyResult, error) {
	k := q.keys
	keys := make([]string, 0, 8+len(rs))
	keys = append(keys, k.wait, k.delayed, k.meta, k.events, k.marker, k.active, k.completed, k.failed)
	args := make([]any, 0, 2+14*len(rs))
	args = append(args, q.now(), q.c.eventsMaxLen)
	for _, r := range rs {
		keys = append(keys, k.job(r.ID))
		args = appendEnqueueArgs(args, r)
	}
	res, err := scriptEnqueue.Run(ctx, q.c.rdb, keys, args...).Slice()
	if err != nil {
		return nil, err
	}
	if len(res) != len(rs) {
		return nil, fmt.Errorf("enqueue script replied %d results for %d jobs", len(res), len(rs))
	}
	out := make([]EnqueueManyResult, len(rs))
	for i, raw := range res {
		if version, ok := raw.(int64); ok {
			state := StateWaiting
			if rs[i].Delay.Milliseconds() > 0 {
				state = StateDelayed
			}
			out[i] = EnqueueManyResult{EnqueueResult: EnqueueResult{Created: true, Version: version, State: state}}
			continue
		}
		v, _ := raw.([]any)
		if len(v) != 3 {
			return nil, fmt.Errorf("enqueue script replied %v for %s", raw, rs[i].ID)
		}
		o := EnqueueManyResult{EnqueueResult: EnqueueResult{Version: toInt64(v[1]), State: State(toString(v[2]))}}
		switch toString(v[0]) {
		case "exists":
		case "conflict":
			o.Err = fmt.Errorf("enqueue %s: %w", rs[i].ID, ErrConflict)
		default:
			return nil, fmt.Errorf("enqueue script replied %v for %s", raw, rs[i].ID)
		}
		out[i] = o
	}
	return out, nil
}

// appendEnqueueArgs appends one job's arguments of enqueue.lua: the fixed ones, then the
// record's settings as field/value pairs, leaving out those that decode the same when absent
// (payload version and attempts 1, zeros, the fixed backoff type): a field less is Redis time
// saved on every enqueue.
func appendEnqueueArgs(args []any, r EnqueueRequest) []any {
	args = append(args, r.ID, r.UID, r.Payload, r.Delay.Milliseconds(), r.MinVersion, max(r.MinVersion, 0)+1, r.Priority)
	n := len(args)
	args = append(args, 0)
	if r.PayloadVersion != 1 {
		args = append(args, "pv", r.PayloadVersion)
	}
	if r.MaxAttempts != 1 {
		args = append(args, "maxAttempts", r.MaxAttempts)
	}
	if r.Priority != 0 {
		args = append(args, "priority", r.Priority)
	}
	if r.Backoff.Type != BackoffFixed {
		args = append(args, "backoffType", string(r.Backoff.Type))
	}
	if r.Backoff.Delay != 0 {
		args = append(args, "backoffDelay", r.Backoff.Delay.Milliseconds())
	}
	if r.Backoff.Multiplier != 0 {
		args = append(args, "backoffMult", r.Backoff.Multiplier)
	}
	if r.Backoff.JitterPercent != 0 {
		args = append(args, "backoffJitter", r.Backoff.JitterPercent)
	}
	if r.Timeout != 0 {
		args = append(args, "timeout", r.Timeout.Milliseconds())
	}
	args[n] = (len(args) - n - 1) / 2
	return args
}

// LeaseResult is what one Lease call got.
type LeaseResult struct {
	Jobs []*Record
	// RetryAt is when more may be leased, if fewer jobs than asked came: the next delayed job's
	// due time or the end of a rate-limit window. Zero: only a new job would help.
	RetryAt time.Time
	// Paused is true when the queue is paused.
	Paused bool
}

// Lease leases up to count jobs to worker for leaseDuration: due delayed jobs are promoted
// first, higher priority goes first, FIFO within a priority; a paused or rate-limited queue
// gives nothing. Each job's Token fences its lease.
func (q *Queue) Lease(ctx context.Context, worker string, count int, leaseDuration time.Duration) (LeaseResult, error) {
	k := q.keys
	now, leaseMs := q.now(), leaseDuration.Milliseconds()
	res, err := scriptLease.Run(ctx, q.c.rdb,
		[]string{k.wait, k.delayed, k.active, k.meta, k.limiter, k.events, k.marker},
		k.jobPrefix, now, leaseMs, worker, count, q.c.eventsMaxLen).Slice()
	if err != nil {
		return LeaseResult{}, fmt.Errorf("lease from %s/%s: %w", q.Namespace, q.Name, err)
	}
	out := LeaseResult{}
	switch retry := toInt64(res[0]); {
	case retry < 0:
		out.Paused = true
	case retry > 0:
		out.RetryAt = time.UnixMilli(retry)
	}
	processed, until := strconv.FormatInt(now, 10), strconv.FormatInt(now+leaseMs, 10)
	for _, raw := range res[1:] {
		fields, err := pairsToMap(raw)
		if err != nil {
			return out, fmt.Errorf("lease from %s/%s: %w", q.Namespace, q.Name, err)
		}
		// The script returns the record as it was before the lease, with its new version: these
		// are the other fields the lease wrote (lease.lua).
		fields["state"], fields["token"], fields["worker"] = string(StateActive), fields["version"], worker
		fields["processedAt"], fields["leaseUntil"], fields["dueAt"] = processed, until, "0"
		job, err := decodeRecord(fields)
		if err != nil {
			return out, fmt.Errorf("lease from %s/%s: %w", q.Namespace, q.Name, err)
		}
		out.Jobs = append(out.Jobs, job)
	}
	return out, nil
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
		keys := make([]string, 0, 4+len(batch))
		keys = append(keys, k.active, k.completed, k.events, k.meta)
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
		[]string{k.job(id), k.active, k.delayed, k.failed, k.meta, k.events, k.marker},
		id, token, truncate(f.Message, 1024), q.now(), string(f.Kind), f.RetryAfter.Milliseconds(),
		rand.Float64(), q.c.eventsMaxLen).Slice()
	if err != nil {
		return FailResult{}, leaseErr("fail", id, err)
	}
	out := FailResult{State: State(toString(res[0])), Version: toInt64(res[1])}
	if due := toInt64(res[2]); due > 0 {
		out.DueAt = time.UnixMilli(due)
	}
	return out, nil
}

// Release hands a leased job back to waiting, at its place in line, without counting the
// attempt: its worker is shutting down.
func (q *Queue) Release(ctx context.Context, id, token string) (int64, error) {
	k := q.keys
	v, err := scriptRelease.Run(ctx, q.c.rdb, []string{k.job(id), k.active, k.wait, k.events, k.marker},
		id, token, q.c.eventsMaxLen).Int64()
	return v, leaseErr("release", id, err)
}

// RetryFailed moves a job from the dead letter set back to waiting, with its attempts reset.
func (q *Queue) RetryFailed(ctx context.Context, id string) (int64, error) {
	k := q.keys
	v, err := scriptRetry.Run(ctx, q.c.rdb, []string{k.job(id), k.failed, k.wait, k.events, k.marker},
		id, q.c.eventsMaxLen).Int64()
	return v, stateErr("retry", id, err)
}

// Cancel cancels a job that has not finished; its record is kept for keep. A worker holding it
// learns it at its next heartbeat. It returns the job's state afterwards.
func (q *Queue) Cancel(ctx context.Context, id string, keep time.Duration) (State, int64, error) {
	k := q.keys
	res, err := scriptCancel.Run(ctx, q.c.rdb, []string{k.job(id), k.wait, k.delayed, k.active, k.events},
		id, q.now(), q.c.eventsMaxLen, keep.Milliseconds()).Slice()
	if err != nil {
		return "", 0, stateErr("cancel", id, err)
	}
	return State(toString(res[0])), toInt64(res[1]), nil
}

// Remove deletes a job's record wherever it is. With a non-empty uid, only the record of that
// owner is removed (a recreated CR's new record is left alone). It reports whether a record
// went.
func (q *Queue) Remove(ctx context.Context, id, uid string) (bool, error) {
	k := q.keys
	v, err := scriptRemove.Run(ctx, q.c.rdb,
		[]string{k.job(id), k.events, k.wait, k.delayed, k.active, k.completed, k.failed},
		id, q.c.eventsMaxLen, uid).Int64()
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
	res, err := scriptReclaim.Run(ctx, q.c.rdb, []string{k.active, k.wait, k.failed, k.events, k.marker},
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

// Counts is the number of jobs in each state.
type Counts struct {
	Waiting, Active, Delayed, Completed, Failed int64
	// Paused holds the waiting jobs while the queue is paused (Waiting is then 0).
	Paused   int64
	IsPaused bool
}

// Counts reads the number of jobs per state, in O(1).
func (q *Queue) Counts(ctx context.Context) (Counts, error) {
	k := q.keys
	pipe := q.c.rdb.Pipeline()
	wait, delayed, active := pipe.ZCard(ctx, k.wait), pipe.ZCard(ctx, k.delayed), pipe.ZCard(ctx, k.active)
	completed, failed := pipe.ZCard(ctx, k.completed), pipe.ZCard(ctx, k.failed)
	paused := pipe.HGet(ctx, k.meta, "paused")
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return Counts{}, fmt.Errorf("counts of %s/%s: %w", q.Namespace, q.Name, err)
	}
	c := Counts{Waiting: wait.Val(), Delayed: delayed.Val(), Active: active.Val(),
		Completed: completed.Val(), Failed: failed.Val(), IsPaused: paused.Val() == "1"}
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

func leaseErr(op, id string, err error) error {
	if err == nil {
		return nil
	}
	if strings.HasPrefix(err.Error(), "LEASE") {
		return fmt.Errorf("%s %s: %w", op, id, ErrLeaseLost)
	}
	return fmt.Errorf("%s %s: %w", op, id, err)
}

func stateErr(op, id string, err error) error {
	if err == nil {
		return nil
	}
	switch msg := err.Error(); {
	case strings.HasPrefix(msg, "NOTFOUND"):
		return fmt.Errorf("%s %s: %w", op, id, ErrNotFound)
	case strings.HasPrefix(msg, "STATE"):
		return fmt.Errorf("%s %s: %w (%s)", op, id, ErrWrongState, msg)
	}
	return fmt.Errorf("%s %s: %w", op, id, err)
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
