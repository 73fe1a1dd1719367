package queue

// WithHostClock sets the clock of the engine's host (time.Now's stand-in), as a host whose clock
// is off would have, without injecting it into the scripts: they keep to Redis' clock.
func WithHostClock(c Clock) Option { return func(e *Engine) { e.clock = c } }

// RedisKeys lists the queue's keys: its sets, meta, limiter, events and marker, and the records
// of ids.
func RedisKeys(q *Queue, ids ...string) []string {
	k := q.keys
	out := []string{k.wait, k.delayed, k.active, k.completed, k.failed, k.meta, k.limiter, k.events, k.marker}
	for _, id := range ids {
		out = append(out, k.job(id))
	}
	return out
}
