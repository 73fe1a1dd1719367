package metrics

import (
	"context"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/jengu/queue-operator/queue"
)

// QueueStats is one queue's lifetime counters, as the engine keeps them in Redis.
type QueueStats struct {
	Namespace, Queue string
	Stats            queue.Stats
}

// QueueStatsSource reads the lifetime counters of the queues this process reports.
type QueueStatsSource func(ctx context.Context) ([]QueueStats, error)

// jobStats exports the queues' lifetime job counters and duration histograms. They live in
// Redis (the engine's scripts count each event once, where it happens) and are read at each
// scrape, so they survive every restart of a worker or the controller and scale to zero, and a
// rate over them is the queue's, whichever process did the work. The controller serves them:
// its leader reports the queues it keeps, a standby none, so no series is exported twice.
type jobStats struct {
	mu     sync.Mutex
	source QueueStatsSource

	completed, failed, retried, cancelled, rateLimited *prometheus.Desc
	pickup, duration                                   *prometheus.Desc
	up                                                 *prometheus.Desc
}

func newJobStats() *jobStats {
	desc := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(name, help, append([]string{"namespace", "queue"}, labels...), nil)
	}
	return &jobStats{
		completed: desc("queue_operator_jobs_completed_total", "Jobs that completed."),
		failed: desc("queue_operator_jobs_failed_total",
			"Jobs that ended failed (moved to the dead letter set), by reason: permanent, exhausted, stalled, timeout.", "reason"),
		retried: desc("queue_operator_jobs_retried_total",
			"Jobs sent back for another attempt, by reason: error, timeout, stalled (automatic), manual (a retry of the dead letter set).", "reason"),
		cancelled: desc("queue_operator_jobs_cancelled_total", "Jobs cancelled (their CR deleted) before they finished."),
		rateLimited: desc("queue_operator_jobs_rate_limited_total",
			"Times a job was held back, delayed, by the queue's rate limit or an outside API's."),
		pickup: desc("queue_operator_job_pickup_seconds",
			"Time from a job's enqueue to its first start (queued to started)."),
		duration: desc("queue_operator_job_duration_seconds",
			"Time from the start of a job's last attempt to its end, completed or failed (started to finished)."),
		up: prometheus.NewDesc("queue_operator_job_stats_scrape_ok",
			"1 when the last scrape read every queue's job counters from Redis, 0 when it could not.", nil, nil),
	}
}

// controllerJobStats is the controller's collector; SetQueueStatsSource gives it its queues.
var controllerJobStats = newJobStats()

// SetQueueStatsSource sets where the controller's job counters are read from (the controllers
// set it up). Until it is set, and while it returns no queue, no counter is exported.
func SetQueueStatsSource(source QueueStatsSource) {
	controllerJobStats.mu.Lock()
	defer controllerJobStats.mu.Unlock()
	controllerJobStats.source = source
}

func (s *jobStats) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{s.completed, s.failed, s.retried, s.cancelled, s.rateLimited, s.pickup, s.duration, s.up} {
		ch <- d
	}
}

func (s *jobStats) Collect(ch chan<- prometheus.Metric) {
	s.mu.Lock()
	source := s.source
	s.mu.Unlock()
	if source == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), scrapeTimeout)
	defer cancel()
	all, err := source(ctx)
	if err != nil {
		ch <- prometheus.MustNewConstMetric(s.up, prometheus.GaugeValue, 0)
		return
	}
	ch <- prometheus.MustNewConstMetric(s.up, prometheus.GaugeValue, 1)
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	for _, q := range all {
		st := q.Stats
		counter(s.completed, st.Completed, q.Namespace, q.Queue)
		counter(s.cancelled, st.Cancelled, q.Namespace, q.Queue)
		counter(s.rateLimited, st.RateLimited, q.Namespace, q.Queue)
		// Every reason is exported from the start, at 0, so the first event shows as an increase.
		for _, reason := range queue.FailedReasons {
			counter(s.failed, st.Failed[reason], q.Namespace, q.Queue, reason)
		}
		for _, reason := range queue.RetriedReasons {
			counter(s.retried, st.Retried[reason], q.Namespace, q.Queue, reason)
		}
		ch <- constHistogram(s.pickup, st.Pickup, q.Namespace, q.Queue)
		ch <- constHistogram(s.duration, st.Run, q.Namespace, q.Queue)
	}
}

// constHistogram turns the engine's per-bucket counts into a Prometheus histogram (cumulative
// buckets, the unbounded one implied by the count).
func constHistogram(d *prometheus.Desc, h queue.Histogram, labels ...string) prometheus.Metric {
	buckets := make(map[float64]uint64, len(queue.StatsBuckets))
	var cumulative uint64
	for i, le := range queue.StatsBuckets {
		if i < len(h.Counts) {
			cumulative += h.Counts[i]
		}
		buckets[le.Seconds()] = cumulative
	}
	return prometheus.MustNewConstHistogram(d, h.Count(), h.Sum.Seconds(), buckets, labels...)
}
