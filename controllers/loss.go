package controllers

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/tools/events"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	jobsv1alpha1 "github.com/jengu/queue-operator/api/v1alpha1"
	"github.com/jengu/queue-operator/queue"
)

// lossRepairer notices within a round that Redis lost the queue (its epoch changed or was made
// anew: a FLUSHALL, a restart without persistence, a failover to an empty replica) and enqueues
// every live job of the queue again at once, in batches, instead of leaving each to its next
// resync.
type lossRepairer struct {
	client client.Client
	// reader lists the jobs from the kube-apiserver, not the cache: a job whose Completed status
	// the cache has not seen yet must not run again. A loss is rare; one list is cheap.
	reader   client.Reader
	recorder events.EventRecorder
	history  History
	interval time.Duration
}

func newLossRepairer(c client.Client, reader client.Reader, recorder events.EventRecorder, opts Options) lossRepairer {
	return lossRepairer{client: c, reader: reader, recorder: recorder, history: opts.History,
		interval: orDefault(opts.HousekeepingInterval, DefaultOptions().HousekeepingInterval)}
}

func (lossRepairer) name() string { return "loss-repairer" }

func (l lossRepairer) run(ctx context.Context, t housekeepingTarget) {
	known, pending := "", false
	every(ctx, l.interval, func(ctx context.Context) error {
		epoch, isNew, err := t.queue.Epoch(ctx)
		if err != nil {
			return err
		}
		if isNew || pending || (known != "" && epoch != known) {
			if err := l.reEnqueue(ctx, t); err != nil {
				pending = true // the next rounds try again, though the epoch is no longer new
				return err
			}
			pending = false
		}
		known = epoch
		return nil
	})
}

// reEnqueue enqueues every unfinished job of the target's kind and namespace that has no
// record (unless its history says it finished for good), and brings each back to its reconciler. A job
// whose status never showed a record is left to its reconciler.
func (l lossRepairer) reEnqueue(ctx context.Context, t housekeepingTarget) error {
	jq := &jobsv1alpha1.JobQueue{}
	if err := l.client.Get(ctx, t.jobQueue, jq); err != nil {
		return client.IgnoreNotFound(err)
	}
	list := t.kind.NewList()
	if err := l.reader.List(ctx, list, client.InNamespace(t.queue.Namespace)); err != nil {
		return err
	}
	var live []jobsv1alpha1.JobObject
	var requests []queue.EnqueueRequest
	for _, job := range list.Jobs() {
		if job.JobStatus().Phase.IsFinished() || !job.GetDeletionTimestamp().IsZero() {
			continue
		}
		if job.JobStatus().QueueVersion == 0 {
			// Never reported enqueued: a job of a new queue (whose epoch is new too), or one whose
			// first status is within the grace. Its reconciler enqueues it as any new job.
			t.notify(ctx, job.GetName())
			continue
		}
		if _, finished, err := finishedBeforeLoss(ctx, l.history, job); err != nil {
			return err
		} else if finished {
			t.notify(ctx, job.GetName()) // its reconciler marks it Completed or Failed
			continue
		}
		req, err := enqueueRequest(job, jq)
		if err != nil {
			return err
		}
		live, requests = append(live, job), append(requests, req)
	}
	if len(requests) == 0 {
		return nil
	}
	results, err := t.queue.EnqueueMany(ctx, requests)
	created := 0
	for i, res := range results {
		if res.Err == nil && res.Created {
			created++
			l.recorder.Eventf(live[i], nil, corev1.EventTypeWarning, jobsv1alpha1.ReasonReEnqueued, "Enqueue",
				"Redis lost queue %s; enqueued the job again", t.queue.Name)
		}
		t.notify(ctx, live[i].GetName())
	}
	logf.FromContext(ctx).Info("Redis lost the queue; enqueued its live jobs again", "live", len(requests), "enqueued", created)
	if err != nil {
		return fmt.Errorf("enqueue %d live jobs again: %w", len(requests), err)
	}
	return nil
}
