package workers

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/go-logr/logr"
	"github.com/redis/go-redis/v9"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	jobsv1alpha1 "github.com/jengu/queue-operator/api/v1alpha1"
	"github.com/jengu/queue-operator/queue"
)

// Config is one worker process: a queue of a namespace and what it needs to run it.
type Config struct {
	Namespace string
	Queue     jobsv1alpha1.QueueName
	Redis     redis.UniversalClient
	// Kube reads the JobQueue and writes job status; nil runs without either (status then
	// follows through the controller's catch-up alone).
	Kube      client.Client
	Processor Processor
	// Results keeps the history of finished jobs (nil: none).
	Results ResultRecorder
	// Events hears failed attempts with their full error (nil: the log alone has it).
	Events AttemptEvents
	// Concurrency overrides the environment and the JobQueue when above 0.
	Concurrency   int
	WorkerID      string
	ShutdownGrace time.Duration
	// LeaseDuration and HeartbeatInterval default to 30 s and 10 s.
	LeaseDuration, HeartbeatInterval time.Duration
	ProgressInterval                 time.Duration
	Log                              logr.Logger
	// Getenv reads the concurrency variables (os.Getenv when nil).
	Getenv func(string) string
}

// Run runs the worker until ctx ends, then drains: running jobs finish within the grace or go
// back to the queue, and pending status writes are flushed.
func Run(ctx context.Context, cfg Config) error {
	concurrency, err := ResolveConcurrency(ctx, cfg)
	if err != nil {
		return err
	}
	engine := queue.New(cfg.Redis, queue.WithLogger(cfg.Log.WithName("queue")))
	q := engine.Queue(cfg.Namespace, string(cfg.Queue))
	opts := []Option{WithConcurrency(concurrency), WithLogger(cfg.Log), WithWorkerID(cfg.WorkerID)}
	if cfg.Results != nil {
		opts = append(opts, WithResults(cfg.Results))
	}
	if cfg.Events != nil {
		opts = append(opts, WithEvents(cfg.Events))
	}
	if cfg.ShutdownGrace > 0 {
		opts = append(opts, WithShutdownGrace(cfg.ShutdownGrace))
	}
	if cfg.LeaseDuration > 0 && cfg.HeartbeatInterval > 0 {
		opts = append(opts, WithLease(cfg.LeaseDuration, cfg.HeartbeatInterval))
	}
	var writer *CRStatusWriter
	writerCtx, stopWriter := context.WithCancel(context.WithoutCancel(ctx))
	defer stopWriter()
	writerDone := make(chan struct{})
	if cfg.Kube != nil {
		kind, ok := jobsv1alpha1.KindOf(cfg.Queue)
		if !ok {
			return fmt.Errorf("unknown queue %q", cfg.Queue)
		}
		interval := cfg.ProgressInterval
		if interval <= 0 {
			interval = 5 * time.Second
		}
		writer = NewCRStatusWriter(cfg.Kube, q, kind.New, interval, cfg.Log.WithName("status"))
		go func() { defer close(writerDone); writer.Run(writerCtx) }()
		opts = append(opts, WithStatus(writer))
	} else {
		close(writerDone)
	}
	cfg.Log.Info("Worker starting", "namespace", cfg.Namespace, "queue", cfg.Queue, "concurrency", concurrency, "worker", cfg.WorkerID)
	err = NewPool(q, cfg.Processor, opts...).Run(ctx)
	if writer != nil {
		flushCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		writer.Flush(flushCtx)
		cancel()
	}
	stopWriter()
	<-writerDone
	cfg.Log.Info("Worker stopped")
	return err
}

// +kubebuilder:rbac:groups=jobs.jengu.io,resources=jobqueues,verbs=get

// ResolveConcurrency: the flag, else the queue's environment variable
// (ENRICHMENT_WORKER_CONCURRENCY, ...), else the JobQueue's spec, else the seed's value.
func ResolveConcurrency(ctx context.Context, cfg Config) (int, error) {
	if cfg.Concurrency > 0 {
		return cfg.Concurrency, nil
	}
	kind, ok := jobsv1alpha1.KindOf(cfg.Queue)
	if !ok {
		return 0, fmt.Errorf("unknown queue %q", cfg.Queue)
	}
	seed := kind.Seed
	getenv := cfg.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	if v := getenv(seed.ConcurrencyEnv); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return 0, fmt.Errorf("%s=%q: want a positive integer", seed.ConcurrencyEnv, v)
		}
		return n, nil
	}
	if cfg.Kube != nil {
		jq := &jobsv1alpha1.JobQueue{}
		err := cfg.Kube.Get(ctx, client.ObjectKey{Namespace: cfg.Namespace, Name: string(cfg.Queue)}, jq)
		switch {
		case err == nil:
			return int(jq.Spec.Settings().Concurrency), nil
		case !apierrors.IsNotFound(err):
			cfg.Log.Error(err, "Cannot read the JobQueue; using the seed's concurrency")
		}
	}
	return int(seed.Concurrency), nil
}
