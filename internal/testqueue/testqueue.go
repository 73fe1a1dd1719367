// Package testqueue runs a processor on a queue of the shared Redis, enqueues jobs as the
// controller does and waits for their end, for the processors' tests.
package testqueue

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/onsi/gomega"

	"github.com/jengu/queue-operator/internal/testredis"
	"github.com/jengu/queue-operator/queue"
	"github.com/jengu/queue-operator/workers"
)

// New is namespace's queue on the Redis of hack/with-services.sh.
func New(tb testing.TB, namespace, queueName string) *queue.Queue {
	return queue.New(testredis.Shared(tb), queue.WithMaxIdleWait(time.Second)).Queue(namespace, queueName)
}

// Run runs processor on q, two jobs at once, until the test ends.
func Run(tb testing.TB, q *queue.Queue, processor workers.Processor, opts ...workers.Option) {
	ctx, cancel := context.WithCancel(context.Background())
	pool := workers.NewPool(q, processor, append([]workers.Option{workers.WithConcurrency(2)}, opts...)...)
	done := make(chan struct{})
	go func() { defer close(done); _ = pool.Run(ctx) }()
	tb.Cleanup(func() { cancel(); <-done })
}

// Enqueue adds a job whose payload is spec, as the controller would: UID "uid-<jobID>", at most
// attempts attempts waiting backoff between them, a minute's timeout.
func Enqueue(tb testing.TB, q *queue.Queue, jobID string, spec any, attempts int, backoff queue.Backoff) {
	tb.Helper()
	payload, err := json.Marshal(spec)
	if err != nil {
		tb.Fatalf("encode the spec of %s: %v", jobID, err)
	}
	if _, err := q.Enqueue(context.Background(), queue.EnqueueRequest{ID: jobID, UID: "uid-" + jobID, Payload: payload,
		MaxAttempts: attempts, Backoff: backoff, Timeout: time.Minute}); err != nil {
		tb.Fatalf("enqueue %s: %v", jobID, err)
	}
}

// Finished waits for the job to complete or fail, and returns its record.
func Finished(g gomega.Gomega, q *queue.Queue, jobID string) *queue.Record {
	var job *queue.Record
	g.Eventually(func() queue.State {
		j, err := q.Get(context.Background(), jobID)
		if err != nil {
			return ""
		}
		job = j
		return j.State
	}).WithTimeout(20 * time.Second).Should(gomega.BeElementOf(queue.StateCompleted, queue.StateFailed))
	return job
}
