package metrics

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/jengu/queue-operator/queue"
)

func TestJobStatsExportTheEnginesCountersAndHistograms(t *testing.T) {
	run := queue.Histogram{Counts: make([]uint64, len(queue.StatsBuckets)+1), Sum: 4 * time.Second}
	run.Counts[4] = 1 // 1 s
	run.Counts[6] = 1 // 3 s
	s := newJobStats()
	s.source = func(context.Context) ([]QueueStats, error) {
		return []QueueStats{{Namespace: "jobs", Queue: "enrichment", Stats: queue.Stats{
			Completed: 7, Cancelled: 1, RateLimited: 2,
			Failed:  map[string]uint64{queue.FailedTimeout: 3},
			Retried: map[string]uint64{queue.RetriedStalled: 4},
			Pickup:  queue.Histogram{Counts: make([]uint64, len(queue.StatsBuckets)+1)},
			Run:     run,
		}}}, nil
	}
	want := `
# HELP queue_operator_jobs_completed_total Jobs that completed.
# TYPE queue_operator_jobs_completed_total counter
queue_operator_jobs_completed_total{namespace="jobs",queue="enrichment"} 7
# HELP queue_operator_jobs_failed_total Jobs that ended failed (moved to the dead letter set), by reason: permanent, exhausted, stalled, timeout.
# TYPE queue_operator_jobs_failed_total counter
queue_operator_jobs_failed_total{namespace="jobs",queue="enrichment",reason="exhausted"} 0
queue_operator_jobs_failed_total{namespace="jobs",queue="enrichment",reason="permanent"} 0
queue_operator_jobs_failed_total{namespace="jobs",queue="enrichment",reason="stalled"} 0
queue_operator_jobs_failed_total{namespace="jobs",queue="enrichment",reason="timeout"} 3
# HELP queue_operator_jobs_retried_total Jobs sent back for another attempt, by reason: error, timeout, stalled (automatic), manual (a retry of the dead letter set).
# TYPE queue_operator_jobs_retried_total counter
queue_operator_jobs_retried_total{namespace="jobs",queue="enrichment",reason="error"} 0
queue_operator_jobs_retried_total{namespace="jobs",queue="enrichment",reason="manual"} 0
queue_operator_jobs_retried_total{namespace="jobs",queue="enrichment",reason="stalled"} 4
queue_operator_jobs_retried_total{namespace="jobs",queue="enrichment",reason="timeout"} 0
# HELP queue_operator_jobs_cancelled_total Jobs cancelled (their CR deleted) before they finished.
# TYPE queue_operator_jobs_cancelled_total counter
queue_operator_jobs_cancelled_total{namespace="jobs",queue="enrichment"} 1
# HELP queue_operator_jobs_rate_limited_total Times a job was held back, delayed, by the queue's rate limit or an outside API's.
# TYPE queue_operator_jobs_rate_limited_total counter
queue_operator_jobs_rate_limited_total{namespace="jobs",queue="enrichment"} 2
# HELP queue_operator_job_stats_scrape_ok 1 when the last scrape read every queue's job counters from Redis, 0 when it could not.
# TYPE queue_operator_job_stats_scrape_ok gauge
queue_operator_job_stats_scrape_ok 1
`
	names := []string{"queue_operator_jobs_completed_total", "queue_operator_jobs_failed_total", "queue_operator_jobs_retried_total",
		"queue_operator_jobs_cancelled_total", "queue_operator_jobs_rate_limited_total", "queue_operator_job_stats_scrape_ok"}
	if err := testutil.CollectAndCompare(s, strings.NewReader(want), names...); err != nil {
		t.Error(err)
	}

	// The histogram's buckets are cumulative: 1 s and 3 s are both under 5 s.
	reg := prometheus.NewRegistry()
	reg.MustRegister(s)
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, mf := range families {
		if mf.GetName() != "queue_operator_job_duration_seconds" {
			continue
		}
		found = true
		h := mf.GetMetric()[0].GetHistogram()
		if h.GetSampleCount() != 2 || h.GetSampleSum() != 4 {
			t.Errorf("count %d sum %v, want 2 and 4", h.GetSampleCount(), h.GetSampleSum())
		}
		for _, b := range h.GetBucket() {
			want := uint64(0)
			switch {
			case b.GetUpperBound() >= 5:
				want = 2
			case b.GetUpperBound() >= 1:
				want = 1
			}
			if b.GetCumulativeCount() != want {
				t.Errorf("bucket le=%v: %d, want %d", b.GetUpperBound(), b.GetCumulativeCount(), want)
			}
		}
	}
	if !found {
		t.Error("no queue_operator_job_duration_seconds")
	}
}

func TestJobStatsSayWhenRedisCannotBeRead(t *testing.T) {
	s := newJobStats()
	if n := testutil.CollectAndCount(s); n != 0 {
		t.Errorf("%d series without a source, want none", n)
	}
	s.source = func(context.Context) ([]QueueStats, error) { return nil, errors.New("redis down") }
	want := `
# HELP queue_operator_job_stats_scrape_ok 1 when the last scrape read every queue's job counters from Redis, 0 when it could not.
# TYPE queue_operator_job_stats_scrape_ok gauge
queue_operator_job_stats_scrape_ok 0
`
	if err := testutil.CollectAndCompare(s, strings.NewReader(want)); err != nil {
		t.Error(err)
	}
}
