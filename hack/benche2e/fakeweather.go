package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"time"
)

// newFakeOpenMeteo answers Open-Meteo's archive and forecast endpoints at once (any path): the
// daily variables the enrichment processor asks for, one value per day of start_date..end_date.
func newFakeOpenMeteo() *httptest.Server {
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		from, err1 := time.Parse(time.DateOnly, r.URL.Query().Get("start_date"))
		to, err2 := time.Parse(time.DateOnly, r.URL.Query().Get("end_date"))
		if err1 != nil || err2 != nil || to.Before(from) || to.Sub(from) > 3660*24*time.Hour {
			w.WriteHeader(http.StatusBadRequest)
			_ = json.NewEncoder(w).Encode(map[string]any{"error": true, "reason": "bad start_date/end_date"})
			return
		}
		var days []string
		var tmax, tmin, precip, code []float64
		for d := from; !d.After(to); d = d.AddDate(0, 0, 1) {
			i := float64(len(days))
			days = append(days, d.Format(time.DateOnly))
			tmax = append(tmax, 20+float64(int(i)%5))
			tmin = append(tmin, 12+float64(int(i)%3))
			precip = append(precip, float64(int(i)%4)*0.5)
			code = append(code, float64([]int{0, 1, 3, 61}[int(i)%4]))
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{
			"latitude": 41.39, "longitude": 2.17, "timezone": "Europe/Madrid",
			"daily": map[string]any{"time": days, "temperature_2m_max": tmax, "temperature_2m_min": tmin,
				"precipitation_sum": precip, "weather_code": code},
		})
	}))
}
