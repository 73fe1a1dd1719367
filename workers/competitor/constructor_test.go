package competitor

import (
	"strings"
	"testing"

	"github.com/jengu/queue-operator/workers"
)

func TestNewReadsTheEnvironment(t *testing.T) {
	env := map[string]string{EnvAPIKey: "k", EnvURL: "http://fake/search.json", EnvCurrency: "GBP",
		EnvCountry: "uk", EnvLanguage: "fr", EnvMaxPages: "5"}
	p, err := New(workers.ProcessorDeps{Getenv: func(k string) string { return env[k] }})
	if err != nil {
		t.Fatal(err)
	}
	proc := p.(*Processor)
	serp := proc.provider.(*SerpAPI)
	if proc.apiKey != "k" || proc.currency != "GBP" || serp.baseURL != "http://fake/search.json" ||
		serp.country != "uk" || serp.language != "fr" || serp.maxPages != 5 {
		t.Errorf("processor %+v, provider %+v: want every variable applied", proc, serp)
	}

	env[EnvMaxPages] = "zero"
	if _, err := New(workers.ProcessorDeps{Getenv: func(k string) string { return env[k] }}); err == nil ||
		!strings.Contains(err.Error(), EnvMaxPages) {
		t.Errorf("error %v, want one naming %s", err, EnvMaxPages)
	}
	empty, err := New(workers.ProcessorDeps{Getenv: func(string) string { return "" }})
	if err != nil || empty.(*Processor).currency != DefaultCurrency || empty.(*Processor).provider.MaxPages() != DefaultMaxPages {
		t.Errorf("New without settings = %+v, %v; want the defaults", empty, err)
	}
}
