package cmd

import (
	"github.com/go-logr/logr"

	"github.com/jengu/queue-operator/internal/fakeapis"
	"github.com/jengu/queue-operator/workers/enrichment"
)

// EnvFakeAPIs turns on the loopback stand-ins of the outside APIs in `queue-operator dev`.
const EnvFakeAPIs = "FAKE_APIS"

// fakeAPIKey is the Calendarific key the workers send the stand-in, which wants one, as the real
// API does.
const fakeAPIKey = "fake-apis"

// startFakeAPIs starts the stand-ins of the outside APIs and returns the workers' environment
// that points them there, and how to stop them.
func startFakeAPIs(log logr.Logger) (workerEnv []string, stop func()) {
	meteo := fakeapis.NewOpenMeteo(nil)
	meteo.Synthetic = true
	holidays := fakeapis.NewCalendarific(nil)
	holidays.Synthetic = true
	log.Info("Started stand-ins of the outside APIs (FAKE_APIS)", "openMeteo", meteo.Server.URL,
		"calendarific", holidays.URL())
	workerEnv = []string{
		enrichment.EnvArchiveURL + "=" + meteo.ArchiveURL(),
		enrichment.EnvForecastURL + "=" + meteo.ForecastURL(),
		enrichment.EnvCalendarificURL + "=" + holidays.URL(),
		enrichment.EnvCalendarificKey + "=" + fakeAPIKey,
		// The competitor provider's stand-in (workers/competitor/fakeserpapi) is started here too.
	}
	return workerEnv, func() { meteo.Close(); holidays.Close() }
}
