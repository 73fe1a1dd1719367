// Package metrics holds the product's Prometheus collectors. Nothing registers itself: each
// binary calls Register with the registry it serves, so no two components export one name.
package metrics

import (
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
	WorkerJobsProcessed = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "queue_operator_worker_jobs_processed_total",
		Help: "Jobs this worker completed.",
	}, []string{"queue"})
	WorkerJobsFailed = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "queue_operator_worker_jobs_failed_total",
		Help: "Job attempts this worker failed, by kind: retry, permanent, ratelimited.",
	}, []string{"queue", "kind"})
	WorkerJobDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "queue_operator_worker_job_duration_seconds",
		Help:    "Time one job attempt took in the processor.",
		Buckets: []float64{0.01, 0.05, 0.1, 0.5, 1, 5, 15, 30, 60, 120, 300},
	}, []string{"queue"})
	WorkerJobsInFlight = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "queue_operator_worker_jobs_in_flight",
		Help: "Jobs this worker is processing now.",
	}, []string{"queue"})
)

// RegisterWorker adds the shared and the worker collectors to reg.
func RegisterWorker(reg prometheus.Registerer) error {
	return register(reg, redisEvictionPolicyOK, WorkerJobsProcessed, WorkerJobsFailed, WorkerJobDuration, WorkerJobsInFlight)
}

// Controller collectors of the JobQueue autoscaler.
var (
	QueueDesiredReplicas = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "queue_operator_queue_desired_replicas",
		Help: "Worker replicas the autoscaler asks for, per JobQueue.",
	}, []string{"namespace", "queue"})
	QueueCurrentReplicas = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "queue_operator_queue_current_replicas",
		Help: "Worker replicas the Deployment has, per JobQueue.",
	}, []string{"namespace", "queue"})
	// QueueJobs is the depth the autoscaler reads, under the controller's own name (the seed's
	// bullmq_queue_* gauges are the facade's), so KEDA or an HPA can scale on the same numbers.
	QueueJobs = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "queue_operator_queue_jobs",
		Help: "Jobs of a JobQueue by state (waiting, active, delayed, completed, failed), as the autoscaler last read them.",
	}, []string{"namespace", "queue", "state"})
	QueueScalingEvents = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "queue_operator_queue_scaling_events_total",
		Help: "Changes of a JobQueue's worker replicas, by direction (up, down).",
	}, []string{"namespace", "queue", "direction"})
)

// RegisterController adds the shared and the controller collectors to reg.
func RegisterController(reg prometheus.Registerer) error {
	return register(reg, redisEvictionPolicyOK, QueueDesiredReplicas, QueueCurrentReplicas, QueueJobs, QueueScalingEvents)
}
