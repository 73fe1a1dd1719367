package enrichment

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestOfflineHolidays(t *testing.T) {
	tests := []struct {
		country  string
		date     string
		wantName string // "" for not a holiday
	}{
		{"ES", "2024-12-25", "Navidad"},
		{"GB", "2024-12-25", "Christmas Day"},
		{"gb", "2024-12-26", "Boxing Day"}, // lower case is accepted
		{"UK", "2024-12-25", "Christmas Day"},
		{"DE", "2024-10-03", "Tag der Deutschen Einheit"},
		{"DE", "2024-10-04", ""},
		{"ES", "2024-12-24", ""},
		{"US", "2024-07-04", "Independence Day"},
		// 2021-07-04 is a Sunday: observed on Monday the 5th.
		{"US", "2021-07-05", "Independence Day (observed)"},
		// Easter Monday 2024 is 1 April (Easter Sunday 31 March).
		{"GB", "2024-04-01", "Easter Monday"},
		{"FR", "2024-07-14", "Fête Nationale"},
		{"AU", "2024-01-26", "Australia Day"},
		{"AU", "2024-04-25", "ANZAC Day"},
		// The Swedish eves are "other" in the library: not days off.
		{"SE", "2024-12-24", ""},
		{"SE", "2024-12-25", "Juldagen"},
	}
	for _, tt := range tests {
		t.Run(tt.country+" "+tt.date, func(t *testing.T) {
			d := date(tt.date)
			hs, err := OfflineHolidays(tt.country, d.Year())
			if err != nil {
				t.Fatal(err)
			}
			got, _ := NewHolidayCalendar(hs).On(d)
			if got != tt.wantName {
				t.Errorf("holiday on %s in %s = %q, want %q", tt.date, tt.country, got, tt.wantName)
			}
		})
	}
}

func TestOfflineHolidaysEveryCountryHasSome(t *testing.T) {
	countries := OfflineCountries()
	if len(countries) < 30 {
		t.Errorf("%d offline countries, want at least 30: %v", len(countries), countries)
	}
	for _, c := range countries {
		hs, err := OfflineHolidays(c, 2024)
		if err != nil {
			t.Errorf("%s: %v", c, err)
			continue
		}
		if len(hs) < 5 {
			t.Errorf("%s: %d holidays in 2024, want at least 5: %v", c, len(hs), hs)
		}
		for _, h := range hs {
			if h.Date.Location() != time.UTC || h.Date.Hour() != 0 {
				t.Errorf("%s: %s: date %s is not midnight UTC", c, h.Name, h.Date)
			}
		}
	}
}

func TestOfflineHolidaysUnsupportedCountry(t *testing.T) {
	for _, c := range []string{"XX", "CN", "", "ESP"} {
		_, err := OfflineHolidays(c, 2024)
		if !errors.Is(err, ErrUnsupportedCountry) {
			t.Errorf("OfflineHolidays(%q) error = %v, want ErrUnsupportedCountry", c, err)
		}
	}
}

func TestHolidayCalendar(t *testing.T) {
	cal := NewHolidayCalendar([]Holiday{
		{Date: date("2025-01-01"), Name: "New Year's Day"},
		{Date: date("2024-12-25"), Name: "Christmas Day"},
		{Date: date("2024-12-26"), Name: "Boxing Day"},
		{Date: date("2024-12-26"), Name: "Christmas Day (observed)"},
		{Date: date("2024-12-26"), Name: "Boxing Day"}, // the same holiday twice: once
	})
	tests := []struct {
		date     string
		wantName string
		wantNext *int
	}{
		{"2024-12-20", "", ptr(5)},
		{"2024-12-25", "Christmas Day", ptr(0)},
		{"2024-12-26", "Boxing Day, Christmas Day (observed)", ptr(0)},
		{"2024-12-27", "", ptr(5)}, // across the year end
		{"2024-12-31", "", ptr(1)},
		{"2025-01-01", "New Year's Day", ptr(0)},
		{"2025-01-02", "", nil}, // nothing known after
	}
	for _, tt := range tests {
		name, ok := cal.On(date(tt.date))
		if name != tt.wantName || ok != (tt.wantName != "") {
			t.Errorf("On(%s) = %q, %v; want %q", tt.date, name, ok, tt.wantName)
		}
		if diff := cmp.Diff(tt.wantNext, cal.DaysToNext(date(tt.date))); diff != "" {
			t.Errorf("DaysToNext(%s) (-want +got):\n%s", tt.date, diff)
		}
	}
	if cal.Len() != 3 {
		t.Errorf("Len = %d, want 3", cal.Len())
	}
}

func TestCalendarificHolidays(t *testing.T) {
	fake := newFakeCalendarific(t, map[int][]calHoliday{
		2024: {
			{"New Year's Day", "2024-01-01", []string{"National holiday"}},
			{"March Equinox", "2024-03-20T04:06:21+01:00", []string{"Season"}},
			{"Epiphany", "2024-01-06", []string{"Common local holiday"}},
			{"Christmas Eve", "2024-12-24", []string{"Observance", "Christian"}},
			{"Christmas Day", "2024-12-25", []string{"National holiday", "Christian"}},
			// Calendarific lists a holiday once per group of states; keep one.
			{"Columbus Day", "2024-10-14", []string{"National holiday"}},
			{"Columbus Day", "2024-10-14", []string{"National holiday"}},
			// A national holiday with a time in its date.
			{"Fête Nationale", "2024-07-14T00:00:00+02:00", []string{"national holiday"}},
		},
	})
	c := NewCalendarificClient(fake.options()...)
	got, err := c.Holidays(context.Background(), "secret-key", "ES", 2024)
	if err != nil {
		t.Fatal(err)
	}
	want := []Holiday{
		{Date: date("2024-01-01"), Name: "New Year's Day"},
		{Date: date("2024-07-14"), Name: "Fête Nationale"},
		{Date: date("2024-10-14"), Name: "Columbus Day"},
		{Date: date("2024-12-25"), Name: "Christmas Day"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("holidays (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]calRequest{{"secret-key", "ES", 2024}}, fake.seen()); diff != "" {
		t.Errorf("requests (-want +got):\n%s", diff)
	}

	// Other types on request.
	c = NewCalendarificClient(append(fake.options(), WithCalendarificTypes("National holiday", "Observance"))...)
	got, err = c.Holidays(context.Background(), "secret-key", "ES", 2024)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 5 || got[4].Name != "Christmas Day" || got[3].Name != "Christmas Eve" {
		t.Errorf("with Observance: %v", got)
	}
}

func TestCalendarificEmptyResponseArray(t *testing.T) {
	fake := newFakeCalendarific(t, nil)
	fake.Respond = func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"meta": map[string]int{"code": 200}, "response": []any{}})
	}
	got, err := NewCalendarificClient(fake.options()...).Holidays(context.Background(), "k", "AQ", 2024)
	if err != nil || len(got) != 0 {
		t.Errorf("Holidays = %v, %v; want none, no error", got, err)
	}
}

func TestCalendarificErrors(t *testing.T) {
	const key = "very-secret-key"
	tests := []struct {
		name    string
		respond http.HandlerFunc
		want    errorInfo
		wantMsg string
	}{
		{
			name: "401 is permanent",
			respond: func(w http.ResponseWriter, r *http.Request) {
				writeCalendarificError(w, http.StatusUnauthorized, "auth failed", "Missing or invalid api credentials. See https://calendarific.com/api-documentation for details.")
			},
			want: errorInfo{Outcome: OutcomePermanent, Source: SourceCalendarific, Status: 401,
				Reason: "auth failed: Missing or invalid api credentials. See https://calendarific.com/api-documentation for details."},
			wantMsg: "calendarific: HTTP 401 (permanent): auth failed",
		},
		{
			name: "403 is permanent",
			respond: func(w http.ResponseWriter, r *http.Request) {
				writeCalendarificError(w, http.StatusForbidden, "forbidden", "Account suspended.")
			},
			want: errorInfo{Outcome: OutcomePermanent, Source: SourceCalendarific, Status: 403, Reason: "forbidden: Account suspended."},
		},
		{
			name: "an error in meta under HTTP 200 counts",
			respond: func(w http.ResponseWriter, r *http.Request) {
				writeJSON(w, http.StatusOK, map[string]any{
					"meta":     map[string]any{"code": 401, "error_type": "auth failed", "error_detail": "Invalid key."},
					"response": []any{},
				})
			},
			want: errorInfo{Outcome: OutcomePermanent, Source: SourceCalendarific, Status: 401, Reason: "auth failed: Invalid key."},
		},
		{
			name: "426 plan limit is permanent",
			respond: func(w http.ResponseWriter, r *http.Request) {
				writeCalendarificError(w, http.StatusUpgradeRequired, "upgrade required", "This feature is not available on your plan.")
			},
			want: errorInfo{Outcome: OutcomePermanent, Source: SourceCalendarific, Status: 426,
				Reason: "upgrade required: This feature is not available on your plan."},
		},
		{
			name: "429 is rate limited",
			respond: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Retry-After", "3600")
				writeCalendarificError(w, http.StatusTooManyRequests, "too many requests", "You have exceeded your monthly API limit.")
			},
			want: errorInfo{Outcome: OutcomeRateLimited, Source: SourceCalendarific, RetryAfter: time.Hour,
				Reason: "too many requests: You have exceeded your monthly API limit."},
		},
		{
			name: "503 is retryable",
			respond: func(w http.ResponseWriter, r *http.Request) {
				writeCalendarificError(w, http.StatusServiceUnavailable, "service unavailable", "Try again later.")
			},
			want: errorInfo{Outcome: OutcomeRetryable, Source: SourceCalendarific, Status: 503},
		},
		{
			name: "timeout is retryable",
			respond: func(w http.ResponseWriter, r *http.Request) {
				select {
				case <-r.Context().Done():
				case <-time.After(5 * time.Second):
				}
			},
			want: errorInfo{Outcome: OutcomeRetryable, Source: SourceCalendarific, Timeout: true},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := newFakeCalendarific(t, nil)
			fake.Respond = tt.respond
			c := NewCalendarificClient(append(fake.options(), WithTimeout(50*time.Millisecond))...)
			_, err := c.Holidays(context.Background(), key, "ES", 2024)
			if err == nil {
				t.Fatal("no error")
			}
			if diff := cmp.Diff(tt.want, describe(err)); diff != "" {
				t.Errorf("error %q (-want +got):\n%s", err, diff)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("error %q does not contain %q", err, tt.wantMsg)
			}
			if strings.Contains(fmt.Sprintf("%v %+v", err, err), key) {
				t.Errorf("error %q reveals the API key", err)
			}
		})
	}
}

func TestCalendarificConnectionErrorHidesTheKey(t *testing.T) {
	fake := newFakeCalendarific(t, nil)
	fake.Server.Close() // nothing listens any more: a connection error carrying the URL
	_, err := NewCalendarificClient(fake.options()...).Holidays(context.Background(), "very-secret-key", "ES", 2024)
	if got := OutcomeOf(err); got != OutcomeRetryable {
		t.Errorf("OutcomeOf(%v) = %v, want retryable", err, got)
	}
	if strings.Contains(err.Error(), "very-secret-key") {
		t.Errorf("error %q reveals the API key", err)
	}
	if !strings.Contains(err.Error(), "api_key=REDACTED") {
		t.Errorf("error %q: want the redacted URL", err)
	}
}
