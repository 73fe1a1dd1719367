// Package testredis starts private redis-server processes for tests that kill, restart or
// cluster Redis, and connects to the shared one that hack/with-services.sh started.
package testredis

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Shared connects to REDIS_URL (set by `make test`). Tests share it by using keys of their own.
func Shared(t testing.TB) *redis.Client {
	t.Helper()
	url := os.Getenv("REDIS_URL")
	if url == "" {
		t.Fatal("REDIS_URL is not set: run the tests with `make test`, which starts Redis")
	}
	opts, err := redis.ParseURL(url)
	if err != nil {
		t.Fatalf("parse REDIS_URL: %v", err)
	}
	c := redis.NewClient(opts)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// SharedFromEnv connects to REDIS_URL outside a test (a worker process a test started).
func SharedFromEnv() *redis.Client {
	opts, err := redis.ParseURL(os.Getenv("REDIS_URL"))
	if err != nil {
		panic(fmt.Sprintf("REDIS_URL: %v", err))
	}
	return redis.NewClient(opts)
}

// Server is a private redis-server.
type Server struct {
	t    testing.TB
	Port int
	Dir  string
	args []string
	cmd  *exec.Cmd
}

// Binary is the redis-server to run: REDIS_SERVER_BIN, or redis-server from PATH.
func Binary() string {
	if b := os.Getenv("REDIS_SERVER_BIN"); b != "" {
		return b
	}
	return "redis-server"
}

// Start runs a redis-server on a free loopback port with its own directory, plus extra
// arguments (e.g. "--appendonly", "yes"). It is killed when the test ends.
func Start(t testing.TB, extra ...string) *Server {
	t.Helper()
	s := &Server{t: t, Port: FreePort(t), Dir: t.TempDir()}
	s.args = append([]string{"--bind", "127.0.0.1", "--port", strconv.Itoa(s.Port), "--dir", s.Dir,
		"--save", "", "--logfile", filepath.Join(s.Dir, "redis.log")}, extra...)
	s.start()
	t.Cleanup(s.Kill)
	return s
}

func (s *Server) start() {
	s.t.Helper()
	s.cmd = exec.Command(Binary(), s.args...)
	if err := s.cmd.Start(); err != nil {
		s.t.Fatalf("start redis-server: %v", err)
	}
	c := s.Client()
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := c.Ping(context.Background()).Err() // fails while the AOF loads, too
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(s.Dir, "redis.log"))
			s.t.Fatalf("redis-server on port %d did not come up: %v\n%s", s.Port, err, log)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Addr is host:port.
func (s *Server) Addr() string { return fmt.Sprintf("127.0.0.1:%d", s.Port) }

// URL is the redis:// URL.
func (s *Server) URL() string { return "redis://" + s.Addr() + "/0" }

// Client returns a new client of this server; the caller closes it.
func (s *Server) Client() *redis.Client {
	return redis.NewClient(&redis.Options{Addr: s.Addr(), MaxRetries: -1})
}

// ClientFor returns a client of this server that is closed when the test ends, after the
// cleanups registered later (a controller using it stops first).
func (s *Server) ClientFor(t testing.TB) *redis.Client {
	c := s.Client()
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// Kill stops the server with SIGKILL, as a crash would.
func (s *Server) Kill() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	_ = s.cmd.Wait()
	s.cmd = nil
}

// Restart starts the server again on the same port and directory (so AOF is replayed).
func (s *Server) Restart() {
	s.t.Helper()
	s.Kill()
	s.start()
}

// FreePort finds a free loopback TCP port.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// StartCluster runs n masters with cluster mode on and joins them with
// `redis-cli --cluster create`. It returns the nodes' addresses.
func StartCluster(t testing.TB, n int) []string {
	t.Helper()
	var addrs []string
	for range n {
		s := Start(t, "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
			"--cluster-node-timeout", "5000", "--appendonly", "no")
		addrs = append(addrs, s.Addr())
	}
	cli := filepath.Join(filepath.Dir(Binary()), "redis-cli")
	if _, err := os.Stat(cli); err != nil {
		cli = "redis-cli"
	}
	args := append([]string{"--cluster", "create"}, addrs...)
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	if out, err := exec.Command(cli, args...).CombinedOutput(); err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	// Every node must see the whole cluster: a node that has not yet learnt of the others'
	// slots answers CLUSTERDOWN, though the node create talked to is ready.
	deadline := time.Now().Add(30 * time.Second)
	for _, addr := range addrs {
		waitClusterOK(t, addr, n, deadline)
	}
	return addrs
}

// waitClusterOK waits until the node at addr reports the cluster ok, with all slots and n nodes.
func waitClusterOK(t testing.TB, addr string, n int, deadline time.Time) {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: addr})
	defer c.Close()
	want := []string{"cluster_state:ok", "cluster_slots_ok:16384", fmt.Sprintf("cluster_known_nodes:%d", n)}
	for {
		info, err := c.ClusterInfo(context.Background()).Result()
		if err == nil && containsAll(info, want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("cluster node %s did not reach state ok: %v %s", addr, err, info)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func containsAll(s string, subs []string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}
