package controllers

import (
	"context"
	"errors"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/manager"

	jobsv1alpha1 "github.com/jengu/queue-operator/api/v1alpha1"
	"github.com/jengu/queue-operator/internal/ctxsleep"
	"github.com/jengu/queue-operator/queue"
)

// housekeeper runs, for every JobQueue, a follower of the queue's event stream (each job event
// brings the job's CR back to its reconciler) and a periodic sweep: stalled leases reclaimed,
// the queue's rate limit set, expired records and orphans removed.
type housekeeper struct {
	client client.Client
	engine *queue.Engine
	opts   Options
	kinds  map[jobsv1alpha1.QueueName]*jobKind
}

var (
	_ manager.Runnable               = &housekeeper{}
	_ manager.LeaderElectionRunnable = &housekeeper{}
)

func newHousekeeper(c client.Client, engine *queue.Engine, opts Options, kinds []*jobKind) *housekeeper {
	h := &housekeeper{client: c, engine: engine, opts: opts, kinds: map[jobsv1alpha1.QueueName]*jobKind{}}
	for _, k := range kinds {
		h.kinds[k.Queue] = k
	}
	return h
}

// NeedLeaderElection: only the leader sweeps and follows.
func (h *housekeeper) NeedLeaderElection() bool { return true }

// Start follows the JobQueues that exist, starting and stopping their loops as they come and go.
func (h *housekeeper) Start(ctx context.Context) error {
	log := logf.FromContext(ctx).WithName("housekeeping")
	var wg sync.WaitGroup
	defer wg.Wait()
	running := map[client.ObjectKey]context.CancelFunc{}
	ticker := time.NewTicker(time.Second)
	defer ticker.Stop()
	for {
		queues := &jobsv1alpha1.JobQueueList{}
		if err := h.client.List(ctx, queues); err != nil {
			log.Error(err, "List JobQueues")
		} else {
			seen := map[client.ObjectKey]bool{}
			for i := range queues.Items {
				key := client.ObjectKeyFromObject(&queues.Items[i])
				seen[key] = true
				if running[key] != nil {
					continue
				}
				qctx, cancel := context.WithCancel(ctx)
				running[key] = cancel
				q := h.engine.Queue(key.Namespace, string(queues.Items[i].Spec.Queue))
				kind := h.kinds[queues.Items[i].Spec.Queue]
				qlog := log.WithValues("namespace", key.Namespace, "queue", q.Name)
				wg.Go(func() { h.follow(logf.IntoContext(qctx, qlog), q, kind) })
				wg.Go(func() { h.sweepLoop(logf.IntoContext(qctx, qlog), key, q, kind) })
			}
			for key, cancel := range running {
				if !seen[key] {
					cancel()
					delete(running, key)
				}
			}
		}
		select {
		case <-ctx.Done():
			for _, cancel := range running {
				cancel()
			}
			return nil
		case <-ticker.C:
		}
	}
}

// follow reads the queue's event stream from now on and brings each job whose record moved
// back to its reconciler.
func (h *housekeeper) follow(ctx context.Context, q *queue.Queue, kind *jobKind) {
	log := logf.FromContext(ctx)
	last := ""
	for ctx.Err() == nil {
		if last == "" {
			id, err := q.LastEventID(ctx)
			if err != nil {
				log.V(1).Info("Cannot read the event stream yet", "error", err.Error())
				ctxsleep.Sleep(ctx, time.Second)
				continue
			}
			last = id
		}
		events, err := q.ReadEvents(ctx, last, 500, 2*time.Second)
		if err != nil {
			log.V(1).Info("Reading the event stream failed", "error", err.Error())
			ctxsleep.Sleep(ctx, time.Second)
			continue
		}
		for _, e := range events {
			last = e.StreamID
			if e.JobID != "" {
				h.notify(ctx, kind, q.Namespace, e.JobID)
			}
		}
	}
}

func (h *housekeeper) notify(ctx context.Context, kind *jobKind, namespace, name string) {
	obj := kind.New()
	obj.SetNamespace(namespace)
	obj.SetName(name)
	select {
	case kind.events <- event.GenericEvent{Object: obj}:
	case <-ctx.Done():
	}
}

// sweepLoop keeps one queue in shape every HousekeepingInterval.
func (h *housekeeper) sweepLoop(ctx context.Context, key client.ObjectKey, q *queue.Queue, kind *jobKind) {
	log := logf.FromContext(ctx)
	orphanEvery := max(1, int(h.opts.OrphanAge/h.opts.HousekeepingInterval))
	for round := 0; ctx.Err() == nil; round++ {
		jq := &jobsv1alpha1.JobQueue{}
		if err := h.client.Get(ctx, key, jq); err != nil {
			ctxsleep.Sleep(ctx, h.opts.HousekeepingInterval)
			continue
		}
		if err := h.sweep(ctx, jq, q, kind, round%orphanEvery == 0); err != nil {
			log.V(1).Info("Housekeeping failed; trying again next round", "error", err.Error())
		}
		ctxsleep.Sleep(ctx, h.opts.HousekeepingInterval)
	}
}

func (h *housekeeper) sweep(ctx context.Context, jq *jobsv1alpha1.JobQueue, q *queue.Queue, kind *jobKind, orphans bool) error {
	settings := jq.Spec.Settings()
	limit, window := 0, time.Duration(0)
	if settings.RateLimit != nil {
		limit, window = int(settings.RateLimit.Max), settings.RateLimit.Duration.Duration
	}
	if err := q.SetRateLimit(ctx, limit, window); err != nil {
		return err
	}
	reclaimed, err := q.ReclaimStalled(ctx, h.opts.MaxStalls)
	if err != nil {
		return err
	}
	for _, r := range reclaimed {
		h.notify(ctx, kind, q.Namespace, r.ID)
	}
	// The CR's TTL is the retention clock; this net only catches records whose CR is gone, so
	// it waits twice as long.
	if _, err := q.SweepFinished(ctx, 2*settings.RetainCompleted, 2*settings.RetainFailed, 500); err != nil {
		return err
	}
	if orphans {
		return h.removeOrphans(ctx, q, kind)
	}
	return nil
}

// removeOrphans removes records whose CR is gone (its finalizer could not reach Redis) or was
// recreated under the same name.
func (h *housekeeper) removeOrphans(ctx context.Context, q *queue.Queue, kind *jobKind) error {
	log := logf.FromContext(ctx)
	const page = 500
	for _, state := range []queue.State{queue.StateWaiting, queue.StateDelayed, queue.StateActive, queue.StateCompleted, queue.StateFailed} {
		for offset := 0; ; offset += page {
			ids, err := q.IDs(ctx, state, offset, page)
			if err != nil {
				return err
			}
			for _, id := range ids {
				obj := kind.New()
				err := h.client.Get(ctx, client.ObjectKey{Namespace: q.Namespace, Name: id}, obj)
				if err != nil && !apierrors.IsNotFound(err) {
					return err
				}
				record, rerr := q.Get(ctx, id)
				if errors.Is(rerr, queue.ErrNotFound) {
					continue
				}
				if rerr != nil {
					return rerr
				}
				if err == nil && string(obj.GetUID()) == record.UID {
					continue
				}
				if h.opts.Clock.Since(record.CreatedAt) < h.opts.OrphanAge {
					continue
				}
				if removed, err := q.Remove(ctx, id, record.UID); err != nil {
					return err
				} else if removed {
					log.Info("Removed an orphaned Redis record", "job", id, "uid", record.UID)
					offset--
				}
			}
			if len(ids) < page {
				break
			}
		}
	}
	return nil
}
