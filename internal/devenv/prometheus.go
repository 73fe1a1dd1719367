package devenv

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
	"sigs.k8s.io/yaml"

	"github.com/jengu/queue-operator/controllers"
	"github.com/jengu/queue-operator/docs"
)

// Scrape job names of the dev processes (the chart's ServiceMonitors name theirs after their
// Services).
const (
	ScrapeJobFacade     = "queue-operator-apiserver"
	ScrapeJobController = "queue-operator-controller"
	ScrapeJobWorker     = "queue-operator-worker"
)

// scrapeTargets are the metrics addresses (host:port) of the dev processes.
type scrapeTargets struct {
	facade, controller string
	workers            []string
}

// scrapeConfig is a Prometheus configuration that scrapes the dev processes every interval and
// evaluates the product's alerts (rulesFile). honor_labels keeps the namespace
// label of the controller's queue series, as the chart's ServiceMonitors do.
func scrapeConfig(t scrapeTargets, interval time.Duration, rulesFile string) ([]byte, error) {
	type staticConfig struct {
		Targets []string `json:"targets"`
	}
	type scrapeJob struct {
		JobName       string         `json:"job_name"`
		MetricsPath   string         `json:"metrics_path"`
		HonorLabels   bool           `json:"honor_labels"`
		StaticConfigs []staticConfig `json:"static_configs"`
	}
	job := func(name string, targets ...string) scrapeJob {
		return scrapeJob{JobName: name, MetricsPath: "/metrics", HonorLabels: true, StaticConfigs: []staticConfig{{Targets: targets}}}
	}
	cfg := map[string]any{
		"global": map[string]string{"scrape_interval": promDuration(interval), "evaluation_interval": promDuration(interval)},
		"scrape_configs": []scrapeJob{
			job(ScrapeJobFacade, t.facade),
			job(ScrapeJobController, t.controller),
			job(ScrapeJobWorker, t.workers...),
		},
	}
	cfg["rule_files"] = []string{rulesFile}
	return yaml.Marshal(cfg)
}

// promDuration writes d as Prometheus reads durations: whole units only ("1.5s" is refused).
func promDuration(d time.Duration) string {
	if d%time.Second == 0 {
		return fmt.Sprintf("%ds", d/time.Second)
	}
	return fmt.Sprintf("%dms", d.Milliseconds())
}

// freeLoopbackAddress is a loopback address with a port nobody listens on now, for a process
// that takes its address as a flag.
func freeLoopbackAddress() (string, error) {
	addrs, err := freeLoopbackAddresses(1)
	if err != nil {
		return "", err
	}
	return addrs[0], nil
}

// freeLoopbackAddresses returns n distinct free loopback addresses: every port stays bound until
// all are chosen, so the kernel cannot hand the same one out twice.
func freeLoopbackAddresses(n int) ([]string, error) {
	var addrs []string
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		defer l.Close()
		addrs = append(addrs, l.Addr().String())
	}
	return addrs, nil
}

// serveControllerMetrics serves the controller's /metrics (controller-runtime's registry, the
// controller's collectors registered in it) on a free loopback port until ctx ends, and returns
// its address.
func serveControllerMetrics(ctx context.Context, log logr.Logger) (string, error) {
	if err := controllers.RegisterMetrics(); err != nil {
		return "", fmt.Errorf("register the controller's metrics: %w", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("controller metrics: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(ctrlmetrics.Registry, promhttp.HandlerOpts{}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error(err, "Controller metrics server stopped")
		}
	}()
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	return l.Addr().String(), nil
}

// writeScrapeConfig writes the scrape config and the product's alerts (docs/monitoring/alerts.yaml)
// into the state directory and prints the config.
func writeScrapeConfig(opts Options, t scrapeTargets) (string, error) {
	rules, err := filepath.Abs(filepath.Join(opts.StateDir, "alerts.yaml"))
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(rules, docs.Alerts, 0o644); err != nil {
		return "", fmt.Errorf("write the alerts: %w", err)
	}
	cfg, err := scrapeConfig(t, opts.ScrapeInterval, rules)
	if err != nil {
		return "", err
	}
	file, err := filepath.Abs(filepath.Join(opts.StateDir, "prometheus.yml"))
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(file, cfg, 0o644); err != nil {
		return "", fmt.Errorf("write the scrape config: %w", err)
	}
	fmt.Fprintf(opts.Out, "Prometheus scrape config of these processes (%s):\n\n%s\n", file, indent(string(cfg), "  "))
	return file, nil
}

func indent(s, prefix string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return prefix + strings.Join(lines, "\n"+prefix)
}

// PrometheusBinary is the Prometheus the dev environment starts: $PROMETHEUS_BIN, else
// `prometheus` on the PATH (Debian's package installs it).
func PrometheusBinary() (string, error) {
	if bin := os.Getenv("PROMETHEUS_BIN"); bin != "" {
		return bin, nil
	}
	bin, err := exec.LookPath("prometheus")
	if err != nil {
		return "", fmt.Errorf("prometheus is not installed (apt-get install prometheus, or set PROMETHEUS_BIN): %w", err)
	}
	return bin, nil
}

// startPrometheus runs Prometheus on the config, with its data in the state directory, on a
// free loopback port; it returns its URL and a function that stops it.
func startPrometheus(log logr.Logger, opts Options, config string) (string, func(), error) {
	bin, err := PrometheusBinary()
	if err != nil {
		return "", nil, err
	}
	addr, err := freeLoopbackAddress()
	if err != nil {
		return "", nil, err
	}
	data, err := filepath.Abs(filepath.Join(opts.StateDir, "prometheus-data"))
	if err != nil {
		return "", nil, err
	}
	cmd := exec.Command(bin, "--config.file="+config, "--storage.tsdb.path="+data,
		"--web.listen-address="+addr, "--storage.tsdb.retention.time=1d", "--log.level=warn")
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Start(); err != nil {
		return "", nil, fmt.Errorf("start prometheus: %w", err)
	}
	log.Info("Started Prometheus", "address", addr, "pid", cmd.Process.Pid)
	return "http://" + addr, func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	}, nil
}
