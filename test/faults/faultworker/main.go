// Command faultworker is one worker process of the fault suite (test/faults): workers.Run on the
// enrichment queue of a namespace with the suite's processor (test/faults/faultproc). The suite
// builds it, starts several, and kills them with real signals.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	jobsv1alpha1 "github.com/jengu/queue-operator/api/v1alpha1"
	"github.com/jengu/queue-operator/internal/scheme"
	"github.com/jengu/queue-operator/internal/workercmd"
	"github.com/jengu/queue-operator/queue"
	"github.com/jengu/queue-operator/store"
	"github.com/jengu/queue-operator/test/faults/faultproc"
	"github.com/jengu/queue-operator/workers"
)

func main() {
	var (
		namespace, workerID, redisURL, databaseURL, kubeconfig string
		concurrency                                            int
		lease, heartbeat, grace                                time.Duration
	)
	flag.StringVar(&namespace, "namespace", "", "namespace of the enrichment JobQueue")
	flag.StringVar(&workerID, "worker-id", "", "name of this worker in leases and in fault_runs")
	flag.StringVar(&redisURL, "redis-url", "", "the queues' Redis")
	flag.StringVar(&databaseURL, "database-url", "", "PostgreSQL: results, history and the suite's tables")
	flag.StringVar(&kubeconfig, "kubeconfig", "", "kubeconfig of the kube-apiserver")
	flag.IntVar(&concurrency, "concurrency", 2, "jobs at once")
	flag.DurationVar(&lease, "lease", 5*time.Second, "lease duration")
	flag.DurationVar(&heartbeat, "heartbeat", time.Second, "heartbeat interval")
	flag.DurationVar(&grace, "shutdown-grace", 10*time.Second, "on SIGTERM, how long running jobs may finish")
	flag.Parse()
	if err := run(namespace, workerID, redisURL, databaseURL, kubeconfig, concurrency, lease, heartbeat, grace); err != nil {
		fmt.Fprintln(os.Stderr, "faultworker:", err)
		os.Exit(1)
	}
}

func run(namespace, workerID, redisURL, databaseURL, kubeconfig string, concurrency int, lease, heartbeat, grace time.Duration) error {
	log := zap.New(zap.UseDevMode(false)).WithValues("worker", workerID)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return fmt.Errorf("kubeconfig: %w", err)
	}
	cfg.QPS, cfg.Burst = workercmd.DefaultKubeQPS, workercmd.DefaultKubeBurst // as the product's worker
	kube, err := client.New(cfg, client.Options{Scheme: scheme.New()})
	if err != nil {
		return err
	}
	pool, err := pgxpool.New(ctx, databaseURL)
	if err != nil {
		return fmt.Errorf("database: %w", err)
	}
	defer pool.Close()
	db, err := store.Open(ctx, databaseURL)
	if err != nil {
		return err
	}
	defer db.Close()
	rdb, err := queue.NewRedisClient(redisURL)
	if err != nil {
		return err
	}
	defer rdb.Close()
	return workers.Run(ctx, workers.Config{
		Namespace: namespace, Queue: jobsv1alpha1.QueueEnrichment, Redis: rdb, Kube: kube,
		Processor: &faultproc.Processor{DB: pool, Worker: workerID}, Results: db,
		Concurrency: concurrency, WorkerID: workerID, ShutdownGrace: grace,
		LeaseDuration: lease, HeartbeatInterval: heartbeat, ProgressInterval: time.Second, Log: log,
	})
}
