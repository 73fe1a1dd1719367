package controllers

import (
	"context"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	jobsv1alpha1 "github.com/jengu/queue-operator/api/v1alpha1"
	"github.com/jengu/queue-operator/metrics"
	"github.com/jengu/queue-operator/queue"
	"github.com/jengu/queue-operator/store"
)

// Options tune the controllers.
type Options struct {
	// ResyncPeriod is how often a live job is reconciled although no event asked for it: the
	// full pass that catches anything the event stream missed (a flushed Redis included).
	ResyncPeriod time.Duration
	// RedisDownGrace is how long a deleted job's finalizer waits for an unreachable Redis.
	RedisDownGrace time.Duration
	// HousekeepingInterval is how often each queue is swept for stalled leases, expired records
	// and orphans.
	HousekeepingInterval time.Duration
	// OrphanAge: a Redis record without its CR is removed only once it is this old, so a record
	// is never raced against the cache that has not seen its new CR yet.
	OrphanAge time.Duration
	// MaxStalls is how often a job may lose its worker before it fails.
	MaxStalls int
	// Clock is the controllers' clock.
	Clock clock.Clock
	// WorkerImage runs the workers of a JobQueue whose spec names no image.
	WorkerImage string
	// RedisURL is given to the workers (REDIS_URL) in plain text when WorkerPlainRedisURL is set
	// and neither their template nor the JobQueue's redisURLSecretRef gives it.
	RedisURL string
	// WorkerPlainRedisURL allows RedisURL in plain text in worker Deployments.
	WorkerPlainRedisURL bool
	// WorkerServiceAccount runs the worker pods of a JobQueue whose template names no service
	// account (empty: the namespace's default).
	WorkerServiceAccount string
	// StatusGrace is how long the controller leaves a job's CR lagging its record before it
	// writes the status itself: the worker writes its own transitions within its start delay
	// (workers.DefaultStartWriteDelay, which must stay below it), and a job started within the
	// grace never has its Waiting written. A job's end (Completed, Failed) is written at once
	// whatever the grace. Zero writes everything at once.
	StatusGrace time.Duration
	// ScheduleRecheck bounds how long a JobSchedule waits between reconciles; 0 waits until
	// its next run (tests with an injected clock set it, since requeues go by the real clock).
	ScheduleRecheck time.Duration
	// History receives each finished job's row before its CR expires, and tells a job that
	// completed from one that Redis lost before it ran (nil: only the workers write the
	// history, and a lost record is always enqueued again).
	History History
}

// History keeps how jobs ended; *store.Store is one.
type History interface {
	RecordJobResultIfLater(ctx context.Context, r store.JobResult) error
	GetJobResult(ctx context.Context, namespace, jobID string) (store.JobResult, error)
	// ReleaseAnalyticsInput deletes the stored input of an AnalyticsJob deleted before it
	// finished (cancelled), which no history row will release.
	ReleaseAnalyticsInput(ctx context.Context, id, userID, propertyID string) error
}

var _ History = (*store.Store)(nil)

// DefaultWorkerImage is the product's one image, which runs `queue-operator worker`.
const DefaultWorkerImage = "ghcr.io/jengu/queue-operator:latest"

// DefaultKubeQPS and DefaultKubeBurst are the controller's client-side rate limits towards the
// kube-apiserver.
const (
	DefaultKubeQPS   = 50
	DefaultKubeBurst = 100
)

// DefaultOptions are the production settings.
func DefaultOptions() Options {
	return Options{
		WorkerImage:          DefaultWorkerImage,
		WorkerPlainRedisURL:  true,
		ResyncPeriod:         5 * time.Minute,
		RedisDownGrace:       5 * time.Minute,
		HousekeepingInterval: 5 * time.Second,
		OrphanAge:            time.Minute,
		MaxStalls:            1,
		StatusGrace:          DefaultStatusGrace,
		Clock:                clock.RealClock{},
	}
}

// DefaultStatusGrace is Options.StatusGrace in production.
const DefaultStatusGrace = 2 * time.Second

// jobKind is a job kind as the controllers run it: the kind, and the channel through which
// the engine's events (followed by the housekeeping) bring its jobs back to its reconciler.
type jobKind struct {
	jobsv1alpha1.JobKind
	events chan event.GenericEvent
}

// SetupWithManager registers a job reconciler and a chain reconciler for each kind, the
// JobSchedule reconciler, the per-queue housekeeping and the JobQueue reconciler.
func SetupWithManager(mgr ctrl.Manager, engine *queue.Engine, opts Options) error {
	var kinds []*jobKind
	for _, k := range jobsv1alpha1.JobKinds {
		kind := &jobKind{JobKind: k, events: make(chan event.GenericEvent, 1024)}
		if err := setupJobKind(mgr, engine, opts, kind); err != nil {
			return err
		}
		kinds = append(kinds, kind)
		if err := setupChain(mgr, k); err != nil {
			return err
		}
	}
	if err := setupSchedules(mgr, opts); err != nil {
		return err
	}
	housekeeping := newHousekeeper(mgr.GetClient(), mgr.GetAPIReader(), mgr.GetEventRecorder("queue-operator"), engine, opts, kinds)
	if err := mgr.Add(housekeeping); err != nil {
		return err
	}
	metrics.SetQueueStatsSource(queueStatsOf(engine, housekeeping))
	return ctrl.NewControllerManagedBy(mgr).
		Named("jobqueue").
		// Status writes of its own do not bring it back; the polling interval does.
		For(&jobsv1alpha1.JobQueue{}, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Owns(&appsv1.Deployment{}).
		// A worker pod that crashes or cannot pull its image shows in WorkersAvailable within
		// seconds, not at the next poll. The cache holds worker pods only (NewManager).
		Watches(&corev1.Pod{}, handler.EnqueueRequestsFromMapFunc(jobQueueOfWorkerPod)).
		Complete(&JobQueueReconciler{client: mgr.GetClient(), reader: mgr.GetAPIReader(), housekeeping: housekeeping, engine: engine,
			recorder: mgr.GetEventRecorder("queue-operator"), clock: opts.Clock, opts: opts})
}

func setupJobKind(mgr ctrl.Manager, engine *queue.Engine, opts Options, kind *jobKind) error {
	r := &JobReconciler{
		kind:     kind.JobKind,
		client:   mgr.GetClient(),
		status:   freshReads{Client: mgr.GetClient(), reader: mgr.GetAPIReader()},
		engine:   engine,
		recorder: mgr.GetEventRecorder("queue-operator"),
		clock:    opts.Clock,
		lag:      newStatusLag(opts.StatusGrace),
		opts:     opts,
	}
	return ctrl.NewControllerManagedBy(mgr).
		Named(string(kind.Queue)+"-job").
		For(kind.New()).
		// A JobQueue that appears (or changes) brings back the jobs of its queue that waited.
		Watches(&jobsv1alpha1.JobQueue{}, handler.EnqueueRequestsFromMapFunc(jobsOfQueue(mgr.GetClient(), kind.JobKind)),
			builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		// The engine's event stream (through the housekeeping) brings back a job whose record moved.
		WatchesRawSource(source.Channel(kind.events, &handler.EnqueueRequestForObject{})).
		Complete(r)
}

// jobsOfQueue maps a JobQueue to the jobs of its kind in its namespace.
func jobsOfQueue(c client.Client, kind jobsv1alpha1.JobKind) handler.MapFunc {
	return func(ctx context.Context, o client.Object) []reconcile.Request {
		jq, ok := o.(*jobsv1alpha1.JobQueue)
		if !ok || jq.Spec.Queue != kind.Queue {
			return nil
		}
		list := kind.NewList()
		if err := c.List(ctx, list, client.InNamespace(jq.Namespace)); err != nil {
			return nil
		}
		reqs := make([]reconcile.Request, 0, len(list.Jobs()))
		for _, job := range list.Jobs() {
			reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(job)})
		}
		return reqs
	}
}

// queueStatsOf reads the lifetime job counters of the queues the housekeeping keeps: those of
// every JobQueue while this replica leads, none while it does not.
func queueStatsOf(engine *queue.Engine, h *housekeeper) metrics.QueueStatsSource {
	return func(ctx context.Context) ([]metrics.QueueStats, error) {
		queues := h.kept()
		stats, err := engine.ReadStats(ctx, queues...)
		if err != nil {
			return nil, err
		}
		out := make([]metrics.QueueStats, len(queues))
		for i, q := range queues {
			out[i] = metrics.QueueStats{Namespace: q.Namespace, Queue: q.Name, Stats: stats[i]}
		}
		return out, nil
	}
}
