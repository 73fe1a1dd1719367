package controllers

import (
	"context"
	"time"

	logf "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/jengu/queue-operator/queue"
)

// eventFollower reads the queue's event stream and brings each job whose record moved back to
// its reconciler.
type eventFollower struct{}

func (eventFollower) name() string { return "event-follower" }

func (eventFollower) run(ctx context.Context, t housekeepingTarget) {
	log := logf.FromContext(ctx)
	t.queue.Follow(ctx, func(e queue.Event) {
		if e.JobID != "" {
			t.notify(ctx, e.JobID)
		}
	}, queue.FollowBlock(2*time.Second), queue.FollowOnError(func(err error) { logFailedRound(log, err) }))
}
