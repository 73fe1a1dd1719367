package cmd

import (
	"github.com/go-logr/logr"

	"github.com/jengu/queue-operator/internal/fakeapis"
	"github.com/jengu/queue-operator/workers/competitor"
	"github.com/jengu/queue-operator/workers/competitor/fakeserpapi"
	"github.com/jengu/queue-operator/workers/enrichment"
)

// EnvFakeAPIs turns on the loopback stand-ins of the outside APIs in `queue-operator dev`.
const EnvFakeAPIs = "FAKE_APIS"

// fakeAPIKey is the key the workers send the Calendarific and SerpApi stand-ins, which want
// one, as the real APIs do.
const fakeAPIKey = "fake-apis"

// startFakeAPIs starts the stand-ins of the outside APIs and returns the workers' environment
// that points them there, and how to stop them.
func startFakeAPIs(log logr.Logger) (workerEnv []string, stop func()) {
	meteo := fakeapis.NewOpenMeteo(nil)
	meteo.Synthetic = true
	holidays := fakeapis.NewCalendarific(nil)
	holidays.Synthetic = true
	hotels := fakeserpapi.New(fakeserpapi.WithAPIKey(fakeAPIKey), fakeserpapi.WithHotels(fakeserpapi.DemoHotels(45, 2, 1)...))
	log.Info("Started stand-ins of the outside APIs (FAKE_APIS)", "openMeteo", meteo.Server.URL,
		"calendarific", holidays.URL(), "serpApi", hotels.Endpoint())
	workerEnv = []string{
		enrichment.EnvArchiveURL + "=" + meteo.ArchiveURL(),
		enrichment.EnvForecastURL + "=" + meteo.ForecastURL(),
		enrichment.EnvCalendarificURL + "=" + holidays.URL(),
		enrichment.EnvCalendarificKey + "=" + fakeAPIKey,
		competitor.EnvURL + "=" + hotels.Endpoint(),
		competitor.EnvAPIKey + "=" + fakeAPIKey,
	}
	return workerEnv, func() { meteo.Close(); holidays.Close(); hotels.Close() }
}
