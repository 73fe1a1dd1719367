package v1alpha1

// FollowUpJob is one job of a chain: exactly one kind's own fields. Whose job it is (property,
// user) and its priority come from the job whose then holds it.
type FollowUpJob struct {
	// enrichment makes the follow-up an EnrichmentJob.
	// +optional
	Enrichment *EnrichmentFields `json:"enrichment,omitempty"`

	// competitor makes the follow-up a CompetitorJob.
	// +optional
	Competitor *CompetitorFields `json:"competitor,omitempty"`

	// analytics makes the follow-up an AnalyticsJob.
	// +optional
	Analytics *AnalyticsFields `json:"analytics,omitempty"`
}

// FollowUp is a job created when the job whose then holds it completes. Its own then ends the
// chain. The schema's shape bounds the depth: it cannot nest deeper than LastFollowUp.
// +kubebuilder:validation:XValidation:rule="(has(self.enrichment) ? 1 : 0) + (has(self.competitor) ? 1 : 0) + (has(self.analytics) ? 1 : 0) == 1",message="a follow-up is exactly one of enrichment, competitor and analytics"
type FollowUp struct {
	FollowUpJob `json:",inline"`

	// then lists the jobs to create when this follow-up completes; they end the chain.
	// +optional
	// +kubebuilder:validation:MaxItems=4
	Then []LastFollowUp `json:"then,omitempty"`
}

// LastFollowUp is the last job of a chain: its then must stay empty.
// +kubebuilder:validation:XValidation:rule="(has(self.enrichment) ? 1 : 0) + (has(self.competitor) ? 1 : 0) + (has(self.analytics) ? 1 : 0) == 1",message="a follow-up is exactly one of enrichment, competitor and analytics"
type LastFollowUp struct {
	FollowUpJob `json:",inline"`

	// then must be empty: a chain is at most 3 jobs deep.
	// +optional
	// +kubebuilder:validation:MaxItems=1
	// +kubebuilder:validation:XValidation:rule="size(self) == 0",message="a chain is at most 3 jobs deep: this follow-up may not have a then"
	Then []FollowUpJob `json:"then,omitempty"`
}

// MaxChainDepth is how many jobs deep a chain may be: a job, its follow-ups and theirs.
const MaxChainDepth = 3
