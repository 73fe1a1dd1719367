package enrichment

import (
	"net/http"
	"time"
)

// Default values of the options. They are exported so that the worker's configuration can show
// them and tests can refer to them.
const (
	DefaultArchiveURL       = "https://archive-api.open-meteo.com/v1/archive"
	DefaultForecastURL      = "https://api.open-meteo.com/v1/forecast"
	DefaultCalendarificURL  = "https://calendarific.com/api/v2/holidays"
	DefaultTimeout          = 20 * time.Second
	DefaultMaxResponseBytes = 4 << 20 // 3 years of daily weather is tens of KiB, a year of Calendarific holidays ~100 KiB
	DefaultRetryAfter       = 60 * time.Second
	// DefaultForecastDays is what the Open-Meteo forecast API serves: today and 15 days after.
	DefaultForecastDays = 16
	// DefaultArchiveDelayDays: the archive (ERA5 reanalysis) lags about 5 days behind today;
	// the forecast API serves the last 92 days, so the recent days go there instead.
	DefaultArchiveDelayDays = 5
	// DefaultUserAgent identifies us to the APIs; Open-Meteo asks heavy users to be reachable.
	DefaultUserAgent = "queue-operator-enrichment/1"
)

// DefaultCalendarificTypes are the Calendarific holiday types kept: national public holidays
// only. Local holidays, observances and seasons ("March Equinox") do not close businesses
// country-wide, so they are not pricing holidays.
var DefaultCalendarificTypes = []string{"National holiday"}

type options struct {
	httpClient        *http.Client
	timeout           time.Duration
	maxResponseBytes  int64
	now               func() time.Time
	defaultRetryAfter time.Duration
	userAgent         string

	archiveURL       string
	forecastURL      string
	forecastDays     int
	archiveDelayDays int
	maxGapDays       int

	calendarificURL   string
	calendarificTypes []string
}

func newOptions(opts []Option) options {
	o := options{
		// No Client.Timeout: each request gets its own context deadline, which also covers
		// reading the body and lets us tell our timeout from the caller's cancellation.
		httpClient:        &http.Client{},
		timeout:           DefaultTimeout,
		maxResponseBytes:  DefaultMaxResponseBytes,
		now:               time.Now,
		defaultRetryAfter: DefaultRetryAfter,
		userAgent:         DefaultUserAgent,
		archiveURL:        DefaultArchiveURL,
		forecastURL:       DefaultForecastURL,
		forecastDays:      DefaultForecastDays,
		archiveDelayDays:  DefaultArchiveDelayDays,
		calendarificURL:   DefaultCalendarificURL,
		calendarificTypes: DefaultCalendarificTypes,
	}
	for _, opt := range opts {
		opt(&o)
	}
	return o
}

// Option configures the clients and the Enricher. One option type serves all of them so that
// the worker builds its configuration once; an option that does not concern a client is
// ignored by it.
type Option func(*options)

// WithHTTPClient sets the HTTP client (transport, proxy, TLS). nil keeps the default.
func WithHTTPClient(c *http.Client) Option {
	return func(o *options) {
		if c != nil {
			o.httpClient = c
		}
	}
}

// WithTimeout bounds each HTTP request, body included. Non-positive values keep the default.
func WithTimeout(d time.Duration) Option {
	return func(o *options) {
		if d > 0 {
			o.timeout = d
		}
	}
}

// WithMaxResponseBytes bounds each response body; a larger body is a permanent APIError wrapping
// ErrResponseTooLarge. Non-positive values keep the default.
func WithMaxResponseBytes(n int64) Option {
	return func(o *options) {
		if n > 0 {
			o.maxResponseBytes = n
		}
	}
}

// WithClock sets the clock that decides which dates are past (archive) or future (forecast)
// and turns an HTTP-date Retry-After into a duration.
func WithClock(now func() time.Time) Option {
	return func(o *options) {
		if now != nil {
			o.now = now
		}
	}
}

// WithDefaultRetryAfter is the wait reported for an HTTP 429 without a usable Retry-After
// header (Open-Meteo sends none). Non-positive values keep the default.
func WithDefaultRetryAfter(d time.Duration) Option {
	return func(o *options) {
		if d > 0 {
			o.defaultRetryAfter = d
		}
	}
}

// WithUserAgent sets the User-Agent header of every request.
func WithUserAgent(ua string) Option {
	return func(o *options) {
		if ua != "" {
			o.userAgent = ua
		}
	}
}

// WithArchiveURL sets the Open-Meteo archive API endpoint (a test fake, a self-hosted
// instance, or the commercial customer endpoint).
func WithArchiveURL(u string) Option {
	return func(o *options) {
		if u != "" {
			o.archiveURL = u
		}
	}
}

// WithForecastURL sets the Open-Meteo forecast API endpoint.
func WithForecastURL(u string) Option {
	return func(o *options) {
		if u != "" {
			o.forecastURL = u
		}
	}
}

// WithForecastDays sets how many days, today included, the forecast API serves (16 on the
// public API). Dates past the horizon get no weather and are counted in the result.
func WithForecastDays(n int) Option {
	return func(o *options) {
		if n > 0 {
			o.forecastDays = n
		}
	}
}

// WithArchiveDelayDays sets how many recent days are still missing from the archive and are
// asked of the forecast API instead. Negative values keep the default.
func WithArchiveDelayDays(n int) Option {
	return func(o *options) {
		if n >= 0 {
			o.archiveDelayDays = n
		}
	}
}

// WithMaxGapDays lets one weather request span gaps of up to n missing days between dates
// (the extra days are fetched and dropped). The default, 0, is one request per contiguous
// range; a property priced only on weekends would want 5, trading a little bandwidth for far
// fewer requests against the rate limit.
func WithMaxGapDays(n int) Option {
	return func(o *options) {
		if n >= 0 {
			o.maxGapDays = n
		}
	}
}

// WithCalendarificURL sets the Calendarific holidays endpoint.
func WithCalendarificURL(u string) Option {
	return func(o *options) {
		if u != "" {
			o.calendarificURL = u
		}
	}
}

// WithCalendarificTypes sets the Calendarific holiday types kept (exact, case-insensitive
// match against any entry of a holiday's "type" list). Empty keeps the default.
func WithCalendarificTypes(types ...string) Option {
	return func(o *options) {
		if len(types) > 0 {
			o.calendarificTypes = append([]string(nil), types...)
		}
	}
}
