// Package queue is the Redis queue engine: jobs with priorities, delays, leases fenced by tokens,
// heartbeats, retries with backoff, a dead letter set, a global rate limit, pause, retention and
// an event stream. Every multi-key change is one Lua script. It knows nothing of Kubernetes.
//
// The Engine runs on one Redis; a Queue is one queue of one namespace. Its methods are filed by
// who calls them: enqueue.go (the controller), lease.go (the workers), admin.go (the
// controller's retries, cancels and housekeeping), inspect.go and events.go (everyone who reads).
package queue

import (
	"sync"
	"time"

	"github.com/go-logr/logr"
	"github.com/redis/go-redis/v9"
)

// Clock tells the time; tests inject one.
type Clock interface{ Now() time.Time }

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

// Engine is the queue engine over one Redis (single node, Sentinel or Cluster).
type Engine struct {
	rdb          redis.UniversalClient
	clock        Clock
	scriptClock  bool // the scripts work at clock's time (WithClock); otherwise at Redis' own
	log          logr.Logger
	eventsMaxLen int64
	maxIdleWait  time.Duration
	combiners    sync.Map // queue key prefix -> *combiner: concurrent Enqueue calls share script calls
}

// Option configures an Engine.
type Option func(*Engine)

// WithClock sets the clock the engine works by, the scripts' times included (leases, due times,
// finish times): tests inject one. Without it the scripts read Redis' own clock (TIME), so every
// worker and the controller stamp and compare leases and due times by one clock, whatever their
// hosts' clocks say.
func WithClock(c Clock) Option { return func(cl *Engine) { cl.clock, cl.scriptClock = c, true } }

// WithLogger sets the logger.
func WithLogger(l logr.Logger) Option { return func(cl *Engine) { cl.log = l } }

// WithEventsMaxLen caps each queue's event stream (approximately; default 10,000 events).
func WithEventsMaxLen(n int64) Option { return func(cl *Engine) { cl.eventsMaxLen = n } }

// WithMaxIdleWait bounds how long an idle worker blocks before it looks again (default 5 s).
func WithMaxIdleWait(d time.Duration) Option { return func(cl *Engine) { cl.maxIdleWait = d } }

// New returns an engine over rdb.
func New(rdb redis.UniversalClient, opts ...Option) *Engine {
	c := &Engine{rdb: rdb, clock: realClock{}, log: logr.Discard(), eventsMaxLen: 10000, maxIdleWait: 5 * time.Second}
	for _, o := range opts {
		o(c)
	}
	return c
}

// Redis is the client the engine runs on.
func (c *Engine) Redis() redis.UniversalClient { return c.rdb }

// Queue is one queue of one namespace.
type Queue struct {
	c    *Engine
	keys keys
	comb *combiner
	// Namespace and Name identify the queue.
	Namespace, Name string
}

// Queue returns the queue name in namespace.
func (c *Engine) Queue(namespace, name string) *Queue {
	k := newKeys(namespace, name)
	return &Queue{c: c, keys: k, comb: c.combinerFor(k.meta), Namespace: namespace, Name: name}
}

// now is the time argument of a script: the injected clock's Unix ms, or "" for Redis' own
// clock, which the script then reads (prelude.lua's nowMs).
func (q *Queue) now() any {
	if q.c.scriptClock {
		return q.c.clock.Now().UnixMilli()
	}
	return ""
}
