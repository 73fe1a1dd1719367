package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// GeoLocation is a point on Earth in decimal degrees (WGS 84).
type GeoLocation struct {
	// latitude in decimal degrees, -90 (south pole) to 90 (north pole).
	// +required
	// +kubebuilder:validation:Minimum=-90
	// +kubebuilder:validation:Maximum=90
	Latitude float64 `json:"latitude"`

	// longitude in decimal degrees, -180 to 180.
	// +required
	// +kubebuilder:validation:Minimum=-180
	// +kubebuilder:validation:Maximum=180
	Longitude float64 `json:"longitude"`
}

// EnrichmentJobSpec asks for weather, holiday and temporal features to be added to a property's
// pricing data (the seed's EnrichmentJobData).
// +kubebuilder:validation:XValidation:rule=`self.location == oldSelf.location && (has(self.countryCode) ? self.countryCode : "") == (has(oldSelf.countryCode) ? oldSelf.countryCode : "") && (has(self.credentialSecretName) ? self.credentialSecretName : "") == (has(oldSelf.credentialSecretName) ? oldSelf.credentialSecretName : "")`,message="spec is immutable except priority"
// +kubebuilder:validation:XValidation:rule="(has(self.timeoutSeconds) ? self.timeoutSeconds : -1) == (has(oldSelf.timeoutSeconds) ? oldSelf.timeoutSeconds : -1) && (has(self.ttlSecondsAfterFinished) ? self.ttlSecondsAfterFinished : -1) == (has(oldSelf.ttlSecondsAfterFinished) ? oldSelf.ttlSecondsAfterFinished : -1) && has(self.then) == has(oldSelf.then) && (!has(self.then) || self.then == oldSelf.then)",message="spec is immutable except priority"
type EnrichmentJobSpec struct {
	JobCommonSpec    `json:",inline"`
	EnrichmentFields `json:",inline"`
}

// EnrichmentFields are an EnrichmentJob's own fields: what a schedule's template and a chain's
// follow-up give besides whose job it is.
type EnrichmentFields struct {
	// location of the property, for weather and the hemisphere's season.
	// +required
	Location GeoLocation `json:"location"`

	// countryCode is the property's country (ISO 3166-1 alpha-2), for holidays.
	// +optional
	// +kubebuilder:validation:Pattern=`^[A-Z]{2}$`
	CountryCode string `json:"countryCode,omitempty"`

	// credentialSecretName names a Secret in the job's namespace, labelled
	// jobs.jengu.io/credential=true, whose key calendarificApiKey is used for holidays. API keys
	// are never put in a spec.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	CredentialSecretName string `json:"credentialSecretName,omitempty"`
}

// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=ejob,categories=queuejobs;jengu
// +kubebuilder:validation:XValidation:rule="!has(self.spec.then) || size(self.metadata.name) <= 63",message="a job with then has a name of at most 63 characters: its follow-ups carry it in their jobs.jengu.io/parent label"
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=`.status.phase`
// +kubebuilder:printcolumn:name="Progress",type=integer,JSONPath=`.status.progress`
// +kubebuilder:printcolumn:name="Attempts",type=integer,JSONPath=`.status.attemptsMade`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:printcolumn:name="Property",type=string,JSONPath=`.spec.propertyId`,priority=1
// +kubebuilder:printcolumn:name="Worker",type=string,JSONPath=`.status.worker`,priority=1
// +kubebuilder:printcolumn:name="Message",type=string,JSONPath=`.status.message`,priority=1

// EnrichmentJob adds weather, holidays and temporal features to a property's pricing data. It runs
// on the enrichment queue.
type EnrichmentJob struct {
	metav1.TypeMeta `json:",inline"`
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is what to enrich.
	// +required
	Spec EnrichmentJobSpec `json:"spec"`

	// status is where the job is.
	// +optional
	Status JobStatus `json:"status,omitempty"`
}

// +kubebuilder:object:root=true

// EnrichmentJobList is a list of EnrichmentJobs.
type EnrichmentJobList struct {
	metav1.TypeMeta `json:",inline"`
	// +optional
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []EnrichmentJob `json:"items"`
}

func init() {
	SchemeBuilder.Register(&EnrichmentJob{}, &EnrichmentJobList{})
}

var _ JobObject = &EnrichmentJob{}

func (*EnrichmentJob) QueueName() QueueName     { return QueueEnrichment }
func (j *EnrichmentJob) Common() *JobCommonSpec { return &j.Spec.JobCommonSpec }
func (j *EnrichmentJob) JobStatus() *JobStatus  { return &j.Status }
func (j *EnrichmentJob) JobSpec() any           { return &j.Spec }
