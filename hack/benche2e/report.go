package main

import (
	"fmt"
	"io"
	"math"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
)

// rateRow is one system driven at one rate.
type rateRow struct {
	system string
	rate   float64
	s      summary
	procs  []proc
	// before the first POST, done 1 s after the last completion (the CRs finished too), sized
	// after the harness's etcd measurements (ours), gone after the TTL deletions (ours).
	before, done, sized, gone snapshot
	// cr says the row is of the CR path, with kube-apiserver and etcd figures.
	cr      bool
	objects objectSizes
	// compactedInUse and compactedNoEvents are etcd's in-use size after the last completion,
	// compacted, and the same once the jobs' Events are gone.
	compactedInUse, compactedNoEvents float64
	ttlErr                            error
}

// The goals a rate must meet to count as carried (issue 20): every job completed, enqueue p99
// under 20 ms, POST -> worker start p99 under 1 s.
const (
	goalEnqueueP99 = 20 * time.Millisecond
	goalStartP99   = time.Second
)

// withinGoals says whether r met the goals, and if not, the first it missed.
func withinGoals(r rateRow) (bool, string) {
	switch {
	case r.s.accepted < r.s.jobs || r.s.completed < r.s.accepted:
		return false, fmt.Sprintf("%d of %d completed", r.s.completed, r.s.jobs)
	case r.s.noStart > 0:
		return false, fmt.Sprintf("%d jobs without a start time", r.s.noStart)
	case percentile(r.s.enqueue, 0.99) >= goalEnqueueP99:
		return false, "enqueue p99 " + ms(percentile(r.s.enqueue, 0.99))
	case percentile(r.s.toStart, 0.99) >= goalStartP99:
		return false, "start p99 " + ms(percentile(r.s.toStart, 0.99))
	}
	return true, ""
}

func rowsOf(rows []rateRow, system string) []rateRow {
	var out []rateRow
	for _, r := range rows {
		if r.system == system {
			out = append(out, r)
		}
	}
	return out
}

// carried is the highest rate within the goals (0: none) and the lowest rate above it beyond
// them (+Inf: none).
func carried(rows []rateRow) (lo, hi float64) {
	hi = math.Inf(1)
	for _, r := range rows {
		if ok, _ := withinGoals(r); ok {
			lo = max(lo, r.rate)
		}
	}
	for _, r := range rows {
		if ok, _ := withinGoals(r); !ok && r.rate > lo {
			hi = min(hi, r.rate)
		}
	}
	return lo, hi
}

// nextSearchRate is the next rate to try in a search for the highest rate within the goals:
// double while every rate is within, halve while none is (down to slowest), else bisect until
// the bounds are within 10% of each other.
func nextSearchRate(rows []rateRow, slowest float64) (float64, bool) {
	if len(rows) == 0 {
		return 0, false
	}
	lo, hi := carried(rows)
	switch {
	case math.IsInf(hi, 1):
		return 2 * lo, true
	case lo == 0 && hi/2 < slowest:
		return 0, false
	case lo == 0:
		return hi / 2, true
	case hi/lo < 1.1:
		return 0, false
	}
	next := math.Round((lo+hi)/2*10) / 10
	return next, next != lo && next != hi
}

func ms(d time.Duration) string { return fmt.Sprintf("%.0f ms", float64(d)/float64(time.Millisecond)) }

func printReport(out io.Writer, f flags, rows []rateRow) {
	order := map[string]int{}
	for i, name := range f.systems {
		order[name] = i
	}
	sort.SliceStable(rows, func(i, j int) bool {
		if rows[i].rate != rows[j].rate {
			return rows[i].rate < rows[j].rate
		}
		return order[rows[i].system] < order[rows[j].system]
	})
	fmt.Fprintf(out, "\nbench-e2e: %d worker processes x concurrency %d per system, %d users, %d jobs per rate, %d pollers, retention %s, fake Open-Meteo on loopback\n",
		f.workers, f.concurrency, f.users, f.jobs, f.pollers, f.retention)
	fmt.Fprintln(out, "ours = the CR path (facade -> EnrichmentJob -> controller -> Redis -> queue-operator workers);")
	fmt.Fprintln(out, "seed = the seed's own stack on the same Redis, PostgreSQL and Open-Meteo: a Node API server over BullMQ and Node workers (hack/bench/bullmq/seedstack.js).")
	fmt.Fprintln(out, "start = the start of the job's last attempt as its worker recorded it (ours: Redis record ProcessedAt; seed: BullMQ processedOn, whole ms, so up to 1 ms early);")
	fmt.Fprintln(out, "finished = the worker's end of the job (ours: FinishedAt; seed: finishedOn);")
	fmt.Fprintln(out, "completed = the first GET /api/jobs/:id answering completed (polled, >= 20 ms apart per job).")
	fmt.Fprintln(out, "Requests: kube-apiserver apiserver_request_total, resources enrichmentjobs, enrichmentjobs/status and events only, per accepted job")
	fmt.Fprintln(out, "  (LIST: mostly the harness's own polling, left out of the totals);")
	fmt.Fprintln(out, "  \"to done\" = from before the first POST to the last completion, \"+TTL\" = until every job's TTL deletion.")
	fmt.Fprintln(out, "etcd: in-use size growth per job right after the last completion, again after compacting etcd's history (what a live job holds once the kube-apiserver's")
	fmt.Fprintln(out, "  5-minute compaction has passed), and again without the jobs' Events (what it holds past the 1-hour Event TTL; the harness deletes them).")
	fmt.Fprintln(out, "CPU: /proc/<pid>/stat utime+stime per accepted job (Redis and PostgreSQL with their children), from before the first POST to 1 s after the last")
	fmt.Fprintln(out, "  completion (ours: and every CR finished); for ours also from after the etcd measurements to the TTL deletions, idle time included.")
	fmt.Fprintln(out, "  Both systems share Redis and PostgreSQL, so each row also carries the other system's idle polling of them (BullMQ's blocking waits, our controller's resync).")
	fmt.Fprintf(out, "Goals: every job completed, enqueue p99 < %s, POST->start p99 < %s.\n\n", ms(goalEnqueueP99), ms(goalStartP99))

	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	row := func(name string, cell func(r rateRow) string) {
		cells := []string{name}
		for _, r := range rows {
			cells = append(cells, cell(r))
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t")+"\t")
	}
	crOnly := func(cell func(r rateRow) string) func(r rateRow) string {
		return func(r rateRow) string {
			if !r.cr {
				return "-"
			}
			return cell(r)
		}
	}
	row("system", func(r rateRow) string { return r.system })
	row("rate (POST/s)", func(r rateRow) string { return fmt.Sprintf("%g", r.rate) })
	row("jobs posted", func(r rateRow) string { return fmt.Sprint(r.s.jobs) })
	row("accepted (202)", func(r rateRow) string { return fmt.Sprint(r.s.accepted) })
	row("completed", func(r rateRow) string { return fmt.Sprint(r.s.completed) })
	row("completed, no start read", func(r rateRow) string { return fmt.Sprint(r.s.noStart) })
	row("failed", func(r rateRow) string { return fmt.Sprint(r.s.failed) })
	row("accepted jobs/s", func(r rateRow) string { return fmt.Sprintf("%.1f", r.s.acceptedPerSec) })
	row("completed jobs/s", func(r rateRow) string { return fmt.Sprintf("%.1f", r.s.completedPerSec) })
	row("GET polls/job", func(r rateRow) string { return fmt.Sprintf("%.1f", r.perJob(float64(r.s.polls))) })
	for _, l := range latencies {
		row(l.name+" p50", func(r rateRow) string { return ms(percentile(l.of(r.s), 0.5)) })
		row(l.name+" p99", func(r rateRow) string { return ms(percentile(l.of(r.s), 0.99)) })
	}
	row("within the goals", func(r rateRow) string {
		if ok, why := withinGoals(r); !ok {
			return "no: " + why
		}
		return "yes"
	})

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
		row("  "+k, crOnly(func(r rateRow) string {
			return fmt.Sprintf("%.2f | %.2f", r.perJob(r.done.requests[k]-r.before.requests[k]), r.perJob(r.gone.requests[k]-r.before.requests[k]))
		}))
	}
	row("  total", crOnly(func(r rateRow) string {
		return fmt.Sprintf("%.2f | %.2f", r.perJob(r.done.requests.sum(notList)-r.before.requests.sum(notList)), r.perJob(r.gone.requests.sum(notList)-r.before.requests.sum(notList)))
	}))
	row("  writes (create, patch, update, delete)", crOnly(func(r rateRow) string {
		return fmt.Sprintf("%.2f | %.2f", r.perJob(r.done.requests.sum(isWrite)-r.before.requests.sum(isWrite)), r.perJob(r.gone.requests.sum(isWrite)-r.before.requests.sum(isWrite)))
	}))
	row("etcd in-use growth/live job", crOnly(func(r rateRow) string {
		return fmt.Sprintf("%.0f B", r.perJob(r.done.etcdInUse-r.before.etcdInUse))
	}))
	row("  after compaction", crOnly(func(r rateRow) string {
		return fmt.Sprintf("%.0f B", r.perJob(r.compactedInUse-r.before.etcdInUse))
	}))
	row("  after compaction, its Event expired", crOnly(func(r rateRow) string {
		return fmt.Sprintf("%.0f B", r.perJob(r.compactedNoEvents-r.before.etcdInUse))
	}))
	row("finished CR as JSON (mean)", crOnly(func(r rateRow) string { return fmt.Sprintf("%.0f B", r.objects.cr) }))
	row("  of which managedFields", crOnly(func(r rateRow) string { return fmt.Sprintf("%.0f B", r.objects.managedFields) }))
	row("  of which status", crOnly(func(r rateRow) string { return fmt.Sprintf("%.0f B", r.objects.status) }))
	row("Event as JSON (mean)", crOnly(func(r rateRow) string { return fmt.Sprintf("%.0f B", r.objects.event) }))
	row("etcd in-use after TTL - before (no Events)", crOnly(func(r rateRow) string {
		return fmt.Sprintf("%+.0f KiB", (r.gone.etcdInUse-r.before.etcdInUse)/1024)
	}))
	row("etcd db file growth/job", crOnly(func(r rateRow) string {
		return fmt.Sprintf("%.0f B", r.perJob(r.gone.etcdDB-r.before.etcdDB))
	}))
	row("CPU ms/job, to done", func(rateRow) string { return "" })
	var names []string
	seen := map[string]bool{}
	for _, r := range rows {
		for _, p := range r.procs {
			if !seen[p.name] {
				seen[p.name] = true
				names = append(names, p.name)
			}
		}
	}
	for _, name := range names {
		row("  "+name, func(r rateRow) string {
			if v, ok := r.cpu(name, r.before, r.done); ok {
				return fmt.Sprintf("%.2f", 1000*r.perJob(v))
			}
			return "-"
		})
	}
	row("  all", func(r rateRow) string { return fmt.Sprintf("%.2f", 1000*r.perJob(r.cpuAll(r.before, r.done))) })
	row("CPU ms/job, TTL deletions (incl. idle)", crOnly(func(r rateRow) string {
		return fmt.Sprintf("%.2f", 1000*r.perJob(r.cpuAll(r.sized, r.gone)))
	}))
	_ = tw.Flush()

	printRatios(out, f, rows)
	for _, name := range f.systems {
		lo, _ := carried(rowsOf(rows, name))
		var tried []string
		for _, r := range rowsOf(rows, name) {
			tried = append(tried, fmt.Sprintf("%g", r.rate))
		}
		if lo == 0 {
			fmt.Fprintf(out, "%s: no rate tried was within the goals (tried %s)\n", name, strings.Join(tried, ", "))
		} else {
			fmt.Fprintf(out, "%s: highest rate within the goals: %g jobs/s (tried %s)\n", name, lo, strings.Join(tried, ", "))
		}
	}
	for _, r := range rows {
		if r.ttlErr != nil {
			fmt.Fprintf(out, "%s rate %g: TTL deletions incomplete: %v\n", r.system, r.rate, r.ttlErr)
		}
		if r.s.firstErr != "" {
			fmt.Fprintf(out, "%s rate %g: first error: %s\n", r.system, r.rate, r.s.firstErr)
		}
	}
}

// latencies are the per-job latencies the report gives.
var latencies = []struct {
	name string
	of   func(summary) []time.Duration
}{
	{"enqueue (POST)", func(s summary) []time.Duration { return s.enqueue }},
	{"POST->start", func(s summary) []time.Duration { return s.toStart }},
	{"POST->finished", func(s summary) []time.Duration { return s.toFinished }},
	{"POST->completed", func(s summary) []time.Duration { return s.toCompleted }},
}

// printRatios prints ours / seed at every rate both ran.
func printRatios(out io.Writer, f flags, rows []rateRow) {
	type pair struct{ ours, seed *rateRow }
	pairs := map[float64]*pair{}
	var rates []float64
	for i := range rows {
		r := &rows[i]
		p := pairs[r.rate]
		if p == nil {
			p = &pair{}
			pairs[r.rate] = p
			rates = append(rates, r.rate)
		}
		switch r.system {
		case systemOurs:
			p.ours = r
		case systemSeed:
			p.seed = r
		}
	}
	var both []float64
	for _, rate := range rates {
		if pairs[rate].ours != nil && pairs[rate].seed != nil {
			both = append(both, rate)
		}
	}
	if len(both) == 0 {
		return
	}
	fmt.Fprintln(out, "\nours / seed (below 1: ours needs less time or CPU; for jobs/s above 1 is ours ahead; CPU to done)")
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	line := func(name string, value func(r *rateRow) float64) {
		cells := []string{name}
		for _, rate := range both {
			p := pairs[rate]
			o, s := value(p.ours), value(p.seed)
			cell := "-"
			if s > 0 {
				cell = fmt.Sprintf("%.2f", o/s)
			}
			cells = append(cells, cell)
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t")+"\t")
	}
	header := []string{"rate (POST/s)"}
	for _, rate := range both {
		header = append(header, fmt.Sprintf("%g", rate))
	}
	fmt.Fprintln(tw, strings.Join(header, "\t")+"\t")
	line("completed jobs/s", func(r *rateRow) float64 { return r.s.completedPerSec })
	for _, l := range latencies {
		line(l.name+" p50", func(r *rateRow) float64 { return float64(percentile(l.of(r.s), 0.5)) })
		line(l.name+" p99", func(r *rateRow) float64 { return float64(percentile(l.of(r.s), 0.99)) })
	}
	for _, name := range []string{"redis-server", "postgres (all backends)"} {
		line("CPU/job to done, "+name, func(r *rateRow) float64 {
			v, _ := r.cpu(name, r.before, r.done)
			return r.perJob(v)
		})
	}
	line("CPU/job to done, all", func(r *rateRow) float64 { return r.perJob(r.cpuAll(r.before, r.done)) })
	_ = tw.Flush()
	fmt.Fprintln(out)
}

func (r rateRow) perJob(v float64) float64 {
	if r.s.accepted == 0 {
		return 0
	}
	return v / float64(r.s.accepted)
}

// cpu is the CPU seconds of the process name from one snapshot to another; false when it was
// not read in both.
func (r rateRow) cpu(name string, from, to snapshot) (float64, bool) {
	a, okA := from.cpu[name]
	b, okB := to.cpu[name]
	return b - a, okA && okB
}

// cpuAll adds cpu over the processes read in both snapshots.
func (r rateRow) cpuAll(from, to snapshot) float64 {
	t := 0.0
	for _, p := range r.procs {
		if v, ok := r.cpu(p.name, from, to); ok {
			t += v
		}
	}
	return t
}

func notList(key string) bool { return !strings.HasSuffix(key, " LIST") }

// sum adds the counts whose key keep accepts.
func (c requestCounts) sum(keep func(key string) bool) float64 {
	t := 0.0
	for k, v := range c {
		if keep(k) {
			t += v
		}
	}
	return t
}

// isWrite says whether a request count key ("resource VERB") is of a verb that writes.
func isWrite(key string) bool {
	switch key[strings.LastIndexByte(key, ' ')+1:] {
	case "POST", "PUT", "PATCH", "DELETE", "APPLY":
		return true
	}
	return false
}
