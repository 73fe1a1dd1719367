package enrichment

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
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

// omDay is one day of the fake Open-Meteo's fixture; nil fields are sent as null.
type omDay struct {
	TempMax, TempMin, Precip *float64
	Code                     *int
}

// omRequest is what the fake saw of one request.
type omRequest struct {
	API        string // "archive" or "forecast"
	Start, End string
}

// fakeOpenMeteo speaks the Open-Meteo daily API on /v1/archive and /v1/forecast. Days come
// from fixture; days not in it are nulls, or synthetic values when synthetic is set.
type fakeOpenMeteo struct {
	t         testing.TB
	srv       *httptest.Server
	fixture   map[string]omDay
	synthetic bool
	// respond, when set, answers instead of the fixture (errors, odd bodies).
	respond http.HandlerFunc
	// failures is how many requests get a 500 before the fixture answers.
	failures atomic.Int32
	// rateLimits is how many requests get a 429 (Retry-After: 1) before the fixture answers.
	rateLimits atomic.Int32

	mu       sync.Mutex
	requests []omRequest
}

func newFakeOpenMeteo(t testing.TB, fixture map[string]omDay) *fakeOpenMeteo {
	f := &fakeOpenMeteo{t: t, fixture: fixture}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/archive", func(w http.ResponseWriter, r *http.Request) { f.serve(w, r, "archive") })
	mux.HandleFunc("GET /v1/forecast", func(w http.ResponseWriter, r *http.Request) { f.serve(w, r, "forecast") })
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeOpenMeteo) options() []Option {
	return []Option{WithArchiveURL(f.srv.URL + "/v1/archive"), WithForecastURL(f.srv.URL + "/v1/forecast")}
}

func (f *fakeOpenMeteo) seen() []omRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]omRequest(nil), f.requests...)
}

func (f *fakeOpenMeteo) serve(w http.ResponseWriter, r *http.Request, api string) {
	q := r.URL.Query()
	f.mu.Lock()
	f.requests = append(f.requests, omRequest{API: api, Start: q.Get("start_date"), End: q.Get("end_date")})
	f.mu.Unlock()
	if f.respond != nil {
		f.respond(w, r)
		return
	}
	if f.failures.Add(-1) >= 0 {
		writeOpenMeteoError(w, http.StatusInternalServerError, "upstream unavailable")
		return
	}
	if f.rateLimits.Add(-1) >= 0 {
		w.Header().Set("Retry-After", "1")
		writeOpenMeteoError(w, http.StatusTooManyRequests, "Daily API request limit exceeded. Please try again tomorrow.")
		return
	}
	// The parameters the real API needs for this answer; a missing one is a 400 there too.
	if q.Get("daily") != dailyVariables || q.Get("timezone") != "auto" || q.Get("latitude") == "" || q.Get("longitude") == "" {
		writeOpenMeteoError(w, http.StatusBadRequest, fmt.Sprintf("unexpected query %q", r.URL.RawQuery))
		return
	}
	start, err1 := time.Parse(dateLayout, q.Get("start_date"))
	end, err2 := time.Parse(dateLayout, q.Get("end_date"))
	if err1 != nil || err2 != nil || end.Before(start) {
		writeOpenMeteoError(w, http.StatusBadRequest, "Parameter 'start_date' and 'end_date' must be valid dates")
		return
	}
	type daily struct {
		Time    []string   `json:"time"`
		TMax    []*float64 `json:"temperature_2m_max"`
		TMin    []*float64 `json:"temperature_2m_min"`
		Precip  []*float64 `json:"precipitation_sum"`
		WMOCode []*int     `json:"weather_code"`
	}
	var d daily
	for t := start; !t.After(end); t = t.AddDate(0, 0, 1) {
		s := t.Format(dateLayout)
		v, ok := f.fixture[s]
		if !ok && f.synthetic {
			n := float64(t.YearDay() % 10)
			v = omDay{TempMax: ptr(20 + n), TempMin: ptr(10 + n), Precip: ptr(n / 10), Code: ptr(int(n))}
		}
		d.Time = append(d.Time, s)
		d.TMax = append(d.TMax, v.TempMax)
		d.TMin = append(d.TMin, v.TempMin)
		d.Precip = append(d.Precip, v.Precip)
		d.WMOCode = append(d.WMOCode, v.Code)
	}
	lat, _ := strconv.ParseFloat(q.Get("latitude"), 64)
	lon, _ := strconv.ParseFloat(q.Get("longitude"), 64)
	writeJSON(w, http.StatusOK, map[string]any{
		"latitude":              lat,
		"longitude":             lon,
		"generationtime_ms":     0.1,
		"utc_offset_seconds":    3600,
		"timezone":              "Europe/Madrid",
		"timezone_abbreviation": "GMT+1",
		"elevation":             667.0,
		"daily_units": map[string]string{
			"time": "iso8601", "temperature_2m_max": "°C", "temperature_2m_min": "°C",
			"precipitation_sum": "mm", "weather_code": "wmo code",
		},
		"daily": d,
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// writeOpenMeteoError writes Open-Meteo's error body.
func writeOpenMeteoError(w http.ResponseWriter, status int, reason string) {
	writeJSON(w, status, map[string]any{"error": true, "reason": reason})
}

// calHoliday is one entry of the fake Calendarific's fixture.
type calHoliday struct {
	Name  string
	ISO   string
	Types []string
}

type calRequest struct {
	Key, Country string
	Year         int
}

// fakeCalendarific speaks Calendarific's /api/v2/holidays. holidays[year] is what any country
// gets for that year.
type fakeCalendarific struct {
	srv      *httptest.Server
	holidays map[int][]calHoliday
	respond  http.HandlerFunc

	mu       sync.Mutex
	requests []calRequest
}

func newFakeCalendarific(t testing.TB, holidays map[int][]calHoliday) *fakeCalendarific {
	f := &fakeCalendarific{holidays: holidays}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v2/holidays", f.serve)
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeCalendarific) options() []Option {
	return []Option{WithCalendarificURL(f.srv.URL + "/api/v2/holidays")}
}

func (f *fakeCalendarific) seen() []calRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]calRequest(nil), f.requests...)
}

func (f *fakeCalendarific) serve(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	year, _ := strconv.Atoi(q.Get("year"))
	f.mu.Lock()
	f.requests = append(f.requests, calRequest{Key: q.Get("api_key"), Country: q.Get("country"), Year: year})
	f.mu.Unlock()
	if f.respond != nil {
		f.respond(w, r)
		return
	}

	if q.Get("api_key") == "" {
		writeCalendarificError(w, http.StatusUnauthorized, "auth failed", "Missing or invalid api credentials.")
		return
	}
	var list []map[string]any
	for _, h := range f.holidays[year] {
		t, _ := time.Parse(dateLayout, h.ISO[:10])
		list = append(list, map[string]any{
			"name":        h.Name,
			"description": h.Name + " is a holiday.",
			"country":     map[string]string{"id": q.Get("country"), "name": "Somewhere"},
			"date": map[string]any{
				"iso":      h.ISO,
				"datetime": map[string]int{"year": t.Year(), "month": int(t.Month()), "day": t.Day()},
			},
			"type":          h.Types,
			"primary_type":  h.Types[0],
			"canonical_url": "https://calendarific.com/holiday/x",
			"urlid":         "x",
			"locations":     "All",
			"states":        "All",
		})
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"meta":     map[string]int{"code": 200},
		"response": map[string]any{"holidays": list},
	})
}

// writeCalendarificError writes Calendarific's error body: meta with the code, and an empty
// array as "response".
func writeCalendarificError(w http.ResponseWriter, status int, errType, detail string) {
	writeJSON(w, status, map[string]any{
		"meta":     map[string]any{"code": status, "error_type": errType, "error_detail": detail},
		"response": []any{},
	})
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
