package enrichment

import (
	"errors"
	"testing"
	"time"

	"github.com/jengu/queue-operator/internal/fakeapis"
)

// date is midnight UTC of a "2006-01-02" date; it panics on a typo, which only tests make.
func date(s string) time.Time {
	t, err := time.Parse(dateLayout, s)
	if err != nil {
		panic(err)
	}
	return t
}

func dates(ss ...string) []time.Time {
	out := make([]time.Time, len(ss))
	for i, s := range ss {
		out[i] = date(s)
	}
	return out
}

func ptr[T any](v T) *T { return &v }

// fixedClock is the clock the tests inject.
func fixedClock(s string) func() time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return func() time.Time { return t }
}

// The stand-ins of the outside APIs are fakeapis', which `make dev FAKE_APIS=1` runs too. These
// types are theirs, local so that the tests' literals may leave the field names out.
type (
	omDay      fakeapis.Day
	omRequest  fakeapis.Request
	calHoliday fakeapis.Holiday
	calRequest fakeapis.CalendarificRequest
)

// The outside APIs' error bodies.
var (
	writeJSON              = fakeapis.WriteJSON
	writeOpenMeteoError    = fakeapis.WriteOpenMeteoError
	writeCalendarificError = fakeapis.WriteCalendarificError
)

// fakeOpenMeteo is the Open-Meteo stand-in, stopped when the test ends.
type fakeOpenMeteo struct{ *fakeapis.OpenMeteo }

func newFakeOpenMeteo(t testing.TB, fixture map[string]omDay) *fakeOpenMeteo {
	days := make(map[string]fakeapis.Day, len(fixture))
	for d, v := range fixture {
		days[d] = fakeapis.Day(v)
	}
	f := fakeapis.NewOpenMeteo(days)
	t.Cleanup(f.Close)
	return &fakeOpenMeteo{f}
}

func (f *fakeOpenMeteo) seen() []omRequest {
	var out []omRequest
	for _, r := range f.Seen() {
		out = append(out, omRequest(r))
	}
	return out
}

func (f *fakeOpenMeteo) options() []Option {
	return []Option{WithArchiveURL(f.ArchiveURL()), WithForecastURL(f.ForecastURL())}
}

// fakeCalendarific is the Calendarific stand-in, stopped when the test ends.
type fakeCalendarific struct{ *fakeapis.Calendarific }

func newFakeCalendarific(t testing.TB, holidays map[int][]calHoliday) *fakeCalendarific {
	years := make(map[int][]fakeapis.Holiday, len(holidays))
	for y, list := range holidays {
		for _, h := range list {
			years[y] = append(years[y], fakeapis.Holiday(h))
		}
	}
	f := fakeapis.NewCalendarific(years)
	t.Cleanup(f.Close)
	return &fakeCalendarific{f}
}

func (f *fakeCalendarific) seen() []calRequest {
	var out []calRequest
	for _, r := range f.Seen() {
		out = append(out, calRequest(r))
	}
	return out
}

func (f *fakeCalendarific) options() []Option {
	return []Option{WithCalendarificURL(f.URL())}
}

// errorInfo is what the tests compare of an error: its outcome and the fields that matter.
type errorInfo struct {
	Outcome    Outcome
	Source     string
	Status     int
	RetryAfter time.Duration
	Reason     string
	TooLarge   bool
	Timeout    bool
	Malformed  bool
	Invalid    bool
}

func describe(err error) errorInfo {
	info := errorInfo{
		Outcome:   OutcomeOf(err),
		TooLarge:  errors.Is(err, ErrResponseTooLarge),
		Timeout:   errors.Is(err, ErrTimeout),
		Malformed: errors.Is(err, ErrMalformedResponse),
		Invalid:   errors.Is(err, ErrInvalidInput),
	}
	var apiErr *APIError
	if errors.As(err, &apiErr) {
		switch apiErr.Outcome {
		case OutcomeRateLimited:
			info.Source, info.RetryAfter, info.Reason = apiErr.Source, apiErr.RetryAfter, apiErr.Reason
		case OutcomePermanent:
			info.Source, info.Status, info.Reason = apiErr.Source, apiErr.StatusCode, apiErr.Reason
		default:
			info.Source, info.Status = apiErr.Source, apiErr.StatusCode
		}
	}
	return info
}
