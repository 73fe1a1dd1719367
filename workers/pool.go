package workers

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"

	"github.com/jengu/queue-operator/internal/ctxsleep"
	"github.com/jengu/queue-operator/metrics"
	"github.com/jengu/queue-operator/queue"
	"github.com/jengu/queue-operator/store"
)

// Pool leases jobs from one queue and runs them at its concurrency.
type Pool struct {
	queue             *queue.Queue
	processor         Processor
	status            StatusSink
	events            AttemptEvents
	results           ResultRecorder
	log               logr.Logger
	workerID          string
	concurrency       int
	leaseDuration     time.Duration
	heartbeatInterval time.Duration
	shutdownGrace     time.Duration
	defaultTimeout    time.Duration
}

// Option configures a Pool.
type Option func(*Pool)

// WithConcurrency sets how many jobs run at once (default 1).
func WithConcurrency(n int) Option { return func(p *Pool) { p.concurrency = max(1, n) } }

// WithLease sets the lease duration and the heartbeat interval that renews it (defaults 30 s
// and 10 s). A job is cancelled within one heartbeat of being cancelled or removed.
func WithLease(lease, heartbeat time.Duration) Option {
	return func(p *Pool) { p.leaseDuration, p.heartbeatInterval = lease, heartbeat }
}

// WithShutdownGrace sets how long running jobs may go on after shutdown begins before they are
// handed back to the queue (default 25 s).
func WithShutdownGrace(d time.Duration) Option { return func(p *Pool) { p.shutdownGrace = d } }

// WithStatus sets where transitions are reported (default: nowhere).
func WithStatus(s StatusSink) Option { return func(p *Pool) { p.status = s } }

// WithEvents sets where failed attempts are reported with their detail (default: nowhere).
func WithEvents(e AttemptEvents) Option { return func(p *Pool) { p.events = e } }

// WithLogger sets the logger.
func WithLogger(l logr.Logger) Option { return func(p *Pool) { p.log = l } }

// WithWorkerID names this worker in leases (default: "worker"). Each worker of a queue needs an
// id of its own: after a failed Lease call the pool hands back every job leased to its id that
// it does not run.
func WithWorkerID(id string) Option { return func(p *Pool) { p.workerID = id } }

// NewPool runs processor on q's jobs.
func NewPool(q *queue.Queue, processor Processor, opts ...Option) *Pool {
	p := &Pool{queue: q, processor: processor, status: noStatus{}, log: logr.Discard(), workerID: "worker",
		concurrency: 1, leaseDuration: 30 * time.Second, heartbeatInterval: 10 * time.Second,
		shutdownGrace: 25 * time.Second, defaultTimeout: 5 * time.Minute}
	for _, o := range opts {
		o(p)
	}
	return p
}

type noStatus struct{}

func (noStatus) Started(string)    {}
func (noStatus) Transition(string) {}
func (noStatus) Progress(string)   {}

// Run leases and runs jobs until ctx ends. Then it stops leasing, lets running jobs finish
// within the shutdown grace, hands the rest back to the queue (no attempt counted) and returns.
// A Lease call that fails may have leased jobs all the same (its reply lost): before leasing
// again, the pool hands back, uncounted, the jobs leased to it that it does not run.
func (p *Pool) Run(ctx context.Context) error {
	// Jobs run under their own context: the end of ctx stops leasing, not the jobs.
	jobsCtx, abortJobs := context.WithCancelCause(context.WithoutCancel(ctx))
	defer abortJobs(nil)
	slots := make(chan struct{}, p.concurrency)
	var running sync.WaitGroup
	held := &heldJobs{ids: map[string]int{}}
	// strays: a Lease call failed. Its script may have run and only its reply been lost: jobs
	// leased to this worker that it does not run, which are handed back before leasing again.
	strays := false

	for ctx.Err() == nil {
		if strays {
			if err := p.releaseStrays(ctx, held); err != nil {
				if ctx.Err() == nil {
					p.log.Error(err, "Handing back stray leases failed; retrying")
					ctxsleep.Sleep(ctx, time.Second)
				}
				continue
			}
			strays = false
		}
		free := p.concurrency - len(slots)
		if free == 0 {
			select { // wait for a slot
			case slots <- struct{}{}:
				<-slots
			case <-ctx.Done():
			}
			continue
		}
		res, err := p.queue.Lease(ctx, p.workerID, free, p.leaseDuration)
		if err != nil {
			strays = true
			if ctx.Err() == nil {
				p.log.Error(err, "Lease failed; retrying")
				ctxsleep.Sleep(ctx, time.Second)
			}
			continue
		}
		for _, job := range res.Jobs {
			slots <- struct{}{}
			held.add(job.ID)
			running.Go(func() {
				defer func() { held.remove(job.ID); <-slots }()
				p.run(jobsCtx, job)
			})
		}
		if len(res.Jobs) == 0 {
			if err := p.queue.WaitForJobs(ctx, res.RetryAt); err != nil && ctx.Err() == nil {
				p.log.Error(err, "Waiting for jobs failed")
				ctxsleep.Sleep(ctx, time.Second)
			}
		}
	}

	p.log.Info("Shutting down: no new leases; waiting for running jobs", "running", len(slots), "grace", p.shutdownGrace)
	done := make(chan struct{})
	go func() { running.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(p.shutdownGrace):
		abortJobs(errShutdown)
		<-done
	}
	if strays { // the last Lease failed as the worker stopped
		endCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		if err := p.releaseStrays(endCtx, held); err != nil {
			p.log.Error(err, "Handing back stray leases failed; the stall sweep returns them")
		}
		cancel()
	}
	return nil
}

var errShutdown = errors.New("worker shutting down")

// heldJobs is the ids of the jobs a pool runs. An id is counted, not just present: a job handed
// back may be leased again by the same pool before the run that handed it back is over.
type heldJobs struct {
	mu  sync.Mutex
	ids map[string]int
}

func (h *heldJobs) add(id string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.ids[id]++
}

func (h *heldJobs) remove(id string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.ids[id]--; h.ids[id] <= 0 {
		delete(h.ids, id)
	}
}

func (h *heldJobs) list() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]string, 0, len(h.ids))
	for id := range h.ids {
		out = append(out, id)
	}
	return out
}

// releaseStrays hands back, uncounted, the jobs leased to this worker that it does not run: a
// Lease call whose reply was lost leased them. A job is held from before it runs until its lease
// has ended, so a job that is running is never among them.
func (p *Pool) releaseStrays(ctx context.Context, held *heldJobs) error {
	ids, err := p.queue.ReleaseWorkerLeases(ctx, p.workerID, held.list())
	if err != nil {
		return err
	}
	if len(ids) > 0 {
		p.log.Info("Handed back jobs leased by a call whose reply was lost", "jobs", ids)
		for _, id := range ids {
			p.status.Transition(id)
		}
	}
	return nil
}

// run processes one leased job and ends its lease: complete, fail, or hand back.
func (p *Pool) run(ctx context.Context, record *queue.Record) {
	log := p.log.WithValues("job", record.ID, "attempt", record.AttemptsMade+1)
	p.status.Started(record.ID)
	timeout := record.Timeout
	if timeout <= 0 {
		timeout = p.defaultTimeout
	}
	jobCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	jobCtx, cancelTimeout := context.WithTimeoutCause(jobCtx, timeout, fmt.Errorf("job timed out after %s", timeout))
	defer cancelTimeout()

	heartbeatDone := make(chan struct{})
	var stopped error // why the lease ended under us, if it did
	go func() {
		defer close(heartbeatDone)
		stopped = p.heartbeat(jobCtx, record, cancel)
	}()

	finished := metrics.WorkerJobStarted(p.queue.Name)
	result, err := p.process(jobCtx, record)
	finished()
	cancel(nil)
	<-heartbeatDone

	// The outcome is recorded even while shutting down: a fresh context, bounded. Redis errors
	// are retried within it (endLease).
	endCtx, endCancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer endCancel()
	switch {
	case stopped != nil:
		log.Info("Job stopped: its lease ended", "reason", stopped.Error())
		return
	case err == nil:
		// Success counts even when the shutdown grace ran out as it came: the work is done, and
		// handing the job back would run it again.
		err := p.endLease(endCtx, record, func(ctx context.Context) error {
			_, err := p.queue.Complete(ctx, record.ID, record.Token, result)
			return err
		}, func(now *queue.Record) bool { return now.State == queue.StateCompleted })
		if err != nil {
			logEndFailed(log, err, "Complete")
			return
		}
		metrics.CountWorkerJobCompleted(p.queue.Name)
		p.recordResult(endCtx, record, store.JobCompleted, result, "")
	case errors.Is(context.Cause(ctx), errShutdown):
		err := p.endLease(endCtx, record, func(ctx context.Context) error {
			_, err := p.queue.Release(ctx, record.ID, record.Token)
			return err
		}, func(now *queue.Record) bool { return now.State == queue.StateWaiting })
		if err != nil {
			logEndFailed(log, err, "Hand back")
		} else {
			log.Info("Handed the job back to the queue")
		}
	default:
		failure := classify(err, context.Cause(jobCtx))
		var res queue.FailResult
		ferr := p.endLease(endCtx, record, func(ctx context.Context) error {
			var err error
			res, err = p.queue.Fail(ctx, record.ID, record.Token, failure)
			return err
		}, func(now *queue.Record) bool {
			if !endedByFail(now, failure) {
				return false
			}
			res = queue.FailResult{State: now.State, Version: now.Version, DueAt: now.DueAt}
			return true
		})
		if ferr != nil {
			logEndFailed(log, ferr, "Fail", "error", err.Error())
			return
		}
		if res.State == queue.StateFailed {
			p.recordResult(endCtx, record, store.JobFailed, nil, failure.Message)
		}
		metrics.CountWorkerJobFailed(p.queue.Name, string(failure.Kind))
		log.Info("Job attempt failed", "kind", failure.Kind, "reason", failure.Message, "error", err.Error())
		if p.events != nil {
			p.events.AttemptFailed(record, failure, err)
		}
	}
	p.status.Transition(record.ID)
}

// endLease ends a job's lease with end (Complete, Fail or Release), retrying with a bounded
// backoff while Redis errors, until ctx ends. A try that errored may have run in Redis with only
// its reply lost: a retry is then refused (ErrLeaseLost) although the lease ended as this worker
// said. So a refusal after such a try reads the record: when the record's last lease is still
// this one, no stall was counted since, and its state is what end leaves (endedByUs), the lease
// counts as ended by end. Otherwise the lease was lost (ErrLeaseLost).
func (p *Pool) endLease(ctx context.Context, record *queue.Record, end func(context.Context) error, endedByUs func(*queue.Record) bool) error {
	replyMayBeLost := false
	for try := 0; ; try++ {
		err := end(ctx)
		switch {
		case err == nil:
			return nil
		case errors.Is(err, queue.ErrLeaseLost) && replyMayBeLost:
			return p.endedByEarlierTry(ctx, record, endedByUs, err)
		case errors.Is(err, queue.ErrLeaseLost):
			return err
		}
		replyMayBeLost = true
		if !backoff(ctx, try) {
			return err
		}
	}
}

// endedByEarlierTry reads the record after a retry was refused with lost (see endLease), and
// returns nil when an earlier try ended the lease.
func (p *Pool) endedByEarlierTry(ctx context.Context, record *queue.Record, endedByUs func(*queue.Record) bool, lost error) error {
	for try := 0; ; try++ {
		now, lastToken, err := p.queue.LastLease(ctx, record.ID)
		switch {
		case err == nil:
			// A stall reclaim ends a lease without a new one, and counts a stall.
			if lastToken == record.Token && now.Stalls == record.Stalls && endedByUs(now) {
				return nil
			}
			return lost
		case errors.Is(err, queue.ErrNotFound):
			return lost
		}
		if !backoff(ctx, try) {
			return fmt.Errorf("%w (and reading the record to tell whether an earlier try went through: %v)", lost, err)
		}
	}
}

// backoff waits before the next try: 100 ms, doubling, at most 2 s. It reports false when ctx
// ended first.
func backoff(ctx context.Context, try int) bool {
	ctxsleep.Sleep(ctx, min(100*time.Millisecond<<min(try, 5), 2*time.Second))
	return ctx.Err() == nil
}

// endedByFail says whether a record, read after this worker's Fail of its lease, shows that Fail
// went through: the state it leads to (the dead letter set; delayed, or waiting again once due)
// and its message (the engine keeps its first 1,024 bytes). A stall reclaim's own message and
// state (waiting, or failed) tell it apart.
func endedByFail(now *queue.Record, f queue.Failure) bool {
	if !strings.HasPrefix(f.Message, now.Error) || (now.Error == "" && f.Message != "") {
		return false
	}
	switch now.State {
	case queue.StateFailed:
		return f.Kind != queue.FailRateLimited
	case queue.StateDelayed, queue.StateWaiting:
		return f.Kind != queue.FailPermanent
	}
	return false
}

// logEndFailed logs why a job's lease could not be ended as the worker wanted.
func logEndFailed(log logr.Logger, err error, what string, kv ...any) {
	if errors.Is(err, queue.ErrLeaseLost) {
		log.Info(what+" refused: the lease had ended (stalled and taken over, cancelled or removed); this attempt does not count", kv...)
		return
	}
	log.Error(err, what+" failed; the stall sweep returns the job", kv...)
}

// process runs the processor, turning a panic into a failed attempt.
func (p *Pool) process(ctx context.Context, record *queue.Record) (result []byte, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: %v\n%s", errPanic, r, debug.Stack())
		}
	}()
	job := Task{ID: record.ID, Namespace: p.queue.Namespace, Queue: p.queue.Name, Payload: record.Payload,
		PayloadVersion: record.PayloadVersion, Attempt: record.AttemptsMade + 1, MaxAttempts: record.MaxAttempts}
	progress := func(percent int, message string) {
		if _, err := p.queue.Progress(ctx, record.ID, record.Token, min(max(percent, 0), 100), message); err == nil {
			p.status.Progress(record.ID)
		}
	}
	return p.processor.Process(ctx, job, progress)
}

// heartbeat renews the lease until ctx ends. When the job was cancelled, removed or taken over,
// it cancels the job and says why.
func (p *Pool) heartbeat(ctx context.Context, record *queue.Record, cancel context.CancelCauseFunc) error {
	ticker := time.NewTicker(p.heartbeatInterval)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-ticker.C:
		}
		status, err := p.queue.Heartbeat(ctx, record.ID, record.Token, p.leaseDuration)
		if err != nil {
			continue // Redis hiccup: the lease outlives a few missed beats
		}
		if status != queue.HeartbeatOK {
			reason := fmt.Errorf("job %s", status)
			cancel(reason)
			return reason
		}
	}
}

// classify turns a processor's error into how the job goes on, with the message its user gets
// (PublicReason); the full error is for the log and the job's Events.
func classify(err, cause error) queue.Failure {
	var permanent *PermanentError
	var limited *RateLimitedError
	switch {
	case errors.As(err, &permanent):
		return queue.Failure{Kind: queue.FailPermanent, Message: PublicReason(err, cause)}
	case errors.As(err, &limited):
		return queue.Failure{Kind: queue.FailRateLimited, Message: PublicReason(err, cause), RetryAfter: limited.RetryAfter}
	case cause != nil && errors.Is(err, context.DeadlineExceeded):
		return queue.Failure{Kind: queue.FailRetry, Message: PublicReason(err, cause), TimedOut: true}
	}
	return queue.Failure{Kind: queue.FailRetry, Message: PublicReason(err, cause)}
}
