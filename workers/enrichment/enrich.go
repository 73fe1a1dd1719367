// Package enrichment computes the features of a property's pricing dates: daily weather from
// Open-Meteo, public holidays from Calendarific or an offline library, and calendar features.
//
// It knows nothing of queues, Kubernetes or databases: the enrichment processor reads the
// property and its dates, calls Enricher.Enrich, maps the progress stages and the errors'
// outcomes (OutcomeOf) to its own, and writes the rows.
package enrichment

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Property is what enrichment needs to know of a property.
type Property struct {
	Latitude  float64
	Longitude float64
	// CountryCode is ISO 3166-1 alpha-2 ("ES"); see NormalizeCountry for the accepted aliases.
	CountryCode string
	// CalendarificAPIKey, when set, makes holidays come from Calendarific; otherwise they are
	// computed offline. The caller picks it (worker configuration or the job's Secret).
	CalendarificAPIKey string
}

// Stage is a step of Enrich, reported to the progress callback when it is done.
type Stage int

const (
	StageWeather Stage = iota + 1
	StageHolidays
	StageFeatures
)

func (s Stage) String() string {
	switch s {
	case StageWeather:
		return "weather"
	case StageHolidays:
		return "holidays"
	case StageFeatures:
		return "features"
	}
	return fmt.Sprintf("Stage(%d)", int(s))
}

// Percent is the job progress the issue assigns to the end of the stage (writing the rows,
// the caller's part, is 100).
func (s Stage) Percent() int {
	switch s {
	case StageWeather:
		return 25
	case StageHolidays:
		return 50
	case StageFeatures:
		return 75
	}
	return 0
}

// ProgressFunc is called once at the end of each stage, in order, from the goroutine that
// called Enrich. It must not block for long.
type ProgressFunc func(Stage)

// FeatureRow is the features of one date.
type FeatureRow struct {
	Date time.Time `json:"date"` // midnight UTC of the calendar day
	DailyWeather
	Temporal
	IsHoliday   bool   `json:"is_holiday"`
	HolidayName string `json:"holiday_name,omitempty"`
	// DaysToNextHoliday is 0 on a holiday, nil when no holiday is known on or after the date
	// (unsupported country, or none left in the fetched years, which run to the year after
	// the last date).
	DaysToNextHoliday *int `json:"days_to_next_holiday"`
}

// Summary describes an enrichment, short enough for a job's result.
type Summary struct {
	Rows int `json:"rows"`
	// From and To are the first and last dates (midnight UTC); zero when there are no rows.
	From time.Time `json:"from"`
	To   time.Time `json:"to"`
	// Sources used, in this order: SourceOpenMeteoArchive, SourceOpenMeteoForecast, then
	// SourceCalendarific or SourceOfflinePrefix+country. A source that contributed nothing
	// is absent.
	Sources []string `json:"sources"`
	Country string   `json:"country"`
	// UnsupportedCountry: holidays were to be computed offline and the library has no
	// calendar for Country; holiday features are empty, the others complete.
	UnsupportedCountry bool `json:"unsupported_country,omitempty"`
	// WeatherUncovered counts the dates left without weather because they are past the
	// forecast horizon (WeatherHorizon) or before the archive's start.
	WeatherUncovered int       `json:"weather_uncovered,omitempty"`
	WeatherHorizon   time.Time `json:"weather_horizon"`
	// Timezone is the property's time zone as Open-Meteo resolved it.
	Timezone string `json:"timezone,omitempty"`
	// WeatherRequests and HolidayRequests count the HTTP requests made.
	WeatherRequests int `json:"weather_requests"`
	HolidayRequests int `json:"holiday_requests"`
}

// String is a one-line summary for a job's message.
func (s Summary) String() string {
	if s.Rows == 0 {
		return "enriched 0 rows"
	}
	msg := fmt.Sprintf("enriched %d rows %s..%s from %s", s.Rows,
		s.From.Format(dateLayout), s.To.Format(dateLayout), strings.Join(s.Sources, ", "))
	if s.UnsupportedCountry {
		msg += fmt.Sprintf("; no holidays: unsupported country %q", s.Country)
	}
	if s.WeatherUncovered > 0 {
		msg += fmt.Sprintf("; %d dates past the weather horizon %s", s.WeatherUncovered, s.WeatherHorizon.Format(dateLayout))
	}
	return msg
}

// Result is the output of Enrich.
type Result struct {
	Rows    []FeatureRow
	Summary Summary
}

// Enricher computes feature rows. It is safe for concurrent use.
type Enricher struct {
	weather      *WeatherClient
	calendarific *CalendarificClient
}

// NewEnricher builds an Enricher whose clients share the options.
func NewEnricher(opts ...Option) *Enricher {
	return &Enricher{
		weather:      NewWeatherClient(opts...),
		calendarific: NewCalendarificClient(opts...),
	}
}

// Enrich computes one row per distinct date (the dates may come in any order, with
// duplicates and gaps; the rows are sorted by date). progress may be nil.
//
// Errors are classified (OutcomeOf): a weather or Calendarific failure fails the whole
// enrichment, since a half-enriched property would look complete; an unsupported country for
// the offline holidays does not, it sets Summary.UnsupportedCountry.
func (e *Enricher) Enrich(ctx context.Context, p Property, dates []time.Time, progress ProgressFunc) (*Result, error) {
	if progress == nil {
		progress = func(Stage) {}
	}
	country := NormalizeCountry(p.CountryCode)
	days := uniqueDays(dates)
	sum := Summary{Rows: len(days), Country: country}
	if len(days) == 0 {
		if err := checkCoordinates(p.Latitude, p.Longitude); err != nil {
			return nil, err
		}
		for s := StageWeather; s <= StageFeatures; s++ {
			progress(s)
		}
		return &Result{Summary: sum}, nil
	}
	sum.From, sum.To = days[0].Time(), days[len(days)-1].Time()

	// The days go as UTC midnights: uniqueDays already took each date's calendar day.
	dayTimes := make([]time.Time, len(days))
	for i, d := range days {
		dayTimes[i] = d.Time()
	}
	weather, err := e.weather.Daily(ctx, p.Latitude, p.Longitude, dayTimes)
	if err != nil {
		return nil, fmt.Errorf("enrichment: %w", err)
	}
	sum.Sources = append(sum.Sources, weather.Sources...)
	sum.WeatherRequests = weather.Requests
	sum.WeatherUncovered = weather.Uncovered
	sum.WeatherHorizon = weather.ForecastHorizon
	sum.Timezone = weather.Timezone
	progress(StageWeather)

	holidays, source, requests, err := e.holidays(ctx, p.CalendarificAPIKey, country, days[0], days[len(days)-1])
	sum.HolidayRequests = requests
	switch {
	case errors.Is(err, ErrUnsupportedCountry):
		sum.UnsupportedCountry = true
	case err != nil:
		return nil, fmt.Errorf("enrichment: %w", err)
	default:
		sum.Sources = append(sum.Sources, source)
	}
	progress(StageHolidays)

	rows := make([]FeatureRow, len(days))
	for i, d := range days {
		name, isHoliday := holidays.on(d)
		rows[i] = FeatureRow{
			Date:              dayTimes[i],
			DailyWeather:      weather.on(d),
			Temporal:          temporalOf(d, p.Latitude),
			IsHoliday:         isHoliday,
			HolidayName:       name,
			DaysToNextHoliday: holidays.daysToNext(d),
		}
	}
	progress(StageFeatures)
	return &Result{Rows: rows, Summary: sum}, nil
}

// holidays gathers the holidays of every year from first's to the one after last's, so that
// late-December dates have a next holiday: one Calendarific request per year, or the offline
// library. It returns an empty calendar with an error wrapping ErrUnsupportedCountry when the
// code is not two letters (no request is spent on it) or, offline, when the library has no
// calendar for the country. Calendarific answers an unknown country with no holidays, which
// is not flagged.
func (e *Enricher) holidays(ctx context.Context, apiKey, country string, first, last day) (*HolidayCalendar, string, int, error) {
	empty := NewHolidayCalendar(nil)
	if len(country) != 2 {
		return empty, "", 0, fmt.Errorf("country code %q: %w", country, ErrUnsupportedCountry)
	}
	var all []Holiday
	requests := 0
	for year := first.Time().Year(); year <= last.Time().Year()+1; year++ {
		var (
			hs  []Holiday
			err error
		)
		if apiKey != "" {
			requests++
			hs, err = e.calendarific.Holidays(ctx, apiKey, country, year)
		} else {
			hs, err = OfflineHolidays(country, year)
		}
		if err != nil {
			return empty, "", requests, err
		}
		all = append(all, hs...)
	}
	source := SourceOfflinePrefix + country
	if apiKey != "" {
		source = SourceCalendarific
	}
	return NewHolidayCalendar(all), source, requests, nil
}
