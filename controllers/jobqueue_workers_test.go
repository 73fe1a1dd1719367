package controllers_test

import (
	"context"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"github.com/onsi/gomega/types"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	jobsv1alpha1 "github.com/jengu/queue-operator/api/v1alpha1"
)

// There is no kubelet, ReplicaSet controller nor deployment controller in envtest: the tests
// create the worker pods with the Deployment's labels and write their status, and the
// Deployment's status, as those would.

// workerQueue is a competitor JobQueue that wants one worker and polls once an hour, so only
// the watches on its pods and Deployment bring the controller back within a test's timeout.
func (f *fixture) workerQueue(mutate ...func(*jobsv1alpha1.JobQueue)) *jobsv1alpha1.JobQueue {
	return f.jobQueue(jobsv1alpha1.QueueCompetitor, append([]func(*jobsv1alpha1.JobQueue){func(jq *jobsv1alpha1.JobQueue) {
		jq.Spec.Autoscaling = jobsv1alpha1.Autoscaling{MinReplicas: ptr.To[int32](1), MaxReplicas: ptr.To[int32](1),
			PollingInterval: metav1.Duration{Duration: time.Hour}}
		jq.Spec.Worker.Image = "example.test/queue-operator:v1"
	}}, mutate...)...)
}

// workerPod creates a pod of the competitor workers and writes its status.
func (f *fixture) workerPod(g Gomega, name string, status corev1.PodStatus) *corev1.Pod {
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: name, Labels: map[string]string{
			"app.kubernetes.io/name": "queue-operator-worker", jobsv1alpha1.LabelQueue: string(jobsv1alpha1.QueueCompetitor)}},
		Spec: corev1.PodSpec{
			InitContainers: []corev1.Container{{Name: "init", Image: "example.test/init:v1"}},
			Containers:     []corev1.Container{{Name: "worker", Image: "example.test/queue-operator:v1"}},
		},
	}
	g.Expect(f.c.Create(context.Background(), pod)).To(Succeed())
	f.setPodStatus(g, pod, status)
	return pod
}

// setPodStatus writes the pod's status as the kubelet would.
func (f *fixture) setPodStatus(g Gomega, pod *corev1.Pod, status corev1.PodStatus) {
	g.Eventually(func() error {
		stored := &corev1.Pod{}
		if err := f.c.Get(context.Background(), client.ObjectKeyFromObject(pod), stored); err != nil {
			return err
		}
		stored.Status = status
		return f.c.Status().Update(context.Background(), stored)
	}).WithTimeout(timeout).Should(Succeed())
}

func (f *fixture) deletePod(g Gomega, pod *corev1.Pod) {
	g.Expect(f.c.Delete(context.Background(), pod, client.GracePeriodSeconds(0))).To(Succeed())
}

func initDone() []corev1.ContainerStatus {
	return []corev1.ContainerStatus{{Name: "init", Image: "example.test/init:v1",
		State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 0, Reason: "Completed"}}}}
}

// readyWorker is the status of a worker running for a while (startedAt) after restarts.
func readyWorker(restarts int32, startedAt time.Time) corev1.PodStatus {
	return corev1.PodStatus{Phase: corev1.PodRunning,
		Conditions:            []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}},
		InitContainerStatuses: initDone(),
		ContainerStatuses: []corev1.ContainerStatus{{Name: "worker", Image: "example.test/queue-operator:v1", Ready: true,
			RestartCount: restarts, Started: ptr.To(true),
			State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: metav1.NewTime(startedAt)}}}}}
}

// failingWorker is the status of a worker container in state, after restarts, last ending as last.
func failingWorker(state corev1.ContainerState, restarts int32, last *corev1.ContainerStateTerminated) corev1.PodStatus {
	phase := corev1.PodPending
	if restarts > 0 {
		phase = corev1.PodRunning
	}
	return corev1.PodStatus{Phase: phase,
		Conditions:            []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionFalse, Reason: "ContainersNotReady"}},
		InitContainerStatuses: initDone(),
		ContainerStatuses: []corev1.ContainerStatus{{Name: "worker", Image: "example.test/queue-operator:v1", RestartCount: restarts,
			State: state, LastTerminationState: corev1.ContainerState{Terminated: last}}}}
}

func waiting(reason, message string) corev1.ContainerState {
	return corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason, Message: message}}
}

// workersCondition reads the JobQueue's WorkersAvailable condition through the direct client.
func (f *fixture) workersCondition(jq *jobsv1alpha1.JobQueue) func() *metav1.Condition {
	return func() *metav1.Condition {
		stored := &jobsv1alpha1.JobQueue{}
		if err := f.c.Get(context.Background(), client.ObjectKeyFromObject(jq), stored); err != nil {
			return nil
		}
		return meta.FindStatusCondition(stored.Status.Conditions, jobsv1alpha1.ConditionWorkersAvailable)
	}
}

func condition(status metav1.ConditionStatus, reason string, message ...types.GomegaMatcher) types.GomegaMatcher {
	m := []types.GomegaMatcher{Not(BeNil()), HaveField("Status", status), HaveField("Reason", reason)}
	for _, msg := range message {
		m = append(m, HaveField("Message", msg))
	}
	return And(m...)
}

// jobQueueEvents lists the Events about the JobQueue with the given reason.
func (f *fixture) jobQueueEvents(jq *jobsv1alpha1.JobQueue, reason string) func() []eventsv1.Event {
	return func() []eventsv1.Event {
		list := &eventsv1.EventList{}
		if err := f.c.List(context.Background(), list, client.InNamespace(f.ns)); err != nil {
			return nil
		}
		var out []eventsv1.Event
		for _, e := range list.Items {
			if e.Regarding.Kind == "JobQueue" && e.Regarding.Name == jq.Name && e.Reason == reason {
				out = append(out, e)
			}
		}
		return out
	}
}

func TestWorkersThatCannotStartShowInTheJobQueue(t *testing.T) {
	g := NewWithT(t)
	f := newFixture(t, nil, scalingOptions())
	jq := f.workerQueue()
	g.Eventually(f.workersCondition(jq)).WithTimeout(timeout).Should(condition(metav1.ConditionFalse, jobsv1alpha1.ReasonWorkersStarting,
		Equal("0 of 1 wanted workers ready")), "no pod yet")
	f.workerPod(g, "competitor-worker-good", readyWorker(0, time.Now().Add(-time.Hour)))
	g.Eventually(f.workersCondition(jq)).WithTimeout(timeout).Should(condition(metav1.ConditionTrue, jobsv1alpha1.ReasonWorkersRunning,
		Equal("1 of 1 wanted workers ready")))

	exit1 := &corev1.ContainerStateTerminated{ExitCode: 1, Reason: "Error",
		Message: "panic: REDIS_URL is not set\n\ngoroutine 1 [running]:\nmain.main()"}
	// Each bad pod runs beside the good one, as a rollout's new pod does: the queue still has
	// its worker, and still says the new one cannot start.
	cases := []struct {
		name   string
		status corev1.PodStatus
		want   []string
	}{
		{name: "crashloopbackoff", status: failingWorker(waiting("CrashLoopBackOff",
			"back-off 40s restarting failed container=worker pod=competitor-worker-crashloopbackoff"), 3, exit1),
			want: []string{"container worker waiting: CrashLoopBackOff (back-off 40s", "last termination: Error, exit code 1: " +
				"panic: REDIS_URL is not set goroutine 1 [running]: main.main()", "restarted 3 times"}},
		{name: "imagepullbackoff", status: failingWorker(waiting("ImagePullBackOff", `Back-off pulling image "example.test/nope:v9"`), 0, nil),
			want: []string{"container worker waiting: ImagePullBackOff", `example.test/nope:v9`}},
		{name: "errimagepull", status: failingWorker(waiting("ErrImagePull",
			`failed to pull and unpack image "example.test/nope:v9": not found`), 0, nil),
			want: []string{"container worker waiting: ErrImagePull", "not found"}},
		{name: "errimageneverpull", status: failingWorker(waiting("ErrImageNeverPull",
			`Container image "example.test/nope:v9" is not present with pull policy of Never`), 0, nil),
			want: []string{"container worker waiting: ErrImageNeverPull", "pull policy of Never"}},
		{name: "invalidimagename", status: failingWorker(waiting("InvalidImageName",
			`Failed to apply default image tag "Example.test/Q:v1": couldn't parse image name`), 0, nil),
			want: []string{"container worker waiting: InvalidImageName", "couldn't parse image name"}},
		{name: "createcontainerconfigerror", status: failingWorker(waiting("CreateContainerConfigError",
			`secret "queue-redis" not found`), 0, nil),
			want: []string{"container worker waiting: CreateContainerConfigError", `secret "queue-redis" not found`}},
		{name: "createcontainererror", status: failingWorker(waiting("CreateContainerError", "context deadline exceeded"), 0, nil),
			want: []string{"container worker waiting: CreateContainerError (context deadline exceeded)"}},
		{name: "runcontainererror", status: failingWorker(waiting("RunContainerError", "failed to start containerd task"), 2,
			&corev1.ContainerStateTerminated{ExitCode: 128, Reason: "StartError",
				Message: `exec: "queue-operator": executable file not found in $PATH`}),
			want: []string{"container worker waiting: RunContainerError", "last termination: StartError, exit code 128: exec:", "restarted 2 times"}},
		{name: "oomkilled", status: failingWorker(corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 137, Reason: "OOMKilled"}}, 1,
			&corev1.ContainerStateTerminated{ExitCode: 137, Reason: "OOMKilled"}),
			want: []string{"container worker terminated: OOMKilled, exit code 137", "restarted 1 times"}},
		{name: "init-crashloop", status: func() corev1.PodStatus {
			s := failingWorker(waiting("PodInitializing", ""), 0, nil)
			s.InitContainerStatuses = []corev1.ContainerStatus{{Name: "init", Image: "example.test/init:v1", RestartCount: 2,
				State:                waiting("CrashLoopBackOff", "back-off 20s restarting failed container=init"),
				LastTerminationState: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 2, Reason: "Error"}}}}
			return s
		}(), want: []string{"container init waiting: CrashLoopBackOff", "last termination: Error, exit code 2"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			bad := f.workerPod(g, "competitor-worker-"+tc.name, tc.status)
			msg := []types.GomegaMatcher{HavePrefix("pod " + bad.Name + ": "), HaveSuffix("; 1 of 1 wanted workers ready")}
			for _, w := range tc.want {
				msg = append(msg, ContainSubstring(w))
			}
			g.Eventually(f.workersCondition(jq)).WithTimeout(timeout).Should(condition(metav1.ConditionFalse, jobsv1alpha1.ReasonWorkersFailing, msg...))
			f.deletePod(g, bad)
			g.Eventually(f.workersCondition(jq)).WithTimeout(timeout).Should(condition(metav1.ConditionTrue, jobsv1alpha1.ReasonWorkersRunning),
				"the bad pod gone, the good one runs")
		})
	}
	g.Eventually(f.jobQueueEvents(jq, jobsv1alpha1.ReasonWorkersFailing)).WithTimeout(timeout).Should(HaveLen(len(cases)),
		"a Warning per failure (the Event regards the JobQueue at the resourceVersion it had then)")
	g.Eventually(f.jobQueueEvents(jq, jobsv1alpha1.ReasonWorkersRecovered)).WithTimeout(timeout).Should(HaveLen(len(cases)))
}

func TestCrashLoopingWorkerWarnsOnceAndRecovers(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	f := newFixture(t, nil, scalingOptions())
	jq := f.workerQueue()
	g.Eventually(f.deployment(jq)).WithTimeout(timeout).ShouldNot(BeNil())
	g.Expect(f.deployment(jq)().Spec.Template.Spec.Containers[0].TerminationMessagePolicy).To(Equal(corev1.TerminationMessageFallbackToLogsOnError),
		"a crash's log tail becomes the message the condition quotes")

	crashed := func() *corev1.ContainerStateTerminated {
		return &corev1.ContainerStateTerminated{ExitCode: 1, Reason: "Error",
			Message: "Error: connect to Redis: dial tcp 10.0.0.7:6379: connect: connection refused " + strings.Repeat("x", 500)}
	}
	crashLoop := func(restarts int32) corev1.PodStatus {
		return failingWorker(waiting("CrashLoopBackOff", "back-off restarting failed container=worker"), restarts, crashed())
	}
	pod := f.workerPod(g, "competitor-worker-7d9f-x2x", crashLoop(1))
	g.Eventually(f.workersCondition(jq)).WithTimeout(timeout).Should(condition(metav1.ConditionFalse, jobsv1alpha1.ReasonWorkersFailing,
		ContainSubstring("pod competitor-worker-7d9f-x2x: container worker waiting: CrashLoopBackOff"),
		ContainSubstring("connection refused xxx"), ContainSubstring("x…; restarted 1 times"),
		WithTransform(func(s string) int { return len(s) }, BeNumerically("<", 700))), "the log tail is cut to a few hundred bytes")
	g.Eventually(f.jobQueueEvents(jq, jobsv1alpha1.ReasonWorkersFailing)).WithTimeout(timeout).Should(ConsistOf(And(
		HaveField("Type", corev1.EventTypeWarning), HaveField("Note", ContainSubstring("CrashLoopBackOff")),
		HaveField("Related.Name", "competitor-worker"))))

	// The loop goes on: short runs (ready for a moment) between back-offs. Each status change
	// reconciles; none is a recovery, and no second Warning comes.
	for restarts := int32(2); restarts <= 4; restarts++ {
		f.setPodStatus(g, pod, readyWorker(restarts, time.Now()))
		g.Consistently(f.workersCondition(jq)).WithTimeout(time.Second).Should(condition(metav1.ConditionFalse, jobsv1alpha1.ReasonWorkersFailing),
			"a restarted worker must run %s before it counts", time.Minute)
		f.setPodStatus(g, pod, crashLoop(restarts))
		g.Eventually(f.workersCondition(jq)).WithTimeout(timeout).Should(condition(metav1.ConditionFalse, jobsv1alpha1.ReasonWorkersFailing,
			ContainSubstring("restarted %d times", restarts)))
	}
	g.Consistently(f.jobQueueEvents(jq, jobsv1alpha1.ReasonWorkersFailing)).WithTimeout(2*time.Second).Should(ConsistOf(
		HaveField("Series", BeNil())), "one Warning when it turned, not one per reconcile")
	g.Expect(f.jobQueueEvents(jq, jobsv1alpha1.ReasonWorkersRecovered)()).To(BeEmpty())

	// Redis is back: the worker has run for two minutes since its last restart.
	f.setPodStatus(g, pod, readyWorker(5, time.Now().Add(-2*time.Minute)))
	g.Eventually(f.workersCondition(jq)).WithTimeout(timeout).Should(condition(metav1.ConditionTrue, jobsv1alpha1.ReasonWorkersRunning,
		Equal("1 of 1 wanted workers ready")))
	g.Eventually(f.jobQueueEvents(jq, jobsv1alpha1.ReasonWorkersRecovered)).WithTimeout(timeout).Should(ConsistOf(And(
		HaveField("Type", corev1.EventTypeNormal), HaveField("Note", ContainSubstring("1 of 1 wanted workers ready")))))

	stored := &jobsv1alpha1.JobQueue{}
	g.Expect(f.c.Get(ctx, client.ObjectKeyFromObject(jq), stored)).To(Succeed())
	g.Expect(meta.IsStatusConditionTrue(stored.Status.Conditions, jobsv1alpha1.ConditionReady)).To(BeTrue(),
		"Ready is about Redis and the Deployment's shape, whatever the pods do")

	f.patchSpec(jq, func(s *jobsv1alpha1.JobQueueSpec) { s.Paused = true })
	g.Eventually(f.workersCondition(jq)).WithTimeout(timeout).Should(condition(metav1.ConditionTrue, jobsv1alpha1.ReasonNoWorkersWanted))
}

func TestFailedWorkerPodOrStuckDeploymentSaySo(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	f := newFixture(t, nil, scalingOptions())
	jq := f.workerQueue()
	g.Eventually(f.deployment(jq)).WithTimeout(timeout).ShouldNot(BeNil())

	evicted := f.workerPod(g, "competitor-worker-evicted", corev1.PodStatus{Phase: corev1.PodFailed, Reason: "Evicted",
		Message: "The node was low on resource: memory. Threshold quantity: 100Mi, available: 84Mi."})
	g.Eventually(f.workersCondition(jq)).WithTimeout(timeout).Should(condition(metav1.ConditionFalse, jobsv1alpha1.ReasonWorkersFailing,
		Equal("pod competitor-worker-evicted failed: Evicted: The node was low on resource: memory. Threshold quantity: 100Mi, available: 84Mi.; 0 of 1 wanted workers ready")))
	f.workerPod(g, "competitor-worker-replacement", readyWorker(0, time.Now()))
	g.Eventually(f.workersCondition(jq)).WithTimeout(timeout).Should(condition(metav1.ConditionTrue, jobsv1alpha1.ReasonWorkersRunning),
		"an evicted pod stays listed after its replacement runs: it is history then")
	g.Expect(f.c.Get(ctx, client.ObjectKeyFromObject(evicted), &corev1.Pod{})).To(Succeed())

	setDeploymentConditions := func(g Gomega, conds ...appsv1.DeploymentCondition) {
		g.Eventually(func() error {
			d := f.deployment(jq)()
			d.Status.ObservedGeneration, d.Status.Conditions = d.Generation, conds
			return f.c.Status().Update(ctx, d)
		}).WithTimeout(timeout).Should(Succeed())
	}
	for _, tc := range []struct {
		name string
		cond appsv1.DeploymentCondition
		want string
	}{
		{name: "quota", cond: appsv1.DeploymentCondition{Type: appsv1.DeploymentReplicaFailure, Status: corev1.ConditionTrue, Reason: "FailedCreate",
			Message: `pods "competitor-worker-5d-abcde" is forbidden: exceeded quota: compute, requested: cpu=100m`},
			want: `Deployment competitor-worker ReplicaFailure: FailedCreate: pods "competitor-worker-5d-abcde" is forbidden: exceeded quota`},
		{name: "progress deadline", cond: appsv1.DeploymentCondition{Type: appsv1.DeploymentProgressing, Status: corev1.ConditionFalse,
			Reason: "ProgressDeadlineExceeded", Message: `ReplicaSet "competitor-worker-5d" has timed out progressing.`},
			want: `Deployment competitor-worker Progressing: ProgressDeadlineExceeded: ReplicaSet "competitor-worker-5d" has timed out progressing.`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			setDeploymentConditions(g, tc.cond)
			g.Eventually(f.workersCondition(jq)).WithTimeout(timeout).Should(condition(metav1.ConditionFalse, jobsv1alpha1.ReasonWorkersFailing,
				HavePrefix(tc.want)))
			setDeploymentConditions(g, appsv1.DeploymentCondition{Type: appsv1.DeploymentProgressing, Status: corev1.ConditionTrue,
				Reason: "NewReplicaSetAvailable"})
			g.Eventually(f.workersCondition(jq)).WithTimeout(timeout).Should(condition(metav1.ConditionTrue, jobsv1alpha1.ReasonWorkersRunning))
		})
	}
}
