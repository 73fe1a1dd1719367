package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// QueueName names one of the product's queues, as the seed document names them.
// +kubebuilder:validation:Enum=enrichment;competitor;analytics-heavy
type QueueName string

const (
	QueueEnrichment QueueName = "enrichment"
	QueueCompetitor QueueName = "competitor"
	QueueAnalytics  QueueName = "analytics-heavy"
)

// JobPhase is where a job is in its life; the values are the seed's status values, capitalised as
// Kubernetes phases are.
// +kubebuilder:validation:Enum=Waiting;Active;Delayed;Completed;Failed
type JobPhase string

const (
	// PhaseWaiting: queued, waiting for a worker.
	PhaseWaiting JobPhase = "Waiting"
	// PhaseActive: a worker holds the job's lease and is processing it.
	PhaseActive JobPhase = "Active"
	// PhaseDelayed: waiting for a backoff or a rate-limit window to pass (see nextAttemptAt).
	PhaseDelayed JobPhase = "Delayed"
	// PhaseCompleted: finished successfully.
	PhaseCompleted JobPhase = "Completed"
	// PhaseFailed: failed after its last attempt, or permanently; the job is in the dead letter set.
	PhaseFailed JobPhase = "Failed"
)

// IsFinished reports whether the phase is terminal (Completed or Failed).
func (p JobPhase) IsFinished() bool { return p == PhaseCompleted || p == PhaseFailed }

// Condition types of a job, so that `kubectl wait --for=condition=Complete` works. As on a
// batch/v1 Job, each appears once it applies and then stays, updated: a job that never waited
// for its JobQueue, never ran long enough to be seen Active and completed carries Complete alone.
// Conditions that would only repeat the phase are left out, since every condition costs its
// bytes twice in etcd (the value, and its managedFields entry) for every live job.
const (
	// ConditionRunning is true while a worker processes the job; it appears when the job is
	// first seen Active or Delayed, and says False with the reason once the attempt ended.
	ConditionRunning = "Running"
	// ConditionComplete is true once the job finished successfully.
	ConditionComplete = "Complete"
	// ConditionFailed is true once the job failed for good (False again after a retry).
	ConditionFailed = "Failed"
	// ConditionQueueReady is false while the job's namespace has no JobQueue for its queue, and
	// true once one appeared; absent on a job whose JobQueue was there from the start.
	ConditionQueueReady = "QueueReady"
)

// Reasons of a job's conditions and Events.
const (
	ReasonEnqueued        = "Enqueued"
	ReasonQueueNotFound   = "QueueNotFound"
	ReasonQueueFound      = "QueueFound"
	ReasonLeased          = "Leased"
	ReasonRetrying        = "Retrying"
	ReasonRateLimited     = "RateLimited"
	ReasonSucceeded       = "Succeeded"
	ReasonAttemptsExhaust = "AttemptsExhausted"
	ReasonPermanentError  = "PermanentError"
	ReasonRetryRequested  = "RetryRequested"
	ReasonReEnqueued      = "ReEnqueued"
	ReasonRetryIgnored    = "RetryIgnored"
	ReasonCancelled       = "Cancelled"
	// The false sides of Running, Complete and Failed.
	ReasonNotRunning  = "NotRunning"
	ReasonNotComplete = "NotComplete"
	ReasonNotFailed   = "NotFailed"
)

// Labels and annotations of the jobs.jengu.io group.
const (
	// LabelUserID carries spec.userId, so the facade lists a user's jobs by label, not by scan.
	LabelUserID = "jobs.jengu.io/user-id"
	// LabelQueue carries the job's queue name.
	LabelQueue = "jobs.jengu.io/queue"
	// LabelCredential must be "true" on a Secret that a job may name as its credential.
	LabelCredential = "jobs.jengu.io/credential"
	// LabelCredentialOwner must carry the userId of the jobs that may use a credential Secret:
	// a job of another user naming it gets nothing.
	LabelCredentialOwner = "jobs.jengu.io/user"
	// AnnotationRetry, set to a new token on a failed job, moves it back from the dead letter set
	// to waiting, once per token.
	AnnotationRetry = "jobs.jengu.io/retry"
	// LabelParent, on a job a chain created, names the job whose then it came from.
	LabelParent = "jobs.jengu.io/parent"
	// LabelSchedule, on a job a JobSchedule created, names the schedule.
	LabelSchedule = "jobs.jengu.io/schedule"
	// AnnotationScheduledAt, on a job a JobSchedule created, is the run it was created for
	// (RFC 3339).
	AnnotationScheduledAt = "jobs.jengu.io/scheduled-at"
	// Finalizer removes the job's Redis record before the CR goes.
	Finalizer = "jobs.jengu.io/redis-record"
)

// JobCommonSpec holds what every job kind has besides its own data: whose job it is, and the
// queue knobs. Only priority may change after create. Each kind's spec has the XValidation rule
// for timeoutSeconds, ttlSecondsAfterFinished and then, not this struct: a schedule's template
// inlines it too and may change (a field-level transition rule is skipped when an optional field
// is added or removed, hence a rule on the spec).
type JobCommonSpec struct {
	// propertyId is the property the job works on.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=128
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9][A-Za-z0-9._:-]*$`
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="propertyId is immutable"
	PropertyID string `json:"propertyId"`

	// userId owns the property and the job (a Supabase user id). It is also the
	// jobs.jengu.io/user-id label, hence the label-value shape.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$`
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="userId is immutable"
	UserID string `json:"userId"`

	// priority orders waiting jobs of one queue: a higher number is more urgent, as in Kubernetes.
	// It is the one spec field that may change after create.
	// +optional
	// +kubebuilder:default=0
	// +kubebuilder:validation:Minimum=-1000
	// +kubebuilder:validation:Maximum=1000
	Priority int32 `json:"priority,omitempty"`

	// timeoutSeconds bounds one attempt; past it the attempt fails and is retried. Defaults to the
	// JobQueue's timeout (5 minutes by default).
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=86400
	TimeoutSeconds *int32 `json:"timeoutSeconds,omitempty"`

	// ttlSecondsAfterFinished is how long the finished job is kept before it is deleted. Defaults
	// to the JobQueue's retention: 24 hours when completed, 7 days when failed.
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=31536000
	TTLSecondsAfterFinished *int32 `json:"ttlSecondsAfterFinished,omitempty"`

	// then lists the jobs to create when, and only when, this job completes (never when it
	// fails): each for the same property and user, at this job's priority, named from this job
	// and its place in the list, with an owner reference to it. A follow-up may have a then of
	// its own, which ends the chain: a chain is at most 3 jobs deep.
	// +optional
	// +kubebuilder:validation:MaxItems=4
	Then []FollowUp `json:"then,omitempty"`
}

// JobStatus is the observed state shared by every job kind.
type JobStatus struct {
	// phase is the seed's status value: Waiting, Active, Delayed, Completed or Failed.
	// +optional
	Phase JobPhase `json:"phase,omitempty"`

	// progress is the processor's last reported progress, 0 to 100. Coalesced: Redis has every tick.
	// Defaulted, so that kubectl shows 0 rather than nothing before the first tick.
	// +optional
	// +kubebuilder:default=0
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100
	Progress int32 `json:"progress"`

	// attemptsMade counts the attempts started and ended (completed, failed or stalled). A
	// rate-limited job is delayed without counting an attempt.
	// +optional
	// +kubebuilder:default=0
	// +kubebuilder:validation:Minimum=0
	AttemptsMade int32 `json:"attemptsMade"`

	// queuedAt is when the job was first enqueued in Redis.
	// +optional
	QueuedAt *metav1.Time `json:"queuedAt,omitempty"`

	// startedAt is when the current or last attempt started (the seed's processedOn).
	// +optional
	StartedAt *metav1.Time `json:"startedAt,omitempty"`

	// finishedAt is when the job completed or failed for good (the seed's finishedOn).
	// +optional
	FinishedAt *metav1.Time `json:"finishedAt,omitempty"`

	// nextAttemptAt is when a Delayed job becomes due again.
	// +optional
	NextAttemptAt *metav1.Time `json:"nextAttemptAt,omitempty"`

	// worker names the worker that holds or held the job's lease.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	Worker string `json:"worker,omitempty"`

	// message is a short human-readable word on the job: the last error, or a result summary.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	Message string `json:"message,omitempty"`

	// queueVersion is the version of the Redis record this status reflects. A status write is
	// applied only when its version is higher than the stored one, so a late write never wins.
	// +optional
	// +kubebuilder:validation:Minimum=0
	QueueVersion int64 `json:"queueVersion,omitempty"`

	// observedGeneration is the generation of the spec this status was written for.
	// +optional
	// +kubebuilder:validation:Minimum=0
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// lastRetryToken is the value of the jobs.jengu.io/retry annotation last acted on.
	// +optional
	// +kubebuilder:validation:MaxLength=128
	LastRetryToken string `json:"lastRetryToken,omitempty"`

	// followUps names the jobs this job's then created, in the order of then.
	// +optional
	// +kubebuilder:validation:MaxItems=4
	// +kubebuilder:validation:items:MaxLength=253
	FollowUps []string `json:"followUps,omitempty"`

	// conditions: Running, Complete, Failed and QueueReady, each once it applies (as on a
	// batch/v1 Job).
	// +optional
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=16
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// JobObject is what the controllers, workers and facade need of every job kind.
// +kubebuilder:object:generate=false
type JobObject interface {
	metav1.Object
	runtime.Object
	// QueueName is the queue the kind's jobs run on.
	QueueName() QueueName
	// Common returns the spec fields shared by every kind.
	Common() *JobCommonSpec
	// JobStatus returns the kind's status, to read or change in place.
	JobStatus() *JobStatus
	// JobSpec returns the whole spec: the job's data, as the queue's payload carries it.
	JobSpec() any
}
