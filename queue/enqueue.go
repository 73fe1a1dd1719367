package queue

import (
	"context"
	"fmt"
	"time"
)

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
	// RetryToken, when set, is recorded as the retry token the new record was enqueued for, as
	// RetryFailed records it: the same token then acts no more.
	RetryToken string
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
	if r.RetryToken != "" {
		args = append(args, "retryToken", r.RetryToken)
	}
	args[n] = (len(args) - n - 1) / 2
	return args
}
