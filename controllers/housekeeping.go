package controllers

import (
	"cmp"
	"context"
	"slices"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/client-go/tools/events"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/manager"

	jobsv1alpha1 "github.com/jengu/queue-operator/api/v1alpha1"
	"github.com/jengu/queue-operator/internal/ctxsleep"
	"github.com/jengu/queue-operator/metrics"
	"github.com/jengu/queue-operator/queue"
)

// queueService keeps one aspect of one queue in shape for as long as its JobQueue exists: the
// event follower, the stall reclaimer, the delayed promoter, the retention cleaner, the orphan
// sweeper and the loss repairer.
type queueService interface {
	// name names the service in logs.
	name() string
	// run works on the queue until ctx ends.
	run(ctx context.Context, t housekeepingTarget)
}

// housekeepingTarget is the queue a service works on.
type housekeepingTarget struct {
	// jobQueue is the JobQueue's key; a service reads it for the queue's current settings.
	jobQueue client.ObjectKey
	queue    *queue.Queue
	kind     *jobKind
}

// notify brings a job of the target's queue back to its kind's reconciler.
func (t housekeepingTarget) notify(ctx context.Context, name string) {
	obj := t.kind.New()
	obj.SetNamespace(t.queue.Namespace)
	obj.SetName(name)
	select {
	case t.kind.events <- event.GenericEvent{Object: obj}:
	case <-ctx.Done():
	}
}

// housekeeper runs the queue services of every JobQueue. The JobQueue reconciler starts them
// when it sees a JobQueue and stops them when the JobQueue is gone; they run only while this
// replica leads.
type housekeeper struct {
	engine   *queue.Engine
	services []queueService
	kinds    map[jobsv1alpha1.QueueName]*jobKind

	mu      sync.Mutex
	ctx     context.Context // set by Start; nil before
	wg      sync.WaitGroup
	running map[client.ObjectKey]context.CancelFunc
	queues  map[client.ObjectKey]*queue.Queue           // the queues of running
	wanted  map[client.ObjectKey]jobsv1alpha1.QueueName // asked for before Start
}

var (
	_ manager.Runnable               = &housekeeper{}
	_ manager.LeaderElectionRunnable = &housekeeper{}
)

func newHousekeeper(c client.Client, reader client.Reader, recorder events.EventRecorder, engine *queue.Engine, opts Options, kinds []*jobKind) *housekeeper {
	h := &housekeeper{
		engine: engine,
		services: []queueService{
			eventFollower{},
			newStallReclaimer(opts),
			newDelayedPromoter(opts),
			newRetentionCleaner(c, opts),
			newOrphanSweeper(c, opts),
			newLossRepairer(c, reader, recorder, opts),
		},
		kinds:   map[jobsv1alpha1.QueueName]*jobKind{},
		running: map[client.ObjectKey]context.CancelFunc{},
		queues:  map[client.ObjectKey]*queue.Queue{},
		wanted:  map[client.ObjectKey]jobsv1alpha1.QueueName{},
	}
	for _, k := range kinds {
		h.kinds[k.Queue] = k
	}
	return h
}

// NeedLeaderElection: only the leader keeps the queues.
func (h *housekeeper) NeedLeaderElection() bool { return true }

// Start runs the services of the JobQueues seen so far, and of those seen later, until ctx
// ends.
func (h *housekeeper) Start(ctx context.Context) error {
	h.mu.Lock()
	h.ctx = ctx
	for key, name := range h.wanted {
		h.startLocked(key, name)
	}
	h.wanted = nil
	h.mu.Unlock()
	metrics.ReportLeader(true) // it runs only on the leader
	<-ctx.Done()
	metrics.ReportLeader(false)
	// An ensure that saw the context alive may still be starting services: let it finish, so
	// the wait below counts them (startLocked refuses once the context is done).
	h.mu.Lock()
	h.mu.Unlock() //nolint:staticcheck // an empty critical section, on purpose
	h.wg.Wait()
	return nil
}

// ensure runs the services of a JobQueue, unless they run already.
func (h *housekeeper) ensure(jq *jobsv1alpha1.JobQueue) {
	key := client.ObjectKeyFromObject(jq)
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.ctx == nil {
		h.wanted[key] = jq.Spec.Queue
		return
	}
	h.startLocked(key, jq.Spec.Queue)
}

// stop ends the services of a JobQueue that is gone.
func (h *housekeeper) stop(key client.ObjectKey) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.wanted, key)
	if cancel := h.running[key]; cancel != nil {
		cancel()
		delete(h.running, key)
		delete(h.queues, key)
	}
}

// kept lists the queues whose services run: those of the JobQueues seen while this replica
// leads, by namespace and name. A replica that does not lead keeps none.
func (h *housekeeper) kept() []*queue.Queue {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]*queue.Queue, 0, len(h.queues))
	for _, q := range h.queues {
		out = append(out, q)
	}
	slices.SortFunc(out, func(a, b *queue.Queue) int {
		return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name))
	})
	return out
}

func (h *housekeeper) startLocked(key client.ObjectKey, name jobsv1alpha1.QueueName) {
	if h.running[key] != nil || h.ctx.Err() != nil || h.kinds[name] == nil {
		return
	}
	ctx, cancel := context.WithCancel(h.ctx)
	h.running[key] = cancel
	target := housekeepingTarget{jobQueue: key, queue: h.engine.Queue(key.Namespace, string(name)), kind: h.kinds[name]}
	h.queues[key] = target.queue
	log := logf.FromContext(ctx).WithName("housekeeping").WithValues("namespace", key.Namespace, "queue", name)
	for _, s := range h.services {
		h.wg.Go(func() { s.run(logf.IntoContext(ctx, log.WithValues("service", s.name())), target) })
	}
}

// every runs work every interval until ctx ends; a failed round is logged and the next one
// tries again.
func every(ctx context.Context, interval time.Duration, work func(context.Context) error) {
	log := logf.FromContext(ctx)
	for ctx.Err() == nil {
		if err := work(ctx); err != nil && ctx.Err() == nil {
			logFailedRound(log, err)
		}
		ctxsleep.Sleep(ctx, interval)
	}
}

func logFailedRound(log logr.Logger, err error) {
	log.V(1).Info("Housekeeping failed; trying again next round", "error", err.Error())
}
