// Package workers runs jobs: a pool leases from one queue at its concurrency, heartbeats the
// leases, enforces timeouts, recovers panics, reports progress, and writes the transitions it
// causes to the job CRs. Processors, one per queue (registry.go), do the work and know nothing
// of Redis or Kubernetes. A worker process serves its own /metrics and /healthz (server.go).
package workers

import (
	"context"
	"fmt"
	"time"
)

// Task is what a processor gets of a job: its identity and its payload (the CR's spec as JSON).
type Task struct {
	ID             string
	Namespace      string
	Queue          string
	Payload        []byte
	PayloadVersion int
	// Attempt is 1 for the first attempt.
	Attempt     int
	MaxAttempts int
}

// Progress reports a job's progress, 0 to 100, with a short message. It never blocks on the
// kube-apiserver: Redis gets every tick, the CR a coalesced one.
type Progress func(percent int, message string)

// Processor does one queue's work. It returns a small result (JSON) or an error; Permanent and
// RateLimited errors say how the job goes on, any other error is retried after the backoff.
type Processor interface {
	Process(ctx context.Context, task Task, progress Progress) ([]byte, error)
}

// ProcessorFunc adapts a function to a Processor.
type ProcessorFunc func(ctx context.Context, task Task, progress Progress) ([]byte, error)

// Process calls f.
func (f ProcessorFunc) Process(ctx context.Context, task Task, progress Progress) ([]byte, error) {
	return f(ctx, task, progress)
}

// PermanentError marks a failure no retry can fix (invalid data, a deleted property): the job
// goes to the dead letter set at once.
type PermanentError struct{ Err error }

func (e *PermanentError) Error() string { return e.Err.Error() }
func (e *PermanentError) Unwrap() error { return e.Err }

// Permanent wraps err as a PermanentError.
func Permanent(err error) error { return &PermanentError{Err: err} }

// RateLimitedError says the outside API is rate limiting: the job comes back after RetryAfter,
// no attempt counted, and the queue leases nothing until then.
type RateLimitedError struct {
	Err        error
	RetryAfter time.Duration
}

func (e *RateLimitedError) Error() string {
	return fmt.Sprintf("%v (retry after %s)", e.Err, e.RetryAfter)
}
func (e *RateLimitedError) Unwrap() error { return e.Err }

// RateLimited wraps err as a RateLimitedError.
func RateLimited(err error, retryAfter time.Duration) error {
	return &RateLimitedError{Err: err, RetryAfter: retryAfter}
}
