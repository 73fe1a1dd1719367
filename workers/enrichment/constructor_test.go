package enrichment

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/jengu/queue-operator/workers"
)

func TestNewReadsTheEnvironment(t *testing.T) {
	type settings struct{ ArchiveURL, ForecastURL, CalendarificURL, CalendarificKey string }
	tests := []struct {
		name string
		env  map[string]string
		want settings
	}{
		{name: "defaults", want: settings{DefaultArchiveURL, DefaultForecastURL, DefaultCalendarificURL, ""}},
		{name: "overridden", env: map[string]string{
			EnvArchiveURL: "http://archive.test", EnvForecastURL: "http://forecast.test",
			EnvCalendarificURL: "http://calendarific.test", EnvCalendarificKey: "key",
		}, want: settings{"http://archive.test", "http://forecast.test", "http://calendarific.test", "key"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			processor, err := New(workers.ProcessorDeps{Getenv: func(name string) string { return tt.env[name] }})
			if err != nil {
				t.Fatal(err)
			}
			p := processor.(*Processor)
			got := settings{p.enricher.weather.o.archiveURL, p.enricher.weather.o.forecastURL,
				p.enricher.calendarific.o.calendarificURL, p.calendarificKey}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("settings (-want +got):\n%s", diff)
			}
		})
	}
}
