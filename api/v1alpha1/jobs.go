package v1alpha1

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"time"
)

// The product makes jobs in three places: the facade's enqueue routes, a JobSchedule's runs and a
// chain's follow-ups. All three build the kind's spec and then stamp it with Stamp, so a job
// from any of them carries the same labels and finalizer.

// Stamp gives a job what every job the product makes carries: its namespace, the owner's and
// the queue's labels (besides any it has) and the finalizer that removes its Redis record.
func Stamp(job JobObject, namespace string) {
	job.SetNamespace(namespace)
	labels := job.GetLabels()
	if labels == nil {
		labels = map[string]string{}
	}
	labels[LabelUserID] = job.Common().UserID
	labels[LabelQueue] = string(job.QueueName())
	job.SetLabels(labels)
	job.SetFinalizers([]string{Finalizer})
}

// Kind is the job kind the template makes, and false when it names none.
func (t *JobTemplate) Kind() (JobKind, bool) {
	switch {
	case t.Enrichment != nil:
		return KindOf(QueueEnrichment)
	case t.Competitor != nil:
		return KindOf(QueueCompetitor)
	case t.Analytics != nil:
		return KindOf(QueueAnalytics)
	}
	return JobKind{}, false
}

// Common is the template's common spec: whose jobs it makes; nil when it names no kind.
func (t *JobTemplate) Common() *JobCommonSpec {
	switch {
	case t.Enrichment != nil:
		return &t.Enrichment.JobCommonSpec
	case t.Competitor != nil:
		return &t.Competitor.JobCommonSpec
	case t.Analytics != nil:
		return &t.Analytics.JobCommonSpec
	}
	return nil
}

// NewJob makes the template's job, unnamed and unstamped; nil when it names no kind.
func (t *JobTemplate) NewJob() JobObject {
	switch {
	case t.Enrichment != nil:
		t := t.Enrichment.DeepCopy()
		return &EnrichmentJob{Spec: EnrichmentJobSpec{JobCommonSpec: t.JobCommonSpec, EnrichmentFields: t.EnrichmentFields}}
	case t.Competitor != nil:
		t := t.Competitor.DeepCopy()
		return &CompetitorJob{Spec: CompetitorJobSpec{JobCommonSpec: t.JobCommonSpec, CompetitorFields: t.CompetitorFields}}
	case t.Analytics != nil:
		t := t.Analytics.DeepCopy()
		return &AnalyticsJob{Spec: AnalyticsJobSpec{JobCommonSpec: t.JobCommonSpec, AnalyticsFields: t.AnalyticsFields}}
	}
	return nil
}

// TemplateOf is the template that makes jobs with job's spec.
func TemplateOf(job JobObject) JobTemplate {
	switch j := job.(type) {
	case *EnrichmentJob:
		spec := j.Spec.DeepCopy()
		return JobTemplate{Enrichment: &EnrichmentJobTemplate{JobCommonSpec: spec.JobCommonSpec, EnrichmentFields: spec.EnrichmentFields}}
	case *CompetitorJob:
		spec := j.Spec.DeepCopy()
		return JobTemplate{Competitor: &CompetitorJobTemplate{JobCommonSpec: spec.JobCommonSpec, CompetitorFields: spec.CompetitorFields}}
	case *AnalyticsJob:
		spec := j.Spec.DeepCopy()
		return JobTemplate{Analytics: &AnalyticsJobTemplate{JobCommonSpec: spec.JobCommonSpec, AnalyticsFields: spec.AnalyticsFields}}
	}
	return JobTemplate{}
}

// FollowUpOf is the follow-up that makes a job with job's own fields (its common spec is the
// parent's, and its then is left out).
func FollowUpOf(job JobObject) FollowUpJob {
	switch j := job.(type) {
	case *EnrichmentJob:
		return FollowUpJob{Enrichment: j.Spec.EnrichmentFields.DeepCopy()}
	case *CompetitorJob:
		return FollowUpJob{Competitor: j.Spec.CompetitorFields.DeepCopy()}
	case *AnalyticsJob:
		return FollowUpJob{Analytics: j.Spec.AnalyticsFields.DeepCopy()}
	}
	return FollowUpJob{}
}

// NewJob makes the follow-up's job for parent, unnamed and unstamped: the parent's property,
// user and priority, the follow-up's fields and then; nil when it names no kind.
func (f *FollowUp) NewJob(parent JobObject) JobObject {
	p := parent.Common()
	common := JobCommonSpec{PropertyID: p.PropertyID, UserID: p.UserID, Priority: p.Priority}
	for _, last := range f.Then {
		common.Then = append(common.Then, FollowUp{FollowUpJob: *last.FollowUpJob.DeepCopy()})
	}
	switch {
	case f.Enrichment != nil:
		return &EnrichmentJob{Spec: EnrichmentJobSpec{JobCommonSpec: common, EnrichmentFields: *f.Enrichment.DeepCopy()}}
	case f.Competitor != nil:
		return &CompetitorJob{Spec: CompetitorJobSpec{JobCommonSpec: common, CompetitorFields: *f.Competitor.DeepCopy()}}
	case f.Analytics != nil:
		return &AnalyticsJob{Spec: AnalyticsJobSpec{JobCommonSpec: common, AnalyticsFields: *f.Analytics.DeepCopy()}}
	}
	return nil
}

// FollowUpName is the name of the job the parent's then[step] makes: the follow-up kind's id
// prefix and a hash of the parent (namespace, name, UID) and the step, so each parent and step
// has exactly one name whatever restarts, a parent recreated under its name gets follow-ups of
// its own, and the name stays short at every depth of a chain.
func FollowUpName(parent JobObject, step int, kind JobKind) string {
	sum := sha256.Sum256([]byte(parent.GetNamespace() + "\x00" + parent.GetName() + "\x00" + string(parent.GetUID()) + "\x00" + strconv.Itoa(step)))
	h := hex.EncodeToString(sum[:])
	return kind.IDPrefix + "-" + h[:8] + "-then" + strconv.Itoa(step) + "-" + h[8:20]
}

// ScheduledJobName is the name of the job a schedule's run at t makes, as a CronJob names its
// Jobs: the schedule's name and the run's minutes since 1970. A restarted or second controller
// asking for the same run gets AlreadyExists.
func ScheduledJobName(schedule string, t time.Time) string {
	return fmt.Sprintf("%s-%d", schedule, t.Unix()/60)
}
