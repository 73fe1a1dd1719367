package controllers_test

import (
	"context"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	jobsv1alpha1 "github.com/jengu/queue-operator/api/v1alpha1"
	"github.com/jengu/queue-operator/internal/testpg"
	"github.com/jengu/queue-operator/internal/testredis"
	"github.com/jengu/queue-operator/queue"
	"github.com/jengu/queue-operator/store"
)

// newHistoryFixture starts a controller that keeps its history in the shared PostgreSQL.
func newHistoryFixture(t *testing.T) (*fixture, *store.Store) {
	db := testpg.OpenShared(t)
	opts := testOptions()
	opts.History = db
	return newFixture(t, nil, opts), db
}

func TestEveryTerminalJobHasItsHistoryRowBeforeItsCRGoes(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	f, db := newHistoryFixture(t)
	f.jobQueue(jobsv1alpha1.QueueEnrichment, func(jq *jobsv1alpha1.JobQueue) { jq.Spec.Retry.Attempts = ptr.To[int32](1) })
	q := f.queue(jobsv1alpha1.QueueEnrichment)
	ttl := int32(2)
	job := f.enrichmentJob("enrich-history-stalled")
	job.Spec.TTLSecondsAfterFinished = &ttl
	f.create(job)
	g.Eventually(f.phase(job)).WithTimeout(timeout).Should(Equal(jobsv1alpha1.PhaseWaiting))

	// Its worker dies holding it: the stall reclaimer fails it (one attempt), and no worker
	// writes its row.
	res, err := q.Lease(ctx, "dies", 1, 100*time.Millisecond)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(res.Jobs).To(HaveLen(1))
	g.Eventually(f.phase(job)).WithTimeout(timeout).Should(Equal(jobsv1alpha1.PhaseFailed))
	g.Eventually(func() bool {
		return apierrors.IsNotFound(f.c.Get(ctx, client.ObjectKeyFromObject(job), &jobsv1alpha1.EnrichmentJob{}))
	}).WithTimeout(timeout).Should(BeTrue(), "the CR expires")

	row, err := db.GetJobResult(ctx, f.ns, job.Name)
	g.Expect(err).NotTo(HaveOccurred(), "the history answers for the job past its TTL")
	g.Expect(row.Status).To(Equal(store.JobFailed))
	g.Expect(row.Error).To(ContainSubstring("stalled"))
	g.Expect(row.UserID).To(Equal(job.Spec.UserID))
	g.Expect(row.Attempts).To(Equal(1))
}

func TestAJobCompletedBeforeRedisWasLostIsNotRunAgain(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	server := testredis.Start(t)
	rdb := server.ClientFor(t)
	db := testpg.OpenShared(t)
	opts := testOptions()
	opts.History = db
	f := newFixture(t, rdb, opts)
	job, q := f.waitingEnrichmentJob(g, "enrich-done-then-flushed")
	leased := f.leaseOne(g, q, "w")
	g.Eventually(f.phase(job)).WithTimeout(timeout).Should(Equal(jobsv1alpha1.PhaseActive))

	// The controller is away while the worker completes the job and records it in the history,
	// and Redis loses everything before the CR hears of it.
	f.stopController()
	_, err := q.Complete(ctx, leased.ID, leased.Token, []byte(`{"rows":30}`))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(db.RecordJobResult(ctx, store.JobResult{JobID: job.Name, Queue: "enrichment", Namespace: f.ns,
		UserID: job.Spec.UserID, PropertyID: job.Spec.PropertyID, Status: store.JobCompleted, Attempts: 1,
		Result: []byte(`{"rows":30}`), CreatedAt: job.CreationTimestamp.Time})).To(Succeed())
	g.Expect(rdb.FlushAll(ctx).Err()).To(Succeed())
	f.start(opts)

	g.Eventually(f.phase(job)).WithTimeout(timeout).Should(Equal(jobsv1alpha1.PhaseCompleted), "the history says how it ended")
	g.Consistently(func() error {
		_, err := q.Get(ctx, job.Name)
		return err
	}).WithTimeout(2*time.Second).Should(MatchError(queue.ErrNotFound), "and it is not enqueued to run again")
}

// The same for a job that failed for good: Redis acknowledged its last failure, so a loss before
// the CR shows it must not run it again (a retry is the user's to ask for).
func TestAJobFailedForGoodBeforeRedisWasLostIsNotRunAgain(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	server := testredis.Start(t)
	rdb := server.ClientFor(t)
	db := testpg.OpenShared(t)
	opts := testOptions()
	opts.History = db
	f := newFixture(t, rdb, opts)
	job, q := f.waitingEnrichmentJob(g, "enrich-failed-then-flushed")
	leased := f.leaseOne(g, q, "w")
	g.Eventually(f.phase(job)).WithTimeout(timeout).Should(Equal(jobsv1alpha1.PhaseActive))

	f.stopController()
	_, err := q.Fail(ctx, leased.ID, leased.Token, queue.Failure{Kind: queue.FailPermanent, Message: "bad input"})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(db.RecordJobResult(ctx, store.JobResult{JobID: job.Name, Queue: "enrichment", Namespace: f.ns,
		UserID: job.Spec.UserID, PropertyID: job.Spec.PropertyID, Status: store.JobFailed, Attempts: 1,
		Error: "bad input", CreatedAt: job.CreationTimestamp.Time})).To(Succeed())
	g.Expect(rdb.FlushAll(ctx).Err()).To(Succeed())
	f.start(opts)

	g.Eventually(f.phase(job)).WithTimeout(timeout).Should(Equal(jobsv1alpha1.PhaseFailed), "the history says how it ended")
	g.Expect(f.status(job)().Message).To(ContainSubstring("bad input"))
	g.Consistently(func() error {
		_, err := q.Get(ctx, job.Name)
		return err
	}).WithTimeout(2*time.Second).Should(MatchError(queue.ErrNotFound), "and it is not enqueued to run again")
}

func TestAnExpiringAnalyticsJobReleasesItsStoredInput(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	f, db := newHistoryFixture(t)
	f.jobQueue(jobsv1alpha1.QueueAnalytics, func(jq *jobsv1alpha1.JobQueue) { jq.Spec.Retry.Attempts = ptr.To[int32](1) })
	property, name := "prop-expiring-"+f.ns, "analytics-expiring-"+f.ns
	_, err := db.UpsertProperty(ctx, store.Property{ID: property, UserID: "user-1"})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(db.SaveAnalyticsInput(ctx, store.AnalyticsInput{ID: name, PropertyID: property, UserID: "user-1",
		Rows: []byte(`[{"date":"2026-01-01","price":1}]`)})).To(Succeed())
	job := &jobsv1alpha1.AnalyticsJob{ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: name},
		Spec: jobsv1alpha1.AnalyticsJobSpec{JobCommonSpec: jobsv1alpha1.JobCommonSpec{PropertyID: property, UserID: "user-1",
			TTLSecondsAfterFinished: ptr.To[int32](2)}, AnalyticsFields: jobsv1alpha1.AnalyticsFields{AnalysisType: jobsv1alpha1.AnalysisSummary, InputRef: name}}}
	f.create(job)

	// It fails for good (the worker keeps a failed job's input for a retry from the dead letter
	// set); when the CR expires, nothing can run on the input any more.
	q := f.queue(jobsv1alpha1.QueueAnalytics)
	leased := f.leaseOne(g, q, "w")
	_, err = q.Fail(ctx, leased.ID, leased.Token, queue.Failure{Kind: queue.FailPermanent, Message: "bad rows"})
	g.Expect(err).NotTo(HaveOccurred())
	g.Eventually(func() bool {
		return apierrors.IsNotFound(f.c.Get(ctx, client.ObjectKeyFromObject(job), &jobsv1alpha1.AnalyticsJob{}))
	}).WithTimeout(timeout).Should(BeTrue(), "the CR expires")
	_, err = db.GetAnalyticsInput(ctx, name)
	g.Expect(err).To(MatchError(store.ErrNotFound), "the stored input went with the CR")
	row, err := db.GetJobResult(ctx, f.ns, name)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(row.Status).To(Equal(store.JobFailed))
}

func TestACancelledAnalyticsJobReleasesItsStoredInput(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	f, db := newHistoryFixture(t)
	f.jobQueue(jobsv1alpha1.QueueAnalytics)
	property, name := "prop-cancelled-"+f.ns, "analytics-cancelled-"+f.ns
	_, err := db.UpsertProperty(ctx, store.Property{ID: property, UserID: "user-1"})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(db.SaveAnalyticsInput(ctx, store.AnalyticsInput{ID: name, PropertyID: property, UserID: "user-1",
		Rows: []byte(`[{"date":"2026-01-01","price":1}]`)})).To(Succeed())
	job := &jobsv1alpha1.AnalyticsJob{ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: name},
		Spec: jobsv1alpha1.AnalyticsJobSpec{JobCommonSpec: jobsv1alpha1.JobCommonSpec{PropertyID: property, UserID: "user-1"},
			AnalyticsFields: jobsv1alpha1.AnalyticsFields{AnalysisType: jobsv1alpha1.AnalysisSummary, InputRef: name}}}
	f.create(job)
	g.Eventually(f.phase(job)).WithTimeout(timeout).Should(Equal(jobsv1alpha1.PhaseWaiting))

	g.Expect(f.c.Delete(ctx, job)).To(Succeed())
	g.Eventually(func() bool {
		return apierrors.IsNotFound(f.c.Get(ctx, client.ObjectKeyFromObject(job), &jobsv1alpha1.AnalyticsJob{}))
	}).WithTimeout(timeout).Should(BeTrue(), "the CR goes")
	_, err = db.GetAnalyticsInput(ctx, name)
	g.Expect(err).To(MatchError(store.ErrNotFound), "no history row will release a cancelled job's input")
}
