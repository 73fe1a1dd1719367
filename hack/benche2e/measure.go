package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	eventsv1 "k8s.io/api/events/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	jobsv1alpha1 "github.com/jengu/queue-operator/api/v1alpha1"
)

// countedResources are the kube-apiserver resources whose requests are counted: the job CRs,
// their status subresource, and events (core and events.k8s.io).
var countedResources = map[string]bool{"enrichmentjobs": true, "events": true}

var labelRE = regexp.MustCompile(`(\w+)="([^"]*)"`)

// requestCounts is apiserver_request_total summed over codes, keyed "resource[/subresource] VERB".
type requestCounts map[string]float64

// scrapeAPIServer reads the kube-apiserver's /metrics through the admin's HTTP client.
func scrapeAPIServer(ctx context.Context, hc *http.Client, host string) (requestCounts, error) {
	body, err := get(ctx, hc, strings.TrimSuffix(host, "/")+"/metrics")
	if err != nil {
		return nil, fmt.Errorf("kube-apiserver /metrics: %w", err)
	}
	counts := requestCounts{}
	sc := bufio.NewScanner(strings.NewReader(body))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "apiserver_request_total{") {
			continue
		}
		end := strings.LastIndex(line, "}")
		if end < 0 {
			continue
		}
		labels := map[string]string{}
		for _, m := range labelRE.FindAllStringSubmatch(line[:end], -1) {
			labels[m[1]] = m[2]
		}
		if !countedResources[labels["resource"]] || labels["verb"] == "DELETECOLLECTION" { // the harness's own Event deletion
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(line[end+1:]), 64)
		if err != nil {
			continue
		}
		res := labels["resource"]
		if labels["subresource"] != "" {
			res += "/" + labels["subresource"]
		}
		counts[res+" "+labels["verb"]] += v
	}
	return counts, sc.Err()
}

// scrapeEtcdSize is etcd's in-use db size (etcd_mvcc_db_total_size_in_use_in_bytes) and total
// db size, from its /metrics on the client URL.
func scrapeEtcdSize(ctx context.Context, etcdURL string) (inUse, total float64, err error) {
	body, err := get(ctx, http.DefaultClient, strings.TrimSuffix(etcdURL, "/")+"/metrics")
	if err != nil {
		return 0, 0, fmt.Errorf("etcd /metrics: %w", err)
	}
	for _, line := range strings.Split(body, "\n") {
		f := strings.Fields(line)
		if len(f) != 2 {
			continue
		}
		v, _ := strconv.ParseFloat(f[1], 64)
		switch f[0] {
		case "etcd_mvcc_db_total_size_in_use_in_bytes":
			inUse = v
		case "etcd_mvcc_db_total_size_in_bytes", "etcd_debugging_mvcc_db_total_size_in_bytes":
			if total == 0 {
				total = v
			}
		}
	}
	return inUse, total, nil
}

// compactEtcd compacts etcd's history up to its current revision, as the kube-apiserver does
// every five minutes, through etcd's JSON gateway; etcd answers once the compaction is applied.
func compactEtcd(ctx context.Context, etcdURL string) error {
	base := strings.TrimSuffix(etcdURL, "/")
	var rng struct {
		Header struct {
			Revision string `json:"revision"`
		} `json:"header"`
	}
	if err := postJSON(ctx, base+"/v3/kv/range", map[string]any{"key": "AA=="}, &rng); err != nil { // key "\x00"
		return fmt.Errorf("etcd revision: %w", err)
	}
	if err := postJSON(ctx, base+"/v3/kv/compaction", map[string]any{"revision": rng.Header.Revision, "physical": true}, nil); err != nil {
		return fmt.Errorf("etcd compaction at %s: %w", rng.Header.Revision, err)
	}
	return nil
}

func postJSON(ctx context.Context, url string, in, out any) error {
	body, err := json.Marshal(in)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("POST %s: %d %.200s", url, resp.StatusCode, data)
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(data, out)
}

func get(ctx context.Context, hc *http.Client, url string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET %s: %d %.200s", url, resp.StatusCode, data)
	}
	return string(data), nil
}

// clockTicks is USER_HZ, 100 on every Linux the harness runs on.
const clockTicks = 100

// procTimes are a process's parent and CPU seconds, from /proc/<pid>/stat.
type procTimes struct {
	ppid int
	// cpu is its utime+stime; reaped is its waited-for children's (cutime+cstime).
	cpu, reaped float64
}

func procStat(pid int) (procTimes, error) {
	data, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return procTimes{}, err
	}
	s := string(data)
	i := strings.LastIndex(s, ")")
	if i < 0 {
		return procTimes{}, fmt.Errorf("/proc/%d/stat: no comm", pid)
	}
	// After "pid (comm) ": state ppid ... utime, stime, cutime and cstime are fields 14 to 17
	// (1-based, of the whole line).
	f := strings.Fields(s[i+1:])
	if len(f) < 15 {
		return procTimes{}, fmt.Errorf("/proc/%d/stat: short", pid)
	}
	var t procTimes
	t.ppid, _ = strconv.Atoi(f[1])
	ticks := make([]float64, 4)
	for k := range ticks {
		ticks[k], _ = strconv.ParseFloat(f[11+k], 64)
	}
	t.cpu, t.reaped = (ticks[0]+ticks[1])/clockTicks, (ticks[2]+ticks[3])/clockTicks
	return t, nil
}

// childByName finds this process's child whose executable's base name is name (the etcd and
// kube-apiserver envtest started).
func childByName(name string) (int, error) {
	self := os.Getpid()
	for _, pid := range pids() {
		cmdline, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "cmdline"))
		if err != nil || len(cmdline) == 0 {
			continue
		}
		argv0 := strings.SplitN(string(cmdline), "\x00", 2)[0]
		if filepath.Base(argv0) != name {
			continue
		}
		if t, err := procStat(pid); err == nil && t.ppid == self {
			return pid, nil
		}
	}
	return 0, fmt.Errorf("no child process %s of pid %d", name, self)
}

func pids() []int {
	entries, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range entries {
		if pid, err := strconv.Atoi(e.Name()); err == nil {
			out = append(out, pid)
		}
	}
	return out
}

// proc is a process whose CPU time is measured; a tree's counts its children too, live and
// reaped (PostgreSQL's backends come and go).
type proc struct {
	name string
	pid  int
	tree bool
}

func cpuOf(procs []proc) map[string]float64 {
	// One scan of every process, so that a tree's parent and children are read together (a
	// child reaped between two reads would count twice, or not at all).
	all := map[int]procTimes{}
	for _, pid := range pids() {
		if t, err := procStat(pid); err == nil {
			all[pid] = t
		}
	}
	out := map[string]float64{}
	for _, p := range procs {
		t, ok := all[p.pid]
		if !ok {
			continue
		}
		out[p.name] = t.cpu
		if !p.tree {
			continue
		}
		out[p.name] += t.reaped
		for _, ct := range all {
			if ct.ppid == p.pid {
				out[p.name] += ct.cpu + ct.reaped
			}
		}
	}
	return out
}

type measurer struct {
	hc        *http.Client
	host      string
	etcdURL   string
	kube      client.Client
	namespace string
	// exampleDir gets example-job.json, a finished job CR as stored.
	exampleDir string
}

// snapshot is the counters at one instant.
type snapshot struct {
	requests          requestCounts
	etcdInUse, etcdDB float64
	cpu               map[string]float64
}

// snapshot reads the system's counters; on the CR path, compact first compacts etcd's history,
// so that its in-use size counts live objects only.
func (sys *system) snapshot(ctx context.Context, compact bool) (snapshot, error) {
	var s snapshot
	if m := sys.cr; m != nil {
		if compact {
			if _, err := m.compactedInUse(ctx); err != nil {
				return s, err
			}
		}
		var err error
		if s.requests, err = scrapeAPIServer(ctx, m.hc, m.host); err != nil {
			return s, err
		}
		if s.etcdInUse, s.etcdDB, err = scrapeEtcdSize(ctx, m.etcdURL); err != nil {
			return s, err
		}
	}
	s.cpu = cpuOf(sys.procs)
	return s, nil
}

// compactedInUse compacts etcd's history and reads its in-use size once the freed pages show.
func (m *measurer) compactedInUse(ctx context.Context) (float64, error) {
	if err := compactEtcd(ctx, m.etcdURL); err != nil {
		return 0, err
	}
	// etcd updates its in-use size when its backend commits, and the pages a compaction freed
	// count as free only after a later commit: two writes of a key of the harness's own, apart,
	// make sure both happened.
	for i := range 2 {
		time.Sleep(500 * time.Millisecond)
		value := base64.StdEncoding.EncodeToString([]byte(strconv.Itoa(i)))
		if err := postJSON(ctx, strings.TrimSuffix(m.etcdURL, "/")+"/v3/kv/put",
			map[string]any{"key": base64.StdEncoding.EncodeToString([]byte("/bench-e2e/commit")), "value": value}, nil); err != nil {
			return 0, fmt.Errorf("etcd put: %w", err)
		}
	}
	time.Sleep(time.Second)
	inUse, _, err := scrapeEtcdSize(ctx, m.etcdURL)
	return inUse, err
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
	if len(jobs.Items) > 0 && m.exampleDir != "" {
		// One finished job as the kube-apiserver holds it, to see where its bytes go.
		data, _ := json.MarshalIndent(&jobs.Items[0], "", "  ")
		_ = os.WriteFile(filepath.Join(m.exampleDir, "example-job.json"), data, 0o644)
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

// deleteEvents deletes the namespace's Events (the harness's own DELETECOLLECTION, which the
// request counts leave out).
func (m *measurer) deleteEvents(ctx context.Context) error {
	if err := m.kube.DeleteAllOf(ctx, &eventsv1.Event{}, client.InNamespace(m.namespace)); err != nil {
		return fmt.Errorf("delete the Events: %w", err)
	}
	return nil
}

// waitFinished waits until every EnrichmentJob's CR shows a finished phase: the REST API reads
// Redis and may say completed before the CR does.
func (m *measurer) waitFinished(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		list := &jobsv1alpha1.EnrichmentJobList{}
		err := m.kube.List(ctx, list, client.InNamespace(m.namespace))
		unfinished := 0
		for i := range list.Items {
			if !list.Items[i].Status.Phase.IsFinished() {
				unfinished++
			}
		}
		if err == nil && unfinished == 0 {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("%d EnrichmentJobs not finished after %s (err %v)", unfinished, timeout, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
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
