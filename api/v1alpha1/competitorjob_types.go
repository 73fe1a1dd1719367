package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// CompetitorJobSpec asks for competitors' prices around a property for a stay (the seed's
// CompetitorJobData).
// +kubebuilder:validation:XValidation:rule=`self.location == oldSelf.location && self.checkIn == oldSelf.checkIn && self.checkOut == oldSelf.checkOut && self.adults == oldSelf.adults && (has(self.currency) ? self.currency : "") == (has(oldSelf.currency) ? oldSelf.currency : "") && (has(self.credentialSecretName) ? self.credentialSecretName : "") == (has(oldSelf.credentialSecretName) ? oldSelf.credentialSecretName : "")`,message="spec is immutable except priority"
// +kubebuilder:validation:XValidation:rule="(has(self.timeoutSeconds) ? self.timeoutSeconds : -1) == (has(oldSelf.timeoutSeconds) ? oldSelf.timeoutSeconds : -1) && (has(self.ttlSecondsAfterFinished) ? self.ttlSecondsAfterFinished : -1) == (has(oldSelf.ttlSecondsAfterFinished) ? oldSelf.ttlSecondsAfterFinished : -1) && has(self.then) == has(oldSelf.then) && (!has(self.then) || self.then == oldSelf.then)",message="spec is immutable except priority"
type CompetitorJobSpec struct {
	JobCommonSpec    `json:",inline"`
	CompetitorFields `json:",inline"`
}

// CompetitorFields are a CompetitorJob's own fields: what a schedule's template and a chain's
// follow-up give besides whose job it is. Its rule reaches every type that inlines it.
// +kubebuilder:validation:XValidation:rule="self.checkOut > self.checkIn",message="checkOut must be after checkIn",fieldPath=".checkOut"
type CompetitorFields struct {
	// location is the place to search, as the hotel-price API takes it (a city or an address).
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=256
	Location string `json:"location"`

	// checkIn is the first night of the stay, YYYY-MM-DD.
	// +required
	// +kubebuilder:validation:Format=date
	// +kubebuilder:validation:MaxLength=10
	CheckIn string `json:"checkIn"`

	// checkOut is the departure day, YYYY-MM-DD, after checkIn.
	// +required
	// +kubebuilder:validation:Format=date
	// +kubebuilder:validation:MaxLength=10
	CheckOut string `json:"checkOut"`

	// adults is the number of guests to price for.
	// +required
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=30
	Adults int32 `json:"adults"`

	// currency is the ISO 4217 code to price in (e.g. EUR), the currency of the property's own
	// prices it is compared with. Empty: the worker's SERPAPI_CURRENCY, else USD (the
	// provider's default).
	// +optional
	// +kubebuilder:validation:Pattern=`^[A-Z]{3}$`
	// +kubebuilder:validation:MaxLength=3
	Currency string `json:"currency,omitempty"`

	// credentialSecretName names a Secret in the job's namespace, labelled
	// jobs.jengu.io/credential=true, whose key serpApiKey is the hotel-price API's key (else the
	// worker's SERPAPI_API_KEY). API keys are never put in a spec.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	CredentialSecretName string `json:"credentialSecretName,omitempty"`
}

// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=cjob,categories=queuejobs;jengu
// +kubebuilder:validation:XValidation:rule="!has(self.spec.then) || size(self.metadata.name) <= 63",message="a job with then has a name of at most 63 characters: its follow-ups carry it in their jobs.jengu.io/parent label"
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=`.status.phase`
// +kubebuilder:printcolumn:name="Progress",type=integer,JSONPath=`.status.progress`
// +kubebuilder:printcolumn:name="Attempts",type=integer,JSONPath=`.status.attemptsMade`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:printcolumn:name="Property",type=string,JSONPath=`.spec.propertyId`,priority=1
// +kubebuilder:printcolumn:name="Worker",type=string,JSONPath=`.status.worker`,priority=1
// +kubebuilder:printcolumn:name="Message",type=string,JSONPath=`.status.message`,priority=1

// CompetitorJob scrapes competitors' prices for a stay. It runs on the competitor queue.
type CompetitorJob struct {
	metav1.TypeMeta `json:",inline"`
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is what to price.
	// +required
	Spec CompetitorJobSpec `json:"spec"`

	// status is where the job is.
	// +optional
	Status JobStatus `json:"status,omitempty"`
}

// +kubebuilder:object:root=true

// CompetitorJobList is a list of CompetitorJobs.
type CompetitorJobList struct {
	metav1.TypeMeta `json:",inline"`
	// +optional
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []CompetitorJob `json:"items"`
}

func init() {
	SchemeBuilder.Register(&CompetitorJob{}, &CompetitorJobList{})
}

var _ JobObject = &CompetitorJob{}

func (*CompetitorJob) QueueName() QueueName     { return QueueCompetitor }
func (j *CompetitorJob) Common() *JobCommonSpec { return &j.Spec.JobCommonSpec }
func (j *CompetitorJob) JobStatus() *JobStatus  { return &j.Status }
func (j *CompetitorJob) JobSpec() any           { return &j.Spec }
