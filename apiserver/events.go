package apiserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/go-logr/logr"

	jobsv1alpha1 "github.com/jengu/queue-operator/api/v1alpha1"
	"github.com/jengu/queue-operator/queue"
)

// eventHub follows each queue's event stream with one blocking read, however many clients
// stream, and wakes the streams whose job an event names.
type eventHub struct {
	engine    *queue.Engine
	namespace string
	log       logr.Logger

	mu          sync.Mutex
	subscribers map[string]map[chan struct{}]struct{} // by job id
}

func newEventHub(engine *queue.Engine, namespace string, log logr.Logger) *eventHub {
	return &eventHub{engine: engine, namespace: namespace, log: log, subscribers: map[string]map[chan struct{}]struct{}{}}
}

// subscribe returns a channel that is signalled (coalesced) whenever the job has an event, and
// the function that ends the subscription.
func (h *eventHub) subscribe(jobID string) (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	h.mu.Lock()
	if h.subscribers[jobID] == nil {
		h.subscribers[jobID] = map[chan struct{}]struct{}{}
	}
	h.subscribers[jobID][ch] = struct{}{}
	h.mu.Unlock()
	return ch, func() {
		h.mu.Lock()
		delete(h.subscribers[jobID], ch)
		if len(h.subscribers[jobID]) == 0 {
			delete(h.subscribers, jobID)
		}
		h.mu.Unlock()
	}
}

func (h *eventHub) notify(jobID string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for ch := range h.subscribers[jobID] {
		select {
		case ch <- struct{}{}:
		default: // already signalled: the stream reads the latest state anyway
		}
	}
}

func (h *eventHub) run(ctx context.Context) {
	var wg sync.WaitGroup
	for _, kind := range jobsv1alpha1.JobKinds {
		wg.Go(func() { h.follow(ctx, h.engine.Queue(h.namespace, string(kind.Queue))) })
	}
	wg.Wait()
}

// follow reads one queue's stream from now on until ctx ends, riding out Redis outages (the
// streams re-read their job's state on their keep-alive meanwhile).
func (h *eventHub) follow(ctx context.Context, q *queue.Queue) {
	q.Follow(ctx, func(e queue.Event) {
		if e.JobID != "" {
			h.notify(e.JobID)
		}
	}, queue.FollowBlock(5*time.Second), queue.FollowOnError(func(err error) {
		h.log.Error(err, "Reading the event stream failed; retrying", "queue", q.Name)
	}))
}

// jobEvents answers GET /api/jobs/:jobId/events with Server-Sent Events: the job's state now,
// then each change of status or progress as it happens, ending after the terminal event
// (completed, failed, or cancelled when the job is deleted). Each event's data is the job as
// GET /api/jobs/:jobId shows it; its name is the status, or "progress". A client that
// reconnects gets the current state first, so it misses nothing that matters.
func (s *Server) jobEvents(c *gin.Context) {
	id, user := c.Param("jobId"), userOf(c)
	release, err := s.streams.open(user)
	if err != nil {
		s.fail(c, err)
		return
	}
	defer release()
	// Subscribe before the first read, so no change falls between the two.
	changed, unsubscribe := s.events.subscribe(id)
	defer unsubscribe()
	job, err := s.findJob(c, user, id)
	if errors.Is(err, errJobNotFound) {
		// A job past its TTL has ended: its one event is how it ended, from the history.
		view, err := s.historyOf(c, user, id)
		if err != nil {
			s.jobNotFound(c, id)
			return
		}
		_ = s.openStream(c).send(view.Status, view)
		return
	}
	if err != nil {
		s.fail(c, err)
		return
	}

	stream := s.openStream(c)
	keepAlive := time.NewTicker(s.sseKeepAlive)
	defer keepAlive.Stop()
	// A stream ends after its lifetime; the client reconnects and gets the state first.
	lifetime, stopLifetime := s.streamLifetime()
	defer stopLifetime()
	for {
		view, gone := s.currentView(c, job)
		if gone {
			// Gone after it finished (its TTL passed): the history says how it ended.
			if view, err := s.historyOf(c, user, id); err == nil {
				_ = stream.send(view.Status, view)
				return
			}
			last := jobView{ID: id, Queue: string(job.QueueName()), Data: job.JobSpec(), Timestamp: job.GetCreationTimestamp().UnixMilli()}
			if stream.last != nil {
				last = *stream.last
			}
			last.Status = "cancelled"
			_ = stream.send("cancelled", last)
			return
		}
		if err := stream.update(view); err != nil || isTerminal(view.Status) {
			return
		}
		select {
		case <-c.Request.Context().Done():
			return
		case <-s.stopping:
			return
		case <-lifetime:
			return
		case <-changed:
		case <-keepAlive.C:
			if err := stream.comment("keep-alive"); err != nil {
				return
			}
		}
	}
}

func isTerminal(status string) bool {
	return status == "completed" || status == "failed" || status == "cancelled"
}

// currentView reads the job again: the CR (cache, then kube-apiserver) for what only it has, and
// Redis for the live state. gone says the job was deleted.
func (s *Server) currentView(ctx context.Context, job jobsv1alpha1.JobObject) (jobView, bool) {
	fresh, err := s.findJob(ctx, job.Common().UserID, job.GetName())
	switch {
	case errors.Is(err, errJobNotFound):
		return jobView{}, true
	case err == nil && fresh.GetUID() != job.GetUID():
		return jobView{}, true // deleted and created again: another job
	case err == nil:
		job = fresh
	}
	status, record := s.liveStatus(ctx, job)
	if record != nil && record.State == queue.StateCancelled {
		return jobView{}, true
	}
	return newJobView(job, status, record), false
}

// openStream answers with an event stream.
func (s *Server) openStream(c *gin.Context) *jobStream {
	c.Header("Content-Type", "text/event-stream")
	c.Header("Cache-Control", "no-cache")
	c.Header("Connection", "keep-alive")
	c.Header("X-Accel-Buffering", "no") // nginx would hold the stream back otherwise
	c.Status(http.StatusOK)
	return &jobStream{w: c.Writer, flush: c.Writer.Flush}
}

// jobStream writes a job's events, each only when the job changed since the last.
type jobStream struct {
	w     http.ResponseWriter
	flush func()
	last  *jobView
	seq   int
}

func (st *jobStream) update(v jobView) error {
	name := v.Status
	switch {
	case st.last == nil:
	case st.last.Status != v.Status:
	case st.last.Progress != v.Progress || st.last.Message != v.Message:
		name = "progress"
	default:
		return nil // nothing a client sees changed
	}
	st.last = &v
	return st.send(name, v)
}

func (st *jobStream) send(name string, v jobView) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	st.seq++
	if _, err := fmt.Fprintf(st.w, "id: %d\nevent: %s\ndata: %s\n\n", st.seq, name, data); err != nil {
		return err
	}
	st.flush()
	return nil
}

func (st *jobStream) comment(text string) error {
	if _, err := fmt.Fprintf(st.w, ": %s\n\n", text); err != nil {
		return err
	}
	st.flush()
	return nil
}
