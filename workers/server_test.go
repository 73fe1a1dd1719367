package workers_test

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/jengu/queue-operator/metrics"
	"github.com/jengu/queue-operator/workers"
)

func TestServeMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	if err := metrics.RegisterWorker(reg); err != nil {
		t.Fatal(err)
	}
	// Vectors show only their children; this queue name is the test's alone.
	const queue = "serve-metrics-test"
	t.Cleanup(metrics.WorkerJobStarted(queue))

	server, err := workers.ServeMetrics("127.0.0.1:0", reg, logr.Discard())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = server.Close() })
	base := "http://" + server.Addr().String()

	tests := []struct {
		path string
		want []string
	}{
		{path: "/healthz", want: []string{"ok"}},
		{path: "/metrics", want: []string{
			"# TYPE queue_operator_worker_jobs_in_flight gauge",
			`queue_operator_worker_jobs_in_flight{queue="` + queue + `"} 1`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			resp, err := http.Get(base + tt.path)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("GET %s: %s\n%s", tt.path, resp.Status, body)
			}
			for _, w := range tt.want {
				if !strings.Contains(string(body), w) {
					t.Errorf("GET %s: body lacks %q:\n%s", tt.path, w, body)
				}
			}
		})
	}
}

func TestServeMetricsAddressInUse(t *testing.T) {
	first, err := workers.ServeMetrics("127.0.0.1:0", prometheus.NewRegistry(), logr.Discard())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = first.Close() })
	if second, err := workers.ServeMetrics(first.Addr().String(), prometheus.NewRegistry(), logr.Discard()); err == nil {
		_ = second.Close()
		t.Fatal("ServeMetrics on a taken address: no error")
	}
}
