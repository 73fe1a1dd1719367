// Package controllers holds the reconcilers: a job reconciler for each kind of
// jobsv1alpha1.JobKinds, which mirrors its jobs into their Redis queue and keeps their status
// true, and the JobQueue reconciler, which applies a queue's settings to Redis, keeps its worker
// Deployment in shape and scales it, and runs the queue's housekeeping services (event
// follower, stall reclaimer, delayed promoter, retention cleaner, orphan sweeper, loss
// repairer; housekeeping.go).
package controllers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	jobsv1alpha1 "github.com/jengu/queue-operator/api/v1alpha1"
	"github.com/jengu/queue-operator/jobstatus"
	"github.com/jengu/queue-operator/queue"
	"github.com/jengu/queue-operator/store"
)

// JobReconciler mirrors one job kind into its Redis queue and keeps its status true. The same
// code serves every kind of jobsv1alpha1.JobKinds.
type JobReconciler struct {
	kind   jobsv1alpha1.JobKind
	client client.Client
	// status writes the status through jobstatus; its reads skip the cache, so a conflict is
	// retried on the object as it is now, not on the cache's copy that conflicted.
	status   client.Client
	engine   *queue.Engine
	recorder events.EventRecorder
	clock    clock.PassiveClock
	lag      *statusLag
	opts     Options
}

var _ reconcile.Reconciler = &JobReconciler{}

// +kubebuilder:rbac:groups=jobs.jengu.io,resources=enrichmentjobs;competitorjobs;analyticsjobs,verbs=get;list;watch;update;patch;delete
// +kubebuilder:rbac:groups=jobs.jengu.io,resources=enrichmentjobs/status;competitorjobs/status;analyticsjobs/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=jobs.jengu.io,resources=enrichmentjobs/finalizers;competitorjobs/finalizers;analyticsjobs/finalizers,verbs=update
// +kubebuilder:rbac:groups=jobs.jengu.io,resources=jobqueues,verbs=get;list;watch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch
// +kubebuilder:rbac:groups="",resources=events,verbs=create;patch

// freshReads is a client whose reads go to the kube-apiserver, not the cache.
type freshReads struct {
	client.Client
	reader client.Reader
}

func (f freshReads) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	return f.reader.Get(ctx, key, obj, opts...)
}

// Reconcile brings one job's Redis record and CR status in line.
//
// Unlike the JobQueue reconciler, it writes status through jobstatus' versioned writes, not one
// deferred patch: the workers write the same status concurrently, and a write from either side
// must win only when it reflects a newer Redis version, whatever order the two arrive in.
func (r *JobReconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	obj := r.kind.New()
	if err := r.client.Get(ctx, req.NamespacedName, obj); err != nil {
		if apierrors.IsNotFound(err) {
			r.lag.forget(req.NamespacedName)
		}
		return reconcile.Result{}, client.IgnoreNotFound(err)
	}
	q := r.engine.Queue(obj.GetNamespace(), string(obj.QueueName()))
	if !obj.GetDeletionTimestamp().IsZero() {
		return r.reconcileDelete(ctx, obj, q)
	}
	if err := r.ensureFinalizer(ctx, obj); err != nil {
		return reconcile.Result{}, err
	}
	jobQueue, found, err := r.jobQueue(ctx, obj)
	if err != nil {
		return reconcile.Result{}, err
	}
	settings := (&jobsv1alpha1.JobQueueSpec{Queue: obj.QueueName()}).Settings()
	var lagWait time.Duration
	switch {
	case found:
		settings = jobQueue.Spec.Settings()
		lagWait, err = r.mirror(ctx, obj, q, jobQueue)
	case obj.JobStatus().Phase.IsFinished():
		err = r.refuseRetry(ctx, obj, fmt.Sprintf("there is no JobQueue %q in namespace %s", obj.QueueName(), obj.GetNamespace()))
	default:
		return reconcile.Result{}, r.waitForJobQueue(ctx, obj)
	}
	if err != nil {
		return reconcile.Result{}, err
	}
	result, err := r.expireFinished(ctx, obj, q, settings)
	if lagWait > 0 && (result.RequeueAfter == 0 || lagWait < result.RequeueAfter) {
		result.RequeueAfter = lagWait
	}
	return result, err
}

// mirror brings the job's record and status in line: enqueued, at the CR's priority, retried on
// request, and the status caught up with the record. It returns when to look again at a status
// left lagging for now (statusLag).
func (r *JobReconciler) mirror(ctx context.Context, obj jobsv1alpha1.JobObject, q *queue.Queue, jq *jobsv1alpha1.JobQueue) (time.Duration, error) {
	record, gone, err := r.ensureEnqueued(ctx, obj, q, jq)
	if err != nil {
		return 0, err
	}
	if !gone && rolledBack(obj.JobStatus(), record) {
		if gone, err = r.dropIfFinished(ctx, obj, q, record); err != nil {
			return 0, err
		}
		if !gone {
			if record, err = r.raiseVersion(ctx, obj, q); err != nil {
				return 0, err
			}
		}
	}
	if gone {
		return 0, r.retryWithoutRecord(ctx, obj, q, jq)
	}
	if priority := int(obj.Common().Priority); record.Priority != priority && !record.State.IsFinished() {
		if _, err := q.SetPriority(ctx, obj.GetName(), string(obj.GetUID()), priority); err != nil {
			return 0, err
		}
	}
	if record, err = r.handleRetryRequest(ctx, obj, q, record); err != nil {
		return 0, err
	}
	return r.catchUp(ctx, obj, record)
}

// reconcileDelete cancels the job and removes its record, then releases the finalizer. If Redis
// stays unreachable past the grace period the finalizer goes anyway, so namespaces and
// uninstalls never hang; the orphan sweep removes the record later.
func (r *JobReconciler) reconcileDelete(ctx context.Context, obj jobsv1alpha1.JobObject, q *queue.Queue) (reconcile.Result, error) {
	log := logf.FromContext(ctx)
	if !controllerutil.ContainsFinalizer(obj, jobsv1alpha1.Finalizer) {
		return reconcile.Result{}, nil
	}
	removed, err := q.Remove(ctx, obj.GetName(), string(obj.GetUID()), queue.RemoveAsCancel())
	if err != nil {
		waited := r.clock.Since(obj.GetDeletionTimestamp().Time)
		if waited < r.opts.RedisDownGrace {
			log.Info("Redis unreachable; retrying before releasing the finalizer", "error", err.Error(),
				"releaseIn", r.opts.RedisDownGrace-waited)
			return reconcile.Result{RequeueAfter: min(r.opts.RedisDownGrace-waited, 10*time.Second)}, nil
		}
		log.Error(err, "Releasing the finalizer without removing the Redis record; the orphan sweep removes it later",
			"waited", waited)
	} else if removed && !obj.JobStatus().Phase.IsFinished() {
		r.recorder.Eventf(obj, nil, corev1.EventTypeNormal, jobsv1alpha1.ReasonCancelled, "Delete", "Removed the job from queue %s", q.Name)
	}
	r.releaseInput(ctx, obj)
	before := obj.DeepCopyObject().(jobsv1alpha1.JobObject)
	controllerutil.RemoveFinalizer(obj, jobsv1alpha1.Finalizer)
	// The resourceVersion precondition pins the object: a stale read must never release the
	// finalizer of a new CR that took the name (a conflict brings a fresh read instead).
	if err := r.client.Patch(ctx, obj, client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{})); err != nil {
		return reconcile.Result{}, client.IgnoreNotFound(err)
	}
	return reconcile.Result{}, nil
}

// releaseInput deletes the stored input of an AnalyticsJob that goes, whatever its phase (a
// finished one's history row released it already). Best effort: PostgreSQL being down must not
// hold a deletion; the input then stays, as it would without a history database.
func (r *JobReconciler) releaseInput(ctx context.Context, obj jobsv1alpha1.JobObject) {
	analytics, ok := obj.(*jobsv1alpha1.AnalyticsJob)
	if !ok || r.opts.History == nil || analytics.Spec.InputRef == "" {
		return
	}
	if err := r.opts.History.ReleaseAnalyticsInput(ctx, analytics.Spec.InputRef, analytics.Spec.UserID, analytics.Spec.PropertyID); err != nil {
		logf.FromContext(ctx).Error(err, "Releasing the deleted job's stored input failed; it stays", "input", analytics.Spec.InputRef)
	}
}

// ensureFinalizer adds the finalizer when whoever created the CR did not.
func (r *JobReconciler) ensureFinalizer(ctx context.Context, obj jobsv1alpha1.JobObject) error {
	if controllerutil.ContainsFinalizer(obj, jobsv1alpha1.Finalizer) {
		return nil
	}
	before := obj.DeepCopyObject().(jobsv1alpha1.JobObject)
	controllerutil.AddFinalizer(obj, jobsv1alpha1.Finalizer)
	if err := r.client.Patch(ctx, obj, client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{})); err != nil {
		return fmt.Errorf("add finalizer: %w", err)
	}
	return nil
}

// jobQueue finds the namespace's JobQueue for the job's queue.
func (r *JobReconciler) jobQueue(ctx context.Context, obj jobsv1alpha1.JobObject) (jq *jobsv1alpha1.JobQueue, found bool, err error) {
	jq = &jobsv1alpha1.JobQueue{}
	key := types.NamespacedName{Namespace: obj.GetNamespace(), Name: string(obj.QueueName())}
	err = r.client.Get(ctx, key, jq)
	if apierrors.IsNotFound(err) {
		return nil, false, nil
	}
	return jq, err == nil, err
}

// waitForJobQueue leaves a job whose namespace has no JobQueue for its queue unenqueued: it
// shows QueueReady=False until the JobQueue appears (a watch brings it back).
func (r *JobReconciler) waitForJobQueue(ctx context.Context, obj jobsv1alpha1.JobObject) error {
	cond := meta.FindStatusCondition(obj.JobStatus().Conditions, jobsv1alpha1.ConditionQueueReady)
	if cond != nil && cond.Reason == jobsv1alpha1.ReasonQueueNotFound {
		return nil
	}
	r.recorder.Eventf(obj, nil, corev1.EventTypeWarning, jobsv1alpha1.ReasonQueueNotFound, "Enqueue",
		"No JobQueue %q in namespace %s; the job waits for one", obj.QueueName(), obj.GetNamespace())
	return jobstatus.WriteUnversioned(ctx, r.status, obj, func(s *jobsv1alpha1.JobStatus) {
		meta.SetStatusCondition(&s.Conditions, metav1.Condition{Type: jobsv1alpha1.ConditionQueueReady,
			Status: metav1.ConditionFalse, Reason: jobsv1alpha1.ReasonQueueNotFound,
			Message: fmt.Sprintf("No JobQueue %q in namespace %s", obj.QueueName(), obj.GetNamespace())})
	})
}

// ensureEnqueued returns the job's Redis record, enqueuing it first when it has none: a new
// job, or one Redis lost (flushed, restarted without persistence). For a finished job whose
// record is gone it reports gone: there is nothing left to mirror.
func (r *JobReconciler) ensureEnqueued(ctx context.Context, obj jobsv1alpha1.JobObject, q *queue.Queue, jq *jobsv1alpha1.JobQueue) (record *queue.Record, gone bool, err error) {
	record, err = q.Get(ctx, obj.GetName())
	switch {
	case err == nil && record.UID == string(obj.GetUID()):
		return record, false, nil
	case err == nil:
		// A record of an earlier CR of the same name whose finalizer could not remove it.
		if _, err := q.Remove(ctx, obj.GetName(), record.UID); err != nil {
			return nil, false, err
		}
	case !errors.Is(err, queue.ErrNotFound):
		return nil, false, err
	}
	status := obj.JobStatus()
	if status.Phase.IsFinished() {
		return nil, true, nil
	}
	// A record Redis lost may have finished first, even one whose CR never heard of it (a
	// kube-apiserver outage): the history says so.
	if finished, err := r.finishedInHistory(ctx, obj); err != nil || finished {
		return nil, finished, err
	}
	created, err := r.enqueue(ctx, obj, q, jq, "")
	if err != nil {
		return nil, false, err
	}
	switch {
	case !created:
	case status.QueueVersion > 0:
		r.recorder.Eventf(obj, nil, corev1.EventTypeWarning, jobsv1alpha1.ReasonReEnqueued, "Enqueue",
			"The job's Redis record was lost; enqueued it again on %s", q.Name)
	case meta.FindStatusCondition(status.Conditions, jobsv1alpha1.ConditionQueueReady) != nil:
		// Only a job that waited for its JobQueue says so: a routine enqueue is in the status, and an
		// Event per job would cost every job one more write and a kilobyte of etcd for an hour.
		r.recorder.Eventf(obj, nil, corev1.EventTypeNormal, jobsv1alpha1.ReasonEnqueued, "Enqueue",
			"Enqueued on %s", q.Name)
	}
	record, err = q.Get(ctx, obj.GetName())
	return record, false, err
}

// enqueue adds the job's record with its JobQueue's settings (for retryToken, when set) and
// reports whether it created one.
func (r *JobReconciler) enqueue(ctx context.Context, obj jobsv1alpha1.JobObject, q *queue.Queue, jq *jobsv1alpha1.JobQueue, retryToken string) (bool, error) {
	req, err := enqueueRequest(obj, jq)
	if err != nil {
		return false, err
	}
	req.RetryToken = retryToken
	res, err := q.Enqueue(ctx, req)
	return res.Created, err
}

// rolledBack says whether Redis went back in time under the record (restarted from an older
// snapshot, failed over to a lagging replica): versions only rise, and one version is one state,
// so a record below the CR's version, or at it in another phase, is an older copy.
func rolledBack(status *jobsv1alpha1.JobStatus, record *queue.Record) bool {
	phase, ok := jobstatus.PhaseOf(record.State)
	return ok && (record.Version < status.QueueVersion || record.Version == status.QueueVersion && phase != status.Phase)
}

// dropIfFinished removes a rolled-back record of a job whose CR already finished: the CR saw the
// end the record went back from, and raising the record would run the job again.
func (r *JobReconciler) dropIfFinished(ctx context.Context, obj jobsv1alpha1.JobObject, q *queue.Queue, record *queue.Record) (bool, error) {
	if !obj.JobStatus().Phase.IsFinished() || record.State.IsFinished() {
		return false, nil
	}
	_, err := q.Remove(ctx, obj.GetName(), string(obj.GetUID()))
	return err == nil, err
}

// raiseVersion lifts a rolled-back record to just above the CR's version, so the CR follows its
// later transitions instead of taking them for stale ones.
func (r *JobReconciler) raiseVersion(ctx context.Context, obj jobsv1alpha1.JobObject, q *queue.Queue) (*queue.Record, error) {
	if _, err := q.RaiseVersion(ctx, obj.GetName(), string(obj.GetUID()), obj.JobStatus().QueueVersion); err != nil {
		return nil, err
	}
	return q.Get(ctx, obj.GetName())
}

// handleRetryRequest acts on a new jobs.jengu.io/retry token: a failed job goes back from the
// dead letter set to waiting, once per token. Redis records the token in the same script that
// retries (so a token acts at most once, whatever fails after it); the status records it too,
// so that the next reconciles skip it without asking Redis.
func (r *JobReconciler) handleRetryRequest(ctx context.Context, obj jobsv1alpha1.JobObject, q *queue.Queue, record *queue.Record) (*queue.Record, error) {
	token, recorded, isNew := newRetryToken(obj)
	if !isNew {
		return record, nil
	}
	if record.RetryToken == token {
		return record, jobstatus.WriteUnversioned(ctx, r.status, obj, rememberRetry(recorded))
	}
	if record.State != queue.StateFailed {
		return record, r.refuseRetry(ctx, obj, fmt.Sprintf("the job is %s, not failed", record.State))
	}
	_, err := q.RetryFailed(ctx, obj.GetName(), token)
	if err != nil && !errors.Is(err, queue.ErrRetryTokenUsed) {
		return nil, err
	}
	if err == nil {
		r.recorder.Eventf(obj, nil, corev1.EventTypeNormal, jobsv1alpha1.ReasonRetryRequested, "Retry",
			"Moved from the dead letter set back to waiting (retry %q)", shortToken(token))
	}
	return r.recordRetry(ctx, obj, q, recorded)
}

// retryWithoutRecord acts on a new retry token of a finished job whose record Redis lost: a
// Failed job is enqueued afresh (the CR is what was asked, and a retry was asked); a Completed
// one is refused, as with a record.
func (r *JobReconciler) retryWithoutRecord(ctx context.Context, obj jobsv1alpha1.JobObject, q *queue.Queue, jq *jobsv1alpha1.JobQueue) error {
	token, recorded, isNew := newRetryToken(obj)
	if !isNew {
		return nil
	}
	if obj.JobStatus().Phase != jobsv1alpha1.PhaseFailed {
		return r.refuseRetry(ctx, obj, fmt.Sprintf("the job is %s, not failed", obj.JobStatus().Phase))
	}
	// The record carries the token, so a status write lost after this cannot let it act again.
	if _, err := r.enqueue(ctx, obj, q, jq, token); err != nil {
		return err
	}
	r.recorder.Eventf(obj, nil, corev1.EventTypeNormal, jobsv1alpha1.ReasonRetryRequested, "Retry",
		"Redis had lost the failed job's record; enqueued it again (retry %q)", shortToken(token))
	_, err := r.recordRetry(ctx, obj, q, recorded)
	return err
}

// recordRetry writes the status of a job just retried, with the token acted on.
func (r *JobReconciler) recordRetry(ctx context.Context, obj jobsv1alpha1.JobObject, q *queue.Queue, recorded string) (*queue.Record, error) {
	record, err := q.Get(ctx, obj.GetName())
	if err != nil {
		return nil, err
	}
	written, err := jobstatus.Write(ctx, r.status, obj, record.Version, func(s *jobsv1alpha1.JobStatus) {
		jobstatus.FromRecord(s, record)
		rememberRetry(recorded)(s)
	})
	if err == nil && !written {
		// A worker wrote a newer version first: the token still belongs in the status.
		err = jobstatus.WriteUnversioned(ctx, r.status, obj, rememberRetry(recorded))
	}
	return record, err
}

// newRetryToken reads the jobs.jengu.io/retry annotation: the token, how the status records it,
// and whether it is one not acted on yet.
func newRetryToken(obj jobsv1alpha1.JobObject) (token, recorded string, isNew bool) {
	token = obj.GetAnnotations()[jobsv1alpha1.AnnotationRetry]
	recorded = jobstatus.RetryTokenOf(token)
	return token, recorded, token != "" && recorded != obj.JobStatus().LastRetryToken
}

// rememberRetry records in the status the retry token acted on (as RetryTokenOf gives it).
func rememberRetry(recorded string) func(*jobsv1alpha1.JobStatus) {
	return func(s *jobsv1alpha1.JobStatus) { s.LastRetryToken = recorded }
}

// refuseRetry answers a new retry token that cannot be acted on with a warning Event, once.
func (r *JobReconciler) refuseRetry(ctx context.Context, obj jobsv1alpha1.JobObject, why string) error {
	token, recorded, isNew := newRetryToken(obj)
	if !isNew {
		return nil
	}
	r.recorder.Eventf(obj, nil, corev1.EventTypeWarning, jobsv1alpha1.ReasonRetryIgnored, "Retry",
		"Retry %q ignored: %s", shortToken(token), why)
	return jobstatus.WriteUnversioned(ctx, r.status, obj, rememberRetry(recorded))
}

// shortToken keeps an Event's message short whatever the annotation holds.
func shortToken(token string) string {
	if len(token) > 64 {
		return token[:64] + "…"
	}
	return token
}

// catchUp writes the status the record implies when the CR has lagged it for the status grace
// (statusLag), or at once for a job's end, and otherwise returns how long it leaves the lag to
// the worker. Progress of an
// active job with a live lease is left to its worker, which coalesces it: the controller writes
// only phase changes then, so a job costs the kube-apiserver a handful of writes.
func (r *JobReconciler) catchUp(ctx context.Context, obj jobsv1alpha1.JobObject, record *queue.Record) (time.Duration, error) {
	status, key := obj.JobStatus(), client.ObjectKeyFromObject(obj)
	phase, ok := jobstatus.PhaseOf(record.State)
	leaseLive := record.LeaseUntil.After(r.clock.Now())
	if record.Version <= status.QueueVersion || !ok ||
		phase == jobsv1alpha1.PhaseActive && status.Phase == jobsv1alpha1.PhaseActive && leaseLive {
		r.lag.forget(key)
		return 0, nil
	}
	// A job's end is written at once, by the worker and by the controller alike: until a CR
	// shows it, a Redis loss would run the job again.
	if wait := r.lag.wait(key, r.clock.Now()); wait > 0 && !record.State.IsFinished() {
		return wait, nil
	}
	if _, err := jobstatus.Sync(ctx, r.status, obj, record); err != nil {
		return 0, err
	}
	r.lag.forget(key)
	return 0, nil
}

// expireFinished deletes a finished job once its TTL has passed (the one retention clock), and
// otherwise comes back when it will have, or after the resync period for a live job.
func (r *JobReconciler) expireFinished(ctx context.Context, obj jobsv1alpha1.JobObject, q *queue.Queue, settings jobsv1alpha1.QueueSettings) (reconcile.Result, error) {
	status := obj.JobStatus()
	if !status.Phase.IsFinished() || status.FinishedAt == nil {
		return reconcile.Result{RequeueAfter: r.opts.ResyncPeriod}, nil
	}
	ttl := settings.RetainCompleted
	if status.Phase == jobsv1alpha1.PhaseFailed {
		ttl = settings.RetainFailed
	}
	if t := obj.Common().TTLSecondsAfterFinished; t != nil {
		ttl = time.Duration(*t) * time.Second
	}
	if left := status.FinishedAt.Add(ttl).Sub(r.clock.Now()); left > 0 {
		return reconcile.Result{RequeueAfter: left}, nil
	}
	if wait, err := chainHolds(ctx, r.client, obj); err != nil || wait > 0 {
		return reconcile.Result{RequeueAfter: wait}, err // its follow-ups first
	}
	if err := r.recordHistory(ctx, obj, q); err != nil {
		return reconcile.Result{}, err
	}
	uid := obj.GetUID()
	err := r.client.Delete(ctx, obj, client.Preconditions{UID: &uid}, client.PropagationPolicy(metav1.DeletePropagationBackground))
	return reconcile.Result{}, client.IgnoreNotFound(err)
}

// recordHistory writes the finished job's row in the history before its CR goes, so every
// terminal outcome is answered for past the TTL: also those no worker recorded (failed by the
// stall reclaimer, a lost Complete reply, a crash or PostgreSQL down at the worker's write). A
// worker's row of the same outcome, with its result, is kept.
func (r *JobReconciler) recordHistory(ctx context.Context, obj jobsv1alpha1.JobObject, q *queue.Queue) error {
	if r.opts.History == nil {
		return nil
	}
	status, common := obj.JobStatus(), obj.Common()
	row := store.JobResult{JobID: obj.GetName(), Queue: string(obj.QueueName()), Namespace: obj.GetNamespace(),
		UserID: common.UserID, PropertyID: common.PropertyID, Status: store.JobCompleted,
		Attempts: int(status.AttemptsMade), CreatedAt: obj.GetCreationTimestamp().Time, FinishedAt: status.FinishedAt.Time}
	if status.Phase == jobsv1alpha1.PhaseFailed {
		row.Status, row.Error = store.JobFailed, status.Message
	}
	if analytics, ok := obj.(*jobsv1alpha1.AnalyticsJob); ok {
		// The CR goes, so nothing can run on its stored input any more.
		row.InputRef = analytics.Spec.InputRef
	}
	if record, err := q.Get(ctx, obj.GetName()); err == nil && record.UID == string(obj.GetUID()) && json.Valid(record.Result) {
		row.Result = record.Result
	}
	if err := r.opts.History.RecordJobResultIfLater(ctx, row); err != nil {
		return fmt.Errorf("record the history of %s before it expires: %w", obj.GetName(), err)
	}
	return nil
}

// finishedBeforeLoss reads the history of a job whose record Redis lost: a terminal row written
// after the CR was created means a worker finished it for good before the CR heard of it. A
// failed row counts only for a job never retried: a retry's run may be what Redis lost, and the
// row may be the failure before it. Without a history, or such a row, it reports false, and the
// job is enqueued again (delivery stays at least once).
func finishedBeforeLoss(ctx context.Context, history History, obj jobsv1alpha1.JobObject) (store.JobResult, bool, error) {
	if history == nil {
		return store.JobResult{}, false, nil
	}
	row, err := history.GetJobResult(ctx, obj.GetNamespace(), obj.GetName())
	switch {
	case errors.Is(err, store.ErrNotFound):
		return row, false, nil
	case err != nil:
		return row, false, fmt.Errorf("read the history of %s, whose record Redis lost: %w", obj.GetName(), err)
	}
	terminal := row.Status == store.JobCompleted || row.Status == store.JobFailed && obj.JobStatus().LastRetryToken == ""
	return row, terminal && !row.FinishedAt.Before(obj.GetCreationTimestamp().Time), nil
}

// finishedInHistory marks a job Completed or Failed when its history says it ended so before
// Redis lost its record, instead of enqueuing it to run again.
func (r *JobReconciler) finishedInHistory(ctx context.Context, obj jobsv1alpha1.JobObject) (bool, error) {
	row, finished, err := finishedBeforeLoss(ctx, r.opts.History, obj)
	if err != nil || !finished {
		return false, err
	}
	status := obj.JobStatus()
	settled := &queue.Record{State: queue.StateCompleted, Progress: 100, AttemptsMade: row.Attempts,
		CreatedAt: timeOf(status.QueuedAt), ProcessedAt: timeOf(status.StartedAt), FinishedAt: row.FinishedAt,
		Worker: status.Worker, Version: status.QueueVersion + 1}
	reason := jobsv1alpha1.ReasonSucceeded
	if row.Status == store.JobFailed {
		settled.State, settled.Progress, settled.Error = queue.StateFailed, int(status.Progress), row.Error
		reason = jobsv1alpha1.ReasonAttemptsExhaust
	}
	if _, err := jobstatus.Sync(ctx, r.status, obj, settled); err != nil {
		return false, err
	}
	r.recorder.Eventf(obj, nil, corev1.EventTypeNormal, reason, "Enqueue",
		"Redis lost the job's record after it %s; its history says so, so it does not run again", row.Status)
	return true, nil
}
