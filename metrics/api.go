package metrics

import (
	"context"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Facade collectors, served on the facade's /metrics beside the seed's bullmq_queue_* gauges.
var (
	apiRequestDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "queue_operator_api_request_duration_seconds",
		Help:    "Time the REST facade took to answer a request, by method, route template and status code.",
		Buckets: []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.25, 0.5, 1, 2.5},
	}, []string{"method", "route", "code"})
	apiEnqueueDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "queue_operator_api_enqueue_duration_seconds",
		Help:    "Time the REST facade took to accept a job (checks and the job's create), by queue; the seed's enqueue latency target is 150 ms.",
		Buckets: []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.25, 0.5, 1, 2.5},
	}, []string{"queue"})
)

// ObserveAPIRequest observes the time the facade took to answer a request. route is the route
// template (never the raw path) and method one of the standard ones, so the label set stays
// bounded.
func ObserveAPIRequest(method, route string, code int, d time.Duration) {
	apiRequestDuration.WithLabelValues(method, route, strconv.Itoa(code)).Observe(d.Seconds())
}

// ObserveAPIEnqueue observes the time the facade took to accept a job of queue.
func ObserveAPIEnqueue(queue string, d time.Duration) {
	apiEnqueueDuration.WithLabelValues(queue).Observe(d.Seconds())
}

// QueueDepth is one queue's job counts, as the seed's metrics name them.
type QueueDepth struct {
	Waiting, Active, Completed, Failed, Delayed int64
}

// QueueDepthSource reads every queue's depth, keyed by queue name.
type QueueDepthSource func(ctx context.Context) (map[string]QueueDepth, error)

// bullMQGauges exports the seed's bullmq_queue_*_jobs gauges, read from the source at each
// scrape, so they are never stale and cost nothing between scrapes.
type bullMQGauges struct {
	source                                      QueueDepthSource
	waiting, active, completed, failed, delayed *prometheus.Desc
	up                                          *prometheus.Desc
}

// scrapeTimeout bounds a scrape's read of the queues; Prometheus' own default timeout is 10 s.
const scrapeTimeout = 5 * time.Second

func newBullMQGauges(source QueueDepthSource) *bullMQGauges {
	desc := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc(name, help, []string{"queue"}, nil)
	}
	return &bullMQGauges{
		source:    source,
		waiting:   desc("bullmq_queue_waiting_jobs", "Number of jobs waiting in queue"),
		active:    desc("bullmq_queue_active_jobs", "Number of jobs currently processing"),
		completed: desc("bullmq_queue_completed_jobs", "Number of completed jobs retained"),
		failed:    desc("bullmq_queue_failed_jobs", "Number of failed jobs retained (the dead letter queue)"),
		delayed:   desc("bullmq_queue_delayed_jobs", "Number of jobs delayed by backoff or rate limiting"),
		up: prometheus.NewDesc("queue_operator_api_queue_scrape_ok",
			"1 when the last scrape read every queue's depth from Redis, 0 when it could not.", nil, nil),
	}
}

func (g *bullMQGauges) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{g.waiting, g.active, g.completed, g.failed, g.delayed, g.up} {
		ch <- d
	}
}

func (g *bullMQGauges) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), scrapeTimeout)
	defer cancel()
	depths, err := g.source(ctx)
	if err != nil {
		ch <- prometheus.MustNewConstMetric(g.up, prometheus.GaugeValue, 0)
		return
	}
	ch <- prometheus.MustNewConstMetric(g.up, prometheus.GaugeValue, 1)
	for queue, d := range depths {
		for desc, v := range map[*prometheus.Desc]int64{g.waiting: d.Waiting, g.active: d.Active,
			g.completed: d.Completed, g.failed: d.Failed, g.delayed: d.Delayed} {
			ch <- prometheus.MustNewConstMetric(desc, prometheus.GaugeValue, float64(v), queue)
		}
	}
}

// RegisterAPI adds the shared and the facade collectors to reg, with the seed's bullmq_queue_*
// gauges read from source. Only the facade exports those gauges, so dashboards never count a
// queue twice.
func RegisterAPI(reg prometheus.Registerer, source QueueDepthSource) error {
	return register(reg, redisEvictionPolicyOK, apiRequestDuration, apiEnqueueDuration, newBullMQGauges(source))
}
