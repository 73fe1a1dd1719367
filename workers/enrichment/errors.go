package enrichment

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Source names, used both in error messages and in Summary.Sources, so that a failed job's
// message and a finished job's summary speak of the same things.
const (
	SourceOpenMeteoArchive  = "open-meteo-archive"
	SourceOpenMeteoForecast = "open-meteo-forecast"
	SourceCalendarific      = "calendarific"
	// SourceOfflinePrefix is followed by the ISO 3166-1 alpha-2 code, e.g. "offline:ES".
	SourceOfflinePrefix = "offline:"
)

var (
	// ErrUnsupportedCountry says the offline holiday library has no national calendar for the
	// country. Enrich does not fail on it: it sets Summary.UnsupportedCountry and leaves the
	// holiday features empty.
	ErrUnsupportedCountry = errors.New("unsupported country")

	// ErrResponseTooLarge says a response body went past the configured limit. It comes
	// wrapped in a permanent APIError: the same request would get the same body again.
	ErrResponseTooLarge = errors.New("response body exceeds limit")

	// ErrTimeout says one request took longer than the configured timeout. It comes wrapped
	// in a retryable APIError.
	ErrTimeout = errors.New("request timed out")

	// ErrMalformedResponse says a 2xx body could not be understood (bad JSON, arrays of
	// different lengths). It comes wrapped in a retryable APIError: truncated or garbled bodies
	// from a proxy are usually transient, and the attempts are bounded anyway.
	ErrMalformedResponse = errors.New("malformed response")

	// ErrInvalidInput says the property itself is unusable (coordinates out of range), found
	// before any request. It comes wrapped in a permanent APIError.
	ErrInvalidInput = errors.New("invalid input")
)

// APIError is a failure of an outside API, or of the property's own data found before any
// request, with how the caller should go on (Outcome):
//   - OutcomeRetryable: a later attempt may not meet it (a timeout, a connection error, an
//     HTTP 5xx, a garbled body);
//   - OutcomeRateLimited: an HTTP 429; RetryAfter comes from the Retry-After header (seconds or
//     an HTTP date), or the configured default when the header is absent or unreadable;
//   - OutcomePermanent: no retry fixes it (bad coordinates, a rejected API key, a body over
//     the size limit).
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
	if e.Err != nil && (e.Reason == "" || e.Reason != e.Err.Error()) {
		msg += ": " + e.Err.Error()
	}
	return msg
}

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

// OutcomeOf classifies any error returned by this package. Errors it does not know are
// retryable: the attempts are bounded, and failing a job for good on an unforeseen error would
// be the worse mistake.
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
