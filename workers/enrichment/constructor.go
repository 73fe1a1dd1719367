package enrichment

import "github.com/jengu/queue-operator/workers"

// The environment variables New reads. The outside APIs' base URLs can be pointed elsewhere (a
// fake, a self-hosted instance); the Calendarific key turns Calendarific on.
const (
	EnvArchiveURL      = "OPEN_METEO_ARCHIVE_URL"
	EnvForecastURL     = "OPEN_METEO_FORECAST_URL"
	EnvCalendarificURL = "CALENDARIFIC_URL"
	EnvCalendarificKey = "CALENDARIFIC_API_KEY"
)

var _ workers.NewProcessorFunc = New

// New is the enrichment queue's processor as the worker builds it: over deps' store and
// credential Secrets, configured by the environment variables above (an empty one keeps the
// default).
func New(deps workers.ProcessorDeps) (workers.Processor, error) {
	enricher := NewEnricher(
		WithArchiveURL(deps.Env(EnvArchiveURL)),
		WithForecastURL(deps.Env(EnvForecastURL)),
		WithCalendarificURL(deps.Env(EnvCalendarificURL)),
	)
	return NewProcessor(deps.Store, enricher,
		WithCalendarificKey(deps.Env(EnvCalendarificKey)), WithSecrets(deps.Secrets)), nil
}
