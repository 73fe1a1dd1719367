package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// AnalysisType is one of the seed's analyses.
// +kubebuilder:validation:Enum=summary;weather-impact;demand-forecast;feature-importance
type AnalysisType string

const (
	AnalysisSummary           AnalysisType = "summary"
	AnalysisWeatherImpact     AnalysisType = "weather-impact"
	AnalysisDemandForecast    AnalysisType = "demand-forecast"
	AnalysisFeatureImportance AnalysisType = "feature-importance"
)

// AnalyticsJobSpec asks for one analysis of a property's data (the seed's AnalyticsJobData). The
// seed's `data` rows are not carried here: they live in PostgreSQL and inputRef names them, so the
// object stays small.
// +kubebuilder:validation:XValidation:rule=`self.analysisType == oldSelf.analysisType && (has(self.inputRef) ? self.inputRef : "") == (has(oldSelf.inputRef) ? oldSelf.inputRef : "") && has(self.params) == has(oldSelf.params) && (!has(self.params) || self.params == oldSelf.params)`,message="spec is immutable except priority"
// +kubebuilder:validation:XValidation:rule="(has(self.timeoutSeconds) ? self.timeoutSeconds : -1) == (has(oldSelf.timeoutSeconds) ? oldSelf.timeoutSeconds : -1) && (has(self.ttlSecondsAfterFinished) ? self.ttlSecondsAfterFinished : -1) == (has(oldSelf.ttlSecondsAfterFinished) ? oldSelf.ttlSecondsAfterFinished : -1) && has(self.then) == has(oldSelf.then) && (!has(self.then) || self.then == oldSelf.then)",message="spec is immutable except priority"
type AnalyticsJobSpec struct {
	JobCommonSpec   `json:",inline"`
	AnalyticsFields `json:",inline"`
}

// AnalyticsFields are an AnalyticsJob's own fields: what a schedule's template and a chain's
// follow-up give besides whose job it is.
type AnalyticsFields struct {
	// analysisType is the analysis to run.
	// +required
	AnalysisType AnalysisType `json:"analysisType"`

	// inputRef names the stored input rows (the analytics_inputs table) to analyse. Without it the
	// property's pricing rows are analysed.
	// +optional
	// +kubebuilder:validation:MaxLength=128
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9][A-Za-z0-9._:-]*$`
	InputRef string `json:"inputRef,omitempty"`

	// params tune the analysis (for example horizonDays for demand-forecast). Values are strings;
	// the facade writes numbers and booleans in their JSON form.
	// +optional
	// +kubebuilder:validation:MaxProperties=32
	// +kubebuilder:validation:XValidation:rule="self.all(k, size(k) <= 63 && size(self[k]) <= 256)",message="params keys are at most 63 characters and values at most 256"
	Params map[string]string `json:"params,omitempty"`
}

// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=ajob,categories=queuejobs;jengu
// +kubebuilder:validation:XValidation:rule="!has(self.spec.then) || size(self.metadata.name) <= 63",message="a job with then has a name of at most 63 characters: its follow-ups carry it in their jobs.jengu.io/parent label"
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=`.status.phase`
// +kubebuilder:printcolumn:name="Progress",type=integer,JSONPath=`.status.progress`
// +kubebuilder:printcolumn:name="Attempts",type=integer,JSONPath=`.status.attemptsMade`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:printcolumn:name="Type",type=string,JSONPath=`.spec.analysisType`,priority=1
// +kubebuilder:printcolumn:name="Property",type=string,JSONPath=`.spec.propertyId`,priority=1
// +kubebuilder:printcolumn:name="Worker",type=string,JSONPath=`.status.worker`,priority=1
// +kubebuilder:printcolumn:name="Message",type=string,JSONPath=`.status.message`,priority=1

// AnalyticsJob runs a computationally expensive analysis. It runs on the analytics-heavy queue.
type AnalyticsJob struct {
	metav1.TypeMeta `json:",inline"`
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is what to analyse.
	// +required
	Spec AnalyticsJobSpec `json:"spec"`

	// status is where the job is.
	// +optional
	Status JobStatus `json:"status,omitempty"`
}

// +kubebuilder:object:root=true

// AnalyticsJobList is a list of AnalyticsJobs.
type AnalyticsJobList struct {
	metav1.TypeMeta `json:",inline"`
	// +optional
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []AnalyticsJob `json:"items"`
}

func init() {
	SchemeBuilder.Register(&AnalyticsJob{}, &AnalyticsJobList{})
}

var _ JobObject = &AnalyticsJob{}

func (*AnalyticsJob) QueueName() QueueName     { return QueueAnalytics }
func (j *AnalyticsJob) Common() *JobCommonSpec { return &j.Spec.JobCommonSpec }
func (j *AnalyticsJob) JobStatus() *JobStatus  { return &j.Status }
func (j *AnalyticsJob) JobSpec() any           { return &j.Spec }
