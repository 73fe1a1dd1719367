package controllers_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	jobsv1alpha1 "github.com/jengu/queue-operator/api/v1alpha1"
	"github.com/jengu/queue-operator/controllers"
	"github.com/jengu/queue-operator/metrics"
	"github.com/jengu/queue-operator/queue"
)

// scalingOptions keep records without a CR (the tests enqueue straight into Redis) from the
// orphan sweep.
func scalingOptions() controllers.Options {
	opts := testOptions()
	opts.OrphanAge = time.Hour
	return opts
}

// scalingQueue is a competitor JobQueue with fast autoscaling for tests.
func (f *fixture) scalingQueue(mutate ...func(*jobsv1alpha1.JobQueue)) *jobsv1alpha1.JobQueue {
	return f.jobQueue(jobsv1alpha1.QueueCompetitor, append([]func(*jobsv1alpha1.JobQueue){func(jq *jobsv1alpha1.JobQueue) {
		jq.Spec.Autoscaling = jobsv1alpha1.Autoscaling{
			MinReplicas: ptr.To[int32](0), MaxReplicas: ptr.To[int32](10), TargetJobsPerReplica: ptr.To[int32](10),
			PollingInterval:              metav1.Duration{Duration: 300 * time.Millisecond},
			ScaleDownStabilizationWindow: &metav1.Duration{Duration: 3 * time.Second},
			IdleCooldown:                 &metav1.Duration{Duration: 3 * time.Second},
		}
		jq.Spec.Worker.Image = "example.test/queue-operator:v1"
	}}, mutate...)...)
}

func (f *fixture) deployment(jq *jobsv1alpha1.JobQueue) func() *appsv1.Deployment {
	return func() *appsv1.Deployment {
		d := &appsv1.Deployment{}
		if err := f.c.Get(context.Background(), client.ObjectKey{Namespace: f.ns, Name: jq.Name + "-worker"}, d); err != nil {
			return nil
		}
		return d
	}
}

func (f *fixture) replicas(jq *jobsv1alpha1.JobQueue) func() int32 {
	return func() int32 {
		d := f.deployment(jq)()
		if d == nil || d.Spec.Replicas == nil {
			return -1
		}
		return *d.Spec.Replicas
	}
}

func (f *fixture) enqueueMany(q *queue.Queue, n int) {
	f.t.Helper()
	for i := range n {
		if _, err := q.Enqueue(context.Background(), queue.EnqueueRequest{ID: fmt.Sprintf("job-%d", i), UID: "u", MaxAttempts: 1}); err != nil {
			f.t.Fatalf("enqueue: %v", err)
		}
	}
}

func TestJobQueueScalesWorkersOnDepth(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	f := newFixture(t, nil, scalingOptions())
	// Windows well above the drain's own time plus the 2 s the test watches the workers stay.
	jq := f.scalingQueue(func(jq *jobsv1alpha1.JobQueue) {
		jq.Spec.Autoscaling.ScaleDownStabilizationWindow = &metav1.Duration{Duration: 6 * time.Second}
		jq.Spec.Autoscaling.IdleCooldown = &metav1.Duration{Duration: 6 * time.Second}
	})
	q := f.queue(jobsv1alpha1.QueueCompetitor)
	g.Eventually(f.replicas(jq)).WithTimeout(timeout).Should(Equal(int32(0)), "created, idle: no workers")

	d := f.deployment(jq)()
	g.Expect(d.OwnerReferences).To(HaveLen(1))
	container := d.Spec.Template.Spec.Containers[0]
	g.Expect(container.Image).To(Equal("example.test/queue-operator:v1"))
	g.Expect(container.Args).To(Equal([]string{"worker", "--queue", "competitor", "--namespace", f.ns, "--shutdown-grace", "5m0s"}))
	g.Expect(*d.Spec.Template.Spec.TerminationGracePeriodSeconds).To(Equal(int64(330)), "a job at the 5-minute timeout can finish")
	g.Expect(container.LivenessProbe.HTTPGet.Path).To(Equal("/healthz"))
	g.Expect(container.Resources.Requests).To(HaveKey(corev1.ResourceCPU))

	f.enqueueMany(q, 95)
	stored := &jobsv1alpha1.JobQueue{}
	defer func() {
		if t.Failed() {
			_ = f.c.Get(ctx, client.ObjectKeyFromObject(jq), stored)
			t.Logf("JobQueue status: %+v", stored.Status)
		}
	}()
	g.Eventually(f.replicas(jq)).WithTimeout(timeout).Should(Equal(int32(10)), "ceil(95/10), capped at max 10")
	g.Eventually(func() jobsv1alpha1.JobQueueStatus {
		_ = f.c.Get(ctx, client.ObjectKeyFromObject(jq), stored)
		return stored.Status
	}).WithTimeout(timeout).Should(And(HaveField("Waiting", int64(95)), HaveField("DesiredReplicas", int32(10))))
	g.Expect(stored.Status.Recommendations).NotTo(BeEmpty(), "the window lives in the status")
	g.Expect(testutil.ToFloat64(metrics.QueueJobs.WithLabelValues(f.ns, "competitor", "waiting"))).To(Equal(95.0),
		"the depth KEDA or an HPA can scale on")
	g.Expect(meta.IsStatusConditionTrue(stored.Status.Conditions, jobsv1alpha1.ConditionRedisPolicyOK)).To(BeTrue())

	// Drain: the workers stay through the stabilization window, then go.
	res, err := q.Lease(ctx, "w", 100, time.Minute)
	g.Expect(err).NotTo(HaveOccurred())
	for _, j := range res.Jobs {
		_, err := q.Complete(ctx, j.ID, j.Token, nil)
		g.Expect(err).NotTo(HaveOccurred())
	}
	g.Consistently(f.replicas(jq)).WithTimeout(2 * time.Second).Should(Equal(int32(10)))
	g.Eventually(f.replicas(jq)).WithTimeout(timeout).Should(Equal(int32(0)))
}

func TestJobQueueDeploymentIsKeptInShape(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	f := newFixture(t, nil, scalingOptions())
	jq := f.scalingQueue()
	g.Eventually(f.deployment(jq)).WithTimeout(timeout).ShouldNot(BeNil())

	g.Expect(f.c.Delete(ctx, f.deployment(jq)())).To(Succeed())
	g.Eventually(func() bool { d := f.deployment(jq)(); return d != nil && d.DeletionTimestamp.IsZero() }).
		WithTimeout(timeout).Should(BeTrue(), "a deleted Deployment comes back")

	f.patchSpec(jq, func(s *jobsv1alpha1.JobQueueSpec) {
		s.Worker.Image = "example.test/queue-operator:v2"
		s.Worker.Template = &corev1.PodTemplateSpec{Spec: corev1.PodSpec{NodeSelector: map[string]string{"pool": "workers"}}}
	})
	g.Eventually(func() string {
		d := f.deployment(jq)()
		if d == nil || d.Spec.Template.Spec.NodeSelector["pool"] != "workers" {
			return ""
		}
		return d.Spec.Template.Spec.Containers[0].Image
	}).WithTimeout(timeout).Should(Equal("example.test/queue-operator:v2"), "a changed template rolls out")
}

func TestPausedJobQueuePausesRedisAndScalesToZero(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	f := newFixture(t, nil, scalingOptions())
	jq := f.scalingQueue()
	q := f.queue(jobsv1alpha1.QueueCompetitor)
	f.enqueueMany(q, 30)
	g.Eventually(f.replicas(jq)).WithTimeout(timeout).Should(Equal(int32(3)))

	f.patchSpec(jq, func(s *jobsv1alpha1.JobQueueSpec) { s.Paused = true })
	g.Eventually(f.replicas(jq)).WithTimeout(timeout).Should(Equal(int32(0)))
	counts, err := q.Counts(ctx)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(counts.IsPaused).To(BeTrue())
	g.Expect(counts.Paused).To(Equal(int64(30)), "no job lost")

	f.patchSpec(jq, func(s *jobsv1alpha1.JobQueueSpec) { s.Paused = false })
	g.Eventually(f.replicas(jq)).WithTimeout(timeout).Should(Equal(int32(3)))
}

func TestAutoscalingOffLeavesReplicasAlone(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	f := newFixture(t, nil, scalingOptions())
	jq := f.scalingQueue(func(jq *jobsv1alpha1.JobQueue) { jq.Spec.Autoscaling.Enabled = ptr.To(false) })
	g.Eventually(f.deployment(jq)).WithTimeout(timeout).ShouldNot(BeNil())
	d := f.deployment(jq)()
	patch := client.MergeFrom(d.DeepCopy())
	d.Spec.Replicas = ptr.To[int32](7) // as KEDA or an HPA would
	g.Expect(f.c.Patch(ctx, d, patch)).To(Succeed())
	f.enqueueMany(f.queue(jobsv1alpha1.QueueCompetitor), 95)
	g.Consistently(f.replicas(jq)).WithTimeout(2 * time.Second).Should(Equal(int32(7)))
}

// patchSpec changes a JobQueue's spec with a merge patch (the controller writes its status
// meanwhile, so an update would conflict).
func (f *fixture) patchSpec(jq *jobsv1alpha1.JobQueue, change func(*jobsv1alpha1.JobQueueSpec)) {
	f.t.Helper()
	stored := &jobsv1alpha1.JobQueue{}
	if err := f.c.Get(context.Background(), client.ObjectKeyFromObject(jq), stored); err != nil {
		f.t.Fatalf("get JobQueue: %v", err)
	}
	patch := client.MergeFrom(stored.DeepCopy())
	change(&stored.Spec)
	if err := f.c.Patch(context.Background(), stored, patch); err != nil {
		f.t.Fatalf("patch JobQueue: %v", err)
	}
}

func TestRestartedControllerKeepsTheScaleDownWindow(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	f := newFixture(t, nil, scalingOptions())
	jq := f.scalingQueue(func(jq *jobsv1alpha1.JobQueue) {
		jq.Spec.Autoscaling.ScaleDownStabilizationWindow = &metav1.Duration{Duration: 15 * time.Second}
		jq.Spec.Autoscaling.IdleCooldown = &metav1.Duration{Duration: 15 * time.Second}
	})
	q := f.queue(jobsv1alpha1.QueueCompetitor)
	f.enqueueMany(q, 95)
	g.Eventually(f.replicas(jq)).WithTimeout(timeout).Should(Equal(int32(10)))
	res, err := q.Lease(ctx, "w", 100, time.Minute)
	g.Expect(err).NotTo(HaveOccurred())
	for _, j := range res.Jobs {
		_, err := q.Complete(ctx, j.ID, j.Token, nil)
		g.Expect(err).NotTo(HaveOccurred())
	}
	// A new leader takes over inside the window: it continues the decision from the status.
	f.stopController()
	f.start(scalingOptions())
	g.Consistently(f.replicas(jq)).WithTimeout(3 * time.Second).Should(Equal(int32(10)))
	g.Eventually(f.replicas(jq)).WithTimeout(45 * time.Second).Should(Equal(int32(0)))
}

func TestRateLimitedQueueGetsNoMoreWorkersThanItsLimitFeeds(t *testing.T) {
	g := NewWithT(t)
	f := newFixture(t, nil, scalingOptions())
	jq := f.scalingQueue(func(jq *jobsv1alpha1.JobQueue) {
		jq.Spec.RateLimit = &jobsv1alpha1.RateLimit{Max: 10, Duration: metav1.Duration{Duration: time.Minute}}
		jq.Spec.Concurrency = ptr.To[int32](3)
	})
	f.enqueueMany(f.queue(jobsv1alpha1.QueueCompetitor), 95)
	// No job has run yet, so no median duration: the cap is a window's quota over the
	// concurrency, ceil(10 / 3) = 4, not the 10 that depth alone asks for.
	g.Eventually(f.replicas(jq)).WithTimeout(timeout).Should(Equal(int32(4)))
	g.Consistently(f.replicas(jq)).WithTimeout(2 * time.Second).Should(Equal(int32(4)))
}

func TestDepthFlappingInsideTheToleranceBandChangesNothing(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	f := newFixture(t, nil, scalingOptions())
	jq := f.scalingQueue(func(jq *jobsv1alpha1.JobQueue) { jq.Spec.Autoscaling.MaxReplicas = ptr.To[int32](20) })
	q := f.queue(jobsv1alpha1.QueueCompetitor)
	f.enqueueMany(q, 100)
	g.Eventually(f.replicas(jq)).WithTimeout(timeout).Should(Equal(int32(10)))
	// 100 → 105 → 96 → 104 jobs: within 10% of 10 replicas × 10 jobs, so no change.
	for i, n := range []int{5, -9, 8} {
		if n > 0 {
			for k := range n {
				_, err := q.Enqueue(ctx, queue.EnqueueRequest{ID: fmt.Sprintf("extra-%d-%d", i, k), UID: "u", MaxAttempts: 1})
				g.Expect(err).NotTo(HaveOccurred())
			}
		} else {
			res, err := q.Lease(ctx, "w", -n, time.Hour)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(res.Jobs).To(HaveLen(-n))
			for _, j := range res.Jobs {
				_, err := q.Complete(ctx, j.ID, j.Token, nil)
				g.Expect(err).NotTo(HaveOccurred())
			}
		}
		g.Consistently(f.replicas(jq)).WithTimeout(time.Second).Should(Equal(int32(10)))
	}
}

func TestDeletedJobQueueStopsItsHousekeepingAndForgetsItsSeries(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	f := newFixture(t, nil, scalingOptions())
	jq := f.scalingQueue()
	q := f.queue(jobsv1alpha1.QueueCompetitor)
	stallOne := func(id string) {
		t.Helper()
		_, err := q.Enqueue(ctx, queue.EnqueueRequest{ID: id, UID: "u", MaxAttempts: 1})
		g.Expect(err).NotTo(HaveOccurred())
		res, err := q.Lease(ctx, "gone", 1, 100*time.Millisecond)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(res.Jobs).To(HaveLen(1))
		g.Expect(res.Jobs[0].ID).To(Equal(id))
	}
	state := func(id string) func() queue.State {
		return func() queue.State {
			r, err := q.Get(ctx, id)
			if err != nil {
				return ""
			}
			return r.State
		}
	}
	series := func() int {
		n := 0
		for _, state := range []string{"waiting", "active", "delayed", "completed", "failed"} {
			if testutil.ToFloat64(metrics.QueueJobs.WithLabelValues(f.ns, "competitor", state)) > 0 {
				n++
			}
		}
		return n
	}

	stallOne("stalled-while-the-queue-lives")
	g.Eventually(state("stalled-while-the-queue-lives")).WithTimeout(timeout).ShouldNot(Equal(queue.StateActive),
		"the stall reclaimer runs while the JobQueue exists")
	g.Eventually(series).WithTimeout(timeout).ShouldNot(BeZero(), "the depth is reported")

	g.Expect(f.c.Delete(ctx, jq)).To(Succeed())
	g.Eventually(series).WithTimeout(timeout).Should(BeZero(), "a deleted JobQueue's series are dropped")
	stallOne("stalled-after-the-queue-went")
	g.Consistently(state("stalled-after-the-queue-went")).WithTimeout(3*time.Second).Should(Equal(queue.StateActive),
		"no housekeeping runs for a JobQueue that is gone")
}

func TestDueDelayedJobsAreNotStrandedAtZeroReplicas(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	f := newFixture(t, nil, scalingOptions())
	jq := f.scalingQueue()
	q := f.queue(jobsv1alpha1.QueueCompetitor)
	g.Eventually(f.replicas(jq)).WithTimeout(timeout).Should(Equal(int32(0)), "idle: no workers")

	// A job back from its backoff while no worker runs: nobody leases, so nobody promotes it.
	_, err := q.Enqueue(ctx, queue.EnqueueRequest{ID: "backoff-over", UID: "u", MaxAttempts: 3, Delay: time.Second})
	g.Expect(err).NotTo(HaveOccurred())
	g.Eventually(func() queue.State {
		r, err := q.Get(ctx, "backoff-over")
		g.Expect(err).NotTo(HaveOccurred())
		return r.State
	}).WithTimeout(timeout).Should(Equal(queue.StateWaiting), "the housekeeping promotes a due job")
	g.Eventually(f.replicas(jq)).WithTimeout(timeout).Should(Equal(int32(1)), "and a worker comes for it")
}

func TestExplicitZeroWindowAndCooldownScaleDownAtOnce(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	f := newFixture(t, nil, scalingOptions())
	jq := f.scalingQueue(func(jq *jobsv1alpha1.JobQueue) {
		jq.Spec.Autoscaling.ScaleDownStabilizationWindow = &metav1.Duration{Duration: 0}
		jq.Spec.Autoscaling.IdleCooldown = &metav1.Duration{Duration: 0}
	})
	q := f.queue(jobsv1alpha1.QueueCompetitor)
	f.enqueueMany(q, 15)
	g.Eventually(f.replicas(jq)).WithTimeout(timeout).Should(Equal(int32(2)))
	res, err := q.Lease(ctx, "w", 100, time.Minute)
	g.Expect(err).NotTo(HaveOccurred())
	for _, j := range res.Jobs {
		_, err := q.Complete(ctx, j.ID, j.Token, nil)
		g.Expect(err).NotTo(HaveOccurred())
	}
	g.Eventually(f.replicas(jq)).WithTimeout(timeout).Should(Equal(int32(0)),
		"0s means no window and no cooldown, not the 300 s defaults")
}

// TestWorkerPodsCarryWhatPrometheusFindsThemBy: the chart's PodMonitor selects the worker pods
// by their name label and scrapes their port named metrics; a Prometheus without the operator
// reads the annotations.
func TestWorkerPodsCarryWhatPrometheusFindsThemBy(t *testing.T) {
	g := NewWithT(t)
	f := newFixture(t, nil, scalingOptions())
	jq := f.scalingQueue()
	g.Eventually(f.deployment(jq)).WithTimeout(timeout).ShouldNot(BeNil())
	tpl := f.deployment(jq)().Spec.Template
	g.Expect(tpl.Labels).To(HaveKeyWithValue("app.kubernetes.io/name", "queue-operator-worker"))
	g.Expect(tpl.Annotations).To(And(HaveKeyWithValue("prometheus.io/scrape", "true"),
		HaveKeyWithValue("prometheus.io/port", "8082"), HaveKeyWithValue("prometheus.io/path", "/metrics")))
	g.Expect(tpl.Spec.Containers[0].Ports).To(ContainElement(And(
		HaveField("Name", "metrics"), HaveField("ContainerPort", int32(8082)))))
}

// TestControllerServesTheQueuesLifetimeCounters: the leader reads each JobQueue's counters from
// Redis at the scrape; a job completed by any worker shows, per namespace and queue.
func TestControllerServesTheQueuesLifetimeCounters(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	f := newFixture(t, nil, scalingOptions())
	jq := f.scalingQueue()
	g.Eventually(f.deployment(jq)).WithTimeout(timeout).ShouldNot(BeNil())
	reg := prometheus.NewRegistry()
	g.Expect(metrics.RegisterController(reg)).To(Succeed())

	q := f.queue(jobsv1alpha1.QueueCompetitor)
	f.enqueueMany(q, 2)
	res, err := q.Lease(ctx, "w", 2, time.Minute)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(res.Jobs).To(HaveLen(2))
	_, err = q.Complete(ctx, res.Jobs[0].ID, res.Jobs[0].Token, nil)
	g.Expect(err).NotTo(HaveOccurred())
	_, err = q.Fail(ctx, res.Jobs[1].ID, res.Jobs[1].Token, queue.Failure{Kind: queue.FailPermanent, Message: "bad"})
	g.Expect(err).NotTo(HaveOccurred())

	value := func(name string, labels map[string]string) func() float64 {
		return func() float64 {
			families, err := reg.Gather()
			if err != nil {
				return -1
			}
			for _, mf := range families {
				if mf.GetName() != name {
					continue
				}
			metric:
				for _, m := range mf.GetMetric() {
					for _, l := range m.GetLabel() {
						if want, ok := labels[l.GetName()]; ok && want != l.GetValue() {
							continue metric
						}
					}
					if m.GetGauge() != nil {
						return m.GetGauge().GetValue()
					}
					return m.GetCounter().GetValue()
				}
			}
			return -1
		}
	}
	g.Eventually(value("queue_operator_jobs_completed_total", map[string]string{"namespace": f.ns, "queue": "competitor"})).
		WithTimeout(timeout).Should(Equal(1.0))
	g.Expect(value("queue_operator_jobs_failed_total", map[string]string{"namespace": f.ns, "queue": "competitor", "reason": "permanent"})()).
		To(Equal(1.0))
	g.Expect(value("queue_operator_controller_leader", nil)()).To(Equal(1.0), "the fixture's manager leads (no election)")
}
