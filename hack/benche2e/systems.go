package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"
)

// system is one stack the harness drives over the seed's REST contract.
type system struct {
	name string
	api  *apiClient
	// times reads a completed job's start (of its last attempt) and end as its worker recorded
	// them; view is the job of the GET /api/jobs/:id answer that said completed.
	times func(ctx context.Context, id string, view map[string]any) (started, finished time.Time, err error)
	// procs are the processes whose CPU is counted for it, Redis and PostgreSQL included.
	procs []proc
	// cr measures the custom-resource path (kube-apiserver requests, etcd, TTL deletions); nil
	// for the seed's stack.
	cr *measurer
}

const (
	systemOurs = "ours"
	systemSeed = "seed"
)

// seedTimes reads processedOn and finishedOn (Unix ms) from a BullMQ job's view.
func seedTimes(_ context.Context, id string, view map[string]any) (time.Time, time.Time, error) {
	ms := func(key string) time.Time {
		v, _ := view[key].(float64)
		if v <= 0 {
			return time.Time{}
		}
		return time.UnixMilli(int64(v))
	}
	started := ms("processedOn")
	if started.IsZero() {
		return started, started, fmt.Errorf("job %s: no processedOn", id)
	}
	return started, ms("finishedOn"), nil
}

// startSeed runs the seed's own stack (hack/bench/bullmq/seedstack.js): one Node API server
// and f.workers Node workers at f.concurrency, on the same Redis, PostgreSQL and fake
// Open-Meteo. The returned function stops them.
func startSeed(f flags, weatherURL, jwtSecret, issuer, schema string) (*system, func(), error) {
	install := exec.Command(filepath.Join(f.seedDir, "install.sh"))
	install.Stdout, install.Stderr = os.Stderr, os.Stderr
	if err := install.Run(); err != nil {
		return nil, nil, fmt.Errorf("install the seed's stack (node and npm; or -systems=%s): %w", systemOurs, err)
	}
	script, err := filepath.Abs(filepath.Join(f.seedDir, "seedstack.js"))
	if err != nil {
		return nil, nil, err
	}
	var children []*child
	stop := func() {
		for _, c := range children {
			c.stop()
		}
	}
	env := append(os.Environ(), "JWT_SECRET="+jwtSecret, "JWT_ISSUER="+issuer, "DATABASE_SCHEMA="+schema, "OPEN_METEO_FORECAST_URL="+weatherURL+"/v1/forecast",
		"ENRICHMENT_WORKER_CONCURRENCY="+strconv.Itoa(f.concurrency),
		"RETENTION_SECONDS="+strconv.Itoa(int(f.retention.Seconds())), "PORT=0")
	s := &system{name: systemSeed, times: seedTimes}
	server, first, err := startChild(f.nodeBin, []string{script, "server"}, env, filepath.Join(f.logDir, "seed-server.log"))
	if err != nil {
		return nil, nil, err
	}
	children = append(children, server)
	port, ok := strings.CutPrefix(first, "listening ")
	if !ok {
		stop()
		return nil, nil, fmt.Errorf("seed server said %q, not \"listening <port>\"", first)
	}
	s.api = newAPIClient("http://127.0.0.1:" + port)
	s.procs = append(s.procs, proc{name: "seed API server (node)", pid: server.cmd.Process.Pid})
	for i := 0; i < f.workers; i++ {
		w, first, err := startChild(f.nodeBin, []string{script, "worker"}, env, filepath.Join(f.logDir, fmt.Sprintf("seed-worker-%d.log", i)))
		if err != nil {
			stop()
			return nil, nil, err
		}
		children = append(children, w)
		if first != "ready" {
			stop()
			return nil, nil, fmt.Errorf("seed worker said %q, not \"ready\"", first)
		}
		s.procs = append(s.procs, proc{name: fmt.Sprintf("seed worker-%d (node)", i), pid: w.cmd.Process.Pid})
	}
	return s, stop, nil
}

// child is a process whose first stdout line the harness waits for, the rest of its output
// going to a log file.
type child struct {
	cmd  *exec.Cmd
	done chan struct{}
}

func startChild(bin string, args, env []string, logPath string) (*child, string, error) {
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, "", err
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	cmd.Stderr = logFile
	out, err := cmd.StdoutPipe()
	if err != nil {
		_ = logFile.Close()
		return nil, "", err
	}
	if err := cmd.Start(); err != nil {
		_ = logFile.Close()
		return nil, "", fmt.Errorf("start %s %s: %w", bin, strings.Join(args, " "), err)
	}
	c := &child{cmd: cmd, done: make(chan struct{})}
	lines := make(chan string, 1)
	go func() {
		r := bufio.NewReader(out)
		line, _ := r.ReadString('\n')
		lines <- strings.TrimSpace(line)
		_, _ = io.Copy(logFile, r)
		_ = cmd.Wait()
		_ = logFile.Close()
		close(c.done)
	}()
	select {
	case line := <-lines:
		if line == "" {
			c.stop()
			return nil, "", fmt.Errorf("%s %s ended before it was ready (log %s)", bin, strings.Join(args, " "), logPath)
		}
		return c, line, nil
	case <-time.After(60 * time.Second):
		c.stop()
		return nil, "", fmt.Errorf("%s %s not ready after 60 s (log %s)", bin, strings.Join(args, " "), logPath)
	}
}

// stop sends SIGTERM, and SIGKILL after 30 s.
func (c *child) stop() {
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
	case <-time.After(30 * time.Second):
		_ = c.cmd.Process.Kill()
		<-c.done
	}
}

// serviceProcs are Redis's and PostgreSQL's server processes, measured with their children
// (PostgreSQL's backends, Redis's rewrite forks).
func serviceProcs(ctx context.Context, rdb redis.UniversalClient, databaseURL string) ([]proc, error) {
	info, err := rdb.Info(ctx, "server").Result()
	if err != nil {
		return nil, fmt.Errorf("redis INFO server: %w", err)
	}
	redisPID := 0
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "process_id:"); ok {
			redisPID, _ = strconv.Atoi(v)
		}
	}
	if err := isProcess(redisPID, "redis-server"); err != nil {
		return nil, fmt.Errorf("redis (its CPU is measured here, so it must run on this machine): %w", err)
	}
	conn, err := pgx.Connect(ctx, databaseURL)
	if err != nil {
		return nil, fmt.Errorf("postgresql: %w", err)
	}
	defer conn.Close(ctx)
	var backend int
	if err := conn.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&backend); err != nil {
		return nil, fmt.Errorf("postgresql: %w", err)
	}
	t, err := procStat(backend)
	if err == nil {
		err = isProcess(t.ppid, "postgres")
	}
	if err != nil {
		return nil, fmt.Errorf("postgresql (its CPU is measured here, so it must run on this machine): %w", err)
	}
	return []proc{{name: "redis-server", pid: redisPID, tree: true}, {name: "postgres (all backends)", pid: t.ppid, tree: true}}, nil
}

// isProcess checks that pid is a process of this machine running the program name.
func isProcess(pid int, name string) error {
	comm, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "comm"))
	if err != nil {
		return fmt.Errorf("process %d: %w", pid, err)
	}
	if got := strings.TrimSpace(string(comm)); got != name {
		return fmt.Errorf("process %d is %s, not %s", pid, got, name)
	}
	return nil
}
