package cmd

import (
	"fmt"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	jobsv1alpha1 "github.com/jengu/queue-operator/api/v1alpha1"
	"github.com/jengu/queue-operator/internal/scheme"
	"github.com/jengu/queue-operator/internal/workercmd"
	"github.com/jengu/queue-operator/metrics"
	"github.com/jengu/queue-operator/store"
	"github.com/jengu/queue-operator/workers"
)

// workerOptions are the worker's flags; internal/workercmd writes the ones others pass.
type workerOptions struct {
	Queue, Namespace, RedisURL string
	Concurrency                int
	MetricsAddr                string
	ShutdownGrace              time.Duration
	WorkerID                   string
	QPS                        float32
	Burst                      int
}

func newWorkerOptions() *workerOptions { return &workerOptions{} }

func (o *workerOptions) command() *cobra.Command {
	cmd := &cobra.Command{
		Use:   workercmd.Name,
		Short: "Process the jobs of one queue (--queue enrichment|competitor|analytics-heavy)",
		RunE:  func(*cobra.Command, []string) error { return o.run() },
	}
	f := cmd.Flags()
	f.StringVar(&o.Queue, workercmd.FlagQueue, "", "queue to process: enrichment, competitor or analytics-heavy")
	bindNamespace(f, &o.Namespace, "the queue")
	bindRedisURL(f, &o.RedisURL)
	f.IntVar(&o.Concurrency, workercmd.FlagConcurrency, 0, "jobs at once; 0: the queue's *_WORKER_CONCURRENCY env, else the JobQueue, else the seed's")
	f.StringVar(&o.MetricsAddr, workercmd.FlagMetricsBindAddress, workercmd.DefaultMetricsAddr,
		`address of the worker's /metrics and /healthz ("`+workercmd.MetricsOff+`" turns it off)`)
	f.DurationVar(&o.ShutdownGrace, workercmd.FlagShutdownGrace, workercmd.DefaultShutdownGrace, "on SIGTERM, how long running jobs may finish before they are handed back")
	f.StringVar(&o.WorkerID, workercmd.FlagWorkerID, "", "name of this worker in leases (default host-pid)")
	bindKubeRateLimits(f, &o.QPS, &o.Burst, workercmd.DefaultKubeQPS, workercmd.DefaultKubeBurst,
		"kube-apiserver requests per second (job status writes)")
	_ = cmd.MarkFlagRequired(workercmd.FlagQueue)
	return cmd
}

func (o *workerOptions) run() error {
	log := zap.New()
	ctrl.SetLogger(log)
	queueName := jobsv1alpha1.QueueName(o.Queue)
	// Refuse a queue without a processor before connecting anywhere.
	if _, err := processors.For(queueName); err != nil {
		return fmt.Errorf("%w: %q is not a queue of this build (its queues: %s)", err, queueName, processors.Queues())
	}
	ctx := ctrl.SetupSignalHandler()

	kubeconfig, err := kubeConfig(o.QPS, o.Burst)
	if err != nil {
		return err
	}
	sch := scheme.New()
	kube, err := client.New(kubeconfig, client.Options{Scheme: sch})
	if err != nil {
		return err
	}
	kind, _ := jobsv1alpha1.KindOf(queueName)
	events, err := workers.NewKubeEvents(ctx, kubeconfig, sch, kind.New, o.Namespace)
	if err != nil {
		return err
	}
	db, err := store.OpenFromEnv(ctx, os.Getenv, log)
	if err != nil {
		return err
	}
	defer db.Close()
	processor, err := processors.New(queueName, workers.ProcessorDeps{Store: db, Secrets: workers.KubeSecrets{Client: kube}, Getenv: os.Getenv})
	if err != nil {
		return err
	}
	rdb, err := openRedis(ctx, o.RedisURL, log)
	if err != nil {
		return err
	}
	defer rdb.Close()
	workerID := o.WorkerID
	if workerID == "" {
		host, _ := os.Hostname()
		workerID = fmt.Sprintf("%s-%d", host, os.Getpid())
	}
	if o.MetricsAddr != workercmd.MetricsOff {
		reg := prometheus.NewRegistry()
		if err := metrics.RegisterWorker(reg); err != nil {
			return err
		}
		server, err := workers.ServeMetrics(o.MetricsAddr, reg, log)
		if err != nil {
			return err
		}
		defer server.Close()
	}
	return workers.Run(ctx, workers.Config{
		Namespace: o.Namespace, Queue: queueName, Redis: rdb, Kube: kube, Processor: processor, Results: db, Events: events,
		Concurrency: o.Concurrency, WorkerID: workerID, ShutdownGrace: o.ShutdownGrace, Log: log.WithName("worker"),
	})
}
