package cmd_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"

	"github.com/jengu/queue-operator/docs"
	"github.com/jengu/queue-operator/internal/devenv"
	"github.com/jengu/queue-operator/internal/testenv"
	"github.com/jengu/queue-operator/internal/testprom"
)

// promResult is the answer of Prometheus' HTTP API.
type promResult struct {
	Status    string          `json:"status"`
	ErrorType string          `json:"errorType"`
	Error     string          `json:"error"`
	Data      json.RawMessage `json:"data"`
}

// promGet calls Prometheus' HTTP API.
func promGet(g Gomega, base, path string, query url.Values) promResult {
	resp, err := http.Get(base + path + "?" + query.Encode())
	g.Expect(err).NotTo(HaveOccurred())
	defer resp.Body.Close()
	var out promResult
	g.Expect(json.NewDecoder(resp.Body).Decode(&out)).To(Succeed())
	return out
}

// instant evaluates expr now; it fails g when Prometheus refuses it (it does not parse, or names
// a function it lacks) and returns the number of series (or 1 for a scalar) it gave.
func instant(g Gomega, base, expr string) int {
	res := promGet(g, base, "/api/v1/query", url.Values{"query": {expr}})
	g.Expect(res.Status).To(Equal("success"), "%s: %s %s", expr, res.ErrorType, res.Error)
	var data struct {
		ResultType string            `json:"resultType"`
		Result     []json.RawMessage `json:"result"`
	}
	g.Expect(json.Unmarshal(res.Data, &data)).To(Succeed())
	if data.ResultType == "scalar" {
		return 1
	}
	return len(data.Result)
}

// grafanaVars stands in for Grafana's variables: every namespace and queue, a rate window of a
// few scrapes.
var grafanaVars = strings.NewReplacer("$namespace", ".*", "$queue", ".*", "$__rate_interval", "1m")

var productSeries = regexp.MustCompile(`\b(?:queue_operator|bullmq)_[a-z0-9_]+\b`)

// TestDevPrometheusEvaluatesEveryPanelAndAlert is `make dev PROMETHEUS=1`: the system and a real
// Prometheus scraping the facade, the controller and the workers on loopback, with the product's
// alerts loaded. A few jobs run, some fail; then every expression of every dashboard panel and
// alert is evaluated through Prometheus' HTTP API: each parses, each panel returns data, and
// every series any of them names is exported by some process.
func TestDevPrometheusEvaluatesEveryPanelAndAlert(t *testing.T) {
	testprom.Ensure(t)
	g := NewWithT(t)
	d := startDev(t, "--prometheus", "--prometheus-scrape-interval=1s")
	select {
	case <-d.up:
	case <-time.After(3 * time.Minute):
		t.Fatalf("dev did not come up within 3 minutes:\n%s", d.output())
	}
	g.Expect(d.prometheus).To(HavePrefix("http://127.0.0.1:"), "dev printed no Prometheus address:\n%s", d.output())
	g.Expect(d.output()).To(And(ContainSubstring("Prometheus scrape config"), ContainSubstring("job_name: "+devenv.ScrapeJobController)))

	// Every process is a target, and up.
	g.Eventually(func(g Gomega) {
		for _, job := range []string{devenv.ScrapeJobFacade, devenv.ScrapeJobController, devenv.ScrapeJobWorker} {
			g.Expect(instant(g, d.prometheus, fmt.Sprintf(`up{job=%q} == 1`, job))).To(BeNumerically(">=", 1), "%s is not up", job)
		}
	}).WithTimeout(2*time.Minute).WithPolling(2*time.Second).Should(Succeed(), func() string { return d.output() })

	// Jobs: an enrichment and a competitor search complete; two competitor searches naming a
	// credential Secret that does not exist fail at once (permanent).
	sample, err := os.Open(filepath.Join(testenv.RepoRoot(), "config", "samples", devenv.SampleFile))
	g.Expect(err).NotTo(HaveOccurred())
	defer sample.Close()
	code, upload := d.call(g, http.MethodPost, "/api/files?latitude=41.39&longitude=2.17&countryCode=ES", "text/csv", sample)
	g.Expect(code).To(Equal(http.StatusCreated), "%v", upload)
	file := upload["fileId"].(string)
	enqueue := func(route, body string) string {
		code, enqueued := d.call(g, http.MethodPost, "/api/files/"+file+route, "application/json", strings.NewReader(body))
		g.Expect(code).To(Equal(http.StatusAccepted), "%v", enqueued)
		return enqueued["jobId"].(string)
	}
	search := `{"location": "Barcelona", "checkIn": "2025-01-10", "checkOut": "2025-01-12", "adults": 2, "currency": "EUR"%s}`
	completes := []string{enqueue("/enrich", "{}"), enqueue("/competitors", fmt.Sprintf(search, ""))}
	fails := []string{
		enqueue("/competitors", fmt.Sprintf(search, `, "credentialSecretName": "no-such-secret"`)),
		enqueue("/competitors", fmt.Sprintf(search, `, "credentialSecretName": "no-such-secret-either"`)),
	}
	for _, job := range completes {
		d.awaitCompleted(g, job)
	}
	for _, job := range fails {
		g.Eventually(func(g Gomega) {
			_, answer := d.call(g, http.MethodGet, "/api/jobs/"+job, "", nil)
			g.Expect(answer["job"]).To(HaveKeyWithValue("status", "failed"))
		}).WithTimeout(3*time.Minute).WithPolling(time.Second).Should(Succeed(), func() string { return d.output() })
	}

	// Prometheus has the lifetime counters of those jobs, from the controller.
	g.Eventually(func(g Gomega) {
		g.Expect(instant(g, d.prometheus, `sum(queue_operator_jobs_completed_total) >= 2`)).To(Equal(1))
		g.Expect(instant(g, d.prometheus, `sum(queue_operator_jobs_failed_total{reason="permanent"}) >= 2`)).To(Equal(1))
		g.Expect(instant(g, d.prometheus, `sum(queue_operator_job_pickup_seconds_count) >= 4`)).To(Equal(1))
	}).WithTimeout(time.Minute).WithPolling(2 * time.Second).Should(Succeed())

	exprs, err := docs.MonitoringExpressions()
	g.Expect(err).NotTo(HaveOccurred())
	// Every series named anywhere is exported: an alert on absent() or `or` would not show it.
	names := map[string]string{}
	for _, e := range exprs {
		for _, n := range productSeries.FindAllString(e.Expr, -1) {
			names[n] = e.Where
		}
	}
	g.Expect(names).NotTo(BeEmpty())
	g.Eventually(func(g Gomega) {
		for n, where := range names {
			g.Expect(instant(g, d.prometheus, fmt.Sprintf(`count({__name__=%q})`, n))).To(Equal(1),
				"%s names %s, which no process exports", where, n)
		}
	}).WithTimeout(time.Minute).WithPolling(2 * time.Second).Should(Succeed())
	// Each expression parses; each panel's returns data.
	g.Eventually(func(g Gomega) {
		for _, e := range exprs {
			n := instant(g, d.prometheus, grafanaVars.Replace(e.Expr))
			if e.Panel {
				g.Expect(n).To(BeNumerically(">", 0), "%s returned no data: %s", e.Where, e.Expr)
			}
		}
	}).WithTimeout(time.Minute).WithPolling(2 * time.Second).Should(Succeed())
	// Prometheus loaded the alerts and evaluates each without error.
	g.Eventually(func(g Gomega) {
		res := promGet(g, d.prometheus, "/api/v1/rules", url.Values{"type": {"alert"}})
		g.Expect(res.Status).To(Equal("success"))
		var data struct {
			Groups []struct {
				Rules []struct {
					Name, Health, LastError string
				} `json:"rules"`
			} `json:"groups"`
		}
		g.Expect(json.Unmarshal(res.Data, &data)).To(Succeed())
		loaded := 0
		for _, grp := range data.Groups {
			for _, r := range grp.Rules {
				loaded++
				g.Expect(r.Health).To(Equal("ok"), "alert %s: %s", r.Name, r.LastError)
			}
		}
		g.Expect(loaded).To(Equal(6))
	}).WithTimeout(time.Minute).WithPolling(2 * time.Second).Should(Succeed())
}
