package enrichment

import (
	"errors"

	"github.com/jengu/queue-operator/workers/outside"
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

	// The errors of outside API calls, shared with the other processors (workers/outside). A
	// body over the size limit is permanent here: the same request would get the same body.
	ErrResponseTooLarge  = outside.ErrResponseTooLarge
	ErrTimeout           = outside.ErrTimeout
	ErrMalformedResponse = outside.ErrMalformedResponse
	ErrInvalidInput      = outside.ErrInvalidInput
)

// APIError is a failure of an outside API, or of the property's own data found before any
// request, with how the caller should go on (see outside.APIError).
type APIError = outside.APIError

// Outcome is how the caller should go on after an error from this package.
type Outcome = outside.Outcome

const (
	OutcomeOK          = outside.OutcomeOK
	OutcomeRetryable   = outside.OutcomeRetryable
	OutcomeRateLimited = outside.OutcomeRateLimited
	OutcomePermanent   = outside.OutcomePermanent
	OutcomeCanceled    = outside.OutcomeCanceled
)

// OutcomeOf classifies any error returned by this package (outside.OutcomeOf).
func OutcomeOf(err error) Outcome { return outside.OutcomeOf(err) }
