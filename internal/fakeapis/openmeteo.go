// Package fakeapis holds loopback stand-ins for the outside APIs the workers call (Open-Meteo's
// archive and forecast, Calendarific), speaking their real formats. The enrichment tests use them,
// and so does `make dev FAKE_APIS=1`, so that jobs complete without internet.
package fakeapis

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// DailyVariables are the daily variables the Open-Meteo stand-in serves, which the enrichment
// processor asks for; a request for others is a 400, as a misspelt one is at the real API.
const DailyVariables = "temperature_2m_max,temperature_2m_min,precipitation_sum,weather_code"

// Day is one day of the Open-Meteo stand-in's fixture; nil fields are sent as null.
type Day struct {
	TempMax, TempMin, Precip *float64
	Code                     *int
}

// Request is what the Open-Meteo stand-in saw of one request.
type Request struct {
	API        string // "archive" or "forecast"
	Start, End string
}

// OpenMeteo speaks the Open-Meteo daily API on /v1/archive and /v1/forecast. Days come from
// Fixture; days not in it are nulls, or plausible values when Synthetic is set. Set the exported
// fields before requests arrive.
type OpenMeteo struct {
	Server    *httptest.Server
	Fixture   map[string]Day
	Synthetic bool
	// Respond, when set, answers instead of the fixture (errors, odd bodies).
	Respond http.HandlerFunc
	// Failures is how many requests get a 500 before the fixture answers.
	Failures atomic.Int32
	// RateLimits is how many requests get a 429 (Retry-After: 1) before the fixture answers.
	RateLimits atomic.Int32

	mu       sync.Mutex
	requests []Request
}

// NewOpenMeteo starts the stand-in on a loopback port; Close stops it.
func NewOpenMeteo(fixture map[string]Day) *OpenMeteo {
	f := &OpenMeteo{Fixture: fixture}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/archive", func(w http.ResponseWriter, r *http.Request) { f.serve(w, r, "archive") })
	mux.HandleFunc("GET /v1/forecast", func(w http.ResponseWriter, r *http.Request) { f.serve(w, r, "forecast") })
	f.Server = httptest.NewServer(mux)
	return f
}

// ArchiveURL and ForecastURL are what OPEN_METEO_ARCHIVE_URL and OPEN_METEO_FORECAST_URL take.
func (f *OpenMeteo) ArchiveURL() string  { return f.Server.URL + "/v1/archive" }
func (f *OpenMeteo) ForecastURL() string { return f.Server.URL + "/v1/forecast" }

// Close stops the stand-in.
func (f *OpenMeteo) Close() { f.Server.Close() }

// Seen returns the requests so far.
func (f *OpenMeteo) Seen() []Request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Request(nil), f.requests...)
}

func (f *OpenMeteo) serve(w http.ResponseWriter, r *http.Request, api string) {
	q := r.URL.Query()
	f.mu.Lock()
	f.requests = append(f.requests, Request{API: api, Start: q.Get("start_date"), End: q.Get("end_date")})
	f.mu.Unlock()
	if f.Respond != nil {
		f.Respond(w, r)
		return
	}
	if f.Failures.Add(-1) >= 0 {
		WriteOpenMeteoError(w, http.StatusInternalServerError, "upstream unavailable")
		return
	}
	if f.RateLimits.Add(-1) >= 0 {
		w.Header().Set("Retry-After", "1")
		WriteOpenMeteoError(w, http.StatusTooManyRequests, "Daily API request limit exceeded. Please try again tomorrow.")
		return
	}
	// The parameters the real API needs for this answer; a missing one is a 400 there too.
	if q.Get("daily") != DailyVariables || q.Get("timezone") != "auto" || q.Get("latitude") == "" || q.Get("longitude") == "" {
		WriteOpenMeteoError(w, http.StatusBadRequest, fmt.Sprintf("unexpected query %q", r.URL.RawQuery))
		return
	}
	start, err1 := time.Parse(time.DateOnly, q.Get("start_date"))
	end, err2 := time.Parse(time.DateOnly, q.Get("end_date"))
	if err1 != nil || err2 != nil || end.Before(start) {
		WriteOpenMeteoError(w, http.StatusBadRequest, "Parameter 'start_date' and 'end_date' must be valid dates")
		return
	}
	lat, _ := strconv.ParseFloat(q.Get("latitude"), 64)
	lon, _ := strconv.ParseFloat(q.Get("longitude"), 64)
	WriteJSON(w, http.StatusOK, map[string]any{
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
		"daily": f.daily(start, end),
	})
}

type daily struct {
	Time    []string   `json:"time"`
	TMax    []*float64 `json:"temperature_2m_max"`
	TMin    []*float64 `json:"temperature_2m_min"`
	Precip  []*float64 `json:"precipitation_sum"`
	WMOCode []*int     `json:"weather_code"`
}

func (f *OpenMeteo) daily(start, end time.Time) daily {
	var d daily
	for t := start; !t.After(end); t = t.AddDate(0, 0, 1) {
		s := t.Format(time.DateOnly)
		v, ok := f.Fixture[s]
		if !ok && f.Synthetic {
			n := float64(t.YearDay() % 10)
			v = Day{TempMax: ptr(20 + n), TempMin: ptr(10 + n), Precip: ptr(n / 10), Code: ptr(int(n))}
		}
		d.Time = append(d.Time, s)
		d.TMax = append(d.TMax, v.TempMax)
		d.TMin = append(d.TMin, v.TempMin)
		d.Precip = append(d.Precip, v.Precip)
		d.WMOCode = append(d.WMOCode, v.Code)
	}
	return d
}

func ptr[T any](v T) *T { return &v }

// WriteJSON writes v as the JSON body of a status answer.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// WriteOpenMeteoError writes Open-Meteo's error body.
func WriteOpenMeteoError(w http.ResponseWriter, status int, reason string) {
	WriteJSON(w, status, map[string]any{"error": true, "reason": reason})
}
