package enrichment

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/jengu/queue-operator/workers/outside"
)

// dailyVariables are the Open-Meteo daily variables fetched, in the order of the request.
const dailyVariables = "temperature_2m_max,temperature_2m_min,precipitation_sum,weather_code"

// archiveFirstDay is the first day the Open-Meteo archive holds (ERA5 starts in 1940); earlier
// dates would be an HTTP 400, so they are left without weather like the days past the horizon.
var archiveFirstDay = civilDay(1940, time.January, 1)

// DailyWeather is one day's weather. A nil field is a null from the API (the model has no value
// for that day) or a day that was not fetched; Source tells the two apart.
type DailyWeather struct {
	TempMaxC        *float64 `json:"temperature_2m_max,omitempty"`
	TempMinC        *float64 `json:"temperature_2m_min,omitempty"`
	PrecipitationMM *float64 `json:"precipitation_sum,omitempty"`
	// WeatherCode is the WMO weather interpretation code (0 clear sky ... 99 thunderstorm).
	WeatherCode *int `json:"weather_code,omitempty"`
	// Source is SourceOpenMeteoArchive or SourceOpenMeteoForecast, "" when the day was not
	// covered by either API (past the forecast horizon, before 1940).
	Source string `json:"weather_source,omitempty"`
}

// WeatherResult is the weather of a set of dates.
type WeatherResult struct {
	days map[day]DailyWeather
	// Sources are the APIs that were asked, archive first.
	Sources []string
	// Requests is the number of HTTP requests made (one per contiguous range per API).
	Requests int
	// Timezone is the property's time zone as Open-Meteo resolved it (timezone=auto), e.g.
	// "Australia/Sydney"; "" when nothing was fetched.
	Timezone string
	// ForecastHorizon is the last day asked of the forecast API, as midnight UTC.
	ForecastHorizon time.Time
	// Uncovered counts the dates left without weather because no API covers them: past the
	// forecast horizon (or before the archive's start in 1940). Not an error.
	Uncovered int
}

// On returns the weather of the date (its calendar day in its own Location).
func (r *WeatherResult) On(date time.Time) (DailyWeather, bool) {
	w, ok := r.days[dayOf(date)]
	return w, ok
}

func (r *WeatherResult) on(d day) DailyWeather { return r.days[d] }

// WeatherClient fetches daily weather from Open-Meteo: the archive API for the past, the
// forecast API for the last few days and the next ones.
type WeatherClient struct {
	o options
}

// NewWeatherClient builds a client; see the Option functions for the defaults.
func NewWeatherClient(opts ...Option) *WeatherClient {
	return &WeatherClient{o: newOptions(opts)}
}

// Daily fetches the weather of the dates at the coordinates.
//
// Dates are split at "today" (UTC, from the clock): days more than ArchiveDelayDays ago go to
// the archive API, the rest up to the forecast horizon to the forecast API, and each API gets
// one request per contiguous range of dates. Days past the horizon are left empty and counted
// in Uncovered.
//
// The horizon is today + ForecastDays - 2 rather than - 1: "today" at a property west of
// Greenwich can still be yesterday in UTC, and Open-Meteo rejects an end_date past its
// horizon with an HTTP 400, which would fail the job for good over one day of forecast.
//
// Requests use timezone=auto, so that a daily value covers the property's local calendar
// day, the day a price is for; with UTC a Sydney "day" would run from 11:00 to 11:00.
func (c *WeatherClient) Daily(ctx context.Context, latitude, longitude float64, dates []time.Time) (*WeatherResult, error) {
	if err := checkCoordinates(latitude, longitude); err != nil {
		return nil, err
	}
	days := uniqueDays(dates)
	today := dayOf(c.o.now().UTC())
	lastArchive := today - day(c.o.archiveDelayDays) - 1
	horizon := today + day(c.o.forecastDays) - 2

	res := &WeatherResult{days: make(map[day]DailyWeather, len(days)), ForecastHorizon: horizon.Time()}
	var archive, forecast []day
	for _, d := range days {
		switch {
		case d < archiveFirstDay || d > horizon:
			res.Uncovered++
		case d <= lastArchive:
			archive = append(archive, d)
		default:
			forecast = append(forecast, d)
		}
	}

	for _, api := range []struct {
		source, baseURL string
		days            []day
	}{
		{SourceOpenMeteoArchive, c.o.archiveURL, archive},
		{SourceOpenMeteoForecast, c.o.forecastURL, forecast},
	} {
		if len(api.days) == 0 {
			continue
		}
		res.Sources = append(res.Sources, api.source)
		wanted := make(map[day]bool, len(api.days))
		for _, d := range api.days {
			wanted[d] = true
		}
		for _, r := range contiguousRanges(api.days, c.o.maxGapDays) {
			res.Requests++
			if err := c.fetchRange(ctx, api.source, api.baseURL, latitude, longitude, r, wanted, res); err != nil {
				return nil, err
			}
		}
		// A day the API left out of its answer still gets its source: it was asked, the API
		// simply had nothing, which is the same as nulls.
		for _, d := range api.days {
			if _, ok := res.days[d]; !ok {
				res.days[d] = DailyWeather{Source: api.source}
			}
		}
	}
	return res, nil
}

// checkCoordinates refuses coordinates no API accepts, before spending a request on them.
func checkCoordinates(latitude, longitude float64) error {
	if math.IsNaN(latitude) || latitude < -90 || latitude > 90 {
		return &APIError{Outcome: OutcomePermanent, Source: "property", Reason: fmt.Sprintf("latitude %v out of range [-90, 90]", latitude), Err: ErrInvalidInput}
	}
	if math.IsNaN(longitude) || longitude < -180 || longitude > 180 {
		return &APIError{Outcome: OutcomePermanent, Source: "property", Reason: fmt.Sprintf("longitude %v out of range [-180, 180]", longitude), Err: ErrInvalidInput}
	}
	return nil
}

// openMeteoDaily is the part of an Open-Meteo response we read. Values are pointers because
// the API sends null for days a model has no data for.
type openMeteoDaily struct {
	Timezone string `json:"timezone"`
	Daily    struct {
		Time             []string   `json:"time"`
		TemperatureMax   []*float64 `json:"temperature_2m_max"`
		TemperatureMin   []*float64 `json:"temperature_2m_min"`
		PrecipitationSum []*float64 `json:"precipitation_sum"`
		// Decoded as float: the API sends integers today, but a "3.0" must not break us.
		WeatherCode []*float64 `json:"weather_code"`
	} `json:"daily"`
}

// openMeteoError is the body of an Open-Meteo error: {"error":true,"reason":"..."}.
type openMeteoError struct {
	Error  bool   `json:"error"`
	Reason string `json:"reason"`
}

func (c *WeatherClient) fetchRange(ctx context.Context, source, baseURL string, lat, lon float64, r dayRange, wanted map[day]bool, res *WeatherResult) error {
	u, err := url.Parse(baseURL)
	if err != nil {
		return &APIError{Outcome: OutcomePermanent, Source: source, Reason: "invalid base URL", Err: err}
	}
	q := u.Query()
	q.Set("latitude", strconv.FormatFloat(lat, 'f', -1, 64))
	q.Set("longitude", strconv.FormatFloat(lon, 'f', -1, 64))
	q.Set("daily", dailyVariables)
	q.Set("timezone", "auto")
	q.Set("start_date", r.from.String())
	q.Set("end_date", r.to.String())
	u.RawQuery = q.Encode()

	resp, err := c.o.get(ctx, source, u.String())
	if err != nil {
		return fmt.Errorf("weather %s..%s: %w", r.from, r.to, err)
	}
	if err := c.statusError(source, resp); err != nil {
		return fmt.Errorf("weather %s..%s: %w", r.from, r.to, err)
	}

	var body openMeteoDaily
	if err := json.Unmarshal(resp.Body, &body); err != nil {
		return &APIError{Outcome: OutcomeRetryable, Source: source, StatusCode: resp.Status, Err: fmt.Errorf("%w: %w", ErrMalformedResponse, err)}
	}
	d := body.Daily
	n := len(d.Time)
	for name, l := range map[string]int{
		"temperature_2m_max": len(d.TemperatureMax),
		"temperature_2m_min": len(d.TemperatureMin),
		"precipitation_sum":  len(d.PrecipitationSum),
		"weather_code":       len(d.WeatherCode),
	} {
		if l != n {
			return &APIError{Outcome: OutcomeRetryable, Source: source, StatusCode: resp.Status,
				Err: fmt.Errorf("%w: daily.%s has %d values for %d days", ErrMalformedResponse, name, l, n)}
		}
	}
	if body.Timezone != "" {
		res.Timezone = body.Timezone
	}
	for i, s := range d.Time {
		dd, err := parseDay(s)
		if err != nil {
			return &APIError{Outcome: OutcomeRetryable, Source: source, StatusCode: resp.Status, Err: fmt.Errorf("%w: daily.time: %w", ErrMalformedResponse, err)}
		}
		// With a gap allowance the range holds days nobody asked for; drop them.
		if !wanted[dd] {
			continue
		}
		w := DailyWeather{
			TempMaxC:        d.TemperatureMax[i],
			TempMinC:        d.TemperatureMin[i],
			PrecipitationMM: d.PrecipitationSum[i],
			Source:          source,
		}
		if code := d.WeatherCode[i]; code != nil {
			v := int(math.Round(*code))
			w.WeatherCode = &v
		}
		res.days[dd] = w
	}
	return nil
}

// statusError maps an Open-Meteo HTTP status to the package's outcomes.
func (c *WeatherClient) statusError(source string, resp *outside.Response) error {
	if resp.Status >= 200 && resp.Status < 300 {
		return nil
	}
	var e openMeteoError
	reason := ""
	if !resp.Truncated && json.Unmarshal(resp.Body, &e) == nil {
		reason = e.Reason
	}
	switch {
	case resp.Status == http.StatusTooManyRequests:
		return &APIError{Outcome: OutcomeRateLimited, Source: source, StatusCode: http.StatusTooManyRequests, RetryAfter: c.o.retryAfter(resp.Header), Reason: reason}
	case resp.Status >= 500:
		if reason == "" {
			reason = http.StatusText(resp.Status)
		}
		return &APIError{Outcome: OutcomeRetryable, Source: source, StatusCode: resp.Status, Reason: reason}
	default:
		// 400 is Open-Meteo's answer to bad parameters, coordinates out of range above
		// all; the reason names the parameter. Other 4xx (404 on a wrong base URL) are
		// configuration errors that no retry fixes either.
		if reason == "" {
			reason = http.StatusText(resp.Status)
		}
		return &APIError{Outcome: OutcomePermanent, Source: source, StatusCode: resp.Status, Reason: reason}
	}
}
