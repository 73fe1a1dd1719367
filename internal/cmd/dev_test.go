package cmd_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	. "github.com/onsi/gomega"

	"github.com/jengu/queue-operator/internal/devenv"
	"github.com/jengu/queue-operator/internal/testenv"
)

// devProcess is `queue-operator dev` running as `make dev FAKE_APIS=1` runs it.
type devProcess struct {
	cmd *exec.Cmd
	mu  sync.Mutex
	out bytes.Buffer
	// api, token and prometheus (with --prometheus) are read from its printed usage.
	api, token, prometheus string
	up                     chan struct{}
}

// startDev builds the binary and runs `queue-operator dev` with FAKE_APIS=1 and the extra
// flags on a private control plane, beside the Redis and PostgreSQL of hack/with-services.sh;
// it is stopped with SIGTERM when the test ends.
func startDev(t *testing.T, flags ...string) *devProcess {
	t.Helper()
	for _, name := range []string{"KUBEBUILDER_ASSETS", "REDIS_URL", "DATABASE_URL"} {
		if os.Getenv(name) == "" {
			t.Fatalf("%s is not set: run the tests with `make test` (hack/with-services.sh, KUBEBUILDER_ASSETS)", name)
		}
	}
	root, dir := testenv.RepoRoot(), t.TempDir()
	bin := filepath.Join(dir, "queue-operator")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	d := &devProcess{up: make(chan struct{})}
	d.cmd = exec.Command(bin, append([]string{"dev", "--api-address", "127.0.0.1:0", "--state-dir", filepath.Join(dir, "state")}, flags...)...)
	d.cmd.Dir = root
	d.cmd.Env = append(os.Environ(), "FAKE_APIS=1")
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // its workers go with it, whatever happens
	stdout, err := d.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	d.cmd.Stderr = &lockedWriter{d: d}
	if err := d.cmd.Start(); err != nil {
		t.Fatalf("start dev: %v", err)
	}
	go d.readUsage(stdout)
	t.Cleanup(func() { d.stop(t) })
	return d
}

type lockedWriter struct{ d *devProcess }

func (w *lockedWriter) Write(p []byte) (int, error) {
	w.d.mu.Lock()
	defer w.d.mu.Unlock()
	return w.d.out.Write(p)
}

// readUsage keeps the output and picks the facade's address and the demo token out of it.
func (d *devProcess) readUsage(stdout io.Reader) {
	scanner := bufio.NewScanner(stdout)
	for scanner.Scan() {
		line := scanner.Text()
		_, _ = (&lockedWriter{d: d}).Write([]byte(line + "\n"))
		if rest, ok := strings.CutPrefix(line, "REST API on "); ok {
			d.api, _, _ = strings.Cut(rest, " ")
		}
		if rest, ok := strings.CutPrefix(line, "Prometheus on "); ok {
			d.prometheus, _, _ = strings.Cut(rest, " ")
		}
		if rest, ok := strings.CutPrefix(strings.TrimSpace(line), "export TOKEN="); ok {
			d.token = rest
			close(d.up)
		}
	}
}

func (d *devProcess) output() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.out.String()
}

func (d *devProcess) stop(t *testing.T) {
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- d.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("dev did not stop cleanly on SIGTERM: %v", err)
		}
	case <-time.After(90 * time.Second):
		_ = syscall.Kill(-d.cmd.Process.Pid, syscall.SIGKILL)
		t.Errorf("dev did not stop within 90 s of SIGTERM")
	}
	if t.Failed() {
		t.Logf("dev's output:\n%s", d.output())
	}
}

// call sends a request to the dev facade as the demo user and decodes its JSON answer.
func (d *devProcess) call(g Gomega, method, path, contentType string, body io.Reader) (int, map[string]any) {
	req, err := http.NewRequestWithContext(context.Background(), method, d.api+path, body)
	g.Expect(err).NotTo(HaveOccurred())
	req.Header.Set("Authorization", "Bearer "+d.token)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	g.Expect(err).NotTo(HaveOccurred())
	defer resp.Body.Close()
	var out map[string]any
	g.Expect(json.NewDecoder(resp.Body).Decode(&out)).To(Succeed())
	return resp.StatusCode, out
}

// TestDevWithFakeAPIsCompletesJobs is `make dev FAKE_APIS=1` as a newcomer without internet uses
// it: upload the sample file, enrich it, watch the job complete, read the enriched rows.
func TestDevWithFakeAPIsCompletesJobs(t *testing.T) {
	g := NewWithT(t)
	d := startDev(t)
	select {
	case <-d.up:
	case <-time.After(3 * time.Minute):
		t.Fatalf("dev did not come up within 3 minutes:\n%s", d.output())
	}

	sample, err := os.Open(filepath.Join(testenv.RepoRoot(), "config", "samples", devenv.SampleFile))
	g.Expect(err).NotTo(HaveOccurred())
	defer sample.Close()
	code, upload := d.call(g, http.MethodPost, "/api/files?latitude=41.39&longitude=2.17&countryCode=ES", "text/csv", sample)
	g.Expect(code).To(Equal(http.StatusCreated), "%v", upload)
	g.Expect(upload).To(HaveKeyWithValue("rows", 90.0))
	file := upload["fileId"].(string)

	code, enqueued := d.call(g, http.MethodPost, "/api/files/"+file+"/enrich", "application/json", strings.NewReader("{}"))
	g.Expect(code).To(Equal(http.StatusAccepted), "%v", enqueued)
	job := enqueued["jobId"].(string)

	status := d.awaitCompleted(g, job)
	// The workers talked to the stand-ins: weather from the archive, holidays from Calendarific.
	g.Expect(status["message"]).To(And(ContainSubstring("open-meteo-archive"), ContainSubstring("calendarific"),
		Not(ContainSubstring("offline:"))))

	_, rows := d.call(g, http.MethodGet, "/api/files/"+file+"/rows?limit=1", "", nil)
	g.Expect(rows["rows"]).To(HaveLen(1))
	first := rows["rows"].([]any)[0].(map[string]any)
	g.Expect(first).To(HaveKeyWithValue("date", "2025-01-01"))
	g.Expect(first["features"]).To(And(HaveKeyWithValue("isHoliday", true), HaveKeyWithValue("holidayName", "New Year's Day"),
		HaveKeyWithValue("tempMaxC", Not(BeNil()))))
	_, fileView := d.call(g, http.MethodGet, "/api/files/"+file, "", nil)
	g.Expect(fileView["file"]).To(HaveKeyWithValue("enrichment", HaveKeyWithValue("status", "completed")))

	// Competitor prices from the SerpApi stand-in, readable at the result route.
	code, enqueued = d.call(g, http.MethodPost, "/api/files/"+file+"/competitors", "application/json",
		strings.NewReader(`{"location": "Barcelona", "checkIn": "2025-01-10", "checkOut": "2025-01-12", "adults": 2, "currency": "EUR"}`))
	g.Expect(code).To(Equal(http.StatusAccepted), "%v", enqueued)
	competitorJob := enqueued["jobId"].(string)
	d.awaitCompleted(g, competitorJob)
	code, result := d.call(g, http.MethodGet, "/api/jobs/"+competitorJob+"/result", "", nil)
	g.Expect(code).To(Equal(http.StatusOK), "%v", result)
	g.Expect(result["result"]).To(HaveKeyWithValue("hotels", HaveLen(45)))

	// An analysis of the file's own enriched rows (no data sent), its full result readable too.
	code, enqueued = d.call(g, http.MethodPost, "/api/files/"+file+"/analytics", "application/json",
		strings.NewReader(`{"analysisType": "weather-impact"}`))
	g.Expect(code).To(Equal(http.StatusAccepted), "%v", enqueued)
	analyticsJob := enqueued["jobId"].(string)
	d.awaitCompleted(g, analyticsJob)
	code, result = d.call(g, http.MethodGet, "/api/jobs/"+analyticsJob+"/result", "", nil)
	g.Expect(code).To(Equal(http.StatusOK), "%v", result)
	g.Expect(result["result"]).To(And(HaveKeyWithValue("analysisType", "weather-impact"), HaveKey("weatherImpact")))
}

// awaitCompleted polls the job until it has completed, failing at once if it fails.
func (d *devProcess) awaitCompleted(g Gomega, job string) map[string]any {
	var status map[string]any
	g.Eventually(func(g Gomega) {
		_, answer := d.call(g, http.MethodGet, "/api/jobs/"+job, "", nil)
		status = answer["job"].(map[string]any)
		g.Expect(status["status"]).NotTo(Equal("failed"), "%v", status)
		g.Expect(status).To(HaveKeyWithValue("status", "completed"))
	}).WithTimeout(3*time.Minute).WithPolling(time.Second).Should(Succeed(), func() string { return d.output() })
	return status
}
