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

const madridLat, madridLon = 40.4168, -3.7038

func TestWeatherValuesReachTheirDates(t *testing.T) {
	fake := newFakeOpenMeteo(t, map[string]omDay{
		"2024-01-01": {TempMax: ptr(12.3), TempMin: ptr(2.1), Precip: ptr(0.0), Code: ptr(3)},
		"2024-01-02": {TempMax: ptr(10.8), Code: ptr(61)}, // min and precipitation null
		"2024-01-03": {TempMax: ptr(9.5), TempMin: ptr(-1.2), Precip: ptr(4.4), Code: ptr(0)},
	})
	c := NewWeatherClient(append(fake.options(), WithClock(fixedClock("2024-06-01T12:00:00Z")))...)

	// Unsorted, with a duplicate: the client must not care.
	res, err := c.Daily(context.Background(), madridLat, madridLon, dates("2024-01-03", "2024-01-01", "2024-01-02", "2024-01-01"))
	if err != nil {
		t.Fatal(err)
	}

	if diff := cmp.Diff([]omRequest{{"archive", "2024-01-01", "2024-01-03"}}, fake.seen()); diff != "" {
		t.Errorf("requests (-want +got):\n%s", diff)
	}
	// A date given in another zone is still its own calendar day.
	cet := time.FixedZone("CET", 3600)
	tests := []struct {
		date time.Time
		want DailyWeather
	}{
		{date("2024-01-01"), DailyWeather{TempMaxC: ptr(12.3), TempMinC: ptr(2.1), PrecipitationMM: ptr(0.0), WeatherCode: ptr(3), Source: SourceOpenMeteoArchive}},
		{time.Date(2024, 1, 2, 0, 0, 0, 0, cet), DailyWeather{TempMaxC: ptr(10.8), WeatherCode: ptr(61), Source: SourceOpenMeteoArchive}},
		{date("2024-01-03"), DailyWeather{TempMaxC: ptr(9.5), TempMinC: ptr(-1.2), PrecipitationMM: ptr(4.4), WeatherCode: ptr(0), Source: SourceOpenMeteoArchive}},
	}
	for _, tt := range tests {
		got, ok := res.On(tt.date)
		if !ok {
			t.Errorf("On(%s): no weather", tt.date)
			continue
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("On(%s) (-want +got):\n%s", tt.date, diff)
		}
	}
	if _, ok := res.On(date("2024-01-04")); ok {
		t.Errorf("On(2024-01-04): weather for a date not asked for")
	}
	if diff := cmp.Diff([]string{SourceOpenMeteoArchive}, res.Sources); diff != "" {
		t.Errorf("sources (-want +got):\n%s", diff)
	}
	if res.Timezone != "Europe/Madrid" {
		t.Errorf("timezone = %q, want Europe/Madrid", res.Timezone)
	}
}

func TestWeatherOneRequestPerContiguousRange(t *testing.T) {
	clock := WithClock(fixedClock("2024-06-01T12:00:00Z"))
	tests := []struct {
		name  string
		opts  []Option
		dates []time.Time
		want  []omRequest
	}{
		{
			name:  "one range",
			dates: dates("2024-01-01", "2024-01-02", "2024-01-03"),
			want:  []omRequest{{"archive", "2024-01-01", "2024-01-03"}},
		},
		{
			name:  "a gap makes two ranges",
			dates: dates("2024-01-11", "2024-01-01", "2024-01-02", "2024-01-03", "2024-01-10"),
			want:  []omRequest{{"archive", "2024-01-01", "2024-01-03"}, {"archive", "2024-01-10", "2024-01-11"}},
		},
		{
			name:  "single days",
			dates: dates("2024-02-29", "2024-03-02"),
			want:  []omRequest{{"archive", "2024-02-29", "2024-02-29"}, {"archive", "2024-03-02", "2024-03-02"}},
		},
		{
			name:  "a gap allowance bridges the gap",
			opts:  []Option{WithMaxGapDays(6)},
			dates: dates("2024-01-01", "2024-01-02", "2024-01-03", "2024-01-10", "2024-01-11"),
			want:  []omRequest{{"archive", "2024-01-01", "2024-01-11"}},
		},
		{
			name: "no dates, no request",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := newFakeOpenMeteo(t, nil)
			fake.Synthetic = true
			c := NewWeatherClient(append(append(fake.options(), clock), tt.opts...)...)
			res, err := c.Daily(context.Background(), madridLat, madridLon, tt.dates)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, fake.seen()); diff != "" {
				t.Errorf("requests (-want +got):\n%s", diff)
			}
			if res.Requests != len(tt.want) {
				t.Errorf("Requests = %d, want %d", res.Requests, len(tt.want))
			}
			// Only the dates asked for come back, even when a range bridged a gap.
			if got, want := len(res.days), len(uniqueDays(tt.dates)); got != want {
				t.Errorf("%d days of weather, want %d", got, want)
			}
		})
	}
}

func TestWeatherSplitsPastAndFuture(t *testing.T) {
	// Today is 2024-06-15 (UTC). Archive: up to 2024-06-09 (5 days of delay). Forecast: from
	// 2024-06-10 to the horizon 2024-06-29 (16 forecast days, one of margin).
	fake := newFakeOpenMeteo(t, map[string]omDay{
		"2024-06-01": {TempMax: ptr(25.0)},
		"2024-06-20": {TempMax: ptr(31.5)},
	})
	c := NewWeatherClient(append(fake.options(), WithClock(fixedClock("2024-06-15T23:30:00Z")))...)

	res, err := c.Daily(context.Background(), madridLat, madridLon, dates(
		"2024-06-01", "2024-06-02", // archive
		"2024-06-12",               // recent: forecast
		"2024-06-20", "2024-06-21", // forecast
		"2024-06-29",               // the horizon: forecast
		"2024-06-30", "2024-07-20", // past the horizon: no weather
	))
	if err != nil {
		t.Fatal(err)
	}
	wantRequests := []omRequest{
		{"archive", "2024-06-01", "2024-06-02"},
		{"forecast", "2024-06-12", "2024-06-12"},
		{"forecast", "2024-06-20", "2024-06-21"},
		{"forecast", "2024-06-29", "2024-06-29"},
	}
	if diff := cmp.Diff(wantRequests, fake.seen()); diff != "" {
		t.Errorf("requests (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{SourceOpenMeteoArchive, SourceOpenMeteoForecast}, res.Sources); diff != "" {
		t.Errorf("sources (-want +got):\n%s", diff)
	}
	if res.Uncovered != 2 {
		t.Errorf("Uncovered = %d, want 2", res.Uncovered)
	}
	if !res.ForecastHorizon.Equal(date("2024-06-29")) {
		t.Errorf("ForecastHorizon = %s, want 2024-06-29", res.ForecastHorizon)
	}

	sources := map[string]string{}
	for _, d := range []string{"2024-06-01", "2024-06-12", "2024-06-20", "2024-06-29", "2024-06-30", "2024-07-20"} {
		w, _ := res.On(date(d))
		sources[d] = w.Source
	}
	wantSources := map[string]string{
		"2024-06-01": SourceOpenMeteoArchive,
		"2024-06-12": SourceOpenMeteoForecast,
		"2024-06-20": SourceOpenMeteoForecast,
		"2024-06-29": SourceOpenMeteoForecast,
		"2024-06-30": "",
		"2024-07-20": "",
	}
	if diff := cmp.Diff(wantSources, sources); diff != "" {
		t.Errorf("per-date sources (-want +got):\n%s", diff)
	}
	if w, _ := res.On(date("2024-06-20")); w.TempMaxC == nil || *w.TempMaxC != 31.5 {
		t.Errorf("2024-06-20 from the forecast: TempMaxC = %v, want 31.5", w.TempMaxC)
	}
}

func TestWeatherErrors(t *testing.T) {
	const limit = 512
	big := strings.Repeat("x", 2*limit)
	tests := []struct {
		name    string
		respond http.HandlerFunc
		want    errorInfo
		wantMsg string // a substring of the error message
	}{
		{
			name: "429 with Retry-After in seconds",
			respond: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Retry-After", "120")
				writeOpenMeteoError(w, http.StatusTooManyRequests, "Minutely API request limit exceeded. Please try again in one minute.")
			},
			want: errorInfo{Outcome: OutcomeRateLimited, Source: SourceOpenMeteoArchive, RetryAfter: 120 * time.Second,
				Reason: "Minutely API request limit exceeded. Please try again in one minute."},
			wantMsg: "retry after 2m0s",
		},
		{
			name: "429 with Retry-After as an HTTP date",
			respond: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Retry-After", "Sat, 01 Jun 2024 12:01:30 GMT") // the clock is 12:00:00
				writeOpenMeteoError(w, http.StatusTooManyRequests, "Too many requests")
			},
			want: errorInfo{Outcome: OutcomeRateLimited, Source: SourceOpenMeteoArchive, RetryAfter: 90 * time.Second, Reason: "Too many requests"},
		},
		{
			name: "429 without Retry-After gets the default",
			respond: func(w http.ResponseWriter, r *http.Request) {
				writeOpenMeteoError(w, http.StatusTooManyRequests, "Daily API request limit exceeded. Please try again tomorrow.")
			},
			want: errorInfo{Outcome: OutcomeRateLimited, Source: SourceOpenMeteoArchive, RetryAfter: 45 * time.Second,
				Reason: "Daily API request limit exceeded. Please try again tomorrow."},
		},
		{
			name: "400 bad coordinates is permanent with the API's reason",
			respond: func(w http.ResponseWriter, r *http.Request) {
				writeOpenMeteoError(w, http.StatusBadRequest, "Latitude must be in range of -90 to 90°. Given: 140.4168.")
			},
			want: errorInfo{Outcome: OutcomePermanent, Source: SourceOpenMeteoArchive, Status: 400,
				Reason: "Latitude must be in range of -90 to 90°. Given: 140.4168."},
			wantMsg: "HTTP 400 (permanent): Latitude must be in range of -90 to 90°. Given: 140.4168.",
		},
		{
			name: "404 on a wrong base URL is permanent",
			respond: func(w http.ResponseWriter, r *http.Request) {
				http.NotFound(w, r)
			},
			want: errorInfo{Outcome: OutcomePermanent, Source: SourceOpenMeteoArchive, Status: 404, Reason: "Not Found"},
		},
		{
			name: "500 is retryable",
			respond: func(w http.ResponseWriter, r *http.Request) {
				writeOpenMeteoError(w, http.StatusInternalServerError, "Internal server error")
			},
			want:    errorInfo{Outcome: OutcomeRetryable, Source: SourceOpenMeteoArchive, Status: 500},
			wantMsg: "HTTP 500 (retryable): Internal server error",
		},
		{
			name: "502 with an oversized HTML page is still retryable",
			respond: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/html")
				w.WriteHeader(http.StatusBadGateway)
				fmt.Fprintf(w, "<html><body>%s</body></html>", big)
			},
			want:    errorInfo{Outcome: OutcomeRetryable, Source: SourceOpenMeteoArchive, Status: 502},
			wantMsg: "Bad Gateway",
		},
		{
			name: "oversized body with Content-Length",
			respond: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Length", fmt.Sprint(len(big)+2))
				fmt.Fprintf(w, "%q", big)
			},
			want: errorInfo{Outcome: OutcomePermanent, Source: SourceOpenMeteoArchive, Status: 200,
				Reason: "response body larger than 512 bytes", TooLarge: true},
		},
		{
			name: "oversized chunked body",
			respond: func(w http.ResponseWriter, r *http.Request) {
				for range 4 {
					fmt.Fprint(w, big[:limit/2+1])
					w.(http.Flusher).Flush()
				}
			},
			want: errorInfo{Outcome: OutcomePermanent, Source: SourceOpenMeteoArchive, Status: 200,
				Reason: "response body larger than 512 bytes", TooLarge: true},
		},
		{
			name: "garbled JSON is retryable",
			respond: func(w http.ResponseWriter, r *http.Request) {
				fmt.Fprint(w, `{"daily":{"time":["2024-01-01"`)
			},
			want: errorInfo{Outcome: OutcomeRetryable, Source: SourceOpenMeteoArchive, Status: 200, Malformed: true},
		},
		{
			name: "arrays of different lengths are malformed",
			respond: func(w http.ResponseWriter, r *http.Request) {
				fmt.Fprint(w, `{"daily":{"time":["2024-01-01","2024-01-02"],"temperature_2m_max":[1.0],"temperature_2m_min":[1.0,2.0],"precipitation_sum":[0,0],"weather_code":[1,2]}}`)
			},
			want: errorInfo{Outcome: OutcomeRetryable, Source: SourceOpenMeteoArchive, Status: 200, Malformed: true},
		},
		{
			name: "timeout is retryable",
			respond: func(w http.ResponseWriter, r *http.Request) {
				select {
				case <-r.Context().Done():
				case <-time.After(5 * time.Second):
				}
			},
			want:    errorInfo{Outcome: OutcomeRetryable, Source: SourceOpenMeteoArchive, Timeout: true},
			wantMsg: "request timed out after 50ms",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := newFakeOpenMeteo(t, nil)
			fake.Respond = tt.respond
			c := NewWeatherClient(append(fake.options(),
				WithClock(fixedClock("2024-06-01T12:00:00Z")),
				WithTimeout(50*time.Millisecond),
				WithMaxResponseBytes(limit),
				WithDefaultRetryAfter(45*time.Second),
			)...)
			_, err := c.Daily(context.Background(), madridLat, madridLon, dates("2024-01-01", "2024-01-02"))
			if err == nil {
				t.Fatal("no error")
			}
			if diff := cmp.Diff(tt.want, describe(err)); diff != "" {
				t.Errorf("error %q (-want +got):\n%s", err, diff)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("error %q does not contain %q", err, tt.wantMsg)
			}
			if n := len(fake.seen()); n != 1 {
				t.Errorf("%d requests, want 1 (no retry inside the client)", n)
			}
		})
	}
}

func TestWeatherRefusesBadCoordinatesWithoutARequest(t *testing.T) {
	fake := newFakeOpenMeteo(t, nil)
	c := NewWeatherClient(fake.options()...)
	_, err := c.Daily(context.Background(), 95, 0, dates("2024-01-01"))
	want := errorInfo{Outcome: OutcomePermanent, Source: "property", Reason: "latitude 95 out of range [-90, 90]", Invalid: true}
	if diff := cmp.Diff(want, describe(err)); diff != "" {
		t.Errorf("error %v (-want +got):\n%s", err, diff)
	}
	if n := len(fake.seen()); n != 0 {
		t.Errorf("%d requests, want 0", n)
	}
}

func TestWeatherCallerCancellationIsNotATimeout(t *testing.T) {
	fake := newFakeOpenMeteo(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	fake.Respond = func(w http.ResponseWriter, r *http.Request) {
		cancel() // the worker shuts down while the request is in flight
		<-r.Context().Done()
	}
	c := NewWeatherClient(append(fake.options(), WithClock(fixedClock("2024-06-01T12:00:00Z")))...)
	_, err := c.Daily(ctx, madridLat, madridLon, dates("2024-01-01"))
	if got := OutcomeOf(err); got != OutcomeCanceled {
		t.Errorf("OutcomeOf(%v) = %v, want canceled", err, got)
	}
	if !errors.Is(err, context.Canceled) {
		t.Errorf("error %v does not wrap context.Canceled", err)
	}
}

func TestRetryAfter(t *testing.T) {
	o := newOptions([]Option{WithClock(fixedClock("2024-06-01T12:00:00Z")), WithDefaultRetryAfter(time.Minute)})
	tests := []struct {
		header string
		want   time.Duration
	}{
		{"", time.Minute},
		{"0", 0},
		{"30", 30 * time.Second},
		{" 30 ", 30 * time.Second},
		{"-5", time.Minute},
		{"soon", time.Minute},
		{"99999999999999", maxRetryAfter},
		{"Sat, 01 Jun 2024 12:00:10 GMT", 10 * time.Second},
		{"Saturday, 01-Jun-24 12:00:10 GMT", 10 * time.Second}, // RFC 850, still allowed
		{"Sat, 01 Jun 2024 11:00:00 GMT", 0},                   // already past
	}
	for _, tt := range tests {
		h := http.Header{}
		if tt.header != "" {
			h.Set("Retry-After", tt.header)
		}
		if got := o.retryAfter(h); got != tt.want {
			t.Errorf("retryAfter(%q) = %v, want %v", tt.header, got, tt.want)
		}
	}
}
