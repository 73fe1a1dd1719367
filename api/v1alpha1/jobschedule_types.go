package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ConcurrencyPolicy says what a JobSchedule does at a run while jobs of earlier runs have not
// finished, as a CronJob's does.
// +kubebuilder:validation:Enum=Allow;Forbid;Replace
type ConcurrencyPolicy string

const (
	// ConcurrencyAllow creates the run's job whatever runs.
	ConcurrencyAllow ConcurrencyPolicy = "Allow"
	// ConcurrencyForbid skips the run while an earlier run's job has not finished; the latest
	// skipped run starts when it has, if still within startingDeadlineSeconds.
	ConcurrencyForbid ConcurrencyPolicy = "Forbid"
	// ConcurrencyReplace deletes (cancels) the unfinished jobs of earlier runs and creates the run's.
	ConcurrencyReplace ConcurrencyPolicy = "Replace"
)

// CronPattern is what spec.schedule's rule accepts: five fields (minute, hour, day of month,
// month, day of week; numbers, ranges, lists, steps, * and ?, month and day names) or one of the
// macros @yearly, @annually, @monthly, @weekly, @daily, @midnight, @hourly. The controller parses
// it with robfig/cron's standard parser, which accepts all of these.
const CronPattern = `^(@(yearly|annually|monthly|weekly|daily|midnight|hourly)|\s*(\*|\?|[0-5]?[0-9](-[0-5]?[0-9])?)(/[0-9]*[1-9][0-9]*)?(,(\*|\?|[0-5]?[0-9](-[0-5]?[0-9])?)(/[0-9]*[1-9][0-9]*)?)*\s+(\*|\?|([01]?[0-9]|2[0-3])(-([01]?[0-9]|2[0-3]))?)(/[0-9]*[1-9][0-9]*)?(,(\*|\?|([01]?[0-9]|2[0-3])(-([01]?[0-9]|2[0-3]))?)(/[0-9]*[1-9][0-9]*)?)*\s+(\*|\?|(0?[1-9]|[12][0-9]|3[01])(-(0?[1-9]|[12][0-9]|3[01]))?)(/[0-9]*[1-9][0-9]*)?(,(\*|\?|(0?[1-9]|[12][0-9]|3[01])(-(0?[1-9]|[12][0-9]|3[01]))?)(/[0-9]*[1-9][0-9]*)?)*\s+(?i:(\*|\?|(0?[1-9]|1[0-2]|JAN|FEB|MAR|APR|MAY|JUN|JUL|AUG|SEP|OCT|NOV|DEC)(-(0?[1-9]|1[0-2]|JAN|FEB|MAR|APR|MAY|JUN|JUL|AUG|SEP|OCT|NOV|DEC))?)(/[0-9]*[1-9][0-9]*)?(,(\*|\?|(0?[1-9]|1[0-2]|JAN|FEB|MAR|APR|MAY|JUN|JUL|AUG|SEP|OCT|NOV|DEC)(-(0?[1-9]|1[0-2]|JAN|FEB|MAR|APR|MAY|JUN|JUL|AUG|SEP|OCT|NOV|DEC))?)(/[0-9]*[1-9][0-9]*)?)*)\s+(?i:(\*|\?|([0-6]|SUN|MON|TUE|WED|THU|FRI|SAT)(-([0-6]|SUN|MON|TUE|WED|THU|FRI|SAT))?)(/[0-9]*[1-9][0-9]*)?(,(\*|\?|([0-6]|SUN|MON|TUE|WED|THU|FRI|SAT)(-([0-6]|SUN|MON|TUE|WED|THU|FRI|SAT))?)(/[0-9]*[1-9][0-9]*)?)*)\s*)$`

// JobTemplate is the job a JobSchedule creates at each run: exactly one kind's spec, then
// included.
// +kubebuilder:validation:XValidation:rule="(has(self.enrichment) ? 1 : 0) + (has(self.competitor) ? 1 : 0) + (has(self.analytics) ? 1 : 0) == 1",message="jobTemplate is exactly one of enrichment, competitor and analytics"
// +kubebuilder:validation:XValidation:rule="!has(self.analytics) || !has(self.analytics.inputRef)",message="a scheduled analysis reads the property's stored rows: a stored input (inputRef) is deleted when the first run's job completes",fieldPath=".analytics.inputRef"
type JobTemplate struct {
	// enrichment: each run creates an EnrichmentJob with this spec.
	// +optional
	Enrichment *EnrichmentJobTemplate `json:"enrichment,omitempty"`

	// competitor: each run creates a CompetitorJob with this spec.
	// +optional
	Competitor *CompetitorJobTemplate `json:"competitor,omitempty"`

	// analytics: each run creates an AnalyticsJob with this spec.
	// +optional
	Analytics *AnalyticsJobTemplate `json:"analytics,omitempty"`
}

// EnrichmentJobTemplate is an EnrichmentJob's spec without the rules that keep a job's spec
// immutable: a schedule's template may change (its propertyId and userId may not).
type EnrichmentJobTemplate struct {
	JobCommonSpec    `json:",inline"`
	EnrichmentFields `json:",inline"`
}

// CompetitorJobTemplate is a CompetitorJob's spec without the rules that keep a job's spec
// immutable.
type CompetitorJobTemplate struct {
	JobCommonSpec    `json:",inline"`
	CompetitorFields `json:",inline"`
}

// AnalyticsJobTemplate is an AnalyticsJob's spec without the rules that keep a job's spec
// immutable.
type AnalyticsJobTemplate struct {
	JobCommonSpec   `json:",inline"`
	AnalyticsFields `json:",inline"`
}

// JobScheduleSpec is when to create which job, as a CronJob's spec is.
type JobScheduleSpec struct {
	// schedule is when to run, in cron format: "30 3 * * *" (minute, hour, day of month, month,
	// day of week) or a macro (@hourly, @daily, @weekly, @monthly, @yearly).
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=256
	// +kubebuilder:validation:XValidation:rule=`self.matches(r'^(@(yearly|annually|monthly|weekly|daily|midnight|hourly)|\s*(\*|\?|[0-5]?[0-9](-[0-5]?[0-9])?)(/[0-9]*[1-9][0-9]*)?(,(\*|\?|[0-5]?[0-9](-[0-5]?[0-9])?)(/[0-9]*[1-9][0-9]*)?)*\s+(\*|\?|([01]?[0-9]|2[0-3])(-([01]?[0-9]|2[0-3]))?)(/[0-9]*[1-9][0-9]*)?(,(\*|\?|([01]?[0-9]|2[0-3])(-([01]?[0-9]|2[0-3]))?)(/[0-9]*[1-9][0-9]*)?)*\s+(\*|\?|(0?[1-9]|[12][0-9]|3[01])(-(0?[1-9]|[12][0-9]|3[01]))?)(/[0-9]*[1-9][0-9]*)?(,(\*|\?|(0?[1-9]|[12][0-9]|3[01])(-(0?[1-9]|[12][0-9]|3[01]))?)(/[0-9]*[1-9][0-9]*)?)*\s+(?i:(\*|\?|(0?[1-9]|1[0-2]|JAN|FEB|MAR|APR|MAY|JUN|JUL|AUG|SEP|OCT|NOV|DEC)(-(0?[1-9]|1[0-2]|JAN|FEB|MAR|APR|MAY|JUN|JUL|AUG|SEP|OCT|NOV|DEC))?)(/[0-9]*[1-9][0-9]*)?(,(\*|\?|(0?[1-9]|1[0-2]|JAN|FEB|MAR|APR|MAY|JUN|JUL|AUG|SEP|OCT|NOV|DEC)(-(0?[1-9]|1[0-2]|JAN|FEB|MAR|APR|MAY|JUN|JUL|AUG|SEP|OCT|NOV|DEC))?)(/[0-9]*[1-9][0-9]*)?)*)\s+(?i:(\*|\?|([0-6]|SUN|MON|TUE|WED|THU|FRI|SAT)(-([0-6]|SUN|MON|TUE|WED|THU|FRI|SAT))?)(/[0-9]*[1-9][0-9]*)?(,(\*|\?|([0-6]|SUN|MON|TUE|WED|THU|FRI|SAT)(-([0-6]|SUN|MON|TUE|WED|THU|FRI|SAT))?)(/[0-9]*[1-9][0-9]*)?)*)\s*)$')`,message="schedule must be five cron fields (minute 0-59, hour 0-23, day of month 1-31, month 1-12 or JAN-DEC, day of week 0-6 or SUN-SAT; with *, ?, ranges a-b, lists a,b and steps /n) or one of @yearly, @annually, @monthly, @weekly, @daily, @midnight, @hourly"
	Schedule string `json:"schedule"`

	// timeZone is the IANA time zone the schedule is read in (e.g. Europe/Madrid); UTC when
	// empty. Runs follow the zone's daylight-saving changes, as a CronJob's do.
	// +optional
	// +kubebuilder:validation:MaxLength=64
	// +kubebuilder:validation:Pattern=`^[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+)*$`
	TimeZone string `json:"timeZone,omitempty"`

	// jobTemplate is the job each run creates.
	// +required
	JobTemplate JobTemplate `json:"jobTemplate"`

	// concurrencyPolicy says what a run does while jobs of earlier runs have not finished:
	// Allow (default), Forbid or Replace.
	// +optional
	// +kubebuilder:default=Allow
	ConcurrencyPolicy ConcurrencyPolicy `json:"concurrencyPolicy,omitempty"`

	// startingDeadlineSeconds: a run that could not start within this many seconds of its
	// time (the controller was down, or Forbid held it back) is skipped. Unset: no deadline.
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=31536000
	StartingDeadlineSeconds *int64 `json:"startingDeadlineSeconds,omitempty"`

	// suspend stops new runs; jobs already created go on.
	// +optional
	// +kubebuilder:default=false
	Suspend bool `json:"suspend"`

	// successfulJobsHistoryLimit is how many completed jobs to keep (default 3); older ones are
	// deleted. Their own ttlSecondsAfterFinished may delete them sooner.
	// +optional
	// +kubebuilder:default=3
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100
	SuccessfulJobsHistoryLimit *int32 `json:"successfulJobsHistoryLimit,omitempty"`

	// failedJobsHistoryLimit is how many failed jobs to keep (default 1).
	// +optional
	// +kubebuilder:default=1
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100
	FailedJobsHistoryLimit *int32 `json:"failedJobsHistoryLimit,omitempty"`
}

// JobReference names one job of a JobSchedule.
type JobReference struct {
	// kind of the job.
	// +required
	// +kubebuilder:validation:Enum=EnrichmentJob;CompetitorJob;AnalyticsJob
	Kind string `json:"kind"`

	// name of the job, in the schedule's namespace.
	// +required
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
}

// JobScheduleStatus is what the schedule has done.
type JobScheduleStatus struct {
	// active lists the schedule's jobs that have not finished (at most 50 listed; activeCount
	// counts them all).
	// +optional
	// +kubebuilder:validation:MaxItems=50
	Active []JobReference `json:"active,omitempty"`

	// activeCount is how many of the schedule's jobs have not finished.
	// +optional
	// +kubebuilder:validation:Minimum=0
	ActiveCount int32 `json:"activeCount"`

	// lastScheduleTime is the time of the last run a job was created for.
	// +optional
	LastScheduleTime *metav1.Time `json:"lastScheduleTime,omitempty"`

	// lastSuccessfulTime is when the last of the schedule's jobs to complete completed.
	// +optional
	LastSuccessfulTime *metav1.Time `json:"lastSuccessfulTime,omitempty"`

	// nextScheduleTime is the next run's time; empty while suspended or invalid.
	// +optional
	NextScheduleTime *metav1.Time `json:"nextScheduleTime,omitempty"`

	// observedGeneration is the generation of the spec this status was written for.
	// +optional
	// +kubebuilder:validation:Minimum=0
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// conditions: Ready (the schedule parses and its time zone exists; False with reason
	// InvalidSchedule or InvalidTimeZone otherwise).
	// +optional
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=8
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// Reasons of a JobSchedule's Ready condition and Events.
const (
	ReasonScheduled        = "Scheduled"
	ReasonSuspended        = "Suspended"
	ReasonInvalidSchedule  = "InvalidSchedule"
	ReasonInvalidTimeZone  = "InvalidTimeZone"
	ReasonJobCreated       = "JobCreated"
	ReasonJobReplaced      = "JobReplaced"
	ReasonMissedSchedule   = "MissedSchedule"
	ReasonTooManyMissed    = "TooManyMissedTimes"
	ReasonConcurrentSkip   = "ConcurrencyForbidden"
	ReasonHistoryPruned    = "HistoryPruned"
	ReasonFollowUpsCreated = "FollowUpsCreated"
)

// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=js,categories=jengu
// +kubebuilder:validation:XValidation:rule="size(self.metadata.name) <= 52",message="a JobSchedule's name is at most 52 characters: its jobs are named <schedule>-<minutes since 1970>"
// +kubebuilder:printcolumn:name="Schedule",type=string,JSONPath=`.spec.schedule`
// +kubebuilder:printcolumn:name="Suspend",type=boolean,JSONPath=`.spec.suspend`
// +kubebuilder:printcolumn:name="Active",type=integer,JSONPath=`.status.activeCount`
// +kubebuilder:printcolumn:name="Last",type=date,JSONPath=`.status.lastScheduleTime`
// +kubebuilder:printcolumn:name="Next",type=string,JSONPath=`.status.nextScheduleTime`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:printcolumn:name="Time Zone",type=string,JSONPath=`.spec.timeZone`,priority=1
// +kubebuilder:printcolumn:name="Concurrency",type=string,JSONPath=`.spec.concurrencyPolicy`,priority=1

// JobSchedule creates a job on a cron schedule, as a CronJob creates Jobs.
type JobSchedule struct {
	metav1.TypeMeta `json:",inline"`
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is when to create which job.
	// +required
	Spec JobScheduleSpec `json:"spec"`

	// status is what the schedule has done.
	// +optional
	Status JobScheduleStatus `json:"status,omitempty"`
}

// +kubebuilder:object:root=true

// JobScheduleList is a list of JobSchedules.
type JobScheduleList struct {
	metav1.TypeMeta `json:",inline"`
	// +optional
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []JobSchedule `json:"items"`
}

func init() {
	SchemeBuilder.Register(&JobSchedule{}, &JobScheduleList{})
}
