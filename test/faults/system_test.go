package faults

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"
	"github.com/golang-jwt/jwt/v5"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/jengu/queue-operator/controllers"
	"github.com/jengu/queue-operator/internal/testenv"
	"github.com/jengu/queue-operator/queue"
)

// fileLogger writes a component's log to a file (the suite's logs are too long for the test
// output), stamped with the wall clock.
func fileLogger(t *testing.T, path string) logr.Logger {
	f, err := os.Create(path)
	if err != nil {
		t.Fatalf("log file: %v", err)
	}
	var mu sync.Mutex
	closed := false
	t.Cleanup(func() { mu.Lock(); closed = true; _ = f.Close(); mu.Unlock() })
	return funcr.New(func(prefix, args string) {
		mu.Lock()
		defer mu.Unlock()
		if !closed {
			fmt.Fprintln(f, time.Now().Format("15:04:05.000"), prefix, args)
		}
	}, funcr.Options{Verbosity: 1})
}

// buildWorker builds test/faults/faultworker, with the race detector when this test has it.
func buildWorker(ctx context.Context, t *testing.T, dir string) string {
	t.Helper()
	goBin := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(goBin); err != nil {
		goBin = "go"
	}
	bin := filepath.Join(dir, "faultworker")
	args := []string{"build", "-o", bin}
	if raceEnabled {
		args = append(args, "-race")
	}
	args = append(args, "./test/faults/faultworker")
	cmd := exec.CommandContext(ctx, goBin, args...)
	cmd.Dir = testenv.RepoRoot()
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return bin
}

// workerProc is one worker OS process.
type workerProc struct {
	id      string
	cmd     *exec.Cmd
	logPath string
	done    chan struct{}
	// set when done is closed
	exitErr error
	// signalled is what the suite sent it, if anything.
	mu        sync.Mutex
	signalled string
}

func (w *workerProc) signal(sig syscall.Signal, name string) {
	w.mu.Lock()
	w.signalled = name
	w.mu.Unlock()
	_ = w.cmd.Process.Signal(sig)
}

func (w *workerProc) exited() bool {
	select {
	case <-w.done:
		return true
	default:
		return false
	}
}

// workerSpec is what every worker process of the suite shares.
type workerSpec struct {
	bin, namespace, databaseURL, kubeconfig, logDir string
}

func (s workerSpec) start(t *testing.T, id, redisURL string) *workerProc {
	t.Helper()
	logPath := filepath.Join(s.logDir, "worker-"+id+".log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatalf("worker log: %v", err)
	}
	cmd := exec.Command(s.bin, "--namespace", s.namespace, "--worker-id", id, "--redis-url", redisURL,
		"--database-url", s.databaseURL, "--kubeconfig", s.kubeconfig, "--concurrency", "2",
		"--lease", "5s", "--heartbeat", "1s", "--shutdown-grace", "10s")
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.Env = append(os.Environ(), "GORACE=halt_on_error=0")
	if err := cmd.Start(); err != nil {
		t.Fatalf("start worker %s: %v", id, err)
	}
	w := &workerProc{id: id, cmd: cmd, logPath: logPath, done: make(chan struct{})}
	go func() {
		w.exitErr = cmd.Wait()
		_ = logFile.Close()
		close(w.done)
	}()
	t.Cleanup(func() {
		if !w.exited() {
			_ = cmd.Process.Kill()
			<-w.done
		}
	})
	return w
}

// writeKubeconfig writes a kubeconfig of an administrator whose server is host (the proxy).
func writeKubeconfig(env *testenv.Env, dir, host string) (string, error) {
	user, err := env.AddUser(envtest.User{Name: "faults-worker", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return "", err
	}
	cfg := user.Config()
	kc := clientcmdapi.NewConfig()
	kc.Clusters["faults"] = &clientcmdapi.Cluster{Server: "https://" + host, CertificateAuthorityData: cfg.CAData}
	kc.AuthInfos["faults"] = &clientcmdapi.AuthInfo{ClientCertificateData: cfg.CertData, ClientKeyData: cfg.KeyData, Token: cfg.BearerToken}
	kc.Contexts["faults"] = &clientcmdapi.Context{Cluster: "faults", AuthInfo: "faults"}
	kc.CurrentContext = "faults"
	path := filepath.Join(dir, "worker-kubeconfig")
	return path, clientcmd.WriteToFile(*kc, path)
}

// hostOf is the host:port of a rest.Config's Host.
func hostOf(cfg *rest.Config) string {
	h := cfg.Host
	if !strings.Contains(h, "://") {
		h = "https://" + h
	}
	u, err := url.Parse(h)
	if err != nil {
		panic(err)
	}
	return u.Host
}

// controllerRun is one controller manager, started and stopped by the suite.
type controllerRun struct {
	cancel context.CancelFunc
	done   chan struct{}
}

// startController runs the controller as the product's does with DATABASE_URL: it writes the
// history of jobs before they expire and reads it after a Redis loss.
func startController(t *testing.T, cfg *rest.Config, redisURL, namespace string, history controllers.History, log logr.Logger) *controllerRun {
	t.Helper()
	rdb, err := queue.NewRedisClient(redisURL)
	if err != nil {
		t.Fatal(err)
	}
	opts := controllers.DefaultOptions()
	opts.HousekeepingInterval = 500 * time.Millisecond
	opts.OrphanAge = time.Second
	opts.ResyncPeriod = 5 * time.Second
	opts.RedisURL = redisURL
	opts.History = history
	mgr, err := controllers.NewManager(cfg, controllers.ManagerConfig{Redis: rdb, MetricsAddr: "0", ProbeAddr: "0",
		Namespaces: []string{namespace}, Options: opts, Logger: log, SkipNameValidation: true})
	if err != nil {
		t.Fatalf("controller: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	run := &controllerRun{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(run.done)
		defer rdb.Close()
		if err := mgr.Start(ctx); err != nil {
			log.Error(err, "Controller manager stopped")
		}
	}()
	t.Cleanup(run.stop)
	return run
}

func (c *controllerRun) stop() {
	c.cancel()
	select {
	case <-c.done:
	case <-time.After(30 * time.Second):
	}
}

// restClient is the frontend: the seed's REST routes with a user's bearer token.
type restClient struct {
	base, token string
	http        *http.Client
}

func newRESTClient(base string, secret []byte, user string) (*restClient, error) {
	token, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"sub": user, "aud": "authenticated",
		"role": "authenticated", "iat": time.Now().Unix(), "exp": time.Now().Add(2 * time.Hour).Unix()}).SignedString(secret)
	if err != nil {
		return nil, err
	}
	return &restClient{base: base, token: token, http: &http.Client{Timeout: 15 * time.Second}}, nil
}

func (c *restClient) do(ctx context.Context, method, path string, header map[string]string) (int, map[string]any, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, bytes.NewReader([]byte("{}")))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Content-Type", "application/json")
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, nil, err
	}
	var body map[string]any
	if err := json.Unmarshal(data, &body); err != nil {
		return resp.StatusCode, nil, fmt.Errorf("%s %s answered %d, not JSON: %.200s", method, path, resp.StatusCode, data)
	}
	return resp.StatusCode, body, nil
}

// enqueue is POST /api/files/:id/enrich with an Idempotency-Key, so a repeat after an error
// names the same job.
func (c *restClient) enqueue(ctx context.Context, property, key string) (string, error) {
	code, body, err := c.do(ctx, http.MethodPost, "/api/files/"+property+"/enrich", map[string]string{"Idempotency-Key": key})
	if err != nil {
		return "", err
	}
	id, _ := body["jobId"].(string)
	if code != http.StatusAccepted || id == "" {
		return "", fmt.Errorf("enqueue answered %d: %v", code, body)
	}
	return id, nil
}

// status is GET /api/jobs/:id's data.job.status, "not_found" for a 404.
func (c *restClient) status(ctx context.Context, id string) (string, error) {
	code, body, err := c.do(ctx, http.MethodGet, "/api/jobs/"+id, nil)
	if err != nil {
		return "", err
	}
	if code == http.StatusNotFound {
		return "not_found", nil
	}
	job, _ := body["job"].(map[string]any)
	status, _ := job["status"].(string)
	if code != http.StatusOK || status == "" {
		return "", fmt.Errorf("GET /api/jobs/%s answered %d: %v", id, code, body)
	}
	return status, nil
}

// retry is POST /api/jobs/:id/retry; it returns the HTTP status.
func (c *restClient) retry(ctx context.Context, id string) (int, error) {
	code, body, err := c.do(ctx, http.MethodPost, "/api/jobs/"+id+"/retry", nil)
	if err != nil {
		return 0, err
	}
	if code != http.StatusOK {
		return code, fmt.Errorf("retry answered %d: %v", code, body)
	}
	return code, nil
}

// listenLoopback is a free loopback listener.
func listenLoopback(t *testing.T) net.Listener {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return l
}
