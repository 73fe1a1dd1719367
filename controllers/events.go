package controllers

import (
	"context"

	"github.com/jengu/queue-operator/queue"
)

// eventFollower reads the queue's event stream and brings each job whose record moved back to
// its reconciler.
type eventFollower struct{}

func (eventFollower) name() string { return "event-follower" }

func (eventFollower) run(ctx context.Context, t housekeepingTarget) {
	t.queue.Follow(ctx, func(e queue.Event) {
		if e.JobID != "" {
			t.notify(ctx, e.JobID)
		}
	})
}
