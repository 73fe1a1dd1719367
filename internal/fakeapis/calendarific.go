package fakeapis

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"time"
)

// Holiday is one entry of the Calendarific stand-in's fixture.
type Holiday struct {
	Name  string
	ISO   string
	Types []string
}

// CalendarificRequest is what the Calendarific stand-in saw of one request.
type CalendarificRequest struct {
	Key, Country string
	Year         int
}

// Calendarific speaks Calendarific's /api/v2/holidays. Holidays[year] is what any country gets
// for that year; a year not in it gets New Year's Day, Labour Day and Christmas Day when
// Synthetic is set. Set the exported fields before requests arrive.
type Calendarific struct {
	Server    *httptest.Server
	Holidays  map[int][]Holiday
	Synthetic bool
	// Respond, when set, answers instead of the fixture.
	Respond http.HandlerFunc

	mu       sync.Mutex
	requests []CalendarificRequest
}

// NewCalendarific starts the stand-in on a loopback port; Close stops it.
func NewCalendarific(holidays map[int][]Holiday) *Calendarific {
	f := &Calendarific{Holidays: holidays}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v2/holidays", f.serve)
	f.Server = httptest.NewServer(mux)
	return f
}

// URL is what CALENDARIFIC_URL takes.
func (f *Calendarific) URL() string { return f.Server.URL + "/api/v2/holidays" }

// Close stops the stand-in.
func (f *Calendarific) Close() { f.Server.Close() }

// Seen returns the requests so far.
func (f *Calendarific) Seen() []CalendarificRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]CalendarificRequest(nil), f.requests...)
}

func (f *Calendarific) serve(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	year, _ := strconv.Atoi(q.Get("year"))
	f.mu.Lock()
	f.requests = append(f.requests, CalendarificRequest{Key: q.Get("api_key"), Country: q.Get("country"), Year: year})
	f.mu.Unlock()
	if f.Respond != nil {
		f.Respond(w, r)
		return
	}
	if q.Get("api_key") == "" {
		WriteCalendarificError(w, http.StatusUnauthorized, "auth failed", "Missing or invalid api credentials.")
		return
	}
	var list []map[string]any
	for _, h := range f.holidaysOf(year) {
		t, _ := time.Parse(time.DateOnly, h.ISO[:10])
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
	WriteJSON(w, http.StatusOK, map[string]any{
		"meta":     map[string]int{"code": 200},
		"response": map[string]any{"holidays": list},
	})
}

func (f *Calendarific) holidaysOf(year int) []Holiday {
	if h, ok := f.Holidays[year]; ok || !f.Synthetic {
		return h
	}
	national := []string{"National holiday"}
	return []Holiday{
		{Name: "New Year's Day", ISO: fmt.Sprintf("%d-01-01", year), Types: national},
		{Name: "Labour Day", ISO: fmt.Sprintf("%d-05-01", year), Types: national},
		{Name: "Christmas Day", ISO: fmt.Sprintf("%d-12-25", year), Types: national},
	}
}

// WriteCalendarificError writes Calendarific's error body: meta with the code, and an empty
// array as "response".
func WriteCalendarificError(w http.ResponseWriter, status int, errType, detail string) {
	WriteJSON(w, status, map[string]any{
		"meta":     map[string]any{"code": status, "error_type": errType, "error_detail": detail},
		"response": []any{},
	})
}
