package devenv

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/jengu/queue-operator/docs"
	"github.com/jengu/queue-operator/internal/testprom"
)

// TestScrapeConfigPassesPromtool: the config `make dev` prints scrapes every process with honor
// labels and loads the alerts, and Prometheus' own checker accepts it.
func TestScrapeConfigPassesPromtool(t *testing.T) {
	dir := t.TempDir()
	rules := filepath.Join(dir, "alerts.yaml")
	if err := os.WriteFile(rules, docs.Alerts, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := scrapeConfig(scrapeTargets{facade: "127.0.0.1:3001", controller: "127.0.0.1:40001",
		workers: []string{"127.0.0.1:40002", "127.0.0.1:40003"}}, 1500*time.Millisecond, rules)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), cfg, 0o600); err != nil {
		t.Fatal(err)
	}
	out := testprom.Promtool(t, dir, "check", "config", "prometheus.yml")
	if !strings.Contains(out, "SUCCESS: 6 rules found") {
		t.Errorf("promtool check config:\n%s", out)
	}
	var parsed struct {
		Global        map[string]string `json:"global"`
		ScrapeConfigs []struct {
			JobName       string `json:"job_name"`
			HonorLabels   bool   `json:"honor_labels"`
			StaticConfigs []struct {
				Targets []string `json:"targets"`
			} `json:"static_configs"`
		} `json:"scrape_configs"`
	}
	if err := yaml.Unmarshal(cfg, &parsed); err != nil {
		t.Fatal(err)
	}
	got := map[string][]string{}
	for _, j := range parsed.ScrapeConfigs {
		if !j.HonorLabels {
			t.Errorf("%s does not honor labels", j.JobName)
		}
		got[j.JobName] = j.StaticConfigs[0].Targets
	}
	want := map[string][]string{ScrapeJobFacade: {"127.0.0.1:3001"}, ScrapeJobController: {"127.0.0.1:40001"},
		ScrapeJobWorker: {"127.0.0.1:40002", "127.0.0.1:40003"}}
	for job, targets := range want {
		if strings.Join(got[job], ",") != strings.Join(targets, ",") {
			t.Errorf("%s targets %v, want %v", job, got[job], targets)
		}
	}
	if parsed.Global["scrape_interval"] != "1500ms" {
		t.Errorf("global = %v, want a 1500ms scrape interval", parsed.Global)
	}
}
