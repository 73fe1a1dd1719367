package cmd

import (
	jobsv1alpha1 "github.com/jengu/queue-operator/api/v1alpha1"
	"github.com/jengu/queue-operator/workers"
	"github.com/jengu/queue-operator/workers/analytics"
	"github.com/jengu/queue-operator/workers/competitor"
	"github.com/jengu/queue-operator/workers/enrichment"
)

// processors are this build's processors: the worker runs them and `dev` starts a worker for
// each. The competitor processor adds its line. It lives here, not in
// workers, because the processor packages import workers.
var processors = workers.Registry{
	jobsv1alpha1.QueueEnrichment: enrichment.New,
	jobsv1alpha1.QueueCompetitor: competitor.New,
	jobsv1alpha1.QueueAnalytics:  analytics.New,
}
