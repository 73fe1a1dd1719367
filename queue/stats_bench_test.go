package queue_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jengu/queue-operator/internal/testredis"
	"github.com/jengu/queue-operator/queue"
)

// BenchmarkLeaseAndCompleteBatch is the workers' hot path for a batch of 100 jobs: lease them
// (first starts, so the pickup histogram is observed) and complete them in one call (the
// completed counter and the run histogram): the cost the lifetime statistics add to the scripts.
func BenchmarkLeaseAndCompleteBatch(b *testing.B) {
	ctx := context.Background()
	ns := fmt.Sprintf("bench-%d", time.Now().UnixNano())
	q := queue.New(testredis.Shared(b)).Queue(ns, "enrichment")
	const batch = 100
	b.ResetTimer()
	for i := range b.N {
		b.StopTimer()
		reqs := make([]queue.EnqueueRequest, batch)
		for j := range reqs {
			id := fmt.Sprintf("job-%d-%d", i, j)
			reqs[j] = queue.EnqueueRequest{ID: id, UID: "uid-" + id, Payload: []byte(`{}`), MaxAttempts: 1}
		}
		if _, err := q.EnqueueMany(ctx, reqs); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		res, err := q.Lease(ctx, "w", batch, time.Minute)
		if err != nil || len(res.Jobs) != batch {
			b.Fatalf("lease: %d jobs, %v", len(res.Jobs), err)
		}
		cs := make([]queue.Completion, batch)
		for j, r := range res.Jobs {
			cs[j] = queue.Completion{ID: r.ID, Token: r.Token}
		}
		if _, err := q.CompleteMany(ctx, cs); err != nil {
			b.Fatal(err)
		}
	}
}
