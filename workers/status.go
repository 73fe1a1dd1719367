package workers

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/go-logr/logr"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	jobsv1alpha1 "github.com/jengu/queue-operator/api/v1alpha1"
	"github.com/jengu/queue-operator/jobstatus"
	"github.com/jengu/queue-operator/queue"
)

// StatusSink hears which jobs' CRs should follow their Redis records.
type StatusSink interface {
	// Started: the job's attempt started; its CR is written after the start delay, so a job that
	// ends within it costs one write, of its end.
	Started(id string)
	// Transition: the job changed phase; its CR is written as soon as it can be.
	Transition(id string)
	// Progress: the job progressed; its CR is written at most every progress interval.
	Progress(id string)
}

// DefaultStartWriteDelay is how long a started job's Active status waits for the job's end: an
// attempt that ends within it never has its Active written. It stays below the controller's
// status grace (controllers.DefaultStatusGrace), so the worker, not the controller, writes it.
const DefaultStartWriteDelay = time.Second

// DefaultEndWriteDelay is how long a worker leaves a job's end to the controller, which writes
// it at once: a CR that shows the end by then is not written again, so the end costs the
// kube-apiserver one write instead of two racing ones (one refused with a conflict). A worker
// about to exit writes at once.
const DefaultEndWriteDelay = time.Second

// CRStatusWriter writes job CR status from the Redis record, in the background, so the pool
// never waits on the kube-apiserver. Each write reads the newest record, so an outage or a burst of
// ticks coalesces into one write per job; failed writes are retried with backoff.
type CRStatusWriter struct {
	client           client.Client
	queue            *queue.Queue
	newObj           func() jobsv1alpha1.JobObject
	progressInterval time.Duration
	startDelay       time.Duration
	log              logr.Logger

	writing   sync.Mutex // one writeDue at a time (Run and Flush)
	mu        sync.Mutex
	pending   map[string]*pendingWrite
	lastWrite map[string]time.Time // jobs written within the last progress interval
	wake      chan struct{}
}

type pendingWrite struct {
	due      time.Time
	failures int
	// asks counts the requests for this write; one that comes while the write is in flight
	// keeps the entry, so the newer record is written too.
	asks int
	// endLeft says the job's end was found and left to the controller for the end delay.
	endLeft bool
}

var _ StatusSink = &CRStatusWriter{}

// StatusWriterOption tunes a CRStatusWriter.
type StatusWriterOption func(*CRStatusWriter)

// WithStartWriteDelay sets how long a started job's Active status waits for its end
// (DefaultStartWriteDelay; zero writes it at once).
func WithStartWriteDelay(d time.Duration) StatusWriterOption {
	return func(w *CRStatusWriter) { w.startDelay = d }
}

// +kubebuilder:rbac:groups=jobs.jengu.io,resources=enrichmentjobs;competitorjobs;analyticsjobs,verbs=get
// +kubebuilder:rbac:groups=jobs.jengu.io,resources=enrichmentjobs/status;competitorjobs/status;analyticsjobs/status,verbs=get;patch

// NewCRStatusWriter writes the CRs (made by newObj) of q's jobs through c.
func NewCRStatusWriter(c client.Client, q *queue.Queue, newObj func() jobsv1alpha1.JobObject, progressInterval time.Duration,
	log logr.Logger, opts ...StatusWriterOption) *CRStatusWriter {
	w := &CRStatusWriter{client: c, queue: q, newObj: newObj, progressInterval: progressInterval, startDelay: DefaultStartWriteDelay,
		log: log, pending: map[string]*pendingWrite{}, lastWrite: map[string]time.Time{}, wake: make(chan struct{}, 1)}
	for _, o := range opts {
		o(w)
	}
	return w
}

// Started schedules a write after the start delay; the job's end, if it comes first, takes its
// place.
func (w *CRStatusWriter) Started(id string) { w.schedule(id, time.Now().Add(w.startDelay)) }

// Transition schedules a write now.
func (w *CRStatusWriter) Transition(id string) { w.schedule(id, time.Now()) }

// Progress schedules a write one progress interval after the job's last write, and, for a job
// not written since it started, no sooner than its start write.
func (w *CRStatusWriter) Progress(id string) {
	w.mu.Lock()
	last, written := w.lastWrite[id]
	w.mu.Unlock()
	if !written {
		w.Started(id)
		return
	}
	w.schedule(id, last.Add(w.progressInterval))
}

func (w *CRStatusWriter) schedule(id string, due time.Time) {
	w.mu.Lock()
	p, ok := w.pending[id]
	if !ok {
		p = &pendingWrite{due: due}
		w.pending[id] = p
	} else if due.Before(p.due) {
		p.due = due
	}
	p.asks++
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// Run writes due status until ctx ends, then makes a last attempt at what is due.
func (w *CRStatusWriter) Run(ctx context.Context) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		next := w.writeDue(ctx, false)
		timer.Reset(time.Until(next))
		select {
		case <-ctx.Done():
			w.writeDue(context.Background(), true)
			return
		case <-w.wake:
		case <-timer.C:
		}
	}
}

// Flush writes everything pending now, ends included, for a worker about to exit.
func (w *CRStatusWriter) Flush(ctx context.Context) { w.writeDue(ctx, true) }

// writeDue writes the due entries, leaving each job's end to the controller for the end delay
// first, and returns when the next one is due; final writes every entry at once.
func (w *CRStatusWriter) writeDue(ctx context.Context, final bool) time.Time {
	w.writing.Lock()
	defer w.writing.Unlock()
	now := time.Now()
	next := now.Add(time.Minute)
	type dueWrite struct {
		asks     int // seen before writing
		leaveEnd bool
	}
	due := map[string]dueWrite{}
	w.mu.Lock()
	for id, p := range w.pending {
		if final || !p.due.After(now) {
			due[id] = dueWrite{asks: p.asks, leaveEnd: !final && !p.endLeft}
		} else if p.due.Before(next) {
			next = p.due
		}
	}
	w.mu.Unlock()
	for id, d := range due {
		outcome, err := w.write(ctx, id, d.leaveEnd)
		w.mu.Lock()
		p := w.pending[id]
		switch {
		case err == nil && outcome == writeEndLeft:
			p.endLeft = true
			p.due = time.Now().Add(DefaultEndWriteDelay)
			if p.due.Before(next) {
				next = p.due
			}
		case err == nil && p.asks != d.asks:
			// Asked again while writing: write again, at the time the new ask wanted.
			w.lastWrite[id] = time.Now()
			if p.due.Before(next) {
				next = p.due
			}
		case err == nil && outcome == writeFinished:
			delete(w.pending, id)
			delete(w.lastWrite, id)
		case err == nil:
			delete(w.pending, id)
			w.lastWrite[id] = time.Now()
		default:
			p.failures++
			p.due = time.Now().Add(min(time.Duration(1<<min(p.failures, 5))*time.Second, 30*time.Second))
			if p.due.Before(next) {
				next = p.due
			}
			w.log.V(1).Info("Status write failed; retrying", "job", id, "error", err.Error(), "failures", p.failures)
		}
		w.mu.Unlock()
	}
	return w.forgetOldWrites(next)
}

// forgetOldWrites drops the times of writes older than the progress interval: such a time no
// longer delays a progress write, so it is the same as none. Jobs this worker handed off
// (released, retried, taken over or finished elsewhere) are never written again, and would
// otherwise stay forever. It returns next, or the time the oldest remaining one may go if sooner.
func (w *CRStatusWriter) forgetOldWrites(next time.Time) time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	now := time.Now()
	for id, last := range w.lastWrite {
		switch stale := last.Add(w.progressInterval); {
		case !stale.After(now):
			delete(w.lastWrite, id)
		case stale.Before(next):
			next = stale
		}
	}
	return next
}

// writeOutcome is what a write did.
type writeOutcome int

const (
	// writeDone: the CR follows the record (written, or it already did).
	writeDone writeOutcome = iota
	// writeFinished: as writeDone, and nothing more will be written for the job.
	writeFinished
	// writeEndLeft: the record shows the job's end, left to the controller for now.
	writeEndLeft
)

// fromWatchCache reads a CR from the kube-apiserver's watch cache (resourceVersion "0") instead
// of etcd. A read that lags costs nothing but time: the write after it carries the
// resourceVersion it read, so a stale one is refused with a conflict and jobstatus re-reads from
// etcd; a stale UID or a missing CR skips a write the controller then makes.
var fromWatchCache = &client.GetOptions{Raw: &metav1.GetOptions{ResourceVersion: "0"}}

// write syncs one job's CR from its record; leaveEnd leaves a finished record unwritten.
func (w *CRStatusWriter) write(ctx context.Context, id string, leaveEnd bool) (writeOutcome, error) {
	record, err := w.queue.Get(ctx, id)
	if errors.Is(err, queue.ErrNotFound) {
		return writeFinished, nil // removed: its CR is gone or going
	}
	if err != nil {
		return writeDone, err
	}
	if leaveEnd && record.State.IsFinished() {
		return writeEndLeft, nil
	}
	obj := w.newObj()
	if err := w.client.Get(ctx, client.ObjectKey{Namespace: w.queue.Namespace, Name: id}, obj, fromWatchCache); err != nil {
		if apierrors.IsNotFound(err) {
			return writeFinished, nil
		}
		return writeDone, err
	}
	if string(obj.GetUID()) != record.UID {
		return writeFinished, nil // the record belongs to an earlier CR of the same name
	}
	if _, err := jobstatus.Sync(ctx, w.client, obj, record); err != nil {
		return writeDone, err
	}
	if record.State.IsFinished() {
		return writeFinished, nil
	}
	return writeDone, nil
}
