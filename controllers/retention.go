package controllers

import (
	"context"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"

	jobsv1alpha1 "github.com/jengu/queue-operator/api/v1alpha1"
)

// retentionCleaner removes finished records past twice their JobQueue's retention. The CR's
// TTL is the retention clock (its finalizer removes the record); this net only catches
// records whose CR is gone, so it waits twice as long.
type retentionCleaner struct {
	client   client.Client
	interval time.Duration
	batch    int
}

func newRetentionCleaner(c client.Client, opts Options) retentionCleaner {
	return retentionCleaner{client: c, interval: orDefault(opts.HousekeepingInterval, DefaultOptions().HousekeepingInterval), batch: 500}
}

func (retentionCleaner) name() string { return "retention-cleaner" }

func (r retentionCleaner) run(ctx context.Context, t housekeepingTarget) {
	every(ctx, r.interval, func(ctx context.Context) error {
		jq := &jobsv1alpha1.JobQueue{}
		if err := r.client.Get(ctx, t.jobQueue, jq); err != nil {
			return client.IgnoreNotFound(err)
		}
		settings := jq.Spec.Settings()
		_, err := t.queue.SweepFinished(ctx, 2*settings.RetainCompleted, 2*settings.RetainFailed, r.batch)
		return err
	})
}
