package enrichment

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jengu/queue-operator/workers/outside"
)

// Holiday is one public holiday of a country.
type Holiday struct {
	Date time.Time // midnight UTC of the calendar day
	Name string
}

// CalendarificClient fetches national holidays from the Calendarific API.
type CalendarificClient struct {
	o options
}

// NewCalendarificClient builds a client; see the Option functions for the defaults.
func NewCalendarificClient(opts ...Option) *CalendarificClient {
	return &CalendarificClient{o: newOptions(opts)}
}

// calendarificResponse is the envelope of every Calendarific answer. "response" is an object
// on success but an empty array on errors, hence RawMessage.
type calendarificResponse struct {
	Meta struct {
		Code        int    `json:"code"`
		ErrorType   string `json:"error_type"`
		ErrorDetail string `json:"error_detail"`
	} `json:"meta"`
	Response json.RawMessage `json:"response"`
}

type calendarificHolidays struct {
	Holidays []struct {
		Name string `json:"name"`
		Date struct {
			// "2024-12-25", or with a time for the few entries that have one
			// ("2024-03-20T03:06:21-04:00" for an equinox); the first 10 characters
			// are the local date either way.
			ISO string `json:"iso"`
		} `json:"date"`
		Type []string `json:"type"`
	} `json:"holidays"`
}

// Holidays returns the national holidays of country (ISO 3166-1 alpha-2) in year, one
// request. Only holidays with one of the configured types are kept (DefaultCalendarificTypes:
// "National holiday"); a holiday listed several times (once per group of states) comes once.
//
// The api_key is a query parameter, as Calendarific wants it: errors never carry the URL
// with it.
func (c *CalendarificClient) Holidays(ctx context.Context, apiKey, country string, year int) ([]Holiday, error) {
	if apiKey == "" {
		return nil, &APIError{Outcome: OutcomePermanent, Source: SourceCalendarific, Reason: "no API key configured", Err: ErrInvalidInput}
	}
	u, err := url.Parse(c.o.calendarificURL)
	if err != nil {
		return nil, &APIError{Outcome: OutcomePermanent, Source: SourceCalendarific, Reason: "invalid base URL", Err: err}
	}
	q := u.Query()
	q.Set("api_key", apiKey)
	q.Set("country", country)
	q.Set("year", strconv.Itoa(year))
	u.RawQuery = q.Encode()

	resp, err := c.o.get(ctx, SourceCalendarific, u.String())
	if err != nil {
		return nil, fmt.Errorf("holidays %s %d: %w", country, year, err)
	}

	var env calendarificResponse
	envErr := json.Unmarshal(resp.Body, &env)
	if err := c.statusError(resp, env, envErr); err != nil {
		return nil, fmt.Errorf("holidays %s %d: %w", country, year, err)
	}
	if envErr != nil {
		return nil, &APIError{Outcome: OutcomeRetryable, Source: SourceCalendarific, StatusCode: resp.Status, Err: fmt.Errorf("%w: %w", ErrMalformedResponse, envErr)}
	}

	var body calendarificHolidays
	// An empty array where the object should be: no holidays (an unknown country answers
	// like that); anything else must be the object.
	if raw := strings.TrimSpace(string(env.Response)); raw != "" && raw != "[]" && raw != "null" {
		if err := json.Unmarshal(env.Response, &body); err != nil {
			return nil, &APIError{Outcome: OutcomeRetryable, Source: SourceCalendarific, StatusCode: resp.Status, Err: fmt.Errorf("%w: %w", ErrMalformedResponse, err)}
		}
	}

	type key struct {
		d    day
		name string
	}
	seen := make(map[key]bool)
	var out []Holiday
	for _, h := range body.Holidays {
		if !c.keepType(h.Type) {
			continue
		}
		iso := h.Date.ISO
		if len(iso) < len(dateLayout) {
			return nil, &APIError{Outcome: OutcomeRetryable, Source: SourceCalendarific, StatusCode: resp.Status, Err: fmt.Errorf("%w: holiday %q has date %q", ErrMalformedResponse, h.Name, iso)}
		}
		d, err := parseDay(iso[:len(dateLayout)])
		if err != nil {
			return nil, &APIError{Outcome: OutcomeRetryable, Source: SourceCalendarific, StatusCode: resp.Status, Err: fmt.Errorf("%w: holiday %q: %w", ErrMalformedResponse, h.Name, err)}
		}
		k := key{d, h.Name}
		if seen[k] {
			continue
		}
		seen[k] = true
		out = append(out, Holiday{Date: d.Time(), Name: h.Name})
	}
	sortHolidays(out)
	return out, nil
}

func (c *CalendarificClient) keepType(types []string) bool {
	for _, t := range types {
		for _, want := range c.o.calendarificTypes {
			if strings.EqualFold(strings.TrimSpace(t), want) {
				return true
			}
		}
	}
	return false
}

// statusError maps a Calendarific answer to the package's outcomes. The code is the HTTP
// status, or meta.code when the HTTP status is a 2xx but meta says otherwise (older
// Calendarific answered errors with HTTP 200).
func (c *CalendarificClient) statusError(resp *outside.Response, env calendarificResponse, envErr error) error {
	code := resp.Status
	if code >= 200 && code < 300 && envErr == nil && env.Meta.Code != 0 && env.Meta.Code != http.StatusOK {
		code = env.Meta.Code
	}
	if code >= 200 && code < 300 {
		return nil
	}
	reason := strings.TrimSpace(strings.Join(nonEmpty(env.Meta.ErrorType, env.Meta.ErrorDetail), ": "))
	if reason == "" {
		reason = http.StatusText(code)
	}
	switch {
	case code == http.StatusTooManyRequests:
		return &APIError{Outcome: OutcomeRateLimited, Source: SourceCalendarific, StatusCode: http.StatusTooManyRequests, RetryAfter: c.o.retryAfter(resp.Header), Reason: reason}
	case code >= 500:
		return &APIError{Outcome: OutcomeRetryable, Source: SourceCalendarific, StatusCode: code, Reason: reason}
	default:
		// 401/403: the key is wrong or revoked; 400: bad parameters; 426: the plan does
		// not cover the request. None is fixed by waiting.
		return &APIError{Outcome: OutcomePermanent, Source: SourceCalendarific, StatusCode: code, Reason: reason}
	}
}

func nonEmpty(ss ...string) []string {
	out := ss[:0:0]
	for _, s := range ss {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

func sortHolidays(hs []Holiday) {
	slices.SortStableFunc(hs, func(a, b Holiday) int {
		if c := a.Date.Compare(b.Date); c != 0 {
			return c
		}
		return strings.Compare(a.Name, b.Name)
	})
}

// HolidayCalendar answers the holiday features of a day from a list of holidays.
type HolidayCalendar struct {
	days  []day    // sorted, unique
	names []string // names[i] are the holidays on days[i], joined with ", "
}

// NewHolidayCalendar indexes holidays. Several holidays on one day (a saint's day on a
// Sunday's substitute Monday) give one entry with the names joined by ", ".
func NewHolidayCalendar(holidays []Holiday) *HolidayCalendar {
	hs := slices.Clone(holidays)
	sortHolidays(hs)
	cal := &HolidayCalendar{}
	for _, h := range hs {
		d := dayOf(h.Date)
		if n := len(cal.days); n > 0 && cal.days[n-1] == d {
			if !slices.Contains(strings.Split(cal.names[n-1], ", "), h.Name) {
				cal.names[n-1] += ", " + h.Name
			}
			continue
		}
		cal.days = append(cal.days, d)
		cal.names = append(cal.names, h.Name)
	}
	return cal
}

// Len is the number of distinct holiday days.
func (c *HolidayCalendar) Len() int { return len(c.days) }

// On reports whether date is a holiday, and its name.
func (c *HolidayCalendar) On(date time.Time) (name string, ok bool) {
	return c.on(dayOf(date))
}

func (c *HolidayCalendar) on(d day) (string, bool) {
	i, found := slices.BinarySearch(c.days, d)
	if !found {
		return "", false
	}
	return c.names[i], true
}

// DaysToNext is the number of days from date to the next holiday, 0 on a holiday, nil when
// the calendar knows no holiday on or after date. nil rather than -1: a sentinel number would
// poison an average or a model feature; a NULL is unmistakable.
func (c *HolidayCalendar) DaysToNext(date time.Time) *int {
	return c.daysToNext(dayOf(date))
}

func (c *HolidayCalendar) daysToNext(d day) *int {
	i, _ := slices.BinarySearch(c.days, d)
	if i == len(c.days) {
		return nil
	}
	n := int(c.days[i] - d)
	return &n
}
