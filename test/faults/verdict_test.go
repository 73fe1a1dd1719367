package faults

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	jobsv1alpha1 "github.com/jengu/queue-operator/api/v1alpha1"
	"github.com/jengu/queue-operator/store"
	"github.com/jengu/queue-operator/test/faults/faultproc"
)

// run is one row of fault_runs.
type run struct {
	id       int64
	worker   string
	attempt  int
	started  time.Time
	finished *time.Time
	outcome  *string
}

// effect is one row of fault_effects.
type effect struct {
	runs              int
	firstRun, lastRun int64
}

// facts is what PostgreSQL holds at the end.
type facts struct {
	runs    map[string][]run
	effects map[string]effect
	history map[string]string // job_results.status
}

func readFacts(ctx context.Context, pool *pgxpool.Pool, namespace string) (facts, error) {
	f := facts{runs: map[string][]run{}, effects: map[string]effect{}, history: map[string]string{}}
	rows, err := pool.Query(ctx, `SELECT id, job_id, worker, attempt, started_at, finished_at, outcome FROM fault_runs ORDER BY id`)
	if err != nil {
		return f, err
	}
	for rows.Next() {
		var r run
		var jobID string
		if err := rows.Scan(&r.id, &jobID, &r.worker, &r.attempt, &r.started, &r.finished, &r.outcome); err != nil {
			rows.Close()
			return f, err
		}
		f.runs[jobID] = append(f.runs[jobID], r)
	}
	rows.Close()
	rows, err = pool.Query(ctx, `SELECT job_id, runs, first_run, last_run FROM fault_effects`)
	if err != nil {
		return f, err
	}
	for rows.Next() {
		var id string
		var e effect
		if err := rows.Scan(&id, &e.runs, &e.firstRun, &e.lastRun); err != nil {
			rows.Close()
			return f, err
		}
		f.effects[id] = e
	}
	rows.Close()
	// The suite's pool resolves names in public, where its own tables are; the product's are in
	// the store's schema.
	rows, err = pool.Query(ctx, `SELECT job_id, status FROM `+store.DefaultSchema+`.job_results WHERE namespace = $1`, namespace)
	if err != nil {
		return f, err
	}
	defer rows.Close()
	for rows.Next() {
		var id, status string
		if err := rows.Scan(&id, &status); err != nil {
			return f, err
		}
		f.history[id] = status
	}
	return f, rows.Err()
}

// ttlDue is when the CR must be gone: its finish time, plus its TTL (the JobQueue's retention),
// plus the margin, plus the part of any controller outage that held the deletion up.
func ttlDue(l crLife, faults []*fault) time.Time {
	if l.ttlFinishedAt.IsZero() {
		return time.Time{}
	}
	ttl := retainCompleted
	if l.ttlPhase == jobsv1alpha1.PhaseFailed {
		ttl = retainFailed
	}
	expire := l.ttlFinishedAt.Add(ttl)
	due := expire.Add(ttlMargin)
	for _, f := range faults {
		if f.controllerOutage && f.start.Before(due) && f.end.After(expire) {
			due = due.Add(f.end.Sub(maxTime(f.start, expire)))
		}
	}
	return due
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// Kinds of problem. redelivered is no failure: a job that ran again because Redis never
// acknowledged its earlier run's outcome (the worker's Complete or Fail failed, or was refused
// because Redis lost the lease meanwhile) is the at-least-once delivery DESIGN.md promises, and
// its side effect, idempotent, exists once. A run again after an acknowledged outcome is a
// duplicate.
const (
	lost        = "lost"
	duplicated  = "duplicated"
	stuck       = "stuck"
	redelivered = "redelivered"
)

// problem is one thing wrong with one job.
type problem struct {
	kind, what string
	// at is when it went wrong, as near as the suite can tell; blame is the last fault that
	// began before it during the job's life (nil: none did).
	at    time.Time
	blame *fault
}

func (p problem) blamed() string {
	if p.blame == nil {
		return "no fault (steady state)"
	}
	return fmt.Sprintf("fault %d (%s)", p.blame.n, p.blame.name)
}

type verdict struct {
	jobs     int
	problems map[string][]problem // by job id
	order    []string             // job ids with problems, by submission
	detail   map[string]string    // runs and phases, by job id
}

func (v *verdict) count(kind string) int {
	n := 0
	for _, ps := range v.problems {
		for _, p := range ps {
			if p.kind == kind {
				n++
				break
			}
		}
	}
	return n
}

// judge compares what each job should have come to with what the CRs, the REST API, the
// history and the side effects say.
func judge(s *suite, jobs []job, faults []*fault, tr *tracker, f facts, apiLive, apiHistory map[string]string, said map[string][]string) *verdict {
	v := &verdict{jobs: len(jobs), problems: map[string][]problem{}, detail: map[string]string{}}
	now := time.Now()
	for _, j := range jobs {
		key := j.id
		if key == "" {
			key = fmt.Sprintf("job #%d (never accepted)", j.index)
		}
		add := func(kind string, at time.Time, format string, args ...any) {
			if len(v.problems[key]) == 0 {
				v.order = append(v.order, key)
			}
			v.problems[key] = append(v.problems[key], problem{kind: kind, what: fmt.Sprintf(format, args...), at: at})
		}
		if j.id == "" {
			add(lost, j.submittedAt, "POST /api/files/%s/enrich never answered 202 in 30 tries: %v", j.property, j.submitErr)
			continue
		}
		retried := !j.retriedAt.IsZero()
		wantStatus, wantOK, wantPermanent := "completed", 1, 0
		switch j.property {
		case faultproc.PropertyFail:
			wantStatus, wantOK, wantPermanent = "failed", 0, 1
		case faultproc.PropertyRetryFail:
			wantStatus, wantOK, wantPermanent = "failed", 0, 1
			if retried {
				wantPermanent = 2
			}
		case faultproc.PropertyRetryOK:
			wantStatus, wantOK, wantPermanent = "failed", 0, 1
			if retried {
				wantStatus, wantOK = "completed", 1
			}
		}
		if isRetried(j.property) && !retried {
			add(lost, j.submittedAt, "its retry was never accepted (%d tries; last: %v)", j.retryTries, j.retryErr)
		}

		runs := f.runs[j.id]
		var ok, permanent int
		var lastRunStart, firstEnd time.Time
		var runText []string
		for _, r := range runs {
			out := "unfinished"
			if r.outcome != nil {
				out = *r.outcome
			}
			switch out {
			case faultproc.OutcomeOK:
				ok++
			case faultproc.OutcomePermanent:
				permanent++
			}
			if r.finished != nil && firstEnd.IsZero() && (out == faultproc.OutcomeOK || out == faultproc.OutcomePermanent) {
				firstEnd = *r.finished
			}
			lastRunStart = r.started
			runText = append(runText, fmt.Sprintf("%s/a%d%s:%s", r.worker, r.attempt, s.rel(r.started), out))
		}
		l, seen := tr.get(j.id)
		v.detail[key] = fmt.Sprintf("submitted%s; runs [%s]; CR %s", s.rel(j.submittedAt), strings.Join(runText, " "), l.describe(s.rel))
		lastEvent := maxTime(lastRunStart, j.submittedAt)
		if n := len(l.phases); n > 0 {
			lastEvent = maxTime(lastEvent, l.phases[n-1].at)
		}
		if retried {
			v.detail[key] += "; retried" + s.rel(j.retriedAt)
		}
		unacknowledged := false
		for _, line := range said[j.id] {
			for _, unacked := range []string{"Complete failed", "Fail failed", "Complete refused", "Fail refused"} {
				unacknowledged = unacknowledged || strings.Contains(line, unacked)
			}
		}
		if len(said[j.id]) > 0 {
			v.detail[key] += "; workers said: " + strings.Join(said[j.id], "; ")
		}
		// A repeat after an outcome Redis had acknowledged is worse than one after a lost
		// acknowledgement: say which.
		ack := "no worker logged a failed or refused Complete or Fail: Redis had acknowledged the earlier outcome"
		if unacknowledged {
			ack = "a worker's Complete or Fail of an earlier run failed or was refused: Redis never acknowledged it"
		}
		// again classifies a run that began at start after the job had ended: a redelivery only
		// when Redis never acknowledged the earlier outcome and the CR had not shown the job
		// finished since its last retry (then the system knew it had ended, and ran it again).
		again := func(start time.Time) string {
			if unacknowledged && !shownFinished(l, j.retriedAt, start) {
				return redelivered
			}
			return duplicated
		}

		// The CR: terminal, and gone by its TTL.
		switch {
		case !seen:
			add(lost, j.submittedAt, "no CR was ever seen")
		case !l.phase.IsFinished() && l.deletedAt.IsZero():
			add(stuck, lastEvent, "its CR is still %s at the end (message %q)", phaseName(l.phase), l.message)
		case !l.phase.IsFinished():
			add(lost, l.deletedAt, "its CR was deleted while %s", phaseName(l.phase))
		case retried && !l.lastNonTerminal.After(j.retriedAt):
			add(lost, j.retriedAt, "its CR never left %s after the retry%s", l.phase, s.rel(j.retriedAt))
		}
		if due := ttlDue(l, faults); !due.IsZero() {
			gone := l.deletedAt
			if gone.IsZero() {
				gone = now
			}
			if gone.After(due) {
				state := "still there"
				if !l.deletedAt.IsZero() {
					state = "deleted" + s.rel(l.deletedAt)
				}
				add(stuck, due, "its CR outlived its TTL: finished%s, due to go by%s, %s", s.rel(l.ttlFinishedAt), s.rel(due), state)
			}
		}

		// The REST API, while the CR lived and past its TTL.
		for _, answer := range []struct{ when, status string }{{"once every job had ended", apiLive[j.id]}, {"once every CR had expired", apiHistory[j.id]}} {
			switch answer.status {
			case wantStatus:
			case "completed", "failed":
				add(lost, l.terminalSince, "GET /api/jobs/%s %s answers %s, want %s (CR message %q)", j.id, answer.when, answer.status, wantStatus, l.message)
			case "not_found":
				add(lost, l.terminalSince, "GET /api/jobs/%s %s answers 404 (no CR and no history)", j.id, answer.when)
			case "":
				add(stuck, lastEvent, "GET /api/jobs/%s %s was never asked (job not settled)", j.id, answer.when)
			default:
				add(stuck, lastEvent, "GET /api/jobs/%s %s answers %q", j.id, answer.when, answer.status)
			}
		}

		// The history of finished jobs.
		if l.phase.IsFinished() {
			switch h, ok := f.history[j.id]; {
			case !ok:
				add(lost, l.terminalSince, "no job_results row for the %s job", strings.ToLower(string(l.phase)))
			case h != wantStatus:
				add(lost, l.terminalSince, "its job_results row says %s, want %s", h, wantStatus)
			}
		}

		// The side effect, and how often the job ran to an outcome.
		e, hasEffect := f.effects[j.id]
		switch {
		case wantOK == 1 && !hasEffect:
			add(lost, maxTime(lastEvent, l.terminalSince), "its side effect was never applied (%s)", outcomeText(ok, permanent))
		case wantOK == 0 && hasEffect:
			add(duplicated, lastEvent, "a side effect was applied although the job should have failed (%d times)", e.runs)
		case hasEffect && e.runs > 1:
			add(again(startOf(runs, e.lastRun)), startOf(runs, e.lastRun), "its side effect was applied %d times (first by run %d, last by run %d; %s)", e.runs, e.firstRun, e.lastRun, ack)
		}
		switch {
		case ok > wantOK || permanent > wantPermanent:
			at := lastRunStart
			if !firstEnd.IsZero() {
				at = nextStartAfter(runs, firstEnd, at)
			}
			add(again(at), at, "it ran to an outcome %s, want %s (%s)", outcomeText(ok, permanent), outcomeText(wantOK, wantPermanent), ack)
		case ok+permanent < wantOK+wantPermanent && (hasEffect || wantOK == 0):
			add(lost, maxTime(lastEvent, j.retriedAt), "it ran to an outcome %s, want %s", outcomeText(ok, permanent), outcomeText(wantOK, wantPermanent))
		}
	}

	// Blame: the last fault that began before the problem, during the job's life.
	for _, j := range jobs {
		key := j.id
		if key == "" {
			key = fmt.Sprintf("job #%d (never accepted)", j.index)
		}
		for i, p := range v.problems[key] {
			for _, f := range faults {
				if !f.start.After(p.at) && f.end.After(j.submittedAt.Add(-2*time.Second)) {
					v.problems[key][i].blame = f
				}
			}
		}
	}
	return v
}

func phaseName(p jobsv1alpha1.JobPhase) string {
	if p == "" {
		return "without a phase"
	}
	return string(p)
}

func outcomeText(ok, permanent int) string {
	return fmt.Sprintf("%d× ok + %d× permanent failure", ok, permanent)
}

func startOf(runs []run, id int64) time.Time {
	for _, r := range runs {
		if r.id == id {
			return r.started
		}
	}
	return time.Time{}
}

// shownFinished says whether the CR was seen in a terminal phase after since and before until.
func shownFinished(l crLife, since, until time.Time) bool {
	for _, p := range l.phases {
		if p.phase.IsFinished() && p.at.After(since) && p.at.Before(until) {
			return true
		}
	}
	return false
}

// nextStartAfter is the start of the first run that began after t (the repeated run).
func nextStartAfter(runs []run, t, fallback time.Time) time.Time {
	for _, r := range runs {
		if r.started.After(t) {
			return r.started
		}
	}
	return fallback
}

// report prints the summary line and fails the test on any lost, duplicated or stuck job,
// naming the first 20 with what was wrong and the fault blamed.
func (v *verdict) report(t *testing.T, s *suite, jobs []job, faults []*fault, tr *tracker, f facts, logDir string) {
	// What each fault did: the jobs it hit, and how soon the burst sent just before it ended.
	for _, fl := range faults {
		t.Logf("fault %d %s..%s %s: %s", fl.n, s.rel(fl.start), s.rel(fl.end), fl.name, fl.detail)
		for _, id := range fl.jobs {
			t.Logf("    hit %s: %s", id, v.detail[id])
		}
		var slowest string
		var last time.Time
		open := 0
		for _, j := range jobs {
			if j.burstOf != fl.n || j.id == "" {
				continue
			}
			l, _ := tr.get(j.id)
			if l.firstTerminal.IsZero() {
				open++
			} else if l.firstTerminal.After(last) {
				last, slowest = l.firstTerminal, j.id
			}
		}
		if open > 0 {
			t.Logf("    its burst of %d jobs: %d never ended", burst, open)
		} else if slowest != "" {
			t.Logf("    its burst of %d jobs all ended within %s of the fault's start (slowest %s: %s)", burst,
				last.Sub(fl.start).Round(100*time.Millisecond), slowest, v.detail[slowest])
		}
	}
	var runs, rerun, aborted, unfinished int
	for _, rs := range f.runs {
		runs += len(rs)
		if len(rs) > 1 {
			rerun++
		}
		for _, r := range rs {
			switch {
			case r.outcome == nil:
				unfinished++
			case *r.outcome == faultproc.OutcomeAborted:
				aborted++
			}
		}
	}
	t.Logf("processor runs: %d for %d jobs; %d jobs ran more than once; %d runs aborted (lease lost, shutdown); %d never finished (worker killed)",
		runs, len(f.runs), rerun, aborted, unfinished)
	L, D, S := v.count(lost), v.count(duplicated), v.count(stuck)
	summary := fmt.Sprintf("jobs %d, faults %d, lost %d, duplicated %d, stuck %d", v.jobs, len(faults), L, D, S)
	t.Log(summary)
	fmt.Println(summary)
	if R := v.count(redelivered); R > 0 {
		t.Logf("redelivered %d: ran again after Redis lost an unacknowledged outcome (at least once, as designed)", R)
	}
	if L+D+S == 0 {
		return
	}

	// Which fault caused what: jobs per fault and kind of problem.
	type tally struct{ lost, duplicated, stuck int }
	byFault := map[string]*tally{}
	var names []string
	for _, key := range v.order {
		counted := map[string]bool{}
		for _, p := range v.problems[key] {
			name := p.blamed()
			if counted[name+p.kind] {
				continue
			}
			counted[name+p.kind] = true
			if byFault[name] == nil {
				byFault[name] = &tally{}
				names = append(names, name)
			}
			switch p.kind {
			case lost:
				byFault[name].lost++
			case duplicated:
				byFault[name].duplicated++
			case stuck:
				byFault[name].stuck++
			}
		}
	}
	sort.Strings(names)
	var lines []string
	for _, name := range names {
		c := byFault[name]
		lines = append(lines, fmt.Sprintf("  after %s: lost %d, duplicated %d, stuck %d (jobs)", name, c.lost, c.duplicated, c.stuck))
	}
	lines = append(lines, fmt.Sprintf("offending jobs (%d; the first 20):", len(v.order)))
	for i, key := range v.order {
		if i == 20 {
			break
		}
		var whats []string
		for _, p := range v.problems[key] {
			short := "no fault"
			if p.blame != nil {
				short = fmt.Sprintf("fault %d", p.blame.n)
			}
			whats = append(whats, fmt.Sprintf("%s (after %s): %s", p.kind, short, p.what))
		}
		lines = append(lines, fmt.Sprintf("  %s [%s]\n      %s\n      %s", key, propertyOf(s, key),
			strings.Join(whats, "\n      "), v.detail[key]))
	}
	// What the components logged about the first few.
	for i, key := range v.order {
		if i == 5 {
			break
		}
		for _, line := range grepLogs(logDir, key, 8) {
			lines = append(lines, "      log: "+line)
		}
	}
	t.Errorf("%s\n%s", summary, strings.Join(lines, "\n"))
}

func propertyOf(s *suite, id string) string {
	for _, j := range s.snapshot() {
		if j.id == id {
			return j.property
		}
	}
	return "?"
}

// grepLogs returns up to n lines of the components' logs that mention id (shortened), those
// that look like trouble first.
func grepLogs(dir, id string, n int) []string {
	var trouble, other []string
	eachLogLine(filepath.Join(dir, "*.log"), func(file string, raw []byte) {
		line := string(raw)
		if !strings.Contains(line, id) || connectionNoise(line) {
			return
		}
		if i := strings.Index(line, `"stacktrace"`); i > 0 {
			line = line[:i]
		}
		if len(line) > 300 {
			line = line[:300] + "…"
		}
		line = filepath.Base(file) + ": " + line
		lower := strings.ToLower(line)
		if strings.Contains(lower, "error") || strings.Contains(lower, "fail") || strings.Contains(lower, "stall") ||
			strings.Contains(lower, "lost") || strings.Contains(lower, "stopped") || strings.Contains(lower, "ignored") {
			trouble = append(trouble, line)
		} else {
			other = append(other, line)
		}
	})
	out := append(trouble, other...)
	return out[:min(n, len(out))]
}

// connectionNoise: a reconcile that failed only because the kube-apiserver or Redis was cut
// off says nothing about one job.
func connectionNoise(line string) bool {
	if !strings.Contains(line, "Reconciler error") {
		return false
	}
	for _, s := range []string{"EOF", "connection reset", "connection refused", "dial tcp"} {
		if strings.Contains(line, s) {
			return true
		}
	}
	return false
}

// workersSaid reads the worker logs (zap JSON lines) for what went wrong at the end of a run:
// a failed or refused Complete or Fail, a failed hand-back, or a lease that ended under the job.
// By job id.
func workersSaid(dir string) map[string][]string {
	said := map[string][]string{}
	eachLogLine(filepath.Join(dir, "worker-*.log"), func(_ string, raw []byte) {
		var line struct {
			Msg, Job, Worker, Error, Reason string
			TS                              string `json:"ts"`
		}
		if json.Unmarshal(raw, &line) != nil || line.Job == "" {
			return
		}
		for _, prefix := range []string{"Complete failed", "Fail failed", "Complete refused", "Fail refused",
			"Hand back failed", "Job stopped: its lease ended"} {
			if strings.HasPrefix(line.Msg, prefix) {
				said[line.Job] = append(said[line.Job], fmt.Sprintf("%s %s: %s: %s%s", line.TS, line.Worker, line.Msg, line.Error, line.Reason))
				return
			}
		}
	})
	return said
}

// eachLogLine calls fn with every line of the log files the pattern matches (lines up to 1 MiB).
func eachLogLine(pattern string, fn func(file string, line []byte)) {
	files, _ := filepath.Glob(pattern)
	for _, file := range files {
		f, err := os.Open(file)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			fn(file, sc.Bytes())
		}
		_ = f.Close()
	}
}
