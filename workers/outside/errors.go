// Package outside is how processors call the outside APIs they depend on (weather, holidays,
// hotel prices): one bounded GET with its own timeout and size cap, secrets redacted from every
// error, and one error type (APIError) that says how the job should go on (Outcome), which
// AsJobError turns into the worker runtime's Permanent and RateLimited errors.
package outside

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jengu/queue-operator/workers"
)

var (
	// ErrResponseTooLarge says a response body went past the configured limit. It comes
	// wrapped in an APIError whose outcome the Client's TooLargeOutcome decides.
	ErrResponseTooLarge = errors.New("response body exceeds limit")

	// ErrTimeout says one request took longer than the configured timeout. It comes wrapped
	// in a retryable APIError.
	ErrTimeout = errors.New("request timed out")

	// ErrMalformedResponse says a 2xx body could not be understood (bad JSON, arrays of
	// different lengths). Callers wrap it in a retryable APIError: truncated or garbled bodies
	// from a proxy are usually transient, and the attempts are bounded anyway.
	ErrMalformedResponse = errors.New("malformed response")

	// ErrInvalidInput says the job's own data is unusable (coordinates out of range, no API
	// key), found before any request. Callers wrap it in a permanent APIError.
	ErrInvalidInput = errors.New("invalid input")
)

// APIError is a failure of an outside API, or of the job's own data found before any request,
// with how the caller should go on (Outcome):
//   - OutcomeRetryable: a later attempt may not meet it (a timeout, a connection error, an
//     HTTP 5xx, a garbled body);
//   - OutcomeRateLimited: an HTTP 429; RetryAfter comes from the Retry-After header (seconds or
//     an HTTP date), or the configured default when the header is absent or unreadable;
//   - OutcomePermanent: no retry fixes it (bad coordinates, a rejected API key).
type APIError struct {
	Source string
	// StatusCode is the HTTP status, 0 when the failure was found before or without one.
	StatusCode int
	Outcome    Outcome
	RetryAfter time.Duration // OutcomeRateLimited only
	// Reason names the cause, in the API's words when it gave any.
	Reason string
	// Err is the underlying error, if any: a sentinel such as ErrResponseTooLarge, ErrTimeout
	// or ErrMalformedResponse, or a transport error.
	Err error
}

func (e *APIError) Error() string {
	msg := e.head()
	if e.Outcome != OutcomeRateLimited && e.Err != nil && (e.Reason == "" || e.Reason != e.Err.Error()) {
		msg += ": " + e.Err.Error()
	}
	return msg
}

// PublicMessage is what the job's user is told (workers.PublicReason): the API, its status and
// its own words, and which of this package's failures it was, but not a transport error's text,
// which may name hosts and addresses of the worker's network.
func (e *APIError) PublicMessage() string {
	msg := e.head()
	for _, sentinel := range []error{ErrTimeout, ErrResponseTooLarge, ErrMalformedResponse, ErrInvalidInput} {
		if errors.Is(e.Err, sentinel) {
			return msg + ": " + sentinel.Error()
		}
	}
	if e.Err != nil && e.Reason == "" {
		msg += ": the request failed"
	}
	return msg
}

// head is the error's message without its underlying error.
func (e *APIError) head() string {
	if e.Outcome == OutcomeRateLimited {
		msg := fmt.Sprintf("%s: rate limited (HTTP 429), retry after %s", e.Source, e.RetryAfter)
		if e.Reason != "" {
			msg += ": " + e.Reason
		}
		return msg
	}
	msg := e.Source
	if e.StatusCode != 0 {
		msg += fmt.Sprintf(": HTTP %d", e.StatusCode)
	}
	msg += " (" + e.outcome().String() + ")"
	if e.Reason != "" {
		msg += ": " + e.Reason
	}
	return msg
}

var _ workers.PublicMessager = (*APIError)(nil)

func (e *APIError) Unwrap() error { return e.Err }

// outcome is the error's Outcome; any other value than the three an APIError may carry is
// retryable, as for an error this package does not know.
func (e *APIError) outcome() Outcome {
	switch e.Outcome {
	case OutcomeRateLimited, OutcomePermanent:
		return e.Outcome
	}
	return OutcomeRetryable
}

// Outcome is how the caller should go on after an error from this package.
type Outcome int

const (
	// OutcomeOK: no error.
	OutcomeOK Outcome = iota
	// OutcomeRetryable: retry after the usual backoff, counting the attempt.
	OutcomeRetryable
	// OutcomeRateLimited: retry after APIError.RetryAfter without counting the attempt.
	OutcomeRateLimited
	// OutcomePermanent: fail the job now.
	OutcomePermanent
	// OutcomeCanceled: the caller's own context ended (shutdown, job deadline); the caller
	// decides, this package made no judgement about the APIs.
	OutcomeCanceled
)

func (o Outcome) String() string {
	switch o {
	case OutcomeOK:
		return "ok"
	case OutcomeRetryable:
		return "retryable"
	case OutcomeRateLimited:
		return "rate-limited"
	case OutcomePermanent:
		return "permanent"
	case OutcomeCanceled:
		return "canceled"
	}
	return fmt.Sprintf("Outcome(%d)", int(o))
}

// OutcomeOf classifies any error. Errors it does not know are retryable: the attempts are
// bounded, and failing a job for good on an unforeseen error would be the worse mistake.
func OutcomeOf(err error) Outcome {
	var apiErr *APIError
	switch {
	case err == nil:
		return OutcomeOK
	case errors.As(err, &apiErr):
		return apiErr.outcome()
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return OutcomeCanceled
	}
	return OutcomeRetryable
}

// AsJobError turns err into what a processor returns to the worker runtime: a PermanentError
// or a RateLimitedError (with the API's Retry-After) by its outcome, any other error as it is
// (retried after the queue's backoff).
func AsJobError(err error) error {
	switch OutcomeOf(err) {
	case OutcomePermanent:
		return workers.Permanent(err)
	case OutcomeRateLimited:
		var limited *APIError
		errors.As(err, &limited)
		return workers.RateLimited(err, limited.RetryAfter)
	}
	return err
}
