package jobstatus_test

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	jobsv1alpha1 "github.com/jengu/queue-operator/api/v1alpha1"
	"github.com/jengu/queue-operator/jobstatus"
	"github.com/jengu/queue-operator/queue"
)

func TestFromRecord(t *testing.T) {
	created := time.UnixMilli(1_734_512_345_000)
	started := created.Add(time.Second)
	due := created.Add(time.Minute)
	type conds map[string]metav1.ConditionStatus
	had := func(typ string, status metav1.ConditionStatus, reason string) metav1.Condition {
		return metav1.Condition{Type: typ, Status: status, Reason: reason}
	}
	tests := []struct {
		name   string
		before []metav1.Condition
		record queue.Record
		want   jobsv1alpha1.JobStatus
		// conditions are every condition the status has afterwards, with their status.
		conditions conds
		reasons    map[string]string
	}{{
		name:       "waiting",
		record:     queue.Record{State: queue.StateWaiting, CreatedAt: created, Worker: "old"},
		want:       jobsv1alpha1.JobStatus{Phase: jobsv1alpha1.PhaseWaiting, QueuedAt: mt(created)},
		conditions: conds{},
	}, {
		name:       "waiting, from a version that wrote Queued",
		before:     []metav1.Condition{had("Queued", metav1.ConditionTrue, jobsv1alpha1.ReasonEnqueued)},
		record:     queue.Record{State: queue.StateWaiting, CreatedAt: created},
		want:       jobsv1alpha1.JobStatus{Phase: jobsv1alpha1.PhaseWaiting, QueuedAt: mt(created)},
		conditions: conds{},
	}, {
		name:       "waiting, once its JobQueue appeared",
		before:     []metav1.Condition{had(jobsv1alpha1.ConditionQueueReady, metav1.ConditionFalse, jobsv1alpha1.ReasonQueueNotFound)},
		record:     queue.Record{State: queue.StateWaiting, CreatedAt: created},
		want:       jobsv1alpha1.JobStatus{Phase: jobsv1alpha1.PhaseWaiting, QueuedAt: mt(created)},
		conditions: conds{"QueueReady": metav1.ConditionTrue},
		reasons:    map[string]string{"QueueReady": jobsv1alpha1.ReasonQueueFound},
	}, {
		name: "active",
		record: queue.Record{State: queue.StateActive, CreatedAt: created, ProcessedAt: started, Progress: 45,
			ProgressMessage: "weather", Worker: "w-1", AttemptsMade: 1},
		want: jobsv1alpha1.JobStatus{Phase: jobsv1alpha1.PhaseActive, QueuedAt: mt(created), StartedAt: mt(started),
			Progress: 45, Message: "weather", Worker: "w-1", AttemptsMade: 1},
		conditions: conds{"Running": metav1.ConditionTrue},
		reasons:    map[string]string{"Running": jobsv1alpha1.ReasonLeased},
	}, {
		name: "delayed by a retry",
		record: queue.Record{State: queue.StateDelayed, CreatedAt: created, ProcessedAt: started, DueAt: due,
			Error: "Weather API timeout", AttemptsMade: 1, DelayReason: queue.DelayRetry},
		want: jobsv1alpha1.JobStatus{Phase: jobsv1alpha1.PhaseDelayed, QueuedAt: mt(created), StartedAt: mt(started),
			NextAttemptAt: mt(due), Message: "Weather API timeout", AttemptsMade: 1},
		conditions: conds{"Running": metav1.ConditionFalse},
		reasons:    map[string]string{"Running": jobsv1alpha1.ReasonRetrying},
	}, {
		name:       "delayed by the rate limit",
		record:     queue.Record{State: queue.StateDelayed, CreatedAt: created, DueAt: due, DelayReason: queue.DelayRateLimited},
		want:       jobsv1alpha1.JobStatus{Phase: jobsv1alpha1.PhaseDelayed, QueuedAt: mt(created), NextAttemptAt: mt(due)},
		conditions: conds{"Running": metav1.ConditionFalse},
		reasons:    map[string]string{"Running": jobsv1alpha1.ReasonRateLimited},
	}, {
		name: "completed, never seen running",
		record: queue.Record{State: queue.StateCompleted, CreatedAt: created, ProcessedAt: started, FinishedAt: due,
			Progress: 100, AttemptsMade: 2, Worker: "w-2"},
		want: jobsv1alpha1.JobStatus{Phase: jobsv1alpha1.PhaseCompleted, QueuedAt: mt(created), StartedAt: mt(started),
			FinishedAt: mt(due), Progress: 100, AttemptsMade: 2, Worker: "w-2"},
		conditions: conds{"Complete": metav1.ConditionTrue},
		reasons:    map[string]string{"Complete": jobsv1alpha1.ReasonSucceeded},
	}, {
		name:   "completed after it was seen running",
		before: []metav1.Condition{had(jobsv1alpha1.ConditionRunning, metav1.ConditionTrue, jobsv1alpha1.ReasonLeased)},
		record: queue.Record{State: queue.StateCompleted, CreatedAt: created, ProcessedAt: started, FinishedAt: due,
			Progress: 100, AttemptsMade: 1},
		want: jobsv1alpha1.JobStatus{Phase: jobsv1alpha1.PhaseCompleted, QueuedAt: mt(created), StartedAt: mt(started),
			FinishedAt: mt(due), Progress: 100, AttemptsMade: 1},
		conditions: conds{"Complete": metav1.ConditionTrue, "Running": metav1.ConditionFalse},
		reasons:    map[string]string{"Running": jobsv1alpha1.ReasonSucceeded},
	}, {
		name: "failed after the last attempt",
		record: queue.Record{State: queue.StateFailed, CreatedAt: created, FinishedAt: due, AttemptsMade: 5, MaxAttempts: 5,
			Error: "Weather API timeout"},
		want: jobsv1alpha1.JobStatus{Phase: jobsv1alpha1.PhaseFailed, QueuedAt: mt(created), FinishedAt: mt(due),
			AttemptsMade: 5, Message: "Weather API timeout"},
		conditions: conds{"Failed": metav1.ConditionTrue},
		reasons:    map[string]string{"Failed": jobsv1alpha1.ReasonAttemptsExhaust},
	}, {
		name:       "failed permanently",
		record:     queue.Record{State: queue.StateFailed, CreatedAt: created, AttemptsMade: 1, MaxAttempts: 5, Error: "property deleted"},
		want:       jobsv1alpha1.JobStatus{Phase: jobsv1alpha1.PhaseFailed, QueuedAt: mt(created), AttemptsMade: 1, Message: "property deleted"},
		conditions: conds{"Failed": metav1.ConditionTrue},
		reasons:    map[string]string{"Failed": jobsv1alpha1.ReasonPermanentError},
	}, {
		name: "a failed job retried from the DLQ",
		before: []metav1.Condition{had(jobsv1alpha1.ConditionFailed, metav1.ConditionTrue, jobsv1alpha1.ReasonAttemptsExhaust),
			had(jobsv1alpha1.ConditionRunning, metav1.ConditionFalse, jobsv1alpha1.ReasonAttemptsExhaust)},
		record:     queue.Record{State: queue.StateWaiting, CreatedAt: created, AttemptsMade: 5},
		want:       jobsv1alpha1.JobStatus{Phase: jobsv1alpha1.PhaseWaiting, QueuedAt: mt(created), AttemptsMade: 5},
		conditions: conds{"Failed": metav1.ConditionFalse, "Running": metav1.ConditionFalse},
		reasons:    map[string]string{"Failed": jobsv1alpha1.ReasonNotFailed, "Running": jobsv1alpha1.ReasonNotRunning},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := jobsv1alpha1.JobStatus{Conditions: tt.before}
			jobstatus.FromRecord(&got, &tt.record)
			conditions := got.Conditions
			got.Conditions = nil
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("status (-want +got):\n%s", diff)
			}
			gotConds := conds{}
			for _, c := range conditions {
				gotConds[c.Type] = c.Status
			}
			if diff := cmp.Diff(tt.conditions, gotConds); diff != "" {
				t.Errorf("conditions (-want +got):\n%s", diff)
			}
			for typ, reason := range tt.reasons {
				if c := meta.FindStatusCondition(conditions, typ); c == nil || c.Reason != reason {
					t.Errorf("condition %s = %v, want reason %s", typ, c, reason)
				}
			}
		})
	}
}

func TestCancelledRecordLeavesStatusAlone(t *testing.T) {
	got := jobsv1alpha1.JobStatus{Phase: jobsv1alpha1.PhaseActive, Progress: 30}
	jobstatus.FromRecord(&got, &queue.Record{State: queue.StateCancelled})
	if diff := cmp.Diff(jobsv1alpha1.JobStatus{Phase: jobsv1alpha1.PhaseActive, Progress: 30}, got); diff != "" {
		t.Errorf("status (-want +got):\n%s", diff)
	}
}

func mt(t time.Time) *metav1.Time {
	m := metav1.NewTime(t)
	return &m
}

func TestRetryTokenOfFitsTheStatusField(t *testing.T) {
	long := strings.Repeat("x", 200)
	tests := []struct {
		name, token string
		want        string
	}{
		{"short token kept", "2026-12-01T10:00:00Z", "2026-12-01T10:00:00Z"},
		{"128 characters kept", strings.Repeat("y", 128), strings.Repeat("y", 128)},
		{"longer token hashed", long, ""}, // checked by shape below
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := jobstatus.RetryTokenOf(tt.token)
			if tt.token == long {
				if len(got) > 128 || !strings.HasPrefix(got, "sha256:") || got != jobstatus.RetryTokenOf(long) {
					t.Fatalf("RetryTokenOf(200 x) = %q: want a stable sha256: form of at most 128 characters", got)
				}
				return
			}
			if got != tt.want {
				t.Fatalf("RetryTokenOf(%q) = %q, want %q", tt.token, got, tt.want)
			}
		})
	}
}
