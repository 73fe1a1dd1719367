package controllers

import (
	"context"
	"time"
)

// stallReclaimer hands the jobs of dead workers (leases not renewed in time) back to waiting,
// counting the attempt, and fails a job that stalled more than maxStalls times.
type stallReclaimer struct {
	interval  time.Duration
	maxStalls int
}

func newStallReclaimer(opts Options) stallReclaimer {
	return stallReclaimer{interval: orDefault(opts.HousekeepingInterval, DefaultOptions().HousekeepingInterval),
		maxStalls: opts.MaxStalls}
}

func (stallReclaimer) name() string { return "stall-reclaimer" }

func (s stallReclaimer) run(ctx context.Context, t housekeepingTarget) {
	every(ctx, s.interval, func(ctx context.Context) error {
		reclaimed, err := t.queue.ReclaimStalled(ctx, s.maxStalls)
		for _, r := range reclaimed {
			t.notify(ctx, r.ID)
		}
		return err
	})
}

func orDefault[T comparable](v, fallback T) T {
	var zero T
	if v == zero {
		return fallback
	}
	return v
}
