package v1alpha1

import (
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// SeedQueue is a queue's configuration as the seed document fixes it: the values a JobQueue
// takes where its spec is silent.
type SeedQueue struct {
	// Concurrency is the jobs one worker runs at once.
	Concurrency int32
	// ConcurrencyEnv is the worker environment variable that overrides Concurrency.
	ConcurrencyEnv string
	// Attempts in all, the first included.
	Attempts int32
	// RateLimit across all workers, or nil.
	RateLimit *RateLimit
}

var seedQueues = map[QueueName]SeedQueue{
	QueueEnrichment: {Concurrency: 3, ConcurrencyEnv: "ENRICHMENT_WORKER_CONCURRENCY", Attempts: 5,
		RateLimit: &RateLimit{Max: 10, Duration: metav1.Duration{Duration: time.Minute}}},
	QueueCompetitor: {Concurrency: 2, ConcurrencyEnv: "COMPETITOR_WORKER_CONCURRENCY", Attempts: 3},
	QueueAnalytics:  {Concurrency: 2, ConcurrencyEnv: "ANALYTICS_WORKER_CONCURRENCY", Attempts: 2},
}

// SeedDefaults returns the seed document's configuration of queue q, and false for an unknown
// queue.
func SeedDefaults(q QueueName) (SeedQueue, bool) {
	s, ok := seedQueues[q]
	if ok && s.RateLimit != nil {
		limit := *s.RateLimit
		s.RateLimit = &limit
	}
	return s, ok
}
