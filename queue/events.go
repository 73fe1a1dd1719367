package queue

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jengu/queue-operator/internal/ctxsleep"
	"github.com/redis/go-redis/v9"
)

// Event is one entry of a queue's event stream: a job's transition or progress tick, or a
// queue's pause or resume.
type Event struct {
	// StreamID orders events; pass the last one seen to ReadEvents to resume after it.
	StreamID string
	// Type: waiting, delayed, active, progress, completed, failed, cancelled, removed, paused,
	// resumed.
	Type    string
	JobID   string
	Version int64
	// Fields holds the rest: progress, message, dueAt, reason, error, worker.
	Fields map[string]string
}

// StreamStart, passed as after, reads a stream from its oldest retained event.
const StreamStart = "0"

// ReadEvents returns up to count events after the stream id after (StreamStart for all
// retained ones), blocking up to block for the first one when there are none yet (0: do not
// block). A subscriber that passes its last StreamID back loses nothing that the capped stream
// still holds.
func (q *Queue) ReadEvents(ctx context.Context, after string, count int64, block time.Duration) ([]Event, error) {
	args := &redis.XReadArgs{Streams: []string{q.keys.events, after}, Count: count, Block: -1}
	if block > 0 {
		args.Block = block
	}
	streams, err := q.c.rdb.XRead(ctx, args).Result()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read events of %s/%s: %w", q.Namespace, q.Name, err)
	}
	var out []Event
	for _, s := range streams {
		for _, m := range s.Messages {
			e := Event{StreamID: m.ID, Fields: map[string]string{}}
			for k, v := range m.Values {
				str, _ := v.(string)
				switch k {
				case "event":
					e.Type = str
				case "job":
					e.JobID = str
				case "version":
					e.Version, _ = strconv.ParseInt(str, 10, 64)
				default:
					e.Fields[k] = str
				}
			}
			out = append(out, e)
		}
	}
	return out, nil
}

// LastEventID is the id of the newest event of the queue's stream, or StreamStart when it is
// empty: a subscriber that starts there reads only what happens from now on, and misses nothing
// between two reads.
func (q *Queue) LastEventID(ctx context.Context) (string, error) {
	last, err := q.c.rdb.XRevRangeN(ctx, q.keys.events, "+", "-", 1).Result()
	if err != nil {
		return "", fmt.Errorf("last event of %s/%s: %w", q.Namespace, q.Name, err)
	}
	if len(last) == 0 {
		return StreamStart, nil
	}
	return last[0].ID, nil
}

// FollowOption configures Follow.
type FollowOption func(*followOptions)

type followOptions struct {
	block   time.Duration
	onError func(error)
}

// FollowBlock sets how long one read of the stream waits for events (default 5 s; d <= 0 keeps
// it, as a read that does not wait would spin). It bounds how long Follow takes to notice that
// its context ended while the queue is quiet.
func FollowBlock(d time.Duration) FollowOption {
	return func(o *followOptions) {
		if d > 0 {
			o.block = d
		}
	}
}

// FollowOnError sets what hears of a failed read before Follow retries it a second later
// (default: the engine's logger, as an error).
func FollowOnError(fn func(error)) FollowOption { return func(o *followOptions) { o.onError = fn } }

// followRetryDelay is the pause after a failed read, so an unreachable Redis is not hammered.
const followRetryDelay = time.Second

// Follow reads the queue's event stream from now on (LastEventID) and calls fn with each event,
// in stream order, until ctx ends. It rides out Redis errors: each failed read is reported
// (FollowOnError) and retried after a second, resuming after the last event delivered, so
// nothing the capped stream still holds is missed. fn runs on the caller's goroutine; the next
// read waits for it.
func (q *Queue) Follow(ctx context.Context, fn func(Event), opts ...FollowOption) {
	o := followOptions{block: 5 * time.Second}
	for _, opt := range opts {
		opt(&o)
	}
	if o.onError == nil {
		log := q.c.log.WithValues("namespace", q.Namespace, "queue", q.Name)
		o.onError = func(err error) { log.Error(err, "Reading the event stream failed; retrying") }
	}
	after := ""
	for ctx.Err() == nil {
		if after == "" {
			last, err := q.LastEventID(ctx)
			if err != nil {
				if ctx.Err() == nil {
					o.onError(err)
					ctxsleep.Sleep(ctx, followRetryDelay)
				}
				continue
			}
			after = last
		}
		events, err := q.ReadEvents(ctx, after, 500, o.block)
		if err != nil {
			if ctx.Err() == nil {
				o.onError(err)
				ctxsleep.Sleep(ctx, followRetryDelay)
			}
			continue
		}
		for _, e := range events {
			after = e.StreamID
			fn(e)
		}
	}
}
