package queue

// WithHostClock sets the clock of the engine's host (time.Now's stand-in), as a host whose clock
// is off would have, without injecting it into the scripts: they keep to Redis' clock.
func WithHostClock(c Clock) Option { return func(e *Engine) { e.clock = c } }
