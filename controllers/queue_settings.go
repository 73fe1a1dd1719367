package controllers

import (
	"context"
	"time"

	jobsv1alpha1 "github.com/jengu/queue-operator/api/v1alpha1"
	"github.com/jengu/queue-operator/queue"
)

// applySettings puts the JobQueue settings that Redis enforces, the rate limit and the pause,
// into its queue (the one place that does), and returns the queue's counts after.
func applySettings(ctx context.Context, q *queue.Queue, spec jobsv1alpha1.JobQueueSpec) (queue.Counts, error) {
	settings := spec.Settings()
	limit, window := 0, time.Duration(0)
	if settings.RateLimit != nil {
		limit, window = int(settings.RateLimit.Max), settings.RateLimit.Duration.Duration
	}
	if err := q.SetRateLimit(ctx, limit, window); err != nil {
		return queue.Counts{}, err
	}
	counts, err := q.Counts(ctx)
	if err != nil || counts.IsPaused == settings.Paused {
		return counts, err
	}
	// Only a change is written: each pause or resume is an event on the queue's stream.
	if settings.Paused {
		err = q.Pause(ctx)
	} else {
		err = q.Resume(ctx)
	}
	if err != nil {
		return counts, err
	}
	return q.Counts(ctx)
}
