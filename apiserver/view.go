package apiserver

import (
	"context"
	"encoding/json"
	"errors"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	jobsv1alpha1 "github.com/jengu/queue-operator/api/v1alpha1"
	"github.com/jengu/queue-operator/jobstatus"
	"github.com/jengu/queue-operator/queue"
	"github.com/jengu/queue-operator/store"
)

// jobView is a job as GET /api/jobs/:jobId answers it: the seed's fields (id, status, progress,
// data, attemptsMade, processedOn, finishedOn, failedReason) and BullMQ's (timestamp,
// returnvalue), times in Unix milliseconds.
type jobView struct {
	ID            string          `json:"id"`
	Queue         string          `json:"queue"`
	Status        string          `json:"status"`
	Progress      int32           `json:"progress"`
	Data          any             `json:"data"`
	AttemptsMade  int32           `json:"attemptsMade"`
	Timestamp     int64           `json:"timestamp"`
	ProcessedOn   int64           `json:"processedOn,omitempty"`
	FinishedOn    int64           `json:"finishedOn,omitempty"`
	NextAttemptAt int64           `json:"nextAttemptAt,omitempty"`
	FailedReason  string          `json:"failedReason,omitempty"`
	Message       string          `json:"message,omitempty"`
	ReturnValue   json.RawMessage `json:"returnvalue,omitempty"`
	// FollowUps are the ids of the jobs its then created once it completed; ParentID the job
	// whose then created it; ScheduleID the schedule that created it.
	FollowUps  []string `json:"followUps,omitempty"`
	ParentID   string   `json:"parentId,omitempty"`
	ScheduleID string   `json:"scheduleId,omitempty"`
}

// statusOf is the seed's status value of a job's phase; a job not enqueued yet is waiting.
func statusOf(job jobsv1alpha1.JobObject, phase jobsv1alpha1.JobPhase) string {
	if job.GetDeletionTimestamp() != nil && !phase.IsFinished() {
		return "cancelled"
	}
	if phase == "" {
		return "waiting"
	}
	return strings.ToLower(string(phase))
}

// liveStatus is the job's status with Redis' fresher word on it: the CR's progress is
// coalesced, the record has every tick. A record of an older CR under the same name is not
// this job's.
func (s *Server) liveStatus(ctx context.Context, job jobsv1alpha1.JobObject) (jobsv1alpha1.JobStatus, *queue.Record) {
	status := *job.JobStatus().DeepCopy()
	record, err := s.engine.Queue(s.cfg.Namespace, string(job.QueueName())).Get(ctx, job.GetName())
	if err != nil {
		if !errors.Is(err, queue.ErrNotFound) {
			s.log.Error(err, "Reading the job's record failed; answering from the CR", "job", job.GetName())
		}
		return status, nil
	}
	if record.UID != string(job.GetUID()) {
		return status, nil
	}
	if record.Version > status.QueueVersion {
		jobstatus.FromRecord(&status, record)
	}
	return status, record
}

func newJobView(job jobsv1alpha1.JobObject, status jobsv1alpha1.JobStatus, record *queue.Record) jobView {
	v := jobView{
		ID:            job.GetName(),
		Queue:         string(job.QueueName()),
		Status:        statusOf(job, status.Phase),
		Progress:      status.Progress,
		Data:          job.JobSpec(),
		AttemptsMade:  status.AttemptsMade,
		Timestamp:     job.GetCreationTimestamp().UnixMilli(),
		ProcessedOn:   millis(status.StartedAt),
		FinishedOn:    millis(status.FinishedAt),
		NextAttemptAt: millis(status.NextAttemptAt),
		FollowUps:     job.JobStatus().FollowUps,
		ParentID:      job.GetLabels()[jobsv1alpha1.LabelParent],
		ScheduleID:    job.GetLabels()[jobsv1alpha1.LabelSchedule],
	}
	if status.Phase == jobsv1alpha1.PhaseFailed || status.Phase == jobsv1alpha1.PhaseDelayed {
		v.FailedReason = status.Message
	} else {
		v.Message = status.Message // a processor's stage, or its result summary
	}
	if record != nil && record.State == queue.StateCompleted && json.Valid(record.Result) {
		v.ReturnValue = record.Result
	}
	return v
}

// historyView answers for a job past its CR's TTL from the history of finished jobs.
func historyView(r store.JobResult) jobView {
	v := jobView{
		ID:           r.JobID,
		Queue:        r.Queue,
		Status:       string(r.Status),
		Data:         map[string]string{"propertyId": r.PropertyID, "userId": r.UserID},
		AttemptsMade: int32(r.Attempts),
		Timestamp:    r.CreatedAt.UnixMilli(),
		FinishedOn:   r.FinishedAt.UnixMilli(),
		ReturnValue:  r.Result,
	}
	if r.Status == store.JobCompleted {
		v.Progress = 100
	} else {
		v.FailedReason = r.Error
	}
	return v
}

func millis(t *metav1.Time) int64 {
	if t == nil || t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}
