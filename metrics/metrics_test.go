package metrics

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestReportRedisEvictionPolicyKeepsOnlyTheCurrentPolicy(t *testing.T) {
	tests := []struct {
		policy string
		ok     bool
		want   float64
	}{
		{"noeviction", true, 1},
		{"allkeys-lru", false, 0},
		{"volatile-ttl", false, 0},
	}
	for _, tt := range tests {
		ReportRedisEvictionPolicy(tt.policy, tt.ok)
		if got := testutil.ToFloat64(redisEvictionPolicyOK.WithLabelValues(tt.policy)); got != tt.want {
			t.Errorf("%s: gauge = %v, want %v", tt.policy, got, tt.want)
		}
		if n := testutil.CollectAndCount(redisEvictionPolicyOK); n != 1 {
			t.Errorf("%s: %d series, want only the current policy's", tt.policy, n)
		}
	}
}

func TestForgetQueueDeletesOnlyThatJobQueuesSeries(t *testing.T) {
	for _, q := range []struct{ namespace, queue string }{{"team-a", "enrichment"}, {"team-a", "competitor"}, {"team-b", "enrichment"}} {
		ReportQueueDepth(q.namespace, q.queue, 1, 2, 3, 4, 5)
		ReportCurrentReplicas(q.namespace, q.queue, 1)
		ReportDesiredReplicas(q.namespace, q.queue, 2)
		CountScaling(q.namespace, q.queue, "up")
		CountScaling(q.namespace, q.queue, "down")
	}
	ForgetQueue("team-a", "enrichment")

	for _, c := range []struct {
		name string
		vec  prometheus.Collector
		want int
	}{
		{"queue jobs", QueueJobs, 2 * 5},
		{"desired replicas", queueDesiredReplicas, 2},
		{"current replicas", queueCurrentReplicas, 2},
		{"scaling events", queueScalingEvents, 2 * 2},
	} {
		if n := testutil.CollectAndCount(c.vec); n != c.want {
			t.Errorf("%s: %d series left, want %d (the other JobQueues')", c.name, n, c.want)
		}
	}
	if got := testutil.ToFloat64(QueueJobs.WithLabelValues("team-b", "enrichment", "failed")); got != 5 {
		t.Errorf("team-b/enrichment failed = %v, want 5", got)
	}
	if got := testutil.ToFloat64(queueDesiredReplicas.WithLabelValues("team-a", "competitor")); got != 2 {
		t.Errorf("team-a/competitor desired replicas = %v, want 2", got)
	}
}

func TestReportQueueDepthSetsEveryState(t *testing.T) {
	ReportQueueDepth("depth", "analytics-heavy", 10, 20, 30, 40, 50)
	for state, want := range map[string]float64{"waiting": 10, "active": 20, "delayed": 30, "completed": 40, "failed": 50} {
		if got := testutil.ToFloat64(QueueJobs.WithLabelValues("depth", "analytics-heavy", state)); got != want {
			t.Errorf("%s = %v, want %v", state, got, want)
		}
	}
	ForgetQueue("depth", "analytics-heavy")
}

func TestWorkerJobStartedCountsInFlightUntilFinished(t *testing.T) {
	const queue = "worker-test"
	finished := WorkerJobStarted(queue)
	if got := testutil.ToFloat64(WorkerJobsInFlight.WithLabelValues(queue)); got != 1 {
		t.Errorf("in flight while running = %v, want 1", got)
	}
	finished()
	if got := testutil.ToFloat64(WorkerJobsInFlight.WithLabelValues(queue)); got != 0 {
		t.Errorf("in flight after = %v, want 0", got)
	}
	if n := testutil.CollectAndCount(workerJobDuration, "queue_operator_worker_job_duration_seconds"); n != 1 {
		t.Errorf("duration series = %d, want 1", n)
	}
	CountWorkerJobCompleted(queue)
	CountWorkerJobFailed(queue, "retry")
	CountWorkerJobFailed(queue, "retry")
	if got := testutil.ToFloat64(workerJobsProcessed.WithLabelValues(queue)); got != 1 {
		t.Errorf("processed = %v, want 1", got)
	}
	if got := testutil.ToFloat64(workerJobsFailed.WithLabelValues(queue, "retry")); got != 2 {
		t.Errorf("failed (retry) = %v, want 2", got)
	}
}
