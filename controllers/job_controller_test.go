package controllers_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"github.com/redis/go-redis/v9"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"

	jobsv1alpha1 "github.com/jengu/queue-operator/api/v1alpha1"
	"github.com/jengu/queue-operator/internal/testredis"
	"github.com/jengu/queue-operator/jobstatus"
	"github.com/jengu/queue-operator/queue"
)

const timeout = 15 * time.Second

func TestEachKindIsEnqueuedAndWaits(t *testing.T) {
	f := newFixture(t, nil, testOptions())
	for _, kind := range jobsv1alpha1.JobKinds {
		q := kind.Queue
		f.jobQueue(q)
	}
	enrichment := f.enrichmentJob("enrich-0a1b2c3d-1")
	enrichment.Spec.Priority = 5
	common := jobsv1alpha1.JobCommonSpec{PropertyID: "prop-1", UserID: "user-1", Priority: 5}
	tests := []struct {
		obj   jobsv1alpha1.JobObject
		queue jobsv1alpha1.QueueName
	}{
		{enrichment, jobsv1alpha1.QueueEnrichment},
		{&jobsv1alpha1.CompetitorJob{ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: "competitor-0a1b2c3d-1"},
			Spec: jobsv1alpha1.CompetitorJobSpec{JobCommonSpec: common, CompetitorFields: jobsv1alpha1.CompetitorFields{Location: "Barcelona", CheckIn: "2026-12-18", CheckOut: "2026-12-20", Adults: 2}}},
			jobsv1alpha1.QueueCompetitor},
		{&jobsv1alpha1.AnalyticsJob{ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: "analytics-0a1b2c3d-1"},
			Spec: jobsv1alpha1.AnalyticsJobSpec{JobCommonSpec: common, AnalyticsFields: jobsv1alpha1.AnalyticsFields{AnalysisType: jobsv1alpha1.AnalysisSummary}}},
			jobsv1alpha1.QueueAnalytics},
	}
	for _, tt := range tests {
		t.Run(string(tt.queue), func(t *testing.T) {
			g := NewWithT(t)
			f.create(tt.obj)
			g.Eventually(f.phase(tt.obj)).WithTimeout(timeout).Should(Equal(jobsv1alpha1.PhaseWaiting))
			status := f.status(tt.obj)()
			g.Expect(status.QueuedAt).NotTo(BeNil())
			g.Expect(status.Conditions).To(BeEmpty(), "a waiting job whose JobQueue was there has no condition that applies yet")

			record, err := f.queue(tt.queue).Get(context.Background(), tt.obj.GetName())
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(record.UID).To(Equal(string(tt.obj.GetUID())), "the owner UID is recorded")
			g.Expect(record.Priority).To(Equal(5))
			g.Expect(record.Version).To(Equal(status.QueueVersion))
			g.Expect(string(record.Payload)).To(ContainSubstring(`"propertyId":"prop-1"`))

			stored := tt.obj.DeepCopyObject().(client.Object)
			g.Expect(f.c.Get(context.Background(), client.ObjectKeyFromObject(tt.obj), stored)).To(Succeed())
			g.Expect(stored.GetFinalizers()).To(ContainElement(jobsv1alpha1.Finalizer))

			g.Consistently(func() []string { return eventReasons(f, tt.obj.GetName()) }).WithTimeout(2*time.Second).
				Should(BeEmpty(), "a routine enqueue is in the status, not in an Event")
		})
	}
	// Reconciling again never enqueues twice.
	g := NewWithT(t)
	g.Consistently(func() int64 {
		c, err := f.queue(jobsv1alpha1.QueueEnrichment).Counts(context.Background())
		g.Expect(err).NotTo(HaveOccurred())
		return c.Waiting
	}).WithTimeout(3 * time.Second).Should(Equal(int64(1)))
}

func eventReasons(f *fixture, name string) []string {
	var reasons []string
	list := &eventsv1.EventList{}
	if err := f.c.List(context.Background(), list, client.InNamespace(f.ns)); err != nil {
		return nil
	}
	for _, e := range list.Items {
		if e.Regarding.Name == name {
			reasons = append(reasons, e.Reason)
		}
	}
	return reasons
}

func TestJobWaitsForItsJobQueue(t *testing.T) {
	g := NewWithT(t)
	f := newFixture(t, nil, testOptions())
	job := f.enrichmentJob("enrich-noqueue-1")
	f.create(job)
	g.Eventually(func() string {
		c := meta.FindStatusCondition(f.status(job)().Conditions, jobsv1alpha1.ConditionQueueReady)
		if c == nil || c.Status != metav1.ConditionFalse {
			return ""
		}
		return c.Reason
	}).WithTimeout(timeout).Should(Equal(jobsv1alpha1.ReasonQueueNotFound))
	_, err := f.queue(jobsv1alpha1.QueueEnrichment).Get(context.Background(), job.Name)
	g.Expect(errors.Is(err, queue.ErrNotFound)).To(BeTrue(), "not enqueued without a JobQueue")

	f.jobQueue(jobsv1alpha1.QueueEnrichment)
	g.Eventually(f.phase(job)).WithTimeout(timeout).Should(Equal(jobsv1alpha1.PhaseWaiting))
	g.Expect(meta.IsStatusConditionTrue(f.status(job)().Conditions, jobsv1alpha1.ConditionQueueReady)).To(BeTrue())
	g.Eventually(func() []string { return eventReasons(f, job.Name) }).WithTimeout(timeout).
		Should(ContainElements(jobsv1alpha1.ReasonQueueNotFound, jobsv1alpha1.ReasonEnqueued),
			"a job that waited for its JobQueue says when the wait ended")
}

// A new queue has no epoch yet, as a lost one has not: its first jobs are enqueued, never
// reported lost by the loss repairer's first round.
func TestANewQueuesFirstJobsAreNotReportedLost(t *testing.T) {
	g := NewWithT(t)
	f := newFixture(t, nil, testOptions())
	f.jobQueue(jobsv1alpha1.QueueEnrichment)
	var jobs []*jobsv1alpha1.EnrichmentJob
	for i := range 5 {
		job := f.enrichmentJob(fmt.Sprintf("enrich-newqueue-%d", i))
		f.create(job)
		jobs = append(jobs, job)
	}
	for _, job := range jobs {
		g.Eventually(f.phase(job)).WithTimeout(timeout).Should(Equal(jobsv1alpha1.PhaseWaiting))
	}
	g.Consistently(func() []string {
		var reasons []string
		for _, job := range jobs {
			reasons = append(reasons, eventReasons(f, job.Name)...)
		}
		return reasons
	}).WithTimeout(time.Second).ShouldNot(ContainElement(jobsv1alpha1.ReasonReEnqueued))
}

func TestCRFollowsTheEngineThroughARetryCycle(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	f := newFixture(t, nil, testOptions())
	job, q := f.waitingEnrichmentJob(g, "enrich-follow-1")

	leased := f.leaseOne(g, q, "worker-a")
	g.Eventually(f.phase(job)).WithTimeout(timeout).Should(Equal(jobsv1alpha1.PhaseActive))
	g.Expect(f.status(job)().Worker).To(Equal("worker-a"))
	g.Expect(meta.IsStatusConditionTrue(f.status(job)().Conditions, jobsv1alpha1.ConditionRunning)).To(BeTrue())

	_, err := q.Progress(ctx, leased.ID, leased.Token, 40, "weather")
	g.Expect(err).NotTo(HaveOccurred())
	_, err = q.Fail(ctx, leased.ID, leased.Token, queue.Failure{Kind: queue.FailRetry, Message: "Weather API timeout"})
	g.Expect(err).NotTo(HaveOccurred())
	g.Eventually(f.phase(job)).WithTimeout(timeout).Should(Equal(jobsv1alpha1.PhaseDelayed))
	delayed := f.status(job)()
	g.Expect(delayed.AttemptsMade).To(Equal(int32(1)))
	g.Expect(delayed.NextAttemptAt).NotTo(BeNil())
	g.Expect(delayed.Message).To(Equal("Weather API timeout"))

	again := f.leaseOne(g, q, "worker-b")
	g.Eventually(f.phase(job)).WithTimeout(timeout).Should(Equal(jobsv1alpha1.PhaseActive))
	g.Expect(f.status(job)().Worker).To(Equal("worker-b"))
	_, err = q.Complete(ctx, again.ID, again.Token, []byte(`{"rows":10}`))
	g.Expect(err).NotTo(HaveOccurred())
	g.Eventually(f.phase(job)).WithTimeout(timeout).Should(Equal(jobsv1alpha1.PhaseCompleted))
	done := f.status(job)()
	g.Expect(done.Progress).To(Equal(int32(100)))
	g.Expect(done.AttemptsMade).To(Equal(int32(2)))
	g.Expect(done.FinishedAt).NotTo(BeNil())
	g.Expect(meta.IsStatusConditionTrue(done.Conditions, jobsv1alpha1.ConditionComplete)).To(BeTrue(),
		"kubectl wait --for=condition=Complete reads this")
	g.Expect(meta.IsStatusConditionTrue(done.Conditions, jobsv1alpha1.ConditionRunning)).To(BeFalse())
}

func TestStaleStatusWriteNeverWins(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	f := newFixture(t, nil, testOptions())
	// No JobQueue: the controller leaves the status alone but for QueueReady.
	job := f.enrichmentJob("enrich-versions-1")
	f.create(job)

	write := func(version int64, phase jobsv1alpha1.JobPhase) bool {
		obj := &jobsv1alpha1.EnrichmentJob{}
		g.Expect(f.c.Get(ctx, client.ObjectKeyFromObject(job), obj)).To(Succeed())
		ok, err := jobstatus.Write(ctx, f.c, obj, version, func(s *jobsv1alpha1.JobStatus) { s.Phase = phase })
		g.Expect(err).NotTo(HaveOccurred())
		return ok
	}
	g.Expect(write(5, jobsv1alpha1.PhaseActive)).To(BeTrue())
	g.Expect(write(4, jobsv1alpha1.PhaseWaiting)).To(BeFalse(), "a lower version is stale")
	g.Expect(write(5, jobsv1alpha1.PhaseWaiting)).To(BeFalse(), "the same version is already applied")
	g.Expect(f.status(job)().Phase).To(Equal(jobsv1alpha1.PhaseActive))

	// Writers racing with versions in any order converge on the highest.
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for v := int64(6 + w); v <= 40; v += 4 {
				obj := &jobsv1alpha1.EnrichmentJob{}
				g.Expect(f.c.Get(ctx, client.ObjectKeyFromObject(job), obj)).To(Succeed())
				_, err := jobstatus.Write(ctx, f.c, obj, v, func(s *jobsv1alpha1.JobStatus) {
					s.Message = fmt.Sprintf("version %d", v)
				})
				g.Expect(err).NotTo(HaveOccurred())
			}
		})
	}
	wg.Wait()
	final := f.status(job)()
	g.Expect(final.QueueVersion).To(Equal(int64(40)))
	g.Expect(final.Message).To(Equal("version 40"))
}

func TestARecordRolledBackBelowTheCRsVersionStillMovesIt(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	f := newFixture(t, nil, testOptions())
	job, q := f.waitingEnrichmentJob(g, "enrich-rollback-1")
	leased := f.leaseOne(g, q, "w")
	g.Eventually(f.phase(job)).WithTimeout(timeout).Should(Equal(jobsv1alpha1.PhaseActive))
	g.Expect(f.status(job)().QueueVersion).To(BeNumerically(">", 1))

	// Redis comes back from an older snapshot: the record is the CR's, its version lower; its
	// next transition brings it back to the version the CR holds, in another state.
	g.Expect(f.rdb.HSet(ctx, "qo:{"+f.ns+"/enrichment}:job:"+leased.ID, "version", f.status(job)().QueueVersion-1).Err()).To(Succeed())
	_, err := q.Complete(ctx, leased.ID, leased.Token, nil)
	g.Expect(err).NotTo(HaveOccurred())
	g.Eventually(f.phase(job)).WithTimeout(timeout).Should(Equal(jobsv1alpha1.PhaseCompleted),
		"the CR follows the record whatever version Redis restarted with")
}

func TestARolledBackRecordNeverReopensAFinishedJob(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	f := newFixture(t, nil, testOptions())
	job, q := f.waitingEnrichmentJob(g, "enrich-rollback-finished")
	leased := f.leaseOne(g, q, "w")
	_, err := q.Complete(ctx, leased.ID, leased.Token, nil)
	g.Expect(err).NotTo(HaveOccurred())
	g.Eventually(f.phase(job)).WithTimeout(timeout).Should(Equal(jobsv1alpha1.PhaseCompleted))

	// Redis comes back from a snapshot taken while the job was still running.
	key := "qo:{" + f.ns + "/enrichment}:job:" + leased.ID
	g.Expect(f.rdb.HSet(ctx, key, "state", "active", "version", f.status(job)().QueueVersion-1).Err()).To(Succeed())
	g.Expect(f.rdb.ZAdd(ctx, "qo:{"+f.ns+"/enrichment}:active", redis.Z{Score: 0, Member: leased.ID}).Err()).To(Succeed())
	g.Consistently(f.phase(job)).WithTimeout(3*time.Second).Should(Equal(jobsv1alpha1.PhaseCompleted),
		"a finished job stays finished")
	g.Consistently(func() bool {
		r, err := q.Get(ctx, leased.ID)
		return err == nil && !r.State.IsFinished()
	}).WithTimeout(2*time.Second).Should(BeFalse(), "and its stale record does not run it again")
}

func TestAPriorityChangeReachesTheWaitingJob(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	f := newFixture(t, nil, testOptions())
	first, q := f.waitingEnrichmentJob(g, "enrich-priority-first")
	second := f.enrichmentJob("enrich-priority-second")
	f.create(second)
	g.Eventually(f.phase(second)).WithTimeout(timeout).Should(Equal(jobsv1alpha1.PhaseWaiting))

	obj := &jobsv1alpha1.EnrichmentJob{}
	g.Expect(f.c.Get(ctx, client.ObjectKeyFromObject(second), obj)).To(Succeed())
	before := obj.DeepCopy()
	obj.Spec.Priority = 10
	g.Expect(f.c.Patch(ctx, obj, client.MergeFrom(before))).To(Succeed())
	g.Eventually(func() int {
		r, err := q.Get(ctx, second.Name)
		g.Expect(err).NotTo(HaveOccurred())
		return r.Priority
	}).WithTimeout(timeout).Should(Equal(10), "the record takes the CR's new priority")
	g.Expect(f.leaseOne(g, q, "w").ID).To(Equal(second.Name), "and is leased before %s", first.Name)
}

func TestDeletingAnActiveJobCancelsIt(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	f := newFixture(t, nil, testOptions())
	job, q := f.waitingEnrichmentJob(g, "enrich-cancel-1")
	leased := f.leaseOne(g, q, "worker-a")

	g.Expect(f.c.Delete(ctx, job)).To(Succeed())
	g.Eventually(func() queue.HeartbeatStatus {
		s, err := q.Heartbeat(ctx, leased.ID, leased.Token, 30*time.Second)
		g.Expect(err).NotTo(HaveOccurred())
		return s
	}).WithTimeout(timeout).Should(Equal(queue.HeartbeatRemoved))
	_, err := q.Get(ctx, job.Name)
	g.Expect(errors.Is(err, queue.ErrNotFound)).To(BeTrue())
	g.Eventually(func() bool {
		return apierrors.IsNotFound(f.c.Get(ctx, client.ObjectKeyFromObject(job), &jobsv1alpha1.EnrichmentJob{}))
	}).WithTimeout(timeout).Should(BeTrue(), "the finalizer is released")
}

func TestRetryAnnotationMovesAFailedJobBackOncePerToken(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	f := newFixture(t, nil, testOptions())
	job, q := f.waitingEnrichmentJob(g, "enrich-retry-1")
	failOnce := func() {
		leased := f.leaseOne(g, q, "w")
		_, err := q.Fail(ctx, leased.ID, leased.Token, queue.Failure{Kind: queue.FailPermanent, Message: "property deleted"})
		g.Expect(err).NotTo(HaveOccurred())
		g.Eventually(f.phase(job)).WithTimeout(timeout).Should(Equal(jobsv1alpha1.PhaseFailed))
	}
	failOnce()
	g.Expect(meta.IsStatusConditionTrue(f.status(job)().Conditions, jobsv1alpha1.ConditionFailed)).To(BeTrue())

	annotate := func(token string) { f.annotateRetry(g, job, token) }
	annotate("first")
	g.Eventually(f.phase(job)).WithTimeout(timeout).Should(Equal(jobsv1alpha1.PhaseWaiting))
	g.Expect(f.status(job)().AttemptsMade).To(BeZero(), "attempts reset")
	g.Expect(f.status(job)().LastRetryToken).To(Equal("first"))

	// The same token does not retry again.
	failOnce()
	annotate("first")
	g.Consistently(f.phase(job)).WithTimeout(2 * time.Second).Should(Equal(jobsv1alpha1.PhaseFailed))
	// A new one does.
	annotate("second")
	g.Eventually(f.phase(job)).WithTimeout(timeout).Should(Equal(jobsv1alpha1.PhaseWaiting))
}

func TestRetryingAFailedJobWhoseRecordRedisLostRunsItAgain(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	f := newFixture(t, nil, testOptions())
	job, q := f.waitingEnrichmentJob(g, "enrich-retry-lost-record")
	leased := f.leaseOne(g, q, "w")
	_, err := q.Fail(ctx, leased.ID, leased.Token, queue.Failure{Kind: queue.FailPermanent, Message: "property deleted"})
	g.Expect(err).NotTo(HaveOccurred())
	g.Eventually(f.phase(job)).WithTimeout(timeout).Should(Equal(jobsv1alpha1.PhaseFailed))
	_, err = q.Remove(ctx, job.Name, string(job.UID))
	g.Expect(err).NotTo(HaveOccurred())

	f.annotateRetry(g, job, "after-a-flush")
	g.Eventually(f.phase(job)).WithTimeout(timeout).Should(Equal(jobsv1alpha1.PhaseWaiting), "the retry is what was asked")
	g.Expect(f.leaseOne(g, q, "w").ID).To(Equal(job.Name))
	g.Expect(f.status(job)().LastRetryToken).To(Equal("after-a-flush"))
}

func TestARetryTokenActsOnceWhateverFailsAroundIt(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	f := newFixture(t, nil, testOptions())
	job, q := f.waitingEnrichmentJob(g, "enrich-retry-once-1")
	// A worker that fails the job the moment it is leased, counting its runs.
	var runs atomic.Int32
	workerCtx, stopWorker := context.WithCancel(ctx)
	defer stopWorker()
	go func() {
		for workerCtx.Err() == nil {
			res, err := q.Lease(workerCtx, "fast-failer", 1, 30*time.Second)
			if err == nil && len(res.Jobs) == 1 {
				runs.Add(1)
				_, _ = q.Fail(workerCtx, res.Jobs[0].ID, res.Jobs[0].Token, queue.Failure{Kind: queue.FailPermanent, Message: "still broken"})
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	g.Eventually(f.phase(job)).WithTimeout(timeout).Should(Equal(jobsv1alpha1.PhaseFailed))
	g.Expect(runs.Load()).To(Equal(int32(1)))

	// A token longer than status.lastRetryToken may hold: recording it in the status as it is
	// would fail on every reconcile.
	token := strings.Repeat("t", 200)
	f.annotateRetry(g, job, token)

	g.Eventually(runs.Load).WithTimeout(timeout).Should(Equal(int32(2)), "the retry runs the job again")
	g.Consistently(runs.Load).WithTimeout(3*time.Second).Should(Equal(int32(2)), "once per token")
	g.Eventually(f.phase(job)).WithTimeout(timeout).Should(Equal(jobsv1alpha1.PhaseFailed))
}

func TestFlushedRedisGetsEveryLiveJobBack(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	server := testredis.Start(t)
	rdb := server.ClientFor(t)
	f := newFixture(t, rdb, testOptions())
	f.jobQueue(jobsv1alpha1.QueueEnrichment)
	q := f.queue(jobsv1alpha1.QueueEnrichment)
	var jobs []*jobsv1alpha1.EnrichmentJob
	for i := range 5 {
		job := f.enrichmentJob(fmt.Sprintf("enrich-flush-%d", i))
		f.create(job)
		jobs = append(jobs, job)
	}
	for _, job := range jobs {
		g.Eventually(f.phase(job)).WithTimeout(timeout).Should(Equal(jobsv1alpha1.PhaseWaiting))
	}
	// One of them finishes before the flush: it stays finished and is not re-run.
	leased := f.leaseOne(g, q, "w")
	_, err := q.Complete(ctx, leased.ID, leased.Token, nil)
	g.Expect(err).NotTo(HaveOccurred())
	finished := &jobsv1alpha1.EnrichmentJob{ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: leased.ID}}
	g.Eventually(f.phase(finished)).WithTimeout(timeout).Should(Equal(jobsv1alpha1.PhaseCompleted))

	g.Expect(rdb.FlushAll(ctx).Err()).To(Succeed())
	g.Eventually(func() int64 {
		c, err := q.Counts(ctx)
		g.Expect(err).NotTo(HaveOccurred())
		return c.Waiting
	}).WithTimeout(timeout).Should(Equal(int64(4)), "every non-terminal CR back in its queue within a resync")
	_, err = q.Get(ctx, leased.ID)
	g.Expect(errors.Is(err, queue.ErrNotFound)).To(BeTrue(), "a finished job is not re-enqueued")

	// The re-enqueued records' versions stay above the CRs', so the CRs keep following.
	next := f.leaseOne(g, q, "w")
	g.Eventually(f.phase(&jobsv1alpha1.EnrichmentJob{ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: next.ID}})).
		WithTimeout(timeout).Should(Equal(jobsv1alpha1.PhaseActive))
}

func TestRedisLossIsRepairedWithinSecondsNotAtTheResync(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	server := testredis.Start(t)
	rdb := server.ClientFor(t)
	opts := testOptions()
	opts.ResyncPeriod = time.Hour // only the loss detection can bring the jobs back in time
	f := newFixture(t, rdb, opts)
	f.jobQueue(jobsv1alpha1.QueueEnrichment, func(jq *jobsv1alpha1.JobQueue) {
		jq.Spec.Retry.Backoff.Delay = metav1.Duration{Duration: time.Hour}
	})
	q := f.queue(jobsv1alpha1.QueueEnrichment)
	var delayed []*jobsv1alpha1.EnrichmentJob
	for i := range 3 {
		job := f.enrichmentJob(fmt.Sprintf("enrich-loss-%d", i))
		f.create(job)
		g.Eventually(f.phase(job)).WithTimeout(timeout).Should(Equal(jobsv1alpha1.PhaseWaiting))
		leased := f.leaseOne(g, q, "w")
		_, err := q.Fail(ctx, leased.ID, leased.Token, queue.Failure{Kind: queue.FailRetry, Message: "Weather API timeout"})
		g.Expect(err).NotTo(HaveOccurred())
		delayed = append(delayed, job)
	}
	for _, job := range delayed {
		g.Eventually(f.phase(job)).WithTimeout(timeout).Should(Equal(jobsv1alpha1.PhaseDelayed))
	}

	g.Expect(rdb.FlushAll(ctx).Err()).To(Succeed())
	for _, job := range delayed {
		g.Eventually(func() error {
			_, err := q.Get(ctx, job.Name)
			return err
		}).WithTimeout(10*time.Second).Should(Succeed(), "%s is back in Redis", job.Name)
	}
}

func TestUnreachableRedisReleasesTheFinalizerAfterTheBound(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	server := testredis.Start(t)
	rdb := server.ClientFor(t)
	f := newFixture(t, rdb, testOptions())
	f.jobQueue(jobsv1alpha1.QueueEnrichment)
	job := f.enrichmentJob("enrich-redisdown-1")
	f.create(job)
	g.Eventually(f.phase(job)).WithTimeout(timeout).Should(Equal(jobsv1alpha1.PhaseWaiting))

	server.Kill()
	deletedAt := time.Now().Truncate(time.Second) // deletionTimestamp has whole seconds
	g.Expect(f.c.Delete(ctx, job)).To(Succeed())
	gone := func() bool {
		return apierrors.IsNotFound(f.c.Get(ctx, client.ObjectKeyFromObject(job), &jobsv1alpha1.EnrichmentJob{}))
	}
	g.Consistently(gone).WithTimeout(2*time.Second).Should(BeFalse(), "the finalizer waits for Redis first")
	g.Eventually(gone).WithTimeout(timeout).Should(BeTrue(), "then it is released")
	g.Expect(time.Since(deletedAt)).To(BeNumerically(">=", testOptions().RedisDownGrace))

	// Redis comes back holding the record: the orphan sweep removes it.
	server.Restart()
	g.Eventually(func() error {
		_, err := f.queue(jobsv1alpha1.QueueEnrichment).Get(ctx, job.Name)
		return err
	}).WithTimeout(timeout).Should(MatchError(queue.ErrNotFound))
}

func TestTTLDeletesFinishedJobs(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	f := newFixture(t, nil, testOptions())
	f.jobQueue(jobsv1alpha1.QueueEnrichment)
	q := f.queue(jobsv1alpha1.QueueEnrichment)
	ttl := int32(2)
	job := f.enrichmentJob("enrich-ttl-1")
	job.Spec.TTLSecondsAfterFinished = &ttl
	f.create(job)
	g.Eventually(f.phase(job)).WithTimeout(timeout).Should(Equal(jobsv1alpha1.PhaseWaiting))
	leased := f.leaseOne(g, q, "w")
	_, err := q.Complete(ctx, leased.ID, leased.Token, nil)
	g.Expect(err).NotTo(HaveOccurred())
	g.Eventually(f.phase(job)).WithTimeout(timeout).Should(Equal(jobsv1alpha1.PhaseCompleted))
	g.Eventually(func() bool {
		return apierrors.IsNotFound(f.c.Get(ctx, client.ObjectKeyFromObject(job), &jobsv1alpha1.EnrichmentJob{}))
	}).WithTimeout(timeout).Should(BeTrue())
	_, err = q.Get(ctx, job.Name)
	g.Expect(errors.Is(err, queue.ErrNotFound)).To(BeTrue(), "its record went with it")
	g.Consistently(func() []string { return eventReasons(f, job.Name) }).WithTimeout(time.Second).
		ShouldNot(ContainElement(jobsv1alpha1.ReasonCancelled), "an expired job was not cancelled")
}

func TestFinishedJobsExpireWithoutTheirRecordOrJobQueue(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	f := newFixture(t, nil, testOptions())
	jq := f.jobQueue(jobsv1alpha1.QueueEnrichment)
	q := f.queue(jobsv1alpha1.QueueEnrichment)
	ttl := int32(3)
	completed := func(name string) *jobsv1alpha1.EnrichmentJob {
		job := f.enrichmentJob(name)
		job.Spec.TTLSecondsAfterFinished = &ttl
		f.create(job)
		g.Eventually(f.phase(job)).WithTimeout(timeout).Should(Equal(jobsv1alpha1.PhaseWaiting))
		leased := f.leaseOne(g, q, "w")
		_, err := q.Complete(ctx, leased.ID, leased.Token, nil)
		g.Expect(err).NotTo(HaveOccurred())
		g.Eventually(f.phase(job)).WithTimeout(timeout).Should(Equal(jobsv1alpha1.PhaseCompleted))
		return job
	}
	gone := func(job *jobsv1alpha1.EnrichmentJob) func() bool {
		return func() bool {
			return apierrors.IsNotFound(f.c.Get(ctx, client.ObjectKeyFromObject(job), &jobsv1alpha1.EnrichmentJob{}))
		}
	}

	// Its record lost (a flush, a restart without persistence, a sweep shorter than the TTL).
	lost := completed("enrich-expire-lost-record")
	_, err := q.Remove(ctx, lost.Name, string(lost.UID))
	g.Expect(err).NotTo(HaveOccurred())
	f.annotateRetry(g, lost, "after-the-record-went")
	g.Eventually(func() []string { return eventReasons(f, lost.Name) }).WithTimeout(timeout).Should(ContainElement(jobsv1alpha1.ReasonRetryIgnored), "a retry it cannot act on says so")
	g.Eventually(gone(lost)).WithTimeout(timeout).Should(BeTrue(), "expired without its record")

	// Its JobQueue deleted.
	orphan := completed("enrich-expire-no-queue")
	g.Expect(f.c.Delete(ctx, jq)).To(Succeed())
	g.Eventually(gone(orphan)).WithTimeout(timeout).Should(BeTrue(), "expired without its JobQueue")
}

func TestControllerRestartedMidFlightLosesNothing(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	f := newFixture(t, nil, testOptions())
	f.jobQueue(jobsv1alpha1.QueueEnrichment)
	q := f.queue(jobsv1alpha1.QueueEnrichment)
	first := f.enrichmentJob("enrich-restart-1")
	f.create(first)
	g.Eventually(f.phase(first)).WithTimeout(timeout).Should(Equal(jobsv1alpha1.PhaseWaiting))

	f.stopController()
	// While it is down: a job is created, and the first one runs to completion.
	second := f.enrichmentJob("enrich-restart-2")
	f.create(second)
	leased := f.leaseOne(g, q, "w")
	_, err := q.Complete(ctx, leased.ID, leased.Token, nil)
	g.Expect(err).NotTo(HaveOccurred())

	f.start(testOptions())
	g.Eventually(f.phase(first)).WithTimeout(timeout).Should(Equal(jobsv1alpha1.PhaseCompleted))
	g.Eventually(f.phase(second)).WithTimeout(timeout).Should(Equal(jobsv1alpha1.PhaseWaiting))
}

func TestWriteBudgetOfOneJob(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	f := newFixture(t, nil, testOptions())
	f.jobQueue(jobsv1alpha1.QueueEnrichment)
	q := f.queue(jobsv1alpha1.QueueEnrichment)
	job := f.enrichmentJob("enrich-budget-1")
	job.Finalizers = []string{jobsv1alpha1.Finalizer} // as the facade creates jobs
	f.create(job)

	writes := f.watchWrites(g, job)
	g.Eventually(f.phase(job)).WithTimeout(timeout).Should(Equal(jobsv1alpha1.PhaseWaiting))
	leased := f.leaseOne(g, q, "w")
	for tick := 1; tick <= 10; tick++ {
		time.Sleep(time.Second)
		_, err := q.Progress(ctx, leased.ID, leased.Token, tick*10, "")
		g.Expect(err).NotTo(HaveOccurred())
		_, err = q.Heartbeat(ctx, leased.ID, leased.Token, 30*time.Second)
		g.Expect(err).NotTo(HaveOccurred())
	}
	_, err := q.Complete(ctx, leased.ID, leased.Token, nil)
	g.Expect(err).NotTo(HaveOccurred())
	g.Eventually(f.phase(job)).WithTimeout(timeout).Should(Equal(jobsv1alpha1.PhaseCompleted))
	time.Sleep(2 * time.Second) // a resync passes: it must not write
	t.Logf("writes to the job after create: %d %v", len(writes()), writes())
	g.Expect(len(writes())).To(BeNumerically("<=", 5))
}

// watchWrites records each write to job's CR from now on, as phase@queueVersion.
func (f *fixture) watchWrites(g Gomega, job *jobsv1alpha1.EnrichmentJob) func() []string {
	ctx, cancel := context.WithCancel(context.Background())
	f.t.Cleanup(cancel)
	w, err := env.WatchClient().Watch(ctx, &jobsv1alpha1.EnrichmentJobList{}, client.InNamespace(f.ns),
		client.MatchingFields{"metadata.name": job.Name})
	g.Expect(err).NotTo(HaveOccurred())
	var writes []string
	var mu sync.Mutex
	go func() {
		defer w.Stop()
		for e := range w.ResultChan() {
			if e.Type == watch.Modified {
				obj := e.Object.(*jobsv1alpha1.EnrichmentJob)
				mu.Lock()
				writes = append(writes, fmt.Sprintf("%s@%d", obj.Status.Phase, obj.Status.QueueVersion))
				mu.Unlock()
			}
		}
	}()
	return func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), writes...)
	}
}

// The controller leaves a lagging status to the worker for the status grace: a job that a
// worker starts and ends within it is written once, by its worker, and never shows Waiting; a
// job nobody starts is shown Waiting once the grace has passed.
func TestAJobStartedWithinTheStatusGraceIsNeverWrittenWaiting(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	const grace = 2 * time.Second
	opts := testOptions()
	opts.StatusGrace = grace
	f := newFixture(t, nil, opts)
	f.jobQueue(jobsv1alpha1.QueueEnrichment)
	q := f.queue(jobsv1alpha1.QueueEnrichment)

	fast := f.enrichmentJob("enrich-grace-fast")
	fast.Finalizers = []string{jobsv1alpha1.Finalizer} // as the facade creates jobs
	writes := f.watchWrites(g, fast)
	f.create(fast)
	leased := f.leaseOne(g, q, "w")
	_, err := q.Complete(ctx, leased.ID, leased.Token, nil)
	g.Expect(err).NotTo(HaveOccurred())
	record, err := q.Get(ctx, leased.ID)
	g.Expect(err).NotTo(HaveOccurred())
	// The worker writes the end it made, as its status writer does.
	obj := &jobsv1alpha1.EnrichmentJob{}
	g.Expect(env.Client.Get(ctx, client.ObjectKeyFromObject(fast), obj)).To(Succeed())
	_, err = jobstatus.Sync(ctx, env.Client, obj, record)
	g.Expect(err).NotTo(HaveOccurred())
	want := []string{fmt.Sprintf("Completed@%d", record.Version)}
	g.Eventually(writes).WithTimeout(timeout).Should(Equal(want))
	g.Consistently(writes).WithTimeout(2 * grace).Should(Equal(want))

	idle := f.enrichmentJob("enrich-grace-idle")
	f.create(idle)
	g.Consistently(f.phase(idle)).WithTimeout(grace / 2).Should(BeEmpty())
	g.Eventually(f.phase(idle)).WithTimeout(timeout).Should(Equal(jobsv1alpha1.PhaseWaiting))
}
