// Package metrics holds the product's Prometheus collectors. Nothing registers itself: each
// binary calls Register with the registry it serves, so no two components export one name.
package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// redisEvictionPolicyOK is 1 when Redis' maxmemory-policy is noeviction, 0 when Redis may evict
// (and so lose) job records, by policy found.
var redisEvictionPolicyOK = prometheus.NewGaugeVec(prometheus.GaugeOpts{
	Name: "queue_operator_redis_eviction_policy_ok",
	Help: "1 when Redis maxmemory-policy is noeviction; 0 when Redis may evict job records and lose jobs.",
}, []string{"policy"})

// Register adds the collectors shared by every component to reg.
func Register(reg prometheus.Registerer) error { return register(reg, redisEvictionPolicyOK) }

// ReportRedisEvictionPolicy reports the maxmemory-policy found: 1 when ok (noeviction), 0 when
// Redis may evict job records. Only the current policy has a series.
func ReportRedisEvictionPolicy(policy string, ok bool) {
	redisEvictionPolicyOK.Reset()
	v := 0.0
	if ok {
		v = 1
	}
	redisEvictionPolicyOK.WithLabelValues(policy).Set(v)
}

func register(reg prometheus.Registerer, collectors ...prometheus.Collector) error {
	for _, c := range collectors {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}

// Worker collectors, served on each worker's own metrics port.
var (
	workerJobsProcessed = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "queue_operator_worker_jobs_processed_total",
		Help: "Jobs this worker completed.",
	}, []string{"queue"})
	workerJobsFailed = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "queue_operator_worker_jobs_failed_total",
		Help: "Job attempts this worker failed, by kind: retry, permanent, ratelimited.",
	}, []string{"queue", "kind"})
	workerJobDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "queue_operator_worker_job_duration_seconds",
		Help:    "Time one job attempt took in the processor.",
		Buckets: []float64{0.01, 0.05, 0.1, 0.5, 1, 5, 15, 30, 60, 120, 300},
	}, []string{"queue"})
	// WorkerJobsInFlight is set through WorkerJobStarted; it stays exported for the tests that
	// read or set it directly.
	WorkerJobsInFlight = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "queue_operator_worker_jobs_in_flight",
		Help: "Jobs this worker is processing now.",
	}, []string{"queue"})
)

// WorkerJobStarted counts a job attempt of queue in flight in the processor. The function it
// returns ends it: the attempt leaves the in-flight gauge and its time is observed.
func WorkerJobStarted(queue string) (finished func()) {
	inFlight := WorkerJobsInFlight.WithLabelValues(queue)
	inFlight.Inc()
	started := time.Now()
	return func() {
		inFlight.Dec()
		workerJobDuration.WithLabelValues(queue).Observe(time.Since(started).Seconds())
	}
}

// CountWorkerJobCompleted counts a job of queue this worker completed.
func CountWorkerJobCompleted(queue string) { workerJobsProcessed.WithLabelValues(queue).Inc() }

// CountWorkerJobFailed counts a failed attempt of a job of queue, by kind of failure (the
// engine's: retry, permanent, ratelimited).
func CountWorkerJobFailed(queue, kind string) { workerJobsFailed.WithLabelValues(queue, kind).Inc() }

// RegisterWorker adds the shared and the worker collectors to reg.
func RegisterWorker(reg prometheus.Registerer) error {
	return register(reg, redisEvictionPolicyOK, workerJobsProcessed, workerJobsFailed, workerJobDuration, WorkerJobsInFlight)
}

// Controller collectors of the JobQueue autoscaler.
var (
	queueDesiredReplicas = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "queue_operator_queue_desired_replicas",
		Help: "Worker replicas the autoscaler asks for, per JobQueue.",
	}, []string{"namespace", "queue"})
	queueCurrentReplicas = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "queue_operator_queue_current_replicas",
		Help: "Worker replicas the Deployment has, per JobQueue.",
	}, []string{"namespace", "queue"})
	// QueueJobs is the depth the autoscaler reads, under the controller's own name (the seed's
	// bullmq_queue_* gauges are the facade's), so KEDA or an HPA can scale on the same numbers.
	// Set it with ReportQueueDepth; it stays exported for the controller tests that read it.
	QueueJobs = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "queue_operator_queue_jobs",
		Help: "Jobs of a JobQueue by state (waiting, active, delayed, completed, failed), as the autoscaler last read them.",
	}, []string{"namespace", "queue", "state"})
	queueReadyReplicas = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "queue_operator_queue_ready_replicas",
		Help: "Worker replicas of a JobQueue's Deployment that are ready.",
	}, []string{"namespace", "queue"})
	queuePaused = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "queue_operator_queue_paused",
		Help: "1 while a JobQueue is paused (it leases nothing and runs no workers), else 0.",
	}, []string{"namespace", "queue"})
	controllerLeader = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "queue_operator_controller_leader",
		Help: "1 while this controller replica leads (keeps the queues and reports their series), else 0.",
	})
	queueScalingEvents = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "queue_operator_queue_scaling_events_total",
		Help: "Changes of a JobQueue's worker replicas, by direction (up, down).",
	}, []string{"namespace", "queue", "direction"})
)

// ReportQueueDepth sets a JobQueue's job counts by state, as the autoscaler read them.
func ReportQueueDepth(namespace, queue string, waiting, active, delayed, completed, failed int64) {
	for state, n := range map[string]int64{"waiting": waiting, "active": active, "delayed": delayed,
		"completed": completed, "failed": failed} {
		QueueJobs.WithLabelValues(namespace, queue, state).Set(float64(n))
	}
}

// ReportReadyReplicas sets the worker replicas of a JobQueue's Deployment that are ready.
func ReportReadyReplicas(namespace, queue string, n int32) {
	queueReadyReplicas.WithLabelValues(namespace, queue).Set(float64(n))
}

// ReportQueuePaused sets whether a JobQueue is paused.
func ReportQueuePaused(namespace, queue string, paused bool) {
	v := 0.0
	if paused {
		v = 1
	}
	queuePaused.WithLabelValues(namespace, queue).Set(v)
}

// ReportLeader sets whether this controller replica leads.
func ReportLeader(leading bool) {
	v := 0.0
	if leading {
		v = 1
	}
	controllerLeader.Set(v)
}

// ReportCurrentReplicas sets the worker replicas a JobQueue's Deployment has.
func ReportCurrentReplicas(namespace, queue string, n int32) {
	queueCurrentReplicas.WithLabelValues(namespace, queue).Set(float64(n))
}

// ReportDesiredReplicas sets the worker replicas the autoscaler asks for.
func ReportDesiredReplicas(namespace, queue string, n int32) {
	queueDesiredReplicas.WithLabelValues(namespace, queue).Set(float64(n))
}

// CountScaling counts a change of a JobQueue's worker replicas; direction is up or down.
func CountScaling(namespace, queue, direction string) {
	queueScalingEvents.WithLabelValues(namespace, queue, direction).Inc()
}

// ForgetQueue deletes every series of a JobQueue that is gone, so its last numbers are not
// exported for ever.
func ForgetQueue(namespace, queue string) {
	labels := prometheus.Labels{"namespace": namespace, "queue": queue}
	QueueJobs.DeletePartialMatch(labels)
	queueDesiredReplicas.DeletePartialMatch(labels)
	queueCurrentReplicas.DeletePartialMatch(labels)
	queueReadyReplicas.DeletePartialMatch(labels)
	queuePaused.DeletePartialMatch(labels)
	queueScalingEvents.DeletePartialMatch(labels)
}

// RegisterController adds the shared and the controller collectors to reg: the JobQueue
// gauges, the leader gauge and the queues' lifetime job counters (SetQueueStatsSource).
func RegisterController(reg prometheus.Registerer) error {
	return register(reg, redisEvictionPolicyOK, queueDesiredReplicas, queueCurrentReplicas, queueReadyReplicas,
		queuePaused, QueueJobs, queueScalingEvents, controllerLeader, controllerJobStats)
}
