package apiserver_test

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"

	jobsv1alpha1 "github.com/jengu/queue-operator/api/v1alpha1"
)

type sseEvent struct {
	Name string
	Job  map[string]any
}

// events opens the job's event stream as user and delivers its events until it ends; the
// channel closes when the server ends the stream.
func (f *fixture) events(user, id string) <-chan sseEvent {
	f.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, f.url+"/api/jobs/"+id+"/events", nil)
	req.Header.Set("Authorization", "Bearer "+token(user))
	ctx, cancel := context.WithCancel(context.Background())
	f.t.Cleanup(cancel)
	resp, err := http.DefaultClient.Do(req.WithContext(ctx))
	if err != nil {
		f.t.Fatalf("open events: %v", err)
	}
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		f.t.Fatalf("open events: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	out := make(chan sseEvent, 100)
	go func() {
		defer close(out)
		defer resp.Body.Close()
		scanner := bufio.NewScanner(resp.Body)
		var e sseEvent
		for scanner.Scan() {
			line := scanner.Text()
			switch {
			case strings.HasPrefix(line, "event: "):
				e.Name = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				_ = json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &e.Job)
			case line == "" && e.Name != "":
				out <- e
				e = sseEvent{}
			}
		}
	}()
	return out
}

func next(g Gomega, events <-chan sseEvent) sseEvent {
	var e sseEvent
	g.Eventually(events).WithTimeout(timeout).Should(Receive(&e))
	return e
}

func TestEventsStreamProgressAndEndWithTheTerminalEvent(t *testing.T) {
	g := NewWithT(t)
	f := newFixture(t)
	id := f.enqueue("user-a")
	events := f.events("user-a", id)

	first := next(g, events)
	g.Expect(first.Name).To(Equal("waiting"))
	g.Expect(first.Job).To(And(HaveKeyWithValue("id", id), HaveKeyWithValue("status", "waiting")))

	q := f.queue(jobsv1alpha1.QueueEnrichment)
	leased := f.lease(g, jobsv1alpha1.QueueEnrichment, id)
	e := next(g, events)
	g.Expect(e.Name).To(Equal("active"))
	for _, p := range []int{25, 50} {
		_, err := q.Progress(context.Background(), id, leased.Token, p, "step")
		g.Expect(err).NotTo(HaveOccurred())
		// Each tick arrives as its own event.
		g.Expect(next(g, events)).To(And(HaveField("Name", "progress"), HaveField("Job", HaveKeyWithValue("progress", float64(p)))))
	}
	_, err := q.Complete(context.Background(), id, leased.Token, []byte(`{"ok":true}`))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(next(g, events)).To(And(HaveField("Name", "completed"),
		HaveField("Job", And(HaveKeyWithValue("status", "completed"), HaveKeyWithValue("progress", 100.0)))))
	g.Eventually(events).WithTimeout(timeout).Should(BeClosed())
}

func TestEventsOfAFinishedJobEndAtOnce(t *testing.T) {
	g := NewWithT(t)
	f := newFixture(t)
	id := f.completedJob(g, "user-a")
	events := f.events("user-a", id)
	g.Expect(next(g, events).Name).To(Equal("completed"))
	g.Eventually(events).WithTimeout(5 * time.Second).Should(BeClosed())
}

func TestEventsEndWithCancelledWhenTheJobIsDeleted(t *testing.T) {
	g := NewWithT(t)
	f := newFixture(t)
	id := f.enqueue("user-a")
	events := f.events("user-a", id)
	g.Expect(next(g, events).Name).To(Equal("waiting"))
	g.Expect(f.do(http.MethodDelete, "/api/jobs/"+id, "user-a", nil).Code).To(Equal(http.StatusOK))
	var e sseEvent
	for e = next(g, events); e.Name != "cancelled"; e = next(g, events) {
		g.Expect(e.Name).To(Equal("waiting")) // nothing else happens to it
	}
	g.Expect(e.Job).To(HaveKeyWithValue("status", "cancelled"))
	g.Eventually(events).WithTimeout(timeout).Should(BeClosed())
}
