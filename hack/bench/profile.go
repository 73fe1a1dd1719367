package main

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// runProfile profiles our engine in one scenario (drain, seq or conc) in two passes on a fresh
// queue each:
// A) INFO commandstats/latencystats/stats deltas, a client-side timing of every command (a
// go-redis hook) and a Go CPU profile of this process; B) the same run with SLOWLOG recording
// every command (slower-than 0), for the server-side time of each script call.
func runProfile(ctx context.Context, e *env, p params, scenario, cpuProfile, repo string, keepCompleted bool) int {
	if !slices.Contains([]string{"drain", "seq", "conc"}, scenario) {
		fmt.Printf("-profile-scenario %q: drain, seq or conc\n", scenario)
		return 2
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute) // two passes, with their prefills
	defer cancel()
	scripts := scriptNames(repo)
	if cpuProfile == "" {
		cpuProfile = filepath.Join(os.TempDir(), "queue-bench-ours-"+scenario+".pprof")
	}
	switch scenario {
	case "drain":
		fmt.Printf("Profile of our engine, drain %d pre-enqueued jobs at concurrency %d (one worker process, go-redis defaults)\n", p.DrainN, p.DrainConc)
	case "seq":
		fmt.Printf("Profile of our engine, %d sequential enqueues from one client (go-redis defaults)\n", p.SeqN)
	case "conc":
		fmt.Printf("Profile of our engine, %d enqueues with %d in flight (go-redis defaults)\n", p.ConcN, p.ConcInflight)
	}
	load, _ := os.ReadFile("/proc/loadavg")
	fmt.Printf("load average at start: %s\n", strings.Join(strings.Fields(string(load))[:3], " "))

	// Pass A.
	hook := &timingHook{names: scripts, stats: map[string]*opStat{}}
	g := goRunner{sys: ours{hook: hook, keepCompleted: keepCompleted}}
	c, measured, err := profiled(ctx, e, g, p, scenario)
	if err != nil {
		fmt.Println("prepare:", err)
		return 1
	}
	hook.reset()
	if err := e.admin.ConfigResetStat(ctx).Err(); err != nil {
		fmt.Println(err)
		return 1
	}
	stats0, _ := infoSection(ctx, e.admin, "stats")
	f, err := os.Create(cpuProfile)
	if err != nil {
		fmt.Println(err)
		return 1
	}
	_ = pprof.StartCPUProfile(f)
	r, err := measured()
	pprof.StopCPUProfile()
	_ = f.Close()
	c.close()
	if err != nil {
		fmt.Println(scenario+":", err)
		return 1
	}
	cmdstats, _ := infoSection(ctx, e.admin, "commandstats")
	latstats, _ := infoSection(ctx, e.admin, "latencystats")
	stats1, _ := infoSection(ctx, e.admin, "stats")
	jobs := float64(r.Jobs)
	fmt.Printf("\nPass A: %d jobs in %.3f s = %s jobs/s; Redis CPU %.1f µs/job (%.0f%% of one core over the run); client CPU %.1f µs/job (%.0f%% of one core)\n",
		r.Jobs, r.Seconds, thousands(r.rate()), r.RedisUs/jobs, r.RedisUs/1e4/r.Seconds, r.ClientUs/jobs, r.ClientUs/1e4/r.Seconds)
	delta := func(k string) float64 {
		a, _ := strconv.ParseFloat(stats0[k], 64)
		b, _ := strconv.ParseFloat(stats1[k], 64)
		return b - a
	}
	fmt.Printf("Commands: %.1f per job (INFO stats total_commands_processed: top-level and run by scripts); network %.0f B in / %.0f B out per job\n",
		delta("total_commands_processed")/jobs, delta("total_net_input_bytes")/jobs, delta("total_net_output_bytes")/jobs)

	fmt.Printf("\nINFO commandstats over the %s (commands run inside scripts are counted too):\n", scenario)
	var all []cmdStat
	var scriptUsec, innerUsec float64
	for k, v := range cmdstats {
		name := strings.TrimPrefix(k, "cmdstat_")
		fields := map[string]string{}
		for _, kv := range strings.Split(v, ",") {
			if a, b, ok := strings.Cut(kv, "="); ok {
				fields[a] = b
			}
		}
		calls, _ := strconv.ParseFloat(fields["calls"], 64)
		usec, _ := strconv.ParseFloat(fields["usec"], 64)
		all = append(all, cmdStat{name, calls, usec})
		switch {
		case name == "evalsha" || name == "eval":
			scriptUsec += usec
		case topLevelOnly[name] || strings.HasPrefix(name, "client") || strings.HasPrefix(name, "config"):
		default:
			innerUsec += usec // run by the scripts (the engine's only top-level commands are EVALSHA and BZPOPMIN)
		}
	}
	sort.Slice(all, func(i, j int) bool { return all[i].usec > all[j].usec })
	fmt.Printf("  %-18s %10s %9s %10s %12s %22s\n", "command", "calls", "calls/job", "usec", "usec/call", "p50/p99 usec")
	for _, x := range all {
		lat := latstats["latency_percentiles_usec_"+x.name]
		pp := map[string]string{}
		for _, kv := range strings.Split(lat, ",") {
			if a, b, ok := strings.Cut(kv, "="); ok {
				pp[a] = b
			}
		}
		fmt.Printf("  %-18s %10.0f %9.2f %10.0f %12.2f %22s\n", x.name, x.calls, x.calls/jobs, x.usec, x.usec/max(1, x.calls), pp["p50"]+"/"+pp["p99"])
	}
	fmt.Printf("  Scripts: %.1f µs of server time per job, of which the Redis commands they call %.1f µs and the Lua interpreter, argument handling and reply building %.1f µs\n",
		scriptUsec/jobs, innerUsec/jobs, (scriptUsec-innerUsec)/jobs)
	fmt.Printf("  Redis CPU beyond command execution (event loop, socket reads/writes, parsing, cron): %.1f µs/job\n",
		r.RedisUs/jobs-scriptUsec/jobs-usecOf(all, "bzpopmin")/jobs)

	fmt.Println("\nClient side (go-redis hook: time from sending a command to having its reply, per call):")
	hook.print(jobs)

	fmt.Printf("\nGo CPU profile of the client process: %s\n", cpuProfile)
	if out, err := exec.CommandContext(ctx, "go", "tool", "pprof", "-top", "-nodecount=30", cpuProfile).CombinedOutput(); err == nil {
		fmt.Println(indent(string(out)))
	}
	if out, err := exec.CommandContext(ctx, "go", "tool", "pprof", "-top", "-cum", "-nodecount=30", cpuProfile).CombinedOutput(); err == nil {
		fmt.Println("cumulative:")
		fmt.Println(indent(string(out)))
	}

	// Pass B: SLOWLOG of every command.
	g = goRunner{sys: ours{keepCompleted: keepCompleted}}
	c, measured, err = profiled(ctx, e, g, p, scenario)
	if err != nil {
		fmt.Println("prepare:", err)
		return 1
	}
	_ = e.admin.ConfigSet(ctx, "slowlog-max-len", strconv.Itoa(p.DrainN*20+1000)).Err()
	_ = e.admin.ConfigSet(ctx, "slowlog-log-slower-than", "0").Err()
	_ = e.admin.Do(ctx, "SLOWLOG", "RESET").Err()
	r, err = measured()
	c.close()
	_ = e.admin.ConfigSet(ctx, "slowlog-log-slower-than", "10000").Err()
	if err != nil {
		fmt.Println(scenario+":", err)
		return 1
	}
	logs, err := e.admin.SlowLogGet(ctx, -1).Result()
	_ = e.admin.ConfigSet(ctx, "slowlog-max-len", "128").Err()
	_ = e.admin.Do(ctx, "SLOWLOG", "RESET").Err()
	if err != nil {
		fmt.Println("slowlog:", err)
		return 1
	}
	fmt.Printf("\nPass B (SLOWLOG slower-than 0, which itself costs Redis time): %d jobs in %.3f s = %s jobs/s, %d entries\n",
		r.Jobs, r.Seconds, thousands(r.rate()), len(logs))
	groups := map[string][]time.Duration{}
	counts := map[string]map[string]int{} // lease: count argument histogram
	for _, l := range logs {
		name := strings.ToLower(l.Args[0])
		if (name == "evalsha" || name == "eval") && len(l.Args) > 1 {
			name += " " + scriptLabel(scripts, l.Args[1])
			if strings.HasSuffix(name, "lease") && len(l.Args) >= 2+7+5 {
				// KEYS are 7, then ARGV: prefix, now, lease ms, worker, count
				if counts["lease"] == nil {
					counts["lease"] = map[string]int{}
				}
				counts["lease"][l.Args[2+1+7+4]]++
			}
		}
		groups[name] = append(groups[name], l.Duration)
	}
	type gs struct {
		name  string
		durs  []time.Duration
		total time.Duration
	}
	var gl []gs
	for k, v := range groups {
		var t time.Duration
		for _, d := range v {
			t += d
		}
		slices.Sort(v)
		gl = append(gl, gs{k, v, t})
	}
	sort.Slice(gl, func(i, j int) bool { return gl[i].total > gl[j].total })
	fmt.Printf("  %-22s %8s %9s %10s %8s %8s %8s %8s\n", "command", "calls", "calls/job", "total ms", "mean µs", "p50 µs", "p99 µs", "max µs")
	for _, x := range gl {
		fmt.Printf("  %-22s %8d %9.2f %10.1f %8.1f %8.1f %8.1f %8.0f\n", x.name, len(x.durs), float64(len(x.durs))/jobs,
			float64(x.total)/1e6, float64(x.total)/float64(len(x.durs))/1e3, us(x.durs, 50), us(x.durs, 99), us(x.durs, 100))
	}
	if h := counts["lease"]; len(h) > 0 {
		var ks []int
		for k := range h {
			n, _ := strconv.Atoi(k)
			ks = append(ks, n)
		}
		slices.Sort(ks)
		var parts []string
		for _, k := range ks {
			parts = append(parts, fmt.Sprintf("%d×%d", h[strconv.Itoa(k)], k))
		}
		fmt.Printf("  lease calls by count asked (calls×count): %s\n", strings.Join(parts, " "))
	}
	slices.SortFunc(logs, func(a, b redis.SlowLog) int { return int(b.Duration - a.Duration) })
	fmt.Println("  slowest entries:")
	for _, l := range logs[:min(8, len(logs))] {
		name := strings.ToLower(l.Args[0])
		if (name == "evalsha" || name == "eval") && len(l.Args) > 1 {
			name += " " + scriptLabel(scripts, l.Args[1])
		}
		fmt.Printf("    %6d µs  %s\n", l.Duration.Microseconds(), name)
	}
	return 0
}

type cmdStat struct {
	name        string
	calls, usec float64
}

var topLevelOnly = map[string]bool{"info": true, "bzpopmin": true, "flushall": true, "ping": true, "hello": true, "slowlog": true}

func usecOf(all []cmdStat, name string) float64 {
	for _, x := range all {
		if x.name == name {
			return x.usec
		}
	}
	return 0
}

func us(sorted []time.Duration, p float64) float64 { return percentile(sorted, p) * 1000 }

func indent(s string) string {
	return "    " + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n    ")
}

// profiled flushes, warms up and opens the queue to profile, and returns it with the measured
// run of scenario on it. The drain's jobs are enqueued here, before the measurement.
func profiled(ctx context.Context, e *env, g goRunner, p params, scenario string) (goConn, func() (result, error), error) {
	if err := e.admin.FlushAll(ctx).Err(); err != nil {
		return nil, nil, err
	}
	c, err := g.open(ctx, e, p)
	if err != nil {
		return nil, nil, err
	}
	if scenario != "drain" {
		return c, func() (result, error) { return g.enqueueScenario(ctx, e, c, scenario, p) }, nil
	}
	if err := forEach(ctx, p.DrainN, p.PrefillConc, c.enqueue); err != nil {
		c.close()
		return nil, nil, err
	}
	return c, func() (result, error) { return drain(ctx, e, c, p) }, nil
}

// scriptNames maps the SHA1 of each engine script (the prelude plus its file, as
// queue/scripts.go builds it) to its name.
func scriptNames(repo string) map[string]string {
	out := map[string]string{}
	dir := filepath.Join(repo, "queue", "lua")
	prelude, err := os.ReadFile(filepath.Join(dir, "prelude.lua"))
	if err != nil {
		return out
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*.lua"))
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".lua")
		body, err := os.ReadFile(f)
		if err != nil || name == "prelude" {
			continue
		}
		sum := sha1.Sum([]byte(string(prelude) + "\n" + string(body)))
		out[hex.EncodeToString(sum[:])] = name
	}
	return out
}

func scriptLabel(names map[string]string, shaOrSrc string) string {
	if n, ok := names[shaOrSrc]; ok {
		return n
	}
	sum := sha1.Sum([]byte(shaOrSrc))
	if n, ok := names[hex.EncodeToString(sum[:])]; ok {
		return n
	}
	if len(shaOrSrc) > 8 {
		shaOrSrc = shaOrSrc[:8]
	}
	return shaOrSrc
}

// timingHook times every command a client sends, by command (and script).
type timingHook struct {
	names map[string]string
	mu    sync.Mutex
	stats map[string]*opStat
}

type opStat struct{ durs []time.Duration }

func (h *timingHook) reset() {
	h.mu.Lock()
	h.stats = map[string]*opStat{}
	h.mu.Unlock()
}

func (h *timingHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *timingHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		t := time.Now()
		err := next(ctx, cmd)
		d := time.Since(t)
		name := cmd.Name()
		if (name == "evalsha" || name == "eval") && len(cmd.Args()) > 1 {
			name += " " + scriptLabel(h.names, fmt.Sprint(cmd.Args()[1]))
		}
		h.mu.Lock()
		s := h.stats[name]
		if s == nil {
			s = &opStat{}
			h.stats[name] = s
		}
		s.durs = append(s.durs, d)
		h.mu.Unlock()
		return err
	}
}

func (h *timingHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

func (h *timingHook) print(jobs float64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	var names []string
	for k := range h.stats {
		names = append(names, k)
	}
	sort.Strings(names)
	fmt.Printf("  %-22s %8s %9s %9s %9s %9s\n", "command", "calls", "calls/job", "mean µs", "p50 µs", "p99 µs")
	for _, k := range names {
		d := slices.Clone(h.stats[k].durs)
		slices.Sort(d)
		var t time.Duration
		for _, x := range d {
			t += x
		}
		fmt.Printf("  %-22s %8d %9.3f %9.1f %9.1f %9.1f\n", k, len(d), float64(len(d))/jobs,
			float64(t)/float64(len(d))/1e3, us(d, 50), us(d, 99))
	}
}
