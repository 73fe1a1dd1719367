package workers

import (
	"context"
	"encoding/json"

	"github.com/jengu/queue-operator/queue"
	"github.com/jengu/queue-operator/store"
)

// ResultRecorder keeps how finished jobs ended, so they can be answered for after their CR's
// TTL; *store.Store is one.
type ResultRecorder interface {
	RecordJobResult(ctx context.Context, r store.JobResult) error
}

var _ ResultRecorder = (*store.Store)(nil)

// WithResults records every job this pool finishes for good (completed, or failed after its last
// attempt) in r.
func WithResults(r ResultRecorder) Option { return func(p *Pool) { p.results = r } }

// recordResult writes the job's end into the history. It is best effort: the CR and Redis
// already hold the outcome, and the history only matters past the CR's TTL. A completed job's
// stored input (an AnalyticsJob's inputRef) is released with it; a failed job's is kept for a
// retry from the dead letter set, and released by the controller when the CR expires.
func (p *Pool) recordResult(ctx context.Context, record *queue.Record, status store.JobStatus, result []byte, failure string) {
	if p.results == nil {
		return
	}
	var owner struct {
		PropertyID string `json:"propertyId"`
		UserID     string `json:"userId"`
		InputRef   string `json:"inputRef"`
	}
	_ = json.Unmarshal(record.Payload, &owner)
	r := store.JobResult{JobID: record.ID, Queue: p.queue.Name, Namespace: p.queue.Namespace, UserID: owner.UserID,
		PropertyID: owner.PropertyID, Status: status, Attempts: record.AttemptsMade + 1, Error: failure,
		CreatedAt: record.CreatedAt}
	if status == store.JobCompleted {
		r.InputRef = owner.InputRef
	}
	if json.Valid(result) {
		r.Result = result
	}
	if err := p.results.RecordJobResult(ctx, r); err != nil {
		p.log.Error(err, "Recording the job's result failed", "job", record.ID)
	}
}
