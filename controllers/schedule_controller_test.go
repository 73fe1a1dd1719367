package controllers_test

import (
	"context"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"slices"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	jobsv1alpha1 "github.com/jengu/queue-operator/api/v1alpha1"
	"github.com/jengu/queue-operator/controllers"
)

// scheduleOptions run the controllers on an injected clock; a schedule is looked at every
// 200 ms of real time, since requeues go by the real clock.
func scheduleOptions(c *clocktesting.FakeClock) controllers.Options {
	opts := testOptions()
	opts.Clock = c
	opts.ScheduleRecheck = 200 * time.Millisecond
	return opts
}

// everyMinute is a schedule of an AnalyticsJob every minute; its namespace has no JobQueue, so
// its jobs stay unfinished until a test finishes them.
func (f *fixture) schedule(name string, mutate ...func(*jobsv1alpha1.JobSchedule)) *jobsv1alpha1.JobSchedule {
	f.t.Helper()
	js := &jobsv1alpha1.JobSchedule{
		ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: name},
		Spec: jobsv1alpha1.JobScheduleSpec{Schedule: "* * * * *", StartingDeadlineSeconds: ptr.To[int64](30),
			JobTemplate: jobsv1alpha1.JobTemplate{Analytics: &jobsv1alpha1.AnalyticsJobTemplate{
				JobCommonSpec:   jobsv1alpha1.JobCommonSpec{PropertyID: "prop-1", UserID: "user-1"},
				AnalyticsFields: jobsv1alpha1.AnalyticsFields{AnalysisType: jobsv1alpha1.AnalysisSummary}}}},
	}
	for _, m := range mutate {
		m(js)
	}
	f.create(js)
	return js
}

// scheduledJobs are the names of the schedule's jobs (deleted ones included until they go).
func (f *fixture) scheduledJobs(name string) func() []string {
	return func() []string {
		list := &jobsv1alpha1.AnalyticsJobList{}
		if err := f.c.List(context.Background(), list, client.InNamespace(f.ns), client.MatchingLabels{jobsv1alpha1.LabelSchedule: name}); err != nil {
			return []string{"list: " + err.Error()}
		}
		var names []string
		for _, job := range list.Items {
			if job.DeletionTimestamp.IsZero() {
				names = append(names, job.Name)
			}
		}
		slices.Sort(names)
		return names
	}
}

func (f *fixture) scheduleStatus(name string) func() jobsv1alpha1.JobScheduleStatus {
	return func() jobsv1alpha1.JobScheduleStatus {
		js := &jobsv1alpha1.JobSchedule{}
		if err := f.c.Get(context.Background(), client.ObjectKey{Namespace: f.ns, Name: name}, js); err != nil {
			return jobsv1alpha1.JobScheduleStatus{}
		}
		return js.Status
	}
}

// finish sets a job's end as a worker's status write would.
func (f *fixture) finish(g Gomega, name string, phase jobsv1alpha1.JobPhase, at time.Time) {
	job := &jobsv1alpha1.AnalyticsJob{}
	g.Expect(f.c.Get(context.Background(), client.ObjectKey{Namespace: f.ns, Name: name}, job)).To(Succeed())
	before := job.DeepCopy()
	job.Status.Phase = phase
	job.Status.FinishedAt = &metav1.Time{Time: at}
	job.Status.QueueVersion = 100
	g.Expect(f.c.Status().Patch(context.Background(), job, client.MergeFrom(before))).To(Succeed())
}

// startAnother runs a second controller on the fixture's namespace, racing the first.
func (f *fixture) startAnother(opts controllers.Options) {
	f.t.Helper()
	mgr, err := controllers.NewManager(env.Config, controllers.ManagerConfig{
		Redis: f.rdb, MetricsAddr: "0", ProbeAddr: "0", Namespaces: []string{f.ns}, Options: opts, SkipNameValidation: true,
	})
	if err != nil {
		f.t.Fatalf("new manager: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := mgr.Start(ctx); err != nil {
			f.t.Errorf("second manager: %v", err)
		}
	}()
	f.t.Cleanup(func() { cancel(); <-done })
}

func minute(m int) time.Time { return time.Date(2027, 1, 1, 0, m, 0, 0, time.UTC) }

func TestScheduleCreatesOneJobPerRunAcrossRestartsAndRacingControllers(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	clk := clocktesting.NewFakeClock(minute(0).Add(40 * time.Second))
	opts := scheduleOptions(clk)
	f := newFixture(t, nil, opts)
	js := f.schedule("every-minute")

	// 00:00:40: the 00:00 run is past its 30 s deadline; the next is 00:01.
	g.Eventually(func() *metav1.Time { return f.scheduleStatus(js.Name)().NextScheduleTime }).WithTimeout(timeout).
		Should(HaveField("Time", BeTemporally("==", minute(1))))
	g.Consistently(f.scheduledJobs(js.Name)).WithTimeout(time.Second).Should(BeEmpty())

	want := []string{}
	tick := func(m int) {
		t.Helper()
		clk.SetTime(minute(m).Add(5 * time.Second))
		want = append(want, jobsv1alpha1.ScheduledJobName(js.Name, minute(m)))
		g.Eventually(f.scheduledJobs(js.Name)).WithTimeout(timeout).Should(Equal(want), "run %d", m)
	}
	tick(1)
	job := &jobsv1alpha1.AnalyticsJob{}
	g.Expect(f.c.Get(ctx, client.ObjectKey{Namespace: f.ns, Name: want[0]}, job)).To(Succeed())
	g.Expect(want[0]).To(Equal("every-minute-29979361"), "schedule name and the run's minutes since 1970")
	g.Expect(job.Labels).To(HaveKeyWithValue(jobsv1alpha1.LabelSchedule, js.Name))
	g.Expect(job.Labels).To(HaveKeyWithValue(jobsv1alpha1.LabelUserID, "user-1"))
	g.Expect(job.Labels).To(HaveKeyWithValue(jobsv1alpha1.LabelQueue, "analytics-heavy"))
	g.Expect(job.Annotations).To(HaveKeyWithValue(jobsv1alpha1.AnnotationScheduledAt, "2027-01-01T00:01:00Z"))
	g.Expect(job.Finalizers).To(ConsistOf(jobsv1alpha1.Finalizer))
	g.Expect(metav1.GetControllerOf(job)).To(HaveField("Name", js.Name))
	g.Expect(job.Spec.AnalysisType).To(Equal(jobsv1alpha1.AnalysisSummary))
	g.Eventually(f.scheduleStatus(js.Name)).WithTimeout(timeout).Should(And(
		HaveField("LastScheduleTime.Time", BeTemporally("==", minute(1))),
		HaveField("ActiveCount", BeEquivalentTo(1)),
		HaveField("Active", ConsistOf(jobsv1alpha1.JobReference{Kind: "AnalyticsJob", Name: want[0]}))))

	// A restarted controller neither repeats the last run nor misses the next.
	f.stopController()
	f.start(opts)
	g.Consistently(f.scheduledJobs(js.Name)).WithTimeout(time.Second).Should(Equal(want))
	tick(2)

	// Two controllers racing: still one job per run.
	f.startAnother(opts)
	for m := 3; m <= 5; m++ {
		tick(m)
	}
	g.Consistently(f.scheduledJobs(js.Name)).WithTimeout(2 * time.Second).Should(Equal(want))
	g.Eventually(f.scheduleStatus(js.Name)).WithTimeout(timeout).Should(HaveField("ActiveCount", BeEquivalentTo(5)))
}

func TestScheduleConcurrencyPolicies(t *testing.T) {
	t.Run("Forbid skips a run while one runs", func(t *testing.T) {
		g := NewWithT(t)
		clk := clocktesting.NewFakeClock(minute(0).Add(40 * time.Second))
		f := newFixture(t, nil, scheduleOptions(clk))
		js := f.schedule("forbid", func(js *jobsv1alpha1.JobSchedule) { js.Spec.ConcurrencyPolicy = jobsv1alpha1.ConcurrencyForbid })
		first := jobsv1alpha1.ScheduledJobName(js.Name, minute(1))
		clk.SetTime(minute(1).Add(5 * time.Second))
		g.Eventually(f.scheduledJobs(js.Name)).WithTimeout(timeout).Should(Equal([]string{first}))

		clk.SetTime(minute(2).Add(5 * time.Second))
		g.Consistently(f.scheduledJobs(js.Name)).WithTimeout(2*time.Second).Should(Equal([]string{first}), "the first has not finished")
		// Past the 02 run's deadline the first finishes: the 02 run stays skipped, the 03 runs.
		clk.SetTime(minute(2).Add(40 * time.Second))
		f.finish(g, first, jobsv1alpha1.PhaseCompleted, clk.Now())
		g.Consistently(f.scheduledJobs(js.Name)).WithTimeout(time.Second).Should(Equal([]string{first}))
		clk.SetTime(minute(3).Add(5 * time.Second))
		g.Eventually(f.scheduledJobs(js.Name)).WithTimeout(timeout).Should(Equal([]string{first, jobsv1alpha1.ScheduledJobName(js.Name, minute(3))}))
		g.Eventually(f.scheduleStatus(js.Name)).WithTimeout(timeout).Should(
			HaveField("LastSuccessfulTime.Time", BeTemporally("==", minute(2).Add(40*time.Second))))
	})

	t.Run("Replace deletes the running one", func(t *testing.T) {
		g := NewWithT(t)
		clk := clocktesting.NewFakeClock(minute(0).Add(40 * time.Second))
		f := newFixture(t, nil, scheduleOptions(clk))
		js := f.schedule("replace", func(js *jobsv1alpha1.JobSchedule) { js.Spec.ConcurrencyPolicy = jobsv1alpha1.ConcurrencyReplace })
		first, second := jobsv1alpha1.ScheduledJobName(js.Name, minute(1)), jobsv1alpha1.ScheduledJobName(js.Name, minute(2))
		clk.SetTime(minute(1).Add(5 * time.Second))
		g.Eventually(f.scheduledJobs(js.Name)).WithTimeout(timeout).Should(Equal([]string{first}))
		clk.SetTime(minute(2).Add(5 * time.Second))
		g.Eventually(f.scheduledJobs(js.Name)).WithTimeout(timeout).Should(Equal([]string{second}))
		g.Eventually(func() bool {
			return apierrors.IsNotFound(f.c.Get(context.Background(), client.ObjectKey{Namespace: f.ns, Name: first}, &jobsv1alpha1.AnalyticsJob{}))
		}).WithTimeout(timeout).Should(BeTrue(), "the replaced job is gone (its finalizer released)")
		g.Eventually(f.scheduleStatus(js.Name)).WithTimeout(timeout).Should(And(HaveField("ActiveCount", BeEquivalentTo(1)),
			HaveField("Active", ConsistOf(jobsv1alpha1.JobReference{Kind: "AnalyticsJob", Name: second}))))
	})

	t.Run("Replace keeps the run's own job that its schedule has not recorded", func(t *testing.T) {
		// As after a restart between the job's create and the schedule's status patch, or a
		// reconcile on a cache that lags that patch.
		g := NewWithT(t)
		clk := clocktesting.NewFakeClock(minute(0).Add(40 * time.Second))
		f := newFixture(t, nil, scheduleOptions(clk))
		js := f.schedule("replace-own", func(js *jobsv1alpha1.JobSchedule) { js.Spec.ConcurrencyPolicy = jobsv1alpha1.ConcurrencyReplace })
		own := js.Spec.JobTemplate.NewJob()
		own.SetName(jobsv1alpha1.ScheduledJobName(js.Name, minute(1)))
		own.SetLabels(map[string]string{jobsv1alpha1.LabelSchedule: js.Name})
		jobsv1alpha1.Stamp(own, f.ns)
		g.Expect(controllerutil.SetControllerReference(js, own, f.c.Scheme())).To(Succeed())
		f.create(own)
		clk.SetTime(minute(1).Add(5 * time.Second))
		g.Eventually(f.scheduleStatus(js.Name)).WithTimeout(timeout).Should(HaveField("LastScheduleTime.Time", BeTemporally("==", minute(1))))
		g.Consistently(func() types.UID {
			job := &jobsv1alpha1.AnalyticsJob{}
			_ = f.c.Get(context.Background(), client.ObjectKeyFromObject(own), job)
			if !job.DeletionTimestamp.IsZero() {
				return "deleted"
			}
			return job.UID
		}).WithTimeout(2*time.Second).Should(Equal(own.GetUID()), "the run's job is kept, not replaced by itself")
	})

	t.Run("Allow runs them side by side", func(t *testing.T) {
		g := NewWithT(t)
		clk := clocktesting.NewFakeClock(minute(0).Add(40 * time.Second))
		f := newFixture(t, nil, scheduleOptions(clk))
		js := f.schedule("allow")
		clk.SetTime(minute(1).Add(5 * time.Second))
		g.Eventually(f.scheduledJobs(js.Name)).WithTimeout(timeout).Should(HaveLen(1))
		clk.SetTime(minute(2).Add(5 * time.Second))
		g.Eventually(f.scheduledJobs(js.Name)).WithTimeout(timeout).Should(HaveLen(2))
	})
}

func TestSuspendedScheduleCreatesNothingUntilResumed(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	clk := clocktesting.NewFakeClock(minute(0).Add(40 * time.Second))
	f := newFixture(t, nil, scheduleOptions(clk))
	js := f.schedule("suspended", func(js *jobsv1alpha1.JobSchedule) { js.Spec.Suspend = true })
	g.Eventually(func() string {
		c := meta.FindStatusCondition(f.scheduleStatus(js.Name)().Conditions, jobsv1alpha1.ConditionReady)
		if c == nil {
			return ""
		}
		return c.Reason
	}).WithTimeout(timeout).Should(Equal(jobsv1alpha1.ReasonSuspended))
	clk.SetTime(minute(1).Add(5 * time.Second))
	g.Consistently(f.scheduledJobs(js.Name)).WithTimeout(2 * time.Second).Should(BeEmpty())
	g.Expect(f.scheduleStatus(js.Name)().NextScheduleTime).To(BeNil())

	// Resumed past the 01 run's 30 s deadline: as for a CronJob, a run missed while suspended
	// still starts when resumed within its deadline.
	clk.SetTime(minute(1).Add(40 * time.Second))
	g.Expect(f.c.Patch(ctx, js, client.RawPatch("application/merge-patch+json", []byte(`{"spec":{"suspend":false}}`)))).To(Succeed())
	g.Eventually(func() *metav1.Time { return f.scheduleStatus(js.Name)().NextScheduleTime }).WithTimeout(timeout).
		Should(HaveField("Time", BeTemporally("==", minute(2))))
	g.Consistently(f.scheduledJobs(js.Name)).WithTimeout(time.Second).Should(BeEmpty(), "the 01 run is past its deadline")
	clk.SetTime(minute(2).Add(5 * time.Second))
	g.Eventually(f.scheduledJobs(js.Name)).WithTimeout(timeout).Should(Equal([]string{jobsv1alpha1.ScheduledJobName(js.Name, minute(2))}))
}

func TestScheduleHistoryLimitsPruneFinishedJobs(t *testing.T) {
	g := NewWithT(t)
	clk := clocktesting.NewFakeClock(minute(0).Add(40 * time.Second))
	f := newFixture(t, nil, scheduleOptions(clk))
	js := f.schedule("history", func(js *jobsv1alpha1.JobSchedule) {
		js.Spec.SuccessfulJobsHistoryLimit = ptr.To[int32](1)
		js.Spec.FailedJobsHistoryLimit = ptr.To[int32](0)
	})
	var names []string
	for m := 1; m <= 4; m++ {
		clk.SetTime(minute(m).Add(5 * time.Second))
		names = append(names, jobsv1alpha1.ScheduledJobName(js.Name, minute(m)))
		g.Eventually(f.scheduledJobs(js.Name)).WithTimeout(timeout).Should(Equal(names))
	}
	f.finish(g, names[0], jobsv1alpha1.PhaseCompleted, clk.Now())
	f.finish(g, names[1], jobsv1alpha1.PhaseCompleted, clk.Now())
	f.finish(g, names[2], jobsv1alpha1.PhaseFailed, clk.Now())
	// Kept: the newest completed job and the unfinished one; the older completed one and the
	// failed one (limit 0) go.
	g.Eventually(f.scheduledJobs(js.Name)).WithTimeout(timeout).Should(Equal([]string{names[1], names[3]}))
	g.Eventually(f.scheduleStatus(js.Name)).WithTimeout(timeout).Should(And(HaveField("ActiveCount", BeEquivalentTo(1)),
		HaveField("LastSuccessfulTime", Not(BeNil()))))
}

// A schedule read in Europe/Madrid runs at 09:00 local time on both sides of the switch to
// summer time (Sunday 28 March 2027): 08:00 UTC before, 07:00 UTC after. Started long after its
// creation, it catches up the latest missed run only, with a warning Event.
func TestScheduleFollowsItsTimeZoneAcrossADaylightSavingChange(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	utc := func(day, hour int) time.Time { return time.Date(2027, 3, day, hour, 0, 0, 0, time.UTC) }
	clk := clocktesting.NewFakeClock(utc(27, 7).Add(59*time.Minute + 30*time.Second))
	f := newFixture(t, nil, scheduleOptions(clk))
	js := f.schedule("madrid", func(js *jobsv1alpha1.JobSchedule) {
		js.Spec.Schedule, js.Spec.TimeZone, js.Spec.StartingDeadlineSeconds = "0 9 * * *", "Europe/Madrid", nil
	})
	catchUp := jobsv1alpha1.ScheduledJobName(js.Name, utc(26, 8))
	g.Eventually(f.scheduledJobs(js.Name)).WithTimeout(timeout).Should(Equal([]string{catchUp}),
		"created in December, started in March: only the latest missed run")
	g.Eventually(func() []string {
		list := &eventsv1.EventList{}
		_ = f.c.List(ctx, list, client.InNamespace(f.ns))
		var reasons []string
		for _, e := range list.Items {
			reasons = append(reasons, e.Reason)
		}
		return reasons
	}).WithTimeout(timeout).Should(ContainElement(jobsv1alpha1.ReasonTooManyMissed))
	g.Eventually(func() *metav1.Time { return f.scheduleStatus(js.Name)().NextScheduleTime }).WithTimeout(timeout).
		Should(HaveField("Time", BeTemporally("==", utc(27, 8))), "09:00 CET")

	clk.SetTime(utc(27, 8).Add(5 * time.Second))
	g.Eventually(f.scheduledJobs(js.Name)).WithTimeout(timeout).Should(ContainElement(jobsv1alpha1.ScheduledJobName(js.Name, utc(27, 8))))
	g.Eventually(func() *metav1.Time { return f.scheduleStatus(js.Name)().NextScheduleTime }).WithTimeout(timeout).
		Should(HaveField("Time", BeTemporally("==", utc(28, 7))), "09:00 CEST")
	clk.SetTime(utc(28, 7).Add(5 * time.Second))
	g.Eventually(f.scheduledJobs(js.Name)).WithTimeout(timeout).Should(Equal([]string{catchUp,
		jobsv1alpha1.ScheduledJobName(js.Name, utc(27, 8)), jobsv1alpha1.ScheduledJobName(js.Name, utc(28, 7))}))
	job := &jobsv1alpha1.AnalyticsJob{}
	g.Expect(f.c.Get(ctx, client.ObjectKey{Namespace: f.ns, Name: jobsv1alpha1.ScheduledJobName(js.Name, utc(28, 7))}, job)).To(Succeed())
	g.Expect(job.Annotations).To(HaveKeyWithValue(jobsv1alpha1.AnnotationScheduledAt, "2027-03-28T07:00:00Z"))
}

func TestScheduleWithAnUnknownTimeZoneSaysSo(t *testing.T) {
	g := NewWithT(t)
	f := newFixture(t, nil, scheduleOptions(clocktesting.NewFakeClock(minute(0))))
	js := f.schedule("nowhere", func(js *jobsv1alpha1.JobSchedule) { js.Spec.TimeZone = "Mars/Olympus_Mons" })
	g.Eventually(func() *metav1.Condition {
		return meta.FindStatusCondition(f.scheduleStatus(js.Name)().Conditions, jobsv1alpha1.ConditionReady)
	}).WithTimeout(timeout).Should(And(Not(BeNil()), HaveField("Status", metav1.ConditionFalse),
		HaveField("Reason", jobsv1alpha1.ReasonInvalidTimeZone), HaveField("Message", ContainSubstring("Mars/Olympus_Mons"))))
}
