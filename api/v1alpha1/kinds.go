package v1alpha1

import (
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// JobObjectList is a list of one job kind.
// +kubebuilder:object:generate=false
type JobObjectList interface {
	metav1.ListInterface
	runtime.Object
	// Jobs returns the items, each pointing into the list.
	Jobs() []JobObject
}

// JobKind is everything the product knows of one job kind: the queue it runs on, its custom
// resource, the prefix of the ids the facade gives its jobs, and the seed's settings of its
// queue. The controllers, the facade and the workers iterate JobKinds instead of switching on
// a queue name.
// +kubebuilder:object:generate=false
type JobKind struct {
	// Queue is the queue the kind's jobs run on.
	Queue QueueName
	// Kind is the custom resource's kind, e.g. "EnrichmentJob".
	Kind string
	// IDPrefix starts the ids the facade gives the kind's jobs (enrich-<8 hex>-<unix ms>).
	IDPrefix string
	// Seed is the queue's configuration as the seed document fixes it.
	Seed SeedQueue
	// New returns an empty object of the kind.
	New func() JobObject
	// NewList returns an empty list of the kind.
	NewList func() JobObjectList
}

// JobKinds lists every job kind, in the seed document's queue order.
var JobKinds = []JobKind{
	{
		Queue: QueueEnrichment, Kind: "EnrichmentJob", IDPrefix: "enrich",
		Seed: SeedQueue{Concurrency: 3, ConcurrencyEnv: "ENRICHMENT_WORKER_CONCURRENCY", Attempts: 5,
			RateLimit: &RateLimit{Max: 10, Duration: metav1.Duration{Duration: time.Minute}}},
		New:     func() JobObject { return &EnrichmentJob{} },
		NewList: func() JobObjectList { return &EnrichmentJobList{} },
	},
	{
		Queue: QueueCompetitor, Kind: "CompetitorJob", IDPrefix: "competitor",
		Seed:    SeedQueue{Concurrency: 2, ConcurrencyEnv: "COMPETITOR_WORKER_CONCURRENCY", Attempts: 3},
		New:     func() JobObject { return &CompetitorJob{} },
		NewList: func() JobObjectList { return &CompetitorJobList{} },
	},
	{
		Queue: QueueAnalytics, Kind: "AnalyticsJob", IDPrefix: "analytics",
		Seed:    SeedQueue{Concurrency: 2, ConcurrencyEnv: "ANALYTICS_WORKER_CONCURRENCY", Attempts: 2},
		New:     func() JobObject { return &AnalyticsJob{} },
		NewList: func() JobObjectList { return &AnalyticsJobList{} },
	},
}

// KindOf returns the job kind that runs on queue q, and false for an unknown queue.
func KindOf(q QueueName) (JobKind, bool) {
	for _, k := range JobKinds {
		if k.Queue == q {
			return k, true
		}
	}
	return JobKind{}, false
}

func (l *EnrichmentJobList) Jobs() []JobObject { return jobsOf(l.Items) }
func (l *CompetitorJobList) Jobs() []JobObject { return jobsOf(l.Items) }
func (l *AnalyticsJobList) Jobs() []JobObject  { return jobsOf(l.Items) }

func jobsOf[T any, P interface {
	*T
	JobObject
}](items []T) []JobObject {
	out := make([]JobObject, len(items))
	for i := range items {
		out[i] = P(&items[i])
	}
	return out
}
