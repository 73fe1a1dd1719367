package workers

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
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

// WithLogger sets the logger.
func WithLogger(l logr.Logger) Option { return func(p *Pool) { p.log = l } }

// WithWorkerID names this worker in leases (default: "worker").
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

func (noStatus) Transition(string) {}
func (noStatus) Progress(string)   {}

// Run leases and runs jobs until ctx ends. Then it stops leasing, lets running jobs finish
// within the shutdown grace, hands the rest back to the queue (no attempt counted) and returns.
func (p *Pool) Run(ctx context.Context) error {
	// Jobs run under their own context: the end of ctx stops leasing, not the jobs.
	jobsCtx, abortJobs := context.WithCancelCause(context.WithoutCancel(ctx))
	defer abortJobs(nil)
	slots := make(chan struct{}, p.concurrency)
	var running sync.WaitGroup

	for ctx.Err() == nil {
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
			if ctx.Err() == nil {
				p.log.Error(err, "Lease failed; retrying")
				ctxsleep.Sleep(ctx, time.Second)
			}
			continue
		}
		for _, job := range res.Jobs {
			slots <- struct{}{}
			running.Go(func() {
				defer func() { <-slots }()
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
	return nil
}

var errShutdown = errors.New("worker shutting down")

// run processes one leased job and ends its lease: complete, fail, or hand back.
func (p *Pool) run(ctx context.Context, record *queue.Record) {
	log := p.log.WithValues("job", record.ID, "attempt", record.AttemptsMade+1)
	p.status.Transition(record.ID)
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

	// The outcome is recorded even while shutting down: a fresh context, bounded.
	endCtx, endCancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer endCancel()
	switch {
	case stopped != nil:
		log.Info("Job stopped: its lease ended", "reason", stopped.Error())
		return
	case err == nil:
		// Success counts even when the shutdown grace ran out as it came: the work is done, and
		// handing the job back would run it again.
		if _, err := p.queue.Complete(endCtx, record.ID, record.Token, result); err != nil {
			log.Error(err, "Complete failed")
			return
		}
		metrics.CountWorkerJobCompleted(p.queue.Name)
		p.recordResult(endCtx, record, store.JobCompleted, result, "")
	case errors.Is(context.Cause(ctx), errShutdown):
		if _, err := p.queue.Release(endCtx, record.ID, record.Token); err != nil {
			log.Error(err, "Hand back failed; the stall sweep returns the job")
		} else {
			log.Info("Handed the job back to the queue")
		}
	default:
		failure := classify(err, context.Cause(jobCtx))
		res, ferr := p.queue.Fail(endCtx, record.ID, record.Token, failure)
		if ferr != nil {
			log.Error(ferr, "Fail failed", "error", err.Error())
			return
		}
		if res.State == queue.StateFailed {
			p.recordResult(endCtx, record, store.JobFailed, nil, failure.Message)
		}
		metrics.CountWorkerJobFailed(p.queue.Name, string(failure.Kind))
		log.Info("Job attempt failed", "kind", failure.Kind, "error", failure.Message)
	}
	p.status.Transition(record.ID)
}

// process runs the processor, turning a panic into a failed attempt.
func (p *Pool) process(ctx context.Context, record *queue.Record) (result []byte, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("processor panicked: %v\n%s", r, debug.Stack())
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

// classify turns a processor's error into how the job goes on.
func classify(err, cause error) queue.Failure {
	var permanent *PermanentError
	var limited *RateLimitedError
	switch {
	case errors.As(err, &permanent):
		return queue.Failure{Kind: queue.FailPermanent, Message: err.Error()}
	case errors.As(err, &limited):
		return queue.Failure{Kind: queue.FailRateLimited, Message: err.Error(), RetryAfter: limited.RetryAfter}
	case cause != nil && errors.Is(err, context.DeadlineExceeded):
		return queue.Failure{Kind: queue.FailRetry, Message: cause.Error()}
	}
	return queue.Failure{Kind: queue.FailRetry, Message: err.Error()}
}
