package controllers

import (
	"context"
	"time"
)

// delayedPromoter moves due delayed jobs (a backoff or a delay over) to waiting. A worker's
// lease does it too, but a queue scaled to zero has no worker: without this, a job whose backoff
// outlasts the idle cooldown would wait for ever.
type delayedPromoter struct {
	interval time.Duration
}

func newDelayedPromoter(opts Options) delayedPromoter {
	return delayedPromoter{interval: orDefault(opts.HousekeepingInterval, DefaultOptions().HousekeepingInterval)}
}

func (delayedPromoter) name() string { return "delayed-promoter" }

func (d delayedPromoter) run(ctx context.Context, t housekeepingTarget) {
	every(ctx, d.interval, func(ctx context.Context) error {
		_, err := t.queue.PromoteDue(ctx) // each promoted job's event brings its CR along
		return err
	})
}
