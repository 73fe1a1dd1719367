package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
)

// server is the private redis-server the benchmark runs on: loopback only, no persistence.
type server struct {
	bin  string
	port int
	dir  string
	cmd  *exec.Cmd
}

// freePort asks the kernel for a free loopback port; 6379 is never used (another service's).
func freePort() (int, error) {
	for range 20 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		port := l.Addr().(*net.TCPAddr).Port
		_ = l.Close()
		if port != 6379 {
			return port, nil
		}
	}
	return 0, errors.New("no free port")
}

func startServer(bin string) (*server, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "queue-bench-redis-")
	if err != nil {
		return nil, err
	}
	s := &server{bin: bin, port: port, dir: dir}
	s.cmd = exec.Command(bin, "--bind", "127.0.0.1", "--port", strconv.Itoa(port), "--dir", dir,
		"--save", "", "--appendonly", "no", "--protected-mode", "yes",
		"--logfile", filepath.Join(dir, "redis.log"))
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} // never outlive the benchmark
	if err := s.cmd.Start(); err != nil {
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	c := redis.NewClient(&redis.Options{Addr: s.addr()})
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := c.Ping(ctx).Err()
		cancel()
		if err == nil {
			return s, nil
		}
		if time.Now().After(deadline) {
			s.stop()
			return nil, fmt.Errorf("redis-server on port %d did not answer: %w", port, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (s *server) addr() string { return "127.0.0.1:" + strconv.Itoa(s.port) }

func (s *server) stop() {
	if s == nil || s.cmd == nil || s.cmd.Process == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	_, _ = s.cmd.Process.Wait()
	_ = os.RemoveAll(s.dir)
	s.cmd = nil
}

// infoSection parses one INFO section into field -> value.
func infoSection(ctx context.Context, c *redis.Client, section string) (map[string]string, error) {
	txt, err := c.Info(ctx, section).Result()
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(txt))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if k, v, ok := strings.Cut(line, ":"); ok {
			out[k] = v
		}
	}
	return out, nil
}

// redisCPU is the server's CPU time so far (used_cpu_sys + used_cpu_user), in seconds.
func redisCPU(ctx context.Context, c *redis.Client) (float64, error) {
	m, err := infoSection(ctx, c, "cpu")
	if err != nil {
		return 0, err
	}
	sys, err1 := strconv.ParseFloat(m["used_cpu_sys"], 64)
	user, err2 := strconv.ParseFloat(m["used_cpu_user"], 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("INFO cpu: cannot read used_cpu_sys/used_cpu_user from %v", m)
	}
	return sys + user, nil
}

// processCPU is this process' CPU time so far (user + system), in seconds.
func processCPU() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	tv := func(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }
	return tv(ru.Utime) + tv(ru.Stime)
}

// cpuMeter brackets a measured section: Redis CPU and this process' CPU.
type cpuMeter struct {
	c                  *redis.Client
	redis0, process0   float64
	redisUs, processUs float64
}

func startCPU(ctx context.Context, c *redis.Client) (*cpuMeter, error) {
	r, err := redisCPU(ctx, c)
	if err != nil {
		return nil, err
	}
	return &cpuMeter{c: c, redis0: r, process0: processCPU()}, nil
}

func (m *cpuMeter) stop(ctx context.Context) error {
	p := processCPU()
	r, err := redisCPU(ctx, m.c)
	if err != nil {
		return err
	}
	m.redisUs = (r - m.redis0) * 1e6
	m.processUs = (p - m.process0) * 1e6
	return nil
}

// ceiling runs redis-benchmark with one client and no pipelining: the round trips per second a
// single connection can do on this server, for PING and for EVALSHA of a trivial script.
type ceilingResult struct {
	pingInline, pingMbulk, evalsha []float64
}

func runCeiling(ctx context.Context, bin string, s *server, c *redis.Client, n, runs int) (ceilingResult, error) {
	var out ceilingResult
	sha, err := c.ScriptLoad(ctx, "return 1").Result()
	if err != nil {
		return out, err
	}
	base := []string{"-h", "127.0.0.1", "-p", strconv.Itoa(s.port), "-c", "1", "-n", strconv.Itoa(n), "-P", "1", "--csv"}
	for range runs {
		rows, err := redisBenchmark(ctx, bin, append(append([]string{}, base...), "-t", "ping")...)
		if err != nil {
			return out, err
		}
		out.pingInline = append(out.pingInline, rows["PING_INLINE"])
		out.pingMbulk = append(out.pingMbulk, rows["PING_MBULK"])
		rows, err = redisBenchmark(ctx, bin, append(append([]string{}, base...), "EVALSHA", sha, "0")...)
		if err != nil {
			return out, err
		}
		for _, v := range rows { // one row, named after the command line
			out.evalsha = append(out.evalsha, v)
		}
	}
	return out, nil
}

// redisBenchmark runs redis-benchmark --csv and returns test name -> requests per second.
func redisBenchmark(ctx context.Context, bin string, args ...string) (map[string]float64, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	raw, err := exec.CommandContext(ctx, bin, args...).Output()
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", bin, strings.Join(args, " "), err)
	}
	out := map[string]float64{}
	for _, line := range strings.Split(string(raw), "\n") {
		f := strings.Split(line, "\",\"")
		if len(f) < 2 {
			continue
		}
		name := strings.Trim(f[0], "\"")
		v, err := strconv.ParseFloat(strings.Trim(f[1], "\""), 64)
		if err != nil || name == "test" {
			continue
		}
		out[name] = v
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("redis-benchmark printed no result: %q", raw)
	}
	return out, nil
}
