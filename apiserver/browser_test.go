package apiserver_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/gomega"

	jobsv1alpha1 "github.com/jengu/queue-operator/api/v1alpha1"
	"github.com/jengu/queue-operator/apiserver"
	"github.com/jengu/queue-operator/internal/testenv"
)

// browserTimeout allows for Chromium starting on a loaded machine (over 30 s was seen).
const browserTimeout = 3 * time.Minute

// eventSourcePage is the frontend's part: it gets a ticket with its bearer token (a CORS
// request with a preflight), then opens the job's stream with EventSource, which cannot send
// an Authorization header, and reports what it saw to the page's own server.
const eventSourcePage = `<!doctype html>
<html><body><script>
const cfg = CONFIG;
const report = (what, body) => fetch("/report/" + what, {method: "POST", body: JSON.stringify(body)});
(async () => {
  try {
    const bare = new EventSource(cfg.api + "/api/jobs/" + cfg.job + "/events");
    bare.onerror = () => { report("bare", {readyState: bare.readyState}); bare.close(); };

    const r = await fetch(cfg.api + "/api/jobs/" + cfg.job + "/events/ticket",
      {method: "POST", headers: {Authorization: "Bearer " + cfg.token}});
    const t = await r.json();
    if (!r.ok) { report("ticket", {status: r.status, body: t}); return; }
    const es = new EventSource(cfg.api + "/api/jobs/" + cfg.job + "/events?ticket=" + encodeURIComponent(t.ticket));
    const events = [];
    for (const name of ["waiting", "active", "progress", "delayed", "completed", "failed", "cancelled"]) {
      es.addEventListener(name, e => {
        events.push({name: name, id: JSON.parse(e.data).id, status: JSON.parse(e.data).status});
        if (events.length === 1) report("opened", events);
        if (["completed", "failed", "cancelled"].includes(name)) { es.close(); report("done", events); }
      });
    }
    es.onerror = () => report("error", {readyState: es.readyState, events: events});
  } catch (e) {
    report("exception", {message: String(e)});
  }
})();
</script></body></html>`

// chromium is the path of Debian's Chromium, installed by hack/install-chromium.sh when missing.
func chromium(t *testing.T) string {
	t.Helper()
	started := time.Now()
	out, err := exec.Command(filepath.Join(testenv.RepoRoot(), "hack", "install-chromium.sh")).Output()
	if err != nil {
		t.Fatalf("hack/install-chromium.sh: %v", err)
	}
	t.Logf("Chromium ready in %s", time.Since(started).Round(time.Millisecond))
	return strings.TrimSpace(string(out))
}

// TestBrowserOpensTheEventStreamWithATicket opens a job's event stream exactly as a browser
// does: a page of another origin uses fetch (CORS, with a preflight) for a ticket and
// EventSource for the stream, in a real headless Chromium.
func TestBrowserOpensTheEventStreamWithATicket(t *testing.T) {
	g := NewWithT(t)
	bin := chromium(t)
	f := newFixture(t)

	var mu sync.Mutex
	reports := map[string]json.RawMessage{}
	var page []byte
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write(page)
	})
	mux.HandleFunc("POST /report/{what}", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		reports[r.PathValue("what")] = body
		mu.Unlock()
	})
	origin := httptest.NewServer(mux)
	t.Cleanup(origin.Close)
	api := f.extraFacade(func(c *apiserver.Config) { c.AllowedOrigins = []string{origin.URL} }, nil, nil, nil)

	id := f.enqueue("user-a")
	config, _ := json.Marshal(map[string]string{"api": api, "job": id, "token": token("user-a")})
	page = []byte(strings.Replace(eventSourcePage, "CONFIG", string(config), 1))

	ctx, cancel := context.WithCancel(context.Background())
	var stderr strings.Builder
	browser := exec.CommandContext(ctx, bin, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
		"--user-data-dir="+t.TempDir(), "--remote-debugging-port=0", origin.URL+"/")
	browser.Stderr = &stderr
	g.Expect(browser.Start()).To(Succeed())
	t.Cleanup(func() {
		cancel()
		_ = browser.Wait()
		if t.Failed() {
			t.Logf("chromium's stderr:\n%s", stderr.String())
		}
	})
	report := func(what string) func() string {
		return func() string {
			mu.Lock()
			defer mu.Unlock()
			if r, ok := reports["exception"]; ok {
				return "exception " + string(r)
			}
			if r, ok := reports["ticket"]; ok {
				return "ticket " + string(r)
			}
			return string(reports[what])
		}
	}

	// Without a ticket the stream answers 401 and EventSource gives up (CLOSED).
	g.Eventually(report("bare")).WithTimeout(browserTimeout).WithPolling(100 * time.Millisecond).Should(MatchJSON(`{"readyState": 2}`))
	g.Eventually(report("opened")).WithTimeout(browserTimeout).WithPolling(100 * time.Millisecond).
		Should(MatchJSON(`[{"name": "waiting", "id": "` + id + `", "status": "waiting"}]`))

	leased := f.lease(g, jobsv1alpha1.QueueEnrichment, id)
	_, err := f.queue(jobsv1alpha1.QueueEnrichment).Complete(context.Background(), id, leased.Token, nil)
	g.Expect(err).NotTo(HaveOccurred())
	var events []struct{ Name, ID, Status string }
	g.Eventually(func(g Gomega) {
		g.Expect(json.Unmarshal([]byte(report("done")()), &events)).To(Succeed())
	}).WithTimeout(browserTimeout).WithPolling(100 * time.Millisecond).Should(Succeed())
	g.Expect(events[0].Name).To(Equal("waiting"))
	g.Expect(events[len(events)-1]).To(Equal(struct{ Name, ID, Status string }{"completed", id, "completed"}))
	g.Expect(report("error")()).To(BeEmpty(), "the ticketed stream had no error before its end")
}
