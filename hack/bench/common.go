package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// env is what every scenario run gets.
type env struct {
	addr    string
	port    int
	admin   *redis.Client // INFO, FLUSHALL; not used by the systems under test
	payload []byte        // the ~200-byte JSON payload every job carries
}

// params are the scenario sizes.
type params struct {
	SeqN         int           `json:"seq_n"`
	ConcN        int           `json:"conc_n"`
	ConcInflight int           `json:"conc_inflight"`
	BulkN        int           `json:"bulk_n"`
	BulkSize     int           `json:"bulk_size"`
	DrainN       int           `json:"drain_n"`
	DrainConc    int           `json:"drain_conc"`
	PickupN      int           `json:"pickup_n"`
	PickupConc   int           `json:"pickup_conc"`
	PickupEvery  time.Duration `json:"-"`
	PickupEvMs   float64       `json:"pickup_every_ms"`
	WarmN        int           `json:"warm_n"`
	PrefillConc  int           `json:"prefill_conc"`
	IdleBefore   time.Duration `json:"-"`
	IdleBeforeMs float64       `json:"idle_before_ms"`
}

// system is one queue implementation under test.
type system interface {
	run(ctx context.Context, e *env, scenario string, p params) (result, error)
}

// benchPayload is a ~200-byte JSON document, the same bytes for every system.
func benchPayload() []byte {
	s := `{"propertyId":"prop-0001234567","tenant":"acme-realty","source":"hack/bench","fields":["address","geo","owner","tax","zoning"],"requestedBy":"queue-operator","priority":"normal","note":"`
	for len(s) < 198 {
		s += "x"
	}
	return []byte(s + `"}`)
}

func jobID(i int) string { return "b-" + strconv.Itoa(i) }

func jobIndex(id string) (int, bool) {
	i, err := strconv.Atoi(strings.TrimPrefix(id, "b-"))
	return i, err == nil
}

// forEach runs fn(i) for i in [0, n) from `workers` goroutines, stopping at the first error.
func forEach(ctx context.Context, n, workers int, fn func(ctx context.Context, i int) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var next atomic.Int64
	var once sync.Once
	var first error
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				if err := fn(ctx, i); err != nil {
					once.Do(func() { first = err; cancel() })
					return
				}
			}
		}()
	}
	wg.Wait()
	if first != nil {
		return first
	}
	return ctx.Err()
}

// counter closes done when it reaches n.
type counter struct {
	n    int64
	c    atomic.Int64
	done chan struct{}
}

func newCounter(n int) *counter { return &counter{n: int64(n), done: make(chan struct{})} }

func (c *counter) inc() {
	if c.c.Add(1) == c.n {
		close(c.done)
	}
}

func (c *counter) wait(ctx context.Context) error {
	select {
	case <-c.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%d of %d jobs done: %w", c.c.Load(), c.n, ctx.Err())
	}
}

// pickupClock records, per job index, when the producer called enqueue and when a handler
// started it.
type pickupClock struct {
	base    time.Time
	enq     []atomic.Int64
	latency []atomic.Int64
}

func newPickupClock(n int) *pickupClock {
	return &pickupClock{base: time.Now(), enq: make([]atomic.Int64, n), latency: make([]atomic.Int64, n)}
}

func (p *pickupClock) enqueued(i int) { p.enq[i].Store(int64(time.Since(p.base)) + 1) }

func (p *pickupClock) started(i int) {
	if i < 0 || i >= len(p.enq) {
		return
	}
	now := int64(time.Since(p.base)) + 1
	if e := p.enq[i].Load(); e > 0 {
		p.latency[i].CompareAndSwap(0, now-e)
	}
}

func (p *pickupClock) latencies() []time.Duration {
	out := make([]time.Duration, 0, len(p.latency))
	for i := range p.latency {
		if v := p.latency[i].Load(); v > 0 {
			out = append(out, time.Duration(v))
		}
	}
	return out
}

// produce calls enqueue(i) for i in [0, n), one every `every`, on a fixed schedule.
func produce(ctx context.Context, n int, every time.Duration, pc *pickupClock, enqueue func(ctx context.Context, i int) error) error {
	start := time.Now()
	for i := range n {
		if d := time.Until(start.Add(time.Duration(i) * every)); d > 0 {
			t := time.NewTimer(d)
			select {
			case <-ctx.Done():
				t.Stop()
				return ctx.Err()
			case <-t.C:
			}
		}
		pc.enqueued(i)
		if err := enqueue(ctx, i); err != nil {
			return err
		}
	}
	return nil
}

// sleepCtx sleeps d or until ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
