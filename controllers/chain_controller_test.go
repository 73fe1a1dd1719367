package controllers_test

import (
	"context"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	jobsv1alpha1 "github.com/jengu/queue-operator/api/v1alpha1"
	"github.com/jengu/queue-operator/queue"
)

// followUpsOf are the jobs whose parent label names parent.
func (f *fixture) followUpsOf(parent string) func() []jobsv1alpha1.AnalyticsJob {
	return func() []jobsv1alpha1.AnalyticsJob {
		list := &jobsv1alpha1.AnalyticsJobList{}
		if err := f.c.List(context.Background(), list, client.InNamespace(f.ns), client.MatchingLabels{jobsv1alpha1.LabelParent: parent}); err != nil {
			f.t.Errorf("list follow-ups: %v", err)
		}
		return list.Items
	}
}

// An enrichment whose then holds an analysis gets it once, after it completed, whatever restarts;
// one that fails gets none.
func TestChainCreatesTheFollowUpOnceAfterTheParentCompleted(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	f := newFixture(t, nil, testOptions())
	f.jobQueue(jobsv1alpha1.QueueEnrichment)
	q := f.queue(jobsv1alpha1.QueueEnrichment)
	then := []jobsv1alpha1.FollowUp{{
		FollowUpJob: jobsv1alpha1.FollowUpJob{Analytics: &jobsv1alpha1.AnalyticsFields{AnalysisType: jobsv1alpha1.AnalysisWeatherImpact,
			Params: map[string]string{"rainThresholdMm": "2"}}},
		Then: []jobsv1alpha1.LastFollowUp{{FollowUpJob: jobsv1alpha1.FollowUpJob{Analytics: &jobsv1alpha1.AnalyticsFields{AnalysisType: jobsv1alpha1.AnalysisSummary}}}},
	}}

	parent := f.enrichmentJob("enrich-chain-ok")
	parent.Spec.Then, parent.Spec.Priority = then, 5
	failing := f.enrichmentJob("enrich-chain-fails")
	failing.Spec.Then = then
	f.create(parent)
	f.create(failing)
	g.Eventually(f.phase(parent)).WithTimeout(timeout).Should(Equal(jobsv1alpha1.PhaseWaiting))
	g.Eventually(f.phase(failing)).WithTimeout(timeout).Should(Equal(jobsv1alpha1.PhaseWaiting))

	// Leased and running: no follow-up yet.
	leased := map[string]*queue.Record{}
	for range 2 {
		r := f.leaseOne(g, q, "worker-1")
		leased[r.ID] = r
	}
	g.Consistently(f.followUpsOf(parent.Name)).WithTimeout(time.Second).Should(BeEmpty())

	r := leased[failing.Name]
	_, err := q.Fail(ctx, r.ID, r.Token, queue.Failure{Kind: queue.FailPermanent, Message: "property gone"})
	g.Expect(err).NotTo(HaveOccurred())
	r = leased[parent.Name]
	_, err = q.Complete(ctx, r.ID, r.Token, []byte(`{"rows":90}`))
	g.Expect(err).NotTo(HaveOccurred())

	g.Eventually(f.followUpsOf(parent.Name)).WithTimeout(timeout).Should(HaveLen(1))
	stored := &jobsv1alpha1.EnrichmentJob{}
	g.Expect(f.c.Get(ctx, client.ObjectKeyFromObject(parent), stored)).To(Succeed())
	g.Expect(stored.Status.Phase).To(Equal(jobsv1alpha1.PhaseCompleted))
	followUp := f.followUpsOf(parent.Name)()[0]
	g.Expect(followUp.CreationTimestamp.Time).To(BeTemporally(">=", stored.Status.FinishedAt.Truncate(time.Second)), "created after the parent completed")
	g.Expect(followUp.Name).To(Equal(jobsv1alpha1.FollowUpName(stored, 0, jobsv1alpha1.JobKinds[2])))
	g.Expect(followUp.Name).To(HavePrefix("analytics-"))
	g.Expect(followUp.Spec.PropertyID).To(Equal("prop-1"))
	g.Expect(followUp.Spec.UserID).To(Equal("user-1"))
	g.Expect(followUp.Spec.Priority).To(BeEquivalentTo(5), "the parent's priority")
	g.Expect(followUp.Spec.AnalysisType).To(Equal(jobsv1alpha1.AnalysisWeatherImpact))
	g.Expect(followUp.Spec.Params).To(HaveKeyWithValue("rainThresholdMm", "2"))
	g.Expect(followUp.Spec.Then).To(HaveLen(1), "the follow-up's own then")
	g.Expect(followUp.Spec.Then[0].Then).To(BeEmpty())
	g.Expect(followUp.Labels).To(HaveKeyWithValue(jobsv1alpha1.LabelUserID, "user-1"))
	g.Expect(followUp.Finalizers).To(ConsistOf(jobsv1alpha1.Finalizer))
	g.Expect(metav1.GetControllerOf(&followUp)).To(And(HaveField("Name", parent.Name), HaveField("UID", stored.UID)))
	g.Eventually(f.status(parent)).WithTimeout(timeout).Should(HaveField("FollowUps", Equal([]string{followUp.Name})))

	// A restarted controller adds nothing; the failed parent never gets one.
	f.stopController()
	f.start(testOptions())
	g.Consistently(func() int { return len(f.followUpsOf(parent.Name)()) }).WithTimeout(2 * time.Second).Should(Equal(1))
	g.Expect(f.phase(failing)()).To(Equal(jobsv1alpha1.PhaseFailed))
	g.Expect(f.followUpsOf(failing.Name)()).To(BeEmpty())
	g.Expect(f.status(failing)().FollowUps).To(BeEmpty())
}

// A follow-up is owned by its parent, so deleting the parent deletes it: the parent's TTL waits
// until every follow-up has finished.
func TestAParentOutlivesItsUnfinishedFollowUps(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	f := newFixture(t, nil, testOptions())
	f.jobQueue(jobsv1alpha1.QueueEnrichment)
	q := f.queue(jobsv1alpha1.QueueEnrichment)
	parent := f.enrichmentJob("enrich-chain-ttl")
	parent.Spec.TTLSecondsAfterFinished = ptr.To[int32](0)
	parent.Spec.Then = []jobsv1alpha1.FollowUp{{FollowUpJob: jobsv1alpha1.FollowUpJob{
		Analytics: &jobsv1alpha1.AnalyticsFields{AnalysisType: jobsv1alpha1.AnalysisSummary}}}}
	f.create(parent)
	g.Eventually(f.phase(parent)).WithTimeout(timeout).Should(Equal(jobsv1alpha1.PhaseWaiting))
	r := f.leaseOne(g, q, "worker-1")
	_, err := q.Complete(ctx, r.ID, r.Token, []byte(`{"rows":1}`))
	g.Expect(err).NotTo(HaveOccurred())

	// The namespace has no analytics JobQueue: the follow-up waits.
	g.Eventually(f.followUpsOf(parent.Name)).WithTimeout(timeout).Should(HaveLen(1))
	followUp := f.followUpsOf(parent.Name)()[0]
	parentExists := func() bool {
		return f.c.Get(ctx, client.ObjectKeyFromObject(parent), &jobsv1alpha1.EnrichmentJob{}) == nil
	}
	g.Consistently(parentExists).WithTimeout(3*time.Second).Should(BeTrue(), "its follow-up has not finished")

	f.finish(g, followUp.Name, jobsv1alpha1.PhaseCompleted, time.Now())
	g.Eventually(parentExists).WithTimeout(timeout).Should(BeFalse(), "expired once its follow-up finished")
}
