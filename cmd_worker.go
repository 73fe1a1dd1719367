package main

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	jobsv1alpha1 "github.com/jengu/queue-operator/api/v1alpha1"
	"github.com/jengu/queue-operator/internal/scheme"
	"github.com/jengu/queue-operator/metrics"
	"github.com/jengu/queue-operator/store"
	"github.com/jengu/queue-operator/workers"
	"github.com/jengu/queue-operator/workers/enrichment"
)

// newRegistry builds this build's processors over db; the competitor and analytics issues add
// theirs. The outside APIs' base URLs can be overridden (OPEN_METEO_ARCHIVE_URL,
// OPEN_METEO_FORECAST_URL, CALENDARIFIC_URL); CALENDARIFIC_API_KEY turns Calendarific on.
func newRegistry(db *store.Store, secrets workers.SecretReader) workers.Registry {
	var opts []enrichment.Option
	if u := os.Getenv("OPEN_METEO_ARCHIVE_URL"); u != "" {
		opts = append(opts, enrichment.WithArchiveURL(u))
	}
	if u := os.Getenv("OPEN_METEO_FORECAST_URL"); u != "" {
		opts = append(opts, enrichment.WithForecastURL(u))
	}
	if u := os.Getenv("CALENDARIFIC_URL"); u != "" {
		opts = append(opts, enrichment.WithCalendarificURL(u))
	}
	return workers.Registry{
		string(jobsv1alpha1.QueueEnrichment): enrichment.NewProcessor(db, enrichment.NewEnricher(opts...),
			enrichment.WithCalendarificKey(os.Getenv("CALENDARIFIC_API_KEY")), enrichment.WithSecrets(secrets)),
	}
}

// processorQueues are the queues that have a processor in this build.
func processorQueues() []string {
	var queues []string
	for q := range newRegistry(nil, nil) {
		queues = append(queues, q)
	}
	return queues
}

func newWorkerCommand() *cobra.Command {
	var (
		queueName   string
		redisURL    string
		metricsAddr string
		cfg         = workers.Config{}
	)
	cmd := &cobra.Command{
		Use:   "worker",
		Short: "Process the jobs of one queue (--queue enrichment|competitor|analytics-heavy)",
		RunE: func(cmd *cobra.Command, _ []string) error {
			log := zap.New()
			ctrl.SetLogger(log)
			cfg.Log, cfg.Queue = log.WithName("worker"), jobsv1alpha1.QueueName(queueName)
			if _, err := newRegistry(nil, nil).For(queueName); errors.Is(err, workers.ErrNoProcessor) {
				return fmt.Errorf("%w: the %s processor is not built yet", err, queueName)
			} else if err != nil {
				return err
			}
			ctx := ctrl.SetupSignalHandler()

			kubeconfig, err := ctrl.GetConfig()
			if err != nil {
				return fmt.Errorf("kubeconfig: %w", err)
			}
			if cfg.Kube, err = client.New(kubeconfig, client.Options{Scheme: scheme.New()}); err != nil {
				return err
			}
			db, err := store.OpenFromEnv(ctx, os.Getenv, log)
			if err != nil {
				return err
			}
			defer db.Close()
			cfg.Results = db
			if cfg.Processor, err = newRegistry(db, workers.KubeSecrets{Client: cfg.Kube}).For(queueName); err != nil {
				return err
			}
			rdb, err := openRedis(ctx, redisURL, log)
			if err != nil {
				return err
			}
			defer rdb.Close()
			cfg.Redis = rdb
			if cfg.WorkerID == "" {
				host, _ := os.Hostname()
				cfg.WorkerID = fmt.Sprintf("%s-%d", host, os.Getpid())
			}
			if metricsAddr != "0" {
				reg := prometheus.NewRegistry()
				if err := metrics.RegisterWorker(reg); err != nil {
					return err
				}
				mux := http.NewServeMux()
				mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
				// Alive while the process serves; Kubernetes restarts a wedged worker, and its
				// leases come back through the stall sweep.
				mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) })
				server := &http.Server{Addr: metricsAddr, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
				go func() {
					if err := server.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
						log.Error(err, "Metrics server")
					}
				}()
				defer server.Close()
			}
			return workers.Run(ctx, cfg)
		},
	}
	f := cmd.Flags()
	f.StringVar(&queueName, "queue", "", "queue to process: enrichment, competitor or analytics-heavy")
	f.StringVar(&cfg.Namespace, "namespace", envOr("POD_NAMESPACE", "default"), "namespace of the queue (env POD_NAMESPACE)")
	f.StringVar(&redisURL, "redis-url", envOr("REDIS_URL", "redis://127.0.0.1:6379/0"), "Redis of the queues (env REDIS_URL)")
	f.IntVar(&cfg.Concurrency, "concurrency", 0, "jobs at once; 0: the queue's *_WORKER_CONCURRENCY env, else the JobQueue, else the seed's")
	f.StringVar(&metricsAddr, "metrics-bind-address", ":8082", `address of the worker's /metrics and /healthz ("0" turns it off)`)
	f.DurationVar(&cfg.ShutdownGrace, "shutdown-grace", 25*time.Second, "on SIGTERM, how long running jobs may finish before they are handed back")
	f.StringVar(&cfg.WorkerID, "worker-id", "", "name of this worker in leases (default host-pid)")
	_ = cmd.MarkFlagRequired("queue")
	return cmd
}
