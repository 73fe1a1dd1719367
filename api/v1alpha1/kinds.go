package v1alpha1

import (
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

// NewJob returns an empty object of the job kind that runs on queue q, or nil for an unknown queue.
func NewJob(q QueueName) JobObject {
	switch q {
	case QueueEnrichment:
		return &EnrichmentJob{}
	case QueueCompetitor:
		return &CompetitorJob{}
	case QueueAnalytics:
		return &AnalyticsJob{}
	}
	return nil
}

// NewJobList returns an empty list of the job kind that runs on queue q, or nil for an unknown
// queue.
func NewJobList(q QueueName) JobObjectList {
	switch q {
	case QueueEnrichment:
		return &EnrichmentJobList{}
	case QueueCompetitor:
		return &CompetitorJobList{}
	case QueueAnalytics:
		return &AnalyticsJobList{}
	}
	return nil
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
