// Package testpg starts a private PostgreSQL server for tests that stop, crash or restart it
// (the shared one that hack/with-services.sh starts must stay up for every other test). It does
// what with-services.sh does: initdb and pg_ctl from Debian's postgresql package, on a free
// loopback port, run as the postgres user when the test runs as root.
package testpg

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Server is a private PostgreSQL server.
type Server struct {
	t       testing.TB
	Port    int
	dataDir string
	binDir  string
	// runAs is the OS user the server runs as ("" for the test's own user).
	runAs string
	// listen is the address the server listens on (127.0.0.1 unless ListenOn says otherwise).
	listen string
}

// Option changes how Start sets up the server.
type Option func(*Server)

// ListenOn makes the server listen on addr (e.g. "0.0.0.0" inside a test's own network
// namespace, for pods on its node) and trust clients from any address.
func ListenOn(addr string) Option { return func(s *Server) { s.listen = addr } }

// BinDir is the newest /usr/lib/postgresql/*/bin holding initdb, or "".
func BinDir() string {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return versionOf(dirs[i]) < versionOf(dirs[j]) })
	for i := len(dirs) - 1; i >= 0; i-- {
		if _, err := os.Stat(filepath.Join(dirs[i], "initdb")); err == nil {
			return dirs[i]
		}
	}
	return ""
}

func versionOf(binDir string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return v
}

// Start creates a cluster in a directory of its own and starts it. The server is stopped and
// its files removed when the test ends.
func Start(t testing.TB, opts ...Option) *Server {
	t.Helper()
	bin := BinDir()
	if bin == "" {
		t.Fatal("PostgreSQL is not installed (/usr/lib/postgresql/*/bin/initdb): run the tests with `make test`, whose hack/with-services.sh installs it")
	}
	root, err := os.MkdirTemp("", "testpg-")
	if err != nil {
		t.Fatalf("testpg: %v", err)
	}
	// The postgres user must reach the data directory.
	if err := os.Chmod(root, 0o755); err != nil {
		t.Fatalf("testpg: %v", err)
	}
	s := &Server{t: t, Port: freePort(t), dataDir: filepath.Join(root, "data"), binDir: bin, listen: "127.0.0.1"}
	for _, o := range opts {
		o(s)
	}
	if err := os.Mkdir(s.dataDir, 0o700); err != nil {
		t.Fatalf("testpg: %v", err)
	}
	if os.Geteuid() == 0 { // PostgreSQL refuses to run as root
		u, err := user.Lookup("postgres")
		if err != nil {
			t.Fatalf("testpg: running as root needs the postgres user (Debian's postgresql package creates it): %v", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(s.dataDir, uid, gid); err != nil {
			t.Fatalf("testpg: %v", err)
		}
		s.runAs = "postgres"
	}
	t.Cleanup(func() {
		_ = s.pgctl("stop", "-m", "immediate", "-w")
		_ = os.RemoveAll(root)
	})
	if out, err := s.command(filepath.Join(bin, "initdb"), "-D", s.dataDir, "-U", "postgres", "--auth=trust",
		"-E", "UTF8", "--no-sync").CombinedOutput(); err != nil {
		t.Fatalf("testpg: initdb: %v\n%s", err, out)
	}
	if s.listen != "127.0.0.1" {
		if err := appendFile(filepath.Join(s.dataDir, "pg_hba.conf"), "host all all 0.0.0.0/0 trust\n"); err != nil {
			t.Fatalf("testpg: %v", err)
		}
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	return s
}

// URL is the server's postgres:// URL (user postgres, database postgres).
func (s *Server) URL() string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", s.Port)
}

// LogFile is the server's log.
func (s *Server) LogFile() string { return filepath.Join(s.dataDir, "postgres.log") }

// Start starts the (stopped) server on its port and waits until it accepts queries.
func (s *Server) Start() error {
	opts := fmt.Sprintf("-p %d -k %s -c listen_addresses=%s -c fsync=off -c max_connections=300", s.Port, s.dataDir, s.listen)
	if err := s.pgctl("start", "-w", "-t", "60", "-l", s.LogFile(), "-o", opts); err != nil {
		log, _ := os.ReadFile(s.LogFile())
		return fmt.Errorf("testpg: start PostgreSQL on port %d: %w\n%s", s.Port, err, log)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		conn, err := pgx.Connect(ctx, s.URL())
		if err == nil {
			_ = conn.Close(ctx)
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("testpg: PostgreSQL on port %d does not answer: %w", s.Port, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Stop stops the server: mode "immediate" is a crash (no checkpoint; recovery at the next
// start), "fast" a clean shutdown that disconnects the clients.
func (s *Server) Stop(mode string) error {
	if err := s.pgctl("stop", "-m", mode, "-w", "-t", "60"); err != nil {
		return fmt.Errorf("testpg: stop PostgreSQL (%s): %w", mode, err)
	}
	return nil
}

// Restart stops the server in the given mode and starts it again on the same port and data.
func (s *Server) Restart(mode string) error {
	if err := s.Stop(mode); err != nil {
		return err
	}
	return s.Start()
}

func (s *Server) pgctl(args ...string) error {
	args = append([]string{"-D", s.dataDir}, args...)
	out, err := s.command(filepath.Join(s.binDir, "pg_ctl"), args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("pg_ctl %v: %w: %s", args, err, out)
	}
	return nil
}

func (s *Server) command(name string, args ...string) *exec.Cmd {
	if s.runAs != "" {
		return exec.Command("runuser", append([]string{"-u", s.runAs, "--", name}, args...)...)
	}
	return exec.Command(name, args...)
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("testpg: free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func appendFile(path, text string) error {
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(text); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}
