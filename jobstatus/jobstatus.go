// Package jobstatus is the one way job CR status is written, by the controller and the workers
// alike. A write carries the version of the Redis record it reflects and is applied only when
// that version is higher than the one the CR stores, under a resourceVersion precondition; so
// two writers converge on the latest version and a late, stale write never wins.
package jobstatus

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	jobsv1alpha1 "github.com/jengu/queue-operator/api/v1alpha1"
	"github.com/jengu/queue-operator/queue"
)

// maxConflicts bounds the re-reads after resourceVersion conflicts.
const maxConflicts = 10

// Write applies change to obj's status if version is higher than the stored queueVersion, and
// stores version with it. On a conflict it re-reads obj and tries again. It reports whether it
// wrote; obj holds the stored object afterwards.
func Write(ctx context.Context, c client.Client, obj jobsv1alpha1.JobObject, version int64, change func(*jobsv1alpha1.JobStatus)) (bool, error) {
	return write(ctx, c, obj, func(stored int64) bool { return version > stored }, func(s *jobsv1alpha1.JobStatus) {
		change(s)
		s.QueueVersion = version
	})
}

// WriteUnversioned applies a change that no Redis transition caused (the QueueReady condition
// before any record exists, the retry token acted on) and leaves queueVersion as it is.
func WriteUnversioned(ctx context.Context, c client.Client, obj jobsv1alpha1.JobObject, change func(*jobsv1alpha1.JobStatus)) error {
	_, err := write(ctx, c, obj, func(int64) bool { return true }, change)
	return err
}

func write(ctx context.Context, c client.Client, obj jobsv1alpha1.JobObject, accept func(stored int64) bool, change func(*jobsv1alpha1.JobStatus)) (bool, error) {
	for range maxConflicts {
		if !accept(obj.JobStatus().QueueVersion) {
			return false, nil
		}
		before := obj.DeepCopyObject().(jobsv1alpha1.JobObject)
		change(obj.JobStatus())
		obj.JobStatus().ObservedGeneration = obj.GetGeneration()
		patch := client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{})
		err := c.Status().Patch(ctx, obj, patch)
		if err == nil {
			return true, nil
		}
		if !apierrors.IsConflict(err) {
			return false, fmt.Errorf("write status of %s/%s: %w", obj.GetNamespace(), obj.GetName(), err)
		}
		if err := c.Get(ctx, client.ObjectKeyFromObject(obj), obj); err != nil {
			return false, fmt.Errorf("re-read %s/%s after a conflict: %w", obj.GetNamespace(), obj.GetName(), err)
		}
	}
	return false, fmt.Errorf("write status of %s/%s: still conflicting after %d tries", obj.GetNamespace(), obj.GetName(), maxConflicts)
}

// Sync writes the status that record implies, at record's version.
func Sync(ctx context.Context, c client.Client, obj jobsv1alpha1.JobObject, record *queue.Record) (bool, error) {
	return Write(ctx, c, obj, record.Version, func(s *jobsv1alpha1.JobStatus) { FromRecord(s, record) })
}

// PhaseOf maps a record's state to the CR phase; cancelled has none (its CR is going).
func PhaseOf(s queue.State) (jobsv1alpha1.JobPhase, bool) {
	switch s {
	case queue.StateWaiting:
		return jobsv1alpha1.PhaseWaiting, true
	case queue.StateActive:
		return jobsv1alpha1.PhaseActive, true
	case queue.StateDelayed:
		return jobsv1alpha1.PhaseDelayed, true
	case queue.StateCompleted:
		return jobsv1alpha1.PhaseCompleted, true
	case queue.StateFailed:
		return jobsv1alpha1.PhaseFailed, true
	}
	return "", false
}

// FromRecord sets s from a Redis record: phase, progress, attempts, times, worker, message and
// the conditions that go with the phase.
func FromRecord(s *jobsv1alpha1.JobStatus, r *queue.Record) {
	phase, ok := PhaseOf(r.State)
	if !ok {
		return
	}
	s.Phase = phase
	s.Progress = int32(r.Progress)
	s.AttemptsMade = int32(r.AttemptsMade)
	s.QueuedAt = metaTime(r.CreatedAt)
	s.StartedAt = metaTime(r.ProcessedAt)
	s.FinishedAt = metaTime(r.FinishedAt)
	s.NextAttemptAt = nil
	s.Worker = r.Worker
	s.Message = ""
	switch phase {
	case jobsv1alpha1.PhaseActive, jobsv1alpha1.PhaseCompleted:
		// A processor's last word: a stage while active, a result summary once completed.
		s.Message = r.ProgressMessage
	case jobsv1alpha1.PhaseDelayed:
		s.NextAttemptAt = metaTime(r.DueAt)
		s.Message = r.Error
	case jobsv1alpha1.PhaseFailed:
		s.Message = r.Error
	case jobsv1alpha1.PhaseWaiting:
		s.Worker = ""
	}
	if len(s.Message) > 1024 {
		s.Message = s.Message[:1024]
	}
	setConditions(s, phase, r)
}

// droppedQueued was a condition true from a job's enqueue on, which its phase says as well; a
// status write removes it from jobs written before it was dropped.
const droppedQueued = "Queued"

// setConditions sets the conditions that apply to phase and updates those s already has; a
// condition that would only repeat the phase (Complete or Failed while false, Running before
// the job was seen running, QueueReady while its JobQueue was always there) is left out.
func setConditions(s *jobsv1alpha1.JobStatus, phase jobsv1alpha1.JobPhase, r *queue.Record) {
	meta.RemoveStatusCondition(&s.Conditions, droppedQueued)
	set := func(t string, status metav1.ConditionStatus, reason, msg string, applies bool) {
		if !applies && meta.FindStatusCondition(s.Conditions, t) == nil {
			return
		}
		meta.SetStatusCondition(&s.Conditions, metav1.Condition{Type: t, Status: status, Reason: reason,
			Message: msg, ObservedGeneration: s.ObservedGeneration})
	}
	set(jobsv1alpha1.ConditionQueueReady, metav1.ConditionTrue, jobsv1alpha1.ReasonQueueFound, "", false)
	running, runningReason, runningMsg := metav1.ConditionFalse, jobsv1alpha1.ReasonNotRunning, ""
	complete, failed := metav1.ConditionFalse, metav1.ConditionFalse
	completeReason, failedReason, failedMsg := jobsv1alpha1.ReasonNotComplete, jobsv1alpha1.ReasonNotFailed, ""
	switch phase {
	case jobsv1alpha1.PhaseActive:
		running, runningReason, runningMsg = metav1.ConditionTrue, jobsv1alpha1.ReasonLeased, "Leased by "+r.Worker
	case jobsv1alpha1.PhaseDelayed:
		runningReason, runningMsg = jobsv1alpha1.ReasonRetrying, r.Error
		if r.DelayReason == queue.DelayRateLimited {
			runningReason = jobsv1alpha1.ReasonRateLimited
		}
	case jobsv1alpha1.PhaseCompleted:
		complete, completeReason = metav1.ConditionTrue, jobsv1alpha1.ReasonSucceeded
		runningReason = jobsv1alpha1.ReasonSucceeded
	case jobsv1alpha1.PhaseFailed:
		failed, failedMsg = metav1.ConditionTrue, r.Error
		failedReason = jobsv1alpha1.ReasonAttemptsExhaust
		if r.AttemptsMade < r.MaxAttempts {
			failedReason = jobsv1alpha1.ReasonPermanentError
		}
		runningReason = failedReason
	}
	set(jobsv1alpha1.ConditionRunning, running, runningReason, truncate(runningMsg),
		phase == jobsv1alpha1.PhaseActive || phase == jobsv1alpha1.PhaseDelayed)
	set(jobsv1alpha1.ConditionComplete, complete, completeReason, "", complete == metav1.ConditionTrue)
	set(jobsv1alpha1.ConditionFailed, failed, failedReason, truncate(failedMsg), failed == metav1.ConditionTrue)
}

// maxRetryToken is status.lastRetryToken's bound.
const maxRetryToken = 128

// RetryTokenOf is how status.lastRetryToken records a retry annotation's token: as it is, or
// hashed when it is longer than the field may hold (an annotation may be longer).
func RetryTokenOf(token string) string {
	if len(token) <= maxRetryToken {
		return token
	}
	sum := sha256.Sum256([]byte(token))
	return "sha256:" + hex.EncodeToString(sum[:])
}

func truncate(s string) string {
	if len(s) > 1024 {
		return s[:1024]
	}
	return s
}

func metaTime(t time.Time) *metav1.Time {
	if t.IsZero() {
		return nil
	}
	mt := metav1.NewTime(t)
	return &mt
}
