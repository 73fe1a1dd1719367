package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	eventsv1 "k8s.io/api/events/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	jobsv1alpha1 "github.com/jengu/queue-operator/api/v1alpha1"
)

type measurer struct {
	hc        *http.Client
	host      string
	etcdURL   string
	kube      client.Client
	namespace string
	procs     []proc
}

// snapshot is the counters at one instant.
type snapshot struct {
	requests          requestCounts
	etcdInUse, etcdDB float64
	cpu               map[string]float64
}

func (m *measurer) snapshot(ctx context.Context) (snapshot, error) {
	var s snapshot
	var err error
	if s.requests, err = scrapeAPIServer(ctx, m.hc, m.host); err != nil {
		return s, err
	}
	if s.etcdInUse, s.etcdDB, err = scrapeEtcdSize(ctx, m.etcdURL); err != nil {
		return s, err
	}
	s.cpu = cpuOf(m.procs)
	return s, nil
}

// objectSizes are the mean JSON sizes of the namespace's job CRs and Events: what the
// kube-apiserver stores in etcd for each (CRs are stored as JSON).
type objectSizes struct {
	cr, managedFields, status, event float64
}

func (m *measurer) objectSizes(ctx context.Context) (objectSizes, error) {
	var sizes objectSizes
	jobs := &jobsv1alpha1.EnrichmentJobList{}
	if err := m.kube.List(ctx, jobs, client.InNamespace(m.namespace)); err != nil {
		return sizes, err
	}
	for i := range jobs.Items {
		job := &jobs.Items[i]
		sizes.cr += jsonSize(job)
		sizes.managedFields += jsonSize(job.ManagedFields)
		sizes.status += jsonSize(job.Status)
	}
	events := &eventsv1.EventList{}
	if err := m.kube.List(ctx, events, client.InNamespace(m.namespace)); err != nil {
		return sizes, err
	}
	for i := range events.Items {
		sizes.event += jsonSize(&events.Items[i])
	}
	if n := float64(len(jobs.Items)); n > 0 {
		sizes.cr, sizes.managedFields, sizes.status = sizes.cr/n, sizes.managedFields/n, sizes.status/n
	}
	if n := float64(len(events.Items)); n > 0 {
		sizes.event /= n
	}
	return sizes, nil
}

func jsonSize(v any) float64 {
	b, _ := json.Marshal(v)
	return float64(len(b))
}

// waitNoJobs waits until the namespace holds no EnrichmentJob (the TTL deleted them all).
func (m *measurer) waitNoJobs(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		list := &jobsv1alpha1.EnrichmentJobList{}
		err := m.kube.List(ctx, list, client.InNamespace(m.namespace))
		if err == nil && len(list.Items) == 0 {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("%d EnrichmentJobs still there after %s (err %v)", len(list.Items), timeout, err)
		}
		time.Sleep(time.Second)
	}
}

type rateRow struct {
	rate               float64
	s                  summary
	before, done, gone snapshot
	objects            objectSizes
	ttlErr             error
}

func ms(d time.Duration) string { return fmt.Sprintf("%.0f ms", float64(d)/float64(time.Millisecond)) }

func printReport(out io.Writer, f flags, rows []rateRow, procs []proc) {
	fmt.Fprintf(out, "\nbench-e2e: %d worker processes x concurrency %d, %d users, %d jobs per rate, %d pollers, retention %s, fake Open-Meteo on loopback\n",
		f.workers, f.concurrency, f.users, f.jobs, f.pollers, f.retention)
	fmt.Fprintln(out, "start = the job's Redis record ProcessedAt (start of its last attempt), read when GET /api/jobs/:id first answers completed;")
	fmt.Fprintln(out, "finished (Redis) = that record's FinishedAt, the worker's end of the job;")
	fmt.Fprintln(out, "completed = the first GET /api/jobs/:id answering completed (polled, >= 20 ms apart per job).")
	fmt.Fprintln(out, "Requests: kube-apiserver apiserver_request_total, resources enrichmentjobs, enrichmentjobs/status and events only, per accepted job;")
	fmt.Fprintln(out, "  \"to done\" = from before the first POST to the last completion, \"+TTL\" = until every job's TTL deletion.")
	fmt.Fprintln(out, "CPU: /proc/<pid>/stat utime+stime per accepted job, from before the first POST until the TTL deletions.")
	fmt.Fprintln(out)

	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	row := func(name string, cell func(r rateRow) string) {
		cells := []string{name}
		for _, r := range rows {
			cells = append(cells, cell(r))
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t")+"\t")
	}
	perJob := func(r rateRow, v float64) float64 {
		if r.s.accepted == 0 {
			return 0
		}
		return v / float64(r.s.accepted)
	}
	row("rate (POST/s)", func(r rateRow) string { return fmt.Sprintf("%g", r.rate) })
	row("jobs posted", func(r rateRow) string { return fmt.Sprint(r.s.jobs) })
	row("accepted (202)", func(r rateRow) string { return fmt.Sprint(r.s.accepted) })
	row("completed", func(r rateRow) string { return fmt.Sprint(r.s.completed) })
	row("completed, no Redis start", func(r rateRow) string { return fmt.Sprint(r.s.noStart) })
	row("failed", func(r rateRow) string { return fmt.Sprint(r.s.failed) })
	row("accepted jobs/s", func(r rateRow) string { return fmt.Sprintf("%.1f", r.s.acceptedPerSec) })
	row("completed jobs/s", func(r rateRow) string { return fmt.Sprintf("%.1f", r.s.completedPerSec) })
	row("GET polls/job", func(r rateRow) string { return fmt.Sprintf("%.1f", perJob(r, float64(r.s.polls))) })
	row("enqueue (POST) p50", func(r rateRow) string { return ms(percentile(r.s.enqueue, 0.5)) })
	row("enqueue (POST) p99", func(r rateRow) string { return ms(percentile(r.s.enqueue, 0.99)) })
	row("POST->start p50", func(r rateRow) string { return ms(percentile(r.s.toStart, 0.5)) })
	row("POST->start p99", func(r rateRow) string { return ms(percentile(r.s.toStart, 0.99)) })
	row("POST->finished (Redis) p50", func(r rateRow) string { return ms(percentile(r.s.toFinished, 0.5)) })
	row("POST->finished (Redis) p99", func(r rateRow) string { return ms(percentile(r.s.toFinished, 0.99)) })
	row("POST->completed p50", func(r rateRow) string { return ms(percentile(r.s.toCompleted, 0.5)) })
	row("POST->completed p99", func(r rateRow) string { return ms(percentile(r.s.toCompleted, 0.99)) })

	keys := map[string]bool{}
	for _, r := range rows {
		for k, v := range r.gone.requests {
			if v-r.before.requests[k] > 0 {
				keys[k] = true
			}
		}
	}
	sorted := make([]string, 0, len(keys))
	for k := range keys {
		sorted = append(sorted, k)
	}
	sort.Strings(sorted)
	row("requests/job (to done | +TTL)", func(rateRow) string { return "" })
	for _, k := range sorted {
		row("  "+k, func(r rateRow) string {
			return fmt.Sprintf("%.2f | %.2f", perJob(r, r.done.requests[k]-r.before.requests[k]), perJob(r, r.gone.requests[k]-r.before.requests[k]))
		})
	}
	total := func(s snapshot) float64 {
		t := 0.0
		for _, v := range s.requests {
			t += v
		}
		return t
	}
	row("  total", func(r rateRow) string {
		return fmt.Sprintf("%.2f | %.2f", perJob(r, total(r.done)-total(r.before)), perJob(r, total(r.gone)-total(r.before)))
	})
	writes := func(s snapshot) float64 {
		t := 0.0
		for k, v := range s.requests {
			if isWrite(k) {
				t += v
			}
		}
		return t
	}
	row("  writes (create, patch, update, delete)", func(r rateRow) string {
		return fmt.Sprintf("%.2f | %.2f", perJob(r, writes(r.done)-writes(r.before)), perJob(r, writes(r.gone)-writes(r.before)))
	})
	row("etcd in-use growth/live job", func(r rateRow) string {
		return fmt.Sprintf("%.0f B", perJob(r, r.done.etcdInUse-r.before.etcdInUse))
	})
	row("finished CR as JSON (mean)", func(r rateRow) string { return fmt.Sprintf("%.0f B", r.objects.cr) })
	row("  of which managedFields", func(r rateRow) string { return fmt.Sprintf("%.0f B", r.objects.managedFields) })
	row("  of which status", func(r rateRow) string { return fmt.Sprintf("%.0f B", r.objects.status) })
	row("Event as JSON (mean)", func(r rateRow) string { return fmt.Sprintf("%.0f B", r.objects.event) })
	row("etcd in-use after TTL - before", func(r rateRow) string {
		return fmt.Sprintf("%+.0f KiB", (r.gone.etcdInUse-r.before.etcdInUse)/1024)
	})
	row("etcd db file growth/job", func(r rateRow) string {
		return fmt.Sprintf("%.0f B", perJob(r, r.gone.etcdDB-r.before.etcdDB))
	})
	row("CPU ms/job", func(rateRow) string { return "" })
	for _, p := range procs {
		row("  "+p.name, func(r rateRow) string {
			return fmt.Sprintf("%.2f", 1000*perJob(r, r.gone.cpu[p.name]-r.before.cpu[p.name]))
		})
	}
	row("  all", func(r rateRow) string {
		t := 0.0
		for _, p := range procs {
			t += r.gone.cpu[p.name] - r.before.cpu[p.name]
		}
		return fmt.Sprintf("%.2f", 1000*perJob(r, t))
	})
	_ = tw.Flush()
	for _, r := range rows {
		if r.ttlErr != nil {
			fmt.Fprintf(out, "rate %g: TTL deletions incomplete: %v\n", r.rate, r.ttlErr)
		}
		if r.s.firstErr != "" {
			fmt.Fprintf(out, "rate %g: first error: %s\n", r.rate, r.s.firstErr)
		}
	}
}

// isWrite says whether a request count key ("resource VERB") is of a verb that writes.
func isWrite(key string) bool {
	switch key[strings.LastIndexByte(key, ' ')+1:] {
	case "POST", "PUT", "PATCH", "DELETE", "APPLY":
		return true
	}
	return false
}
