// Command bench runs the queue benchmark of hack/bench/README.md: the same scenarios against
// this repository's engine (package queue), github.com/hibiken/asynq and BullMQ (Node), on one
// private redis-server that it starts on a free loopback port and kills when done.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
)

var allSystems = []string{"ours", "asynq", "bullmq"}
var allScenarios = []string{"seq", "conc", "bulk", "drain", "pickup"}

func main() {
	var (
		quick      = flag.Bool("quick", false, "smaller counts, for a smoke run")
		runs       = flag.Int("runs", 3, "runs of each scenario per system")
		systemsF   = flag.String("systems", strings.Join(allSystems, ","), "systems to run: ours, asynq, bullmq")
		scenariosF = flag.String("scenarios", strings.Join(allScenarios, ","), "scenarios to run: seq, conc, bulk, drain, pickup")
		redisBin   = flag.String("redis-server", "redis-server", "redis-server binary")
		benchBin   = flag.String("redis-benchmark", "redis-benchmark", "redis-benchmark binary (the ceiling); empty skips it")
		nodeBin    = flag.String("node", "node", "node binary (BullMQ)")
		bullDir    = flag.String("bullmq-dir", "bullmq", "directory of bench.js and its node_modules")
		timeout    = flag.Duration("timeout", 3*time.Minute, "bound of one scenario run")
		asynqTCI   = flag.Duration("asynq-task-check-interval", 0, "asynq Config.TaskCheckInterval (0: asynq's default, 1s)")
		rawOut     = flag.String("raw", "", "also write every run's raw result as JSON to this file")
		profile    = flag.Bool("profile", false, "instead of the comparison, profile our engine in one scenario (INFO commandstats, SLOWLOG, client pprof)")
		profileOf  = flag.String("profile-scenario", "drain", "with -profile: the scenario profiled: drain, seq or conc")
		cpuProfile = flag.String("cpuprofile", "", "with -profile: where to write the Go CPU profile of the client (default: a temp file)")
		repoDir    = flag.String("repo", "../..", "with -profile: repository root, to name the engine's scripts by their SHA1")
		n          = flag.Int("n", 0, "override every scenario's job count (0: defaults)")
		oursKeep   = flag.Bool("ours-keep-completed", false, "ours keeps completed records (the engine's default) instead of deleting them as asynq and BullMQ here do")
	)
	flag.Parse()

	p := params{SeqN: 20000, ConcN: 20000, ConcInflight: 8, BulkN: 50000, BulkSize: 50, DrainN: 20000,
		DrainConc: 50, PickupN: 2000, PickupConc: 10, PickupEvery: 2 * time.Millisecond, WarmN: 500,
		PrefillConc: 16, IdleBefore: time.Second}
	ceilingN := 200000
	if *quick {
		p.SeqN, p.ConcN, p.BulkN, p.DrainN, p.PickupN, p.WarmN = 2000, 2000, 5000, 2000, 250, 100
		ceilingN = 20000
	}
	if *n > 0 {
		p.SeqN, p.ConcN, p.BulkN, p.DrainN, p.PickupN = *n, *n, *n, *n, *n
	}
	p.PickupEvMs = float64(p.PickupEvery) / float64(time.Millisecond)
	p.IdleBeforeMs = float64(p.IdleBefore) / float64(time.Millisecond)

	ctx, stopSignals := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stopSignals()

	srv, err := startServer(*redisBin)
	if err != nil {
		fatal(err)
	}
	defer srv.stop()
	admin := redis.NewClient(&redis.Options{Addr: srv.addr()})
	defer admin.Close()
	e := &env{addr: srv.addr(), port: srv.port, admin: admin, payload: benchPayload()}

	var code int
	if *profile {
		code = runProfile(ctx, e, p, *profileOf, *cpuProfile, *repoDir, *oursKeep)
	} else {
		code = compare(ctx, e, p, compareOpts{
			runs: *runs, systems: splitList(*systemsF, allSystems), scenarios: splitList(*scenariosF, allScenarios),
			benchBin: *benchBin, ceilingN: ceilingN, node: *nodeBin, bullDir: *bullDir, timeout: *timeout,
			asynqTCI: *asynqTCI, rawOut: *rawOut, quick: *quick, srv: srv, oursKeepCompleted: *oursKeep,
		})
	}
	admin.Close()
	srv.stop()
	os.Exit(code)
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "bench:", err)
	os.Exit(1)
}

// splitList parses a comma-separated selection, returned in the order of allowed.
func splitList(s string, allowed []string) []string {
	var picked []string
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(strings.ToLower(f))
		if f == "" {
			continue
		}
		if !slices.Contains(allowed, f) {
			fatal(fmt.Errorf("unknown name %q (want some of %s)", f, strings.Join(allowed, ", ")))
		}
		picked = append(picked, f)
	}
	var out []string
	for _, a := range allowed {
		if slices.Contains(picked, a) {
			out = append(out, a)
		}
	}
	return out
}

type compareOpts struct {
	runs               int
	systems, scenarios []string
	benchBin           string
	ceilingN           int
	node, bullDir      string
	timeout, asynqTCI  time.Duration
	rawOut             string
	quick              bool
	srv                *server
	oursKeepCompleted  bool
}

type rawRun struct {
	Scenario string `json:"scenario"`
	System   string `json:"system"`
	Run      int    `json:"run"`
	result
}

func compare(ctx context.Context, e *env, p params, o compareOpts) int {
	bullDir, _ := filepath.Abs(o.bullDir)
	systems := map[string]system{
		"ours":   goRunner{sys: ours{keepCompleted: o.oursKeepCompleted}},
		"asynq":  goRunner{sys: asynqSys{taskCheckInterval: o.asynqTCI}},
		"bullmq": bullmqSys{node: o.node, dir: bullDir, timeout: o.timeout},
	}
	fmt.Print(header(ctx, e, p, o, bullDir))

	results := map[string]map[string][]result{} // scenario -> system -> runs
	var raw []rawRun
	failed := false
	for _, sc := range o.scenarios {
		results[sc] = map[string][]result{}
		for run := range o.runs {
			// Interleave the systems, rotating who goes first, so drift on a shared machine
			// spreads over all of them.
			order := slices.Clone(o.systems)
			for range run % max(1, len(order)) {
				order = append(order[1:], order[0])
			}
			for _, name := range order {
				if sc == "bulk" && name == "asynq" {
					continue // asynq has no bulk add
				}
				if ctx.Err() != nil {
					fmt.Fprintln(os.Stderr, "bench: interrupted")
					return 130
				}
				if err := e.admin.FlushAll(ctx).Err(); err != nil {
					fatal(err)
				}
				rctx, cancel := context.WithTimeout(ctx, o.timeout)
				r, err := systems[name].run(rctx, e, sc, p)
				cancel()
				if err != nil {
					failed = true
					fmt.Fprintf(os.Stderr, "bench: %s %s run %d: %v\n", sc, name, run+1, err)
					continue
				}
				results[sc][name] = append(results[sc][name], r)
				raw = append(raw, rawRun{Scenario: sc, System: name, Run: run + 1, result: r})
				lat := ""
				if r.HasLatency {
					lat = fmt.Sprintf(", p50 %.3f ms, p99 %.3f ms", r.P50Ms, r.P99Ms)
				}
				fmt.Fprintf(os.Stderr, "  %-6s %-6s run %d: %d jobs in %.3f s = %s jobs/s%s, Redis CPU %.1f µs/job, client CPU %.1f µs/job\n",
					sc, name, run+1, r.Jobs, r.Seconds, thousands(r.rate()), lat, r.RedisUs/float64(r.Jobs), r.ClientUs/float64(r.Jobs))
			}
		}
		_ = e.admin.FlushAll(ctx).Err()
	}

	var ceil ceilingResult
	var ceilErr error
	if o.benchBin != "" {
		fmt.Fprintln(os.Stderr, "  ceiling: redis-benchmark -c 1 -P 1 ...")
		ceil, ceilErr = runCeiling(ctx, o.benchBin, o.srv, e.admin, o.ceilingN, o.runs)
	}

	fmt.Println()
	fmt.Print(printTable(buildRows(results, p), o.systems))
	fmt.Println("Cells: median (min–max) of the runs. Ratios: ours/other of the medians; ✓ = ours ahead (higher jobs/s, lower ms or µs).")
	fmt.Println("2b: ours EnqueueMany, BullMQ addBulk, of the same batch size; asynq has no bulk add.")
	if o.oursKeepCompleted {
		fmt.Println("Ours keeps completed records (-ours-keep-completed: the completed sorted set and the job hashes); asynq deletes them (no Retention), BullMQ removeOnComplete: true.")
	} else {
		fmt.Println("Completed records: ours deletes them (Queue.SetRemoveOnComplete(true); -ours-keep-completed keeps them), asynq too (no Retention), BullMQ removeOnComplete: true.")
	}
	fmt.Println("Ours' concurrent Enqueue calls on one queue share script calls (group commit, no timer); a lone or sequential Enqueue is one round trip of its own.")
	fmt.Println("Ours acknowledges through one acker goroutine: one CompleteMany call carries the completions that piled up during the previous call (no timer); each job is still fenced, versioned and evented on its own.")
	fmt.Println("CPU rows: Redis' used_cpu_sys+used_cpu_user, and the benchmarking process' CPU (the Go harness; for BullMQ the Node process), over the measured section, per job.")
	if o.benchBin != "" {
		fmt.Println()
		if ceilErr != nil {
			fmt.Printf("Ceiling: redis-benchmark failed: %v\n", ceilErr)
		} else {
			fmt.Printf("Ceiling (redis-benchmark -c 1 -n %d -P 1, same server, %d runs): PING_INLINE %s rt/s, PING_MBULK %s rt/s, EVALSHA of `return 1` %s rt/s\n",
				o.ceilingN, o.runs, formatCell(ceil.pingInline, "rt/s"), formatCell(ceil.pingMbulk, "rt/s"), formatCell(ceil.evalsha, "rt/s"))
		}
	}
	if o.rawOut != "" {
		if b, err := json.MarshalIndent(raw, "", "  "); err == nil {
			_ = os.WriteFile(o.rawOut, b, 0o644)
		}
	}
	if failed {
		fmt.Println("\nSome runs failed: see the messages above.")
		return 1
	}
	return 0
}

func buildRows(res map[string]map[string][]result, p params) []*row {
	vals := func(sc string, f func(r result) float64) map[string][]float64 {
		m := map[string][]float64{}
		for sys, runs := range res[sc] {
			for _, r := range runs {
				m[sys] = append(m[sys], f(r))
			}
		}
		return m
	}
	rate := func(r result) float64 { return r.rate() }
	p50 := func(r result) float64 { return r.P50Ms }
	p99 := func(r result) float64 { return r.P99Ms }
	redisPerJob := func(r result) float64 { return r.RedisUs / float64(r.Jobs) }
	clientPerJob := func(r result) float64 { return r.ClientUs / float64(r.Jobs) }
	atLeast := func(g float64) func(float64) bool { return func(v float64) bool { return v >= g } }
	atMost := func(g float64) func(float64) bool { return func(v float64) bool { return v <= g } }

	var rows []*row
	add := func(r *row) *row {
		if len(r.vals) > 0 {
			rows = append(rows, r)
		}
		return r
	}
	add(&row{label: "1 sequential enqueue, 1 client", unit: "jobs/s", higher: true, goal: "≥ 16,000", goalOK: atLeast(16000), vals: vals("seq", rate)})
	add(&row{label: "1 sequential enqueue p50", unit: "ms", vals: vals("seq", p50)})
	add(&row{label: "1 sequential enqueue p99", unit: "ms", vals: vals("seq", p99)})
	add(&row{label: fmt.Sprintf("2 concurrent enqueue, %d in flight", p.ConcInflight), unit: "jobs/s", higher: true, vals: vals("conc", rate)})
	add(&row{label: fmt.Sprintf("2b bulk add of %d, %d in flight", p.BulkSize, p.ConcInflight), unit: "jobs/s", higher: true, vals: vals("bulk", rate)})
	add(&row{label: fmt.Sprintf("3 drain %s jobs, concurrency %d", thousands(float64(p.DrainN)), p.DrainConc), unit: "jobs/s", higher: true, goal: "≥ 24,000", goalOK: atLeast(24000), vals: vals("drain", rate)})
	add(&row{label: fmt.Sprintf("4 pickup p50, idle worker (%d), job every %v", p.PickupConc, p.PickupEvery), unit: "ms", goal: "≤ 1", goalOK: atMost(1), vals: vals("pickup", p50)})
	add(&row{label: "4 pickup p99", unit: "ms", goal: "≤ 5", goalOK: atMost(5), vals: vals("pickup", p99)})
	names := map[string]string{"seq": "1 sequential enqueue", "conc": "2 concurrent enqueue", "bulk": "2b bulk add", "drain": "3 drain", "pickup": "4 pickup"}
	for _, sc := range allScenarios {
		r := &row{label: "5 Redis CPU, " + names[sc], unit: "µs/job", vals: vals(sc, redisPerJob)}
		if sc == "drain" {
			r.goal, r.goalOK = "≤ 40", atMost(40)
		}
		add(r)
	}
	for _, sc := range allScenarios {
		add(&row{label: "client CPU, " + names[sc], unit: "µs/job", vals: vals(sc, clientPerJob)})
	}
	return rows
}

func header(ctx context.Context, e *env, p params, o compareOpts, bullDir string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Queue benchmark, %s\n", time.Now().Format(time.RFC3339))
	fmt.Fprintf(&b, "Command: hack/bench/run.sh %s\n", strings.Join(os.Args[1:], " "))
	redisVer := "?"
	if m, err := infoSection(ctx, e.admin, "server"); err == nil {
		redisVer = m["redis_version"]
	}
	nodeVer := "?"
	if out, err := exec.Command(o.node, "--version").Output(); err == nil {
		nodeVer = strings.TrimSpace(string(out))
	}
	bullVer := "?"
	if raw, err := os.ReadFile(filepath.Join(bullDir, "node_modules", "bullmq", "package.json")); err == nil {
		var pj struct{ Version string }
		if json.Unmarshal(raw, &pj) == nil {
			bullVer = pj.Version
		}
	}
	asynqVer := "?"
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			if d.Path == "github.com/hibiken/asynq" {
				asynqVer = d.Version
			}
		}
	}
	load, _ := os.ReadFile("/proc/loadavg")
	fmt.Fprintf(&b, "Machine: %d CPUs, %s, load average %s\n", runtime.NumCPU(), runtime.Version(), strings.Join(strings.Fields(string(load))[:3], " "))
	fmt.Fprintf(&b, "redis-server %s on 127.0.0.1:%d (no persistence); asynq %s; BullMQ %s on Node %s\n", redisVer, e.port, asynqVer, bullVer, nodeVer)
	fmt.Fprintf(&b, "Counts: sequential %d, concurrent %d (%d in flight), addBulk %d (batches of %d), drain %d (concurrency %d), pickup %d (concurrency %d, one every %v); %d runs each; payload %d bytes\n",
		p.SeqN, p.ConcN, p.ConcInflight, p.BulkN, p.BulkSize, p.DrainN, p.DrainConc, p.PickupN, p.PickupConc, p.PickupEvery, o.runs, len(e.payload))
	return b.String()
}
