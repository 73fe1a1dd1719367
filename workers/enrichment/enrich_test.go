package enrichment

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// weatherFixture serves every case of TestEnrich.
var weatherFixture = map[string]omDay{
	"2024-12-24": {TempMax: ptr(13.1), TempMin: ptr(3.2), Precip: ptr(0.0), Code: ptr(1)},
	"2024-12-25": {TempMax: ptr(11.0), TempMin: ptr(1.5), Precip: ptr(2.3), Code: ptr(61)},
	"2024-12-26": {TempMax: ptr(9.4), TempMin: nil, Precip: ptr(0.1), Code: ptr(3)},
	"2024-12-27": {TempMax: ptr(8.8), TempMin: ptr(0.4), Precip: ptr(0.0), Code: ptr(0)},
	"2024-12-31": {TempMax: ptr(7.0), TempMin: ptr(-2.0), Precip: ptr(0.0), Code: ptr(0)},
	"2024-01-26": {TempMax: ptr(27.9), TempMin: ptr(19.6), Precip: ptr(0.0), Code: ptr(2)},
}

func wx(day, source string) DailyWeather {
	v := weatherFixture[day]
	return DailyWeather{TempMaxC: v.TempMax, TempMinC: v.TempMin, PrecipitationMM: v.Precip, WeatherCode: v.Code, Source: source}
}

func TestEnrich(t *testing.T) {
	const sydneyLat, sydneyLon = -33.87, 151.21
	winter := func(dow, iso, isoYear int) Temporal {
		return Temporal{DayOfWeek: dow, IsWeekend: dow >= 6, Month: 12, Quarter: 4, ISOWeek: iso, ISOYear: isoYear, Season: Winter}
	}
	calendarificHolidays := map[int][]calHoliday{
		2024: {
			{"Christmas Day", "2024-12-25", []string{"National holiday", "Christian"}},
			{"Boxing Day", "2024-12-26", []string{"National holiday"}},
			{"New Year's Eve", "2024-12-31", []string{"Observance"}},
		},
		2025: {{"New Year's Day", "2025-01-01", []string{"National holiday"}}},
	}

	tests := []struct {
		name     string
		property Property
		dates    []time.Time
		now      string
		// respond, when set, replaces the fake Calendarific's answers.
		calRespond http.HandlerFunc

		wantRows     []FeatureRow
		wantSummary  Summary
		wantWeather  []omRequest
		wantCalendar []calRequest
		wantStages   []Stage
		wantErr      *errorInfo
	}{
		{
			name:     "offline ES, past dates with a gap, across the year end",
			property: Property{Latitude: madridLat, Longitude: madridLon, CountryCode: "es"},
			dates:    dates("2024-12-31", "2024-12-24", "2024-12-25", "2024-12-26", "2024-12-25"),
			now:      "2025-03-01T08:00:00Z",
			wantRows: []FeatureRow{
				{Date: date("2024-12-24"), DailyWeather: wx("2024-12-24", SourceOpenMeteoArchive), Temporal: winter(2, 52, 2024), DaysToNextHoliday: ptr(1)},
				{Date: date("2024-12-25"), DailyWeather: wx("2024-12-25", SourceOpenMeteoArchive), Temporal: winter(3, 52, 2024), IsHoliday: true, HolidayName: "Navidad", DaysToNextHoliday: ptr(0)},
				// 26 December is no national holiday in Spain; next is Año Nuevo.
				{Date: date("2024-12-26"), DailyWeather: wx("2024-12-26", SourceOpenMeteoArchive), Temporal: winter(4, 52, 2024), DaysToNextHoliday: ptr(6)},
				// ISO week 1 of 2025; the next holiday is in the following year.
				{Date: date("2024-12-31"), DailyWeather: wx("2024-12-31", SourceOpenMeteoArchive), Temporal: winter(2, 1, 2025), DaysToNextHoliday: ptr(1)},
			},
			wantSummary: Summary{
				Rows: 4, From: date("2024-12-24"), To: date("2024-12-31"), Country: "ES",
				Sources:        []string{SourceOpenMeteoArchive, SourceOfflinePrefix + "ES"},
				WeatherHorizon: date("2025-03-15"), Timezone: "Europe/Madrid", WeatherRequests: 2,
			},
			wantWeather: []omRequest{{"archive", "2024-12-24", "2024-12-26"}, {"archive", "2024-12-31", "2024-12-31"}},
			wantStages:  []Stage{StageWeather, StageHolidays, StageFeatures},
		},
		{
			name:     "offline AU, southern summer",
			property: Property{Latitude: sydneyLat, Longitude: sydneyLon, CountryCode: "AU"},
			dates:    dates("2024-01-26"),
			now:      "2025-03-01T08:00:00Z",
			wantRows: []FeatureRow{{
				Date: date("2024-01-26"), DailyWeather: wx("2024-01-26", SourceOpenMeteoArchive),
				Temporal:  Temporal{DayOfWeek: 5, Month: 1, Quarter: 1, ISOWeek: 4, ISOYear: 2024, Season: Summer},
				IsHoliday: true, HolidayName: "Australia Day", DaysToNextHoliday: ptr(0),
			}},
			wantSummary: Summary{
				Rows: 1, From: date("2024-01-26"), To: date("2024-01-26"), Country: "AU",
				Sources:        []string{SourceOpenMeteoArchive, SourceOfflinePrefix + "AU"},
				WeatherHorizon: date("2025-03-15"), Timezone: "Europe/Madrid", WeatherRequests: 1,
			},
			wantWeather: []omRequest{{"archive", "2024-01-26", "2024-01-26"}},
			wantStages:  []Stage{StageWeather, StageHolidays, StageFeatures},
		},
		{
			name:     "unsupported country: flag set, the other features complete",
			property: Property{Latitude: madridLat, Longitude: madridLon, CountryCode: "XX"},
			dates:    dates("2024-12-24", "2024-12-25"),
			now:      "2025-03-01T08:00:00Z",
			wantRows: []FeatureRow{
				{Date: date("2024-12-24"), DailyWeather: wx("2024-12-24", SourceOpenMeteoArchive), Temporal: winter(2, 52, 2024)},
				{Date: date("2024-12-25"), DailyWeather: wx("2024-12-25", SourceOpenMeteoArchive), Temporal: winter(3, 52, 2024)},
			},
			wantSummary: Summary{
				Rows: 2, From: date("2024-12-24"), To: date("2024-12-25"), Country: "XX", UnsupportedCountry: true,
				Sources:        []string{SourceOpenMeteoArchive},
				WeatherHorizon: date("2025-03-15"), Timezone: "Europe/Madrid", WeatherRequests: 1,
			},
			wantWeather: []omRequest{{"archive", "2024-12-24", "2024-12-25"}},
			wantStages:  []Stage{StageWeather, StageHolidays, StageFeatures},
		},
		{
			name:     "Calendarific, future dates from the forecast, one past the horizon",
			property: Property{Latitude: 51.5072, Longitude: -0.1276, CountryCode: "GB", CalendarificAPIKey: "key-1"},
			// Today 2024-12-20: horizon 2025-01-03.
			dates: dates("2024-12-24", "2024-12-25", "2024-12-26", "2024-12-27", "2025-01-04"),
			now:   "2024-12-20T08:00:00Z",
			wantRows: []FeatureRow{
				{Date: date("2024-12-24"), DailyWeather: wx("2024-12-24", SourceOpenMeteoForecast), Temporal: winter(2, 52, 2024), DaysToNextHoliday: ptr(1)},
				{Date: date("2024-12-25"), DailyWeather: wx("2024-12-25", SourceOpenMeteoForecast), Temporal: winter(3, 52, 2024), IsHoliday: true, HolidayName: "Christmas Day", DaysToNextHoliday: ptr(0)},
				{Date: date("2024-12-26"), DailyWeather: wx("2024-12-26", SourceOpenMeteoForecast), Temporal: winter(4, 52, 2024), IsHoliday: true, HolidayName: "Boxing Day", DaysToNextHoliday: ptr(0)},
				// The observance on the 31st is filtered out: the next is New Year's Day.
				{Date: date("2024-12-27"), DailyWeather: wx("2024-12-27", SourceOpenMeteoForecast), Temporal: winter(5, 52, 2024), DaysToNextHoliday: ptr(5)},
				// Past the horizon: no weather; no holiday known after 2025-01-01.
				{Date: date("2025-01-04"), Temporal: Temporal{DayOfWeek: 6, IsWeekend: true, Month: 1, Quarter: 1, ISOWeek: 1, ISOYear: 2025, Season: Winter}},
			},
			wantSummary: Summary{
				Rows: 5, From: date("2024-12-24"), To: date("2025-01-04"), Country: "GB",
				Sources:          []string{SourceOpenMeteoForecast, SourceCalendarific},
				WeatherUncovered: 1, WeatherHorizon: date("2025-01-03"), Timezone: "Europe/Madrid",
				WeatherRequests: 1, HolidayRequests: 3,
			},
			wantWeather:  []omRequest{{"forecast", "2024-12-24", "2024-12-27"}},
			wantCalendar: []calRequest{{"key-1", "GB", 2024}, {"key-1", "GB", 2025}, {"key-1", "GB", 2026}},
			wantStages:   []Stage{StageWeather, StageHolidays, StageFeatures},
		},
		{
			name:     "Calendarific 401 fails the enrichment for good",
			property: Property{Latitude: 51.5072, Longitude: -0.1276, CountryCode: "GB", CalendarificAPIKey: "revoked"},
			dates:    dates("2024-12-24"),
			now:      "2025-03-01T08:00:00Z",
			calRespond: func(w http.ResponseWriter, r *http.Request) {
				writeCalendarificError(w, http.StatusUnauthorized, "auth failed", "Missing or invalid api credentials.")
			},
			wantWeather:  []omRequest{{"archive", "2024-12-24", "2024-12-24"}},
			wantCalendar: []calRequest{{"revoked", "GB", 2024}},
			wantStages:   []Stage{StageWeather},
			wantErr: &errorInfo{Outcome: OutcomePermanent, Source: SourceCalendarific, Status: 401,
				Reason: "auth failed: Missing or invalid api credentials."},
		},
		{
			name:       "invalid coordinates: permanent, no request",
			property:   Property{Latitude: madridLat, Longitude: 200, CountryCode: "ES"},
			dates:      dates("2024-12-24"),
			now:        "2025-03-01T08:00:00Z",
			wantStages: nil,
			wantErr:    &errorInfo{Outcome: OutcomePermanent, Source: "property", Reason: "longitude 200 out of range [-180, 180]", Invalid: true},
		},
		{
			name:       "no dates",
			property:   Property{Latitude: madridLat, Longitude: madridLon, CountryCode: "ES"},
			now:        "2025-03-01T08:00:00Z",
			wantRows:   nil,
			wantStages: []Stage{StageWeather, StageHolidays, StageFeatures},
			wantSummary: Summary{
				Country: "ES",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			om := newFakeOpenMeteo(t, weatherFixture)
			cf := newFakeCalendarific(t, calendarificHolidays)
			cf.Respond = tt.calRespond
			e := NewEnricher(append(append(om.options(), cf.options()...), WithClock(fixedClock(tt.now)))...)

			var stages []Stage
			res, err := e.Enrich(context.Background(), tt.property, tt.dates, func(s Stage) { stages = append(stages, s) })

			if diff := cmp.Diff(tt.wantStages, stages); diff != "" {
				t.Errorf("stages (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantWeather, om.seen()); diff != "" {
				t.Errorf("weather requests (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantCalendar, cf.seen()); diff != "" {
				t.Errorf("calendarific requests (-want +got):\n%s", diff)
			}
			if tt.wantErr != nil {
				if err == nil {
					t.Fatal("no error")
				}
				if diff := cmp.Diff(*tt.wantErr, describe(err)); diff != "" {
					t.Errorf("error %q (-want +got):\n%s", err, diff)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.wantRows, res.Rows); diff != "" {
				t.Errorf("rows (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantSummary, res.Summary); diff != "" {
				t.Errorf("summary (-want +got):\n%s", diff)
			}
		})
	}
}

func TestSummaryString(t *testing.T) {
	s := Summary{
		Rows: 4, From: date("2024-12-24"), To: date("2024-12-31"), Country: "XX", UnsupportedCountry: true,
		Sources: []string{SourceOpenMeteoArchive}, WeatherUncovered: 2, WeatherHorizon: date("2025-01-03"),
	}
	want := `enriched 4 rows 2024-12-24..2024-12-31 from open-meteo-archive; no holidays: unsupported country "XX"; 2 dates past the weather horizon 2025-01-03`
	if got := s.String(); got != want {
		t.Errorf("String() =\n%s\nwant\n%s", got, want)
	}
}

func TestFeatureRowJSON(t *testing.T) {
	row := FeatureRow{
		Date:         date("2024-12-25"),
		DailyWeather: DailyWeather{TempMaxC: ptr(11.0), WeatherCode: ptr(61), Source: SourceOpenMeteoArchive},
		Temporal:     TemporalOf(date("2024-12-25"), madridLat),
		IsHoliday:    true, HolidayName: "Navidad", DaysToNextHoliday: ptr(0),
	}
	b, err := json.Marshal(row)
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"date": "2024-12-25T00:00:00Z", "temperature_2m_max": 11.0, "weather_code": 61.0, "weather_source": "open-meteo-archive",
		"day_of_week": 3.0, "is_weekend": false, "month": 12.0, "quarter": 4.0, "iso_week": 52.0, "iso_year": 2024.0,
		"season": "winter", "is_holiday": true, "holiday_name": "Navidad", "days_to_next_holiday": 0.0,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("JSON (-want +got):\n%s", diff)
	}
}

// BenchmarkFeatures3Years enriches three years of daily rows (all past, offline holidays)
// against the fake Open-Meteo: one archive request per run, the rest is local work.
func BenchmarkFeatures3Years(b *testing.B) {
	om := newFakeOpenMeteo(b, nil)
	om.Synthetic = true
	e := NewEnricher(append(om.options(), WithClock(fixedClock("2025-06-01T00:00:00Z")))...)
	var ds []time.Time
	for d := date("2022-01-01"); d.Before(date("2025-01-01")); d = d.AddDate(0, 0, 1) {
		ds = append(ds, d)
	}
	p := Property{Latitude: madridLat, Longitude: madridLon, CountryCode: "ES"}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		res, err := e.Enrich(context.Background(), p, ds, nil)
		if err != nil {
			b.Fatal(err)
		}
		if len(res.Rows) != 1096 {
			b.Fatalf("%d rows, want 1096", len(res.Rows))
		}
	}
}
