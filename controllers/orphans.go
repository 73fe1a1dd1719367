package controllers

import (
	"context"
	"errors"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/jengu/queue-operator/queue"
)

// orphanSweeper removes records whose CR is gone (its finalizer could not reach Redis) or was
// recreated under the same name. A record younger than minAge is left alone, so it is never
// raced against a cache that has not seen its new CR yet.
type orphanSweeper struct {
	client   client.Client
	clock    clock.PassiveClock
	interval time.Duration
	minAge   time.Duration
	page     int
}

func newOrphanSweeper(c client.Client, opts Options) orphanSweeper {
	minAge := orDefault(opts.OrphanAge, DefaultOptions().OrphanAge)
	return orphanSweeper{client: c, clock: orDefault[clock.PassiveClock](opts.Clock, clock.RealClock{}),
		interval: max(minAge, opts.HousekeepingInterval), minAge: minAge, page: 500}
}

func (orphanSweeper) name() string { return "orphan-sweeper" }

func (o orphanSweeper) run(ctx context.Context, t housekeepingTarget) {
	every(ctx, o.interval, func(ctx context.Context) error {
		for _, state := range []queue.State{queue.StateWaiting, queue.StateDelayed, queue.StateActive, queue.StateCompleted, queue.StateFailed} {
			if err := o.sweep(ctx, t, state); err != nil {
				return err
			}
		}
		return nil
	})
}

func (o orphanSweeper) sweep(ctx context.Context, t housekeepingTarget, state queue.State) error {
	log := logf.FromContext(ctx)
	q := t.queue
	for offset := 0; ; offset += o.page {
		ids, err := q.IDs(ctx, state, offset, o.page)
		if err != nil {
			return err
		}
		for _, id := range ids {
			removed, err := o.removeIfOrphaned(ctx, t, id)
			if err != nil {
				return err
			}
			if removed {
				log.Info("Removed an orphaned Redis record", "job", id)
				offset--
			}
		}
		if len(ids) < o.page {
			return nil
		}
	}
}

func (o orphanSweeper) removeIfOrphaned(ctx context.Context, t housekeepingTarget, id string) (bool, error) {
	obj := t.kind.New()
	err := o.client.Get(ctx, client.ObjectKey{Namespace: t.queue.Namespace, Name: id}, obj)
	if err != nil && !apierrors.IsNotFound(err) {
		return false, err
	}
	record, rerr := t.queue.Get(ctx, id)
	switch {
	case errors.Is(rerr, queue.ErrNotFound):
		return false, nil
	case rerr != nil:
		return false, rerr
	case err == nil && string(obj.GetUID()) == record.UID:
		return false, nil
	case o.clock.Since(record.CreatedAt) < o.minAge:
		return false, nil
	}
	return t.queue.Remove(ctx, id, record.UID)
}
