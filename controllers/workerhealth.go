package controllers

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	jobsv1alpha1 "github.com/jengu/queue-operator/api/v1alpha1"
)

// The label every worker pod carries beside jobsv1alpha1.LabelQueue. The manager caches only
// the pods that carry it (NewManager).
const (
	workerAppLabel = "app.kubernetes.io/name"
	workerAppName  = "queue-operator-worker"
)

// workerLabels are a queue's worker Deployment's labels and selector, so its pods'.
func workerLabels(q jobsv1alpha1.QueueName) map[string]string {
	return map[string]string{workerAppLabel: workerAppName, jobsv1alpha1.LabelQueue: string(q)}
}

// workerSettleTime is how long a restarted worker container must run before a queue whose
// workers were failing counts them as running again: a crash-looping container runs, and is
// ready, for moments between its back-offs.
const workerSettleTime = time.Minute

// maxFailureDetail bounds each text a container or the Deployment reports (a waiting or
// termination message) in the condition, and maxWorkersMessage the whole condition and Event
// note (an Event's note must stay under 1 kB).
const (
	maxFailureDetail  = 300
	maxWorkersMessage = 1000
)

// failingWaitReasons are the reasons a container waits for that mean it cannot start or keeps
// crashing, unlike ContainerCreating or PodInitializing, which are on the way.
var failingWaitReasons = map[string]bool{
	"CrashLoopBackOff":           true,
	"ImagePullBackOff":           true,
	"ErrImagePull":               true,
	"ErrImageNeverPull":          true,
	"InvalidImageName":           true,
	"CreateContainerConfigError": true,
	"CreateContainerError":       true,
	"RunContainerError":          true,
}

// progressDeadlineExceeded is the reason of a Deployment's Progressing=False condition once its
// rollout is past progressDeadlineSeconds (the deployment controller's TimedOutReason).
const progressDeadlineExceeded = "ProgressDeadlineExceeded"

// jobQueueOfWorkerPod maps a worker pod to its JobQueue, whose name is its queue's.
func jobQueueOfWorkerPod(_ context.Context, o client.Object) []reconcile.Request {
	labels := o.GetLabels()
	q := labels[jobsv1alpha1.LabelQueue]
	if labels[workerAppLabel] != workerAppName || q == "" {
		return nil
	}
	return []reconcile.Request{{NamespacedName: client.ObjectKey{Namespace: o.GetNamespace(), Name: q}}}
}

// reportWorkersOf reports the workers of a JobQueue whose Deployment this reconcile did not
// get to (Redis unreachable): read from the cache, and left alone when there is none yet.
func (r *JobQueueReconciler) reportWorkersOf(ctx context.Context, jq *jobsv1alpha1.JobQueue) error {
	deploy := &appsv1.Deployment{}
	if err := r.client.Get(ctx, client.ObjectKey{Namespace: jq.Namespace, Name: WorkerDeploymentName(jq)}, deploy); err != nil {
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("get worker Deployment: %w", err)
	}
	return r.reportWorkers(ctx, jq, deploy)
}

// reportWorkers sets WorkersAvailable from the worker Deployment and its pods, with a Warning
// Event when the workers turn failing and a Normal one when they recover: once per change, not
// per reconcile.
func (r *JobQueueReconciler) reportWorkers(ctx context.Context, jq *jobsv1alpha1.JobQueue, deploy *appsv1.Deployment) error {
	pods := &corev1.PodList{}
	if err := r.client.List(ctx, pods, client.InNamespace(jq.Namespace), client.MatchingLabels(workerLabels(jq.Spec.Queue))); err != nil {
		return fmt.Errorf("list worker pods: %w", err)
	}
	prev := meta.FindStatusCondition(jq.Status.Conditions, jobsv1alpha1.ConditionWorkersAvailable)
	wasFailing := prev != nil && prev.Reason == jobsv1alpha1.ReasonWorkersFailing
	c, change := assessWorkers(deploy, pods.Items, r.clock.Now()).condition(wasFailing)
	if !change {
		return nil
	}
	setCondition(jq, jobsv1alpha1.ConditionWorkersAvailable, c.Status, c.Reason, c.Message)
	switch {
	case c.Reason == jobsv1alpha1.ReasonWorkersFailing && !wasFailing:
		r.recorder.Eventf(jq, deploy, corev1.EventTypeWarning, jobsv1alpha1.ReasonWorkersFailing, "CheckWorkers", "%s", c.Message)
	case wasFailing && c.Status == metav1.ConditionTrue:
		r.recorder.Eventf(jq, deploy, corev1.EventTypeNormal, jobsv1alpha1.ReasonWorkersRecovered, "CheckWorkers",
			"Workers of queue %s no longer failing: %s", jq.Spec.Queue, c.Message)
	}
	return nil
}

// workerHealth is what a Deployment and its pods say about a queue's workers.
type workerHealth struct {
	wanted, ready int32
	// failure describes the first failure found (pods by name, then the Deployment), failing
	// counts the pods that show one.
	failure string
	failing int
	// settled is false while a ready worker's container runs since a restart less than
	// workerSettleTime ago.
	settled bool
}

// assessWorkers reads the Deployment's wanted replicas and conditions and its pods' states.
// Pods being deleted do not count (a scale-down or rollout stops them); a Failed pod counts
// only while fewer workers are ready than wanted, since an evicted pod stays listed long after
// its replacement runs.
func assessWorkers(deploy *appsv1.Deployment, pods []corev1.Pod, now time.Time) workerHealth {
	h := workerHealth{wanted: 1, settled: true}
	if deploy.Spec.Replicas != nil {
		h.wanted = *deploy.Spec.Replicas
	}
	live := make([]*corev1.Pod, 0, len(pods))
	for i := range pods {
		if pods[i].DeletionTimestamp.IsZero() {
			live = append(live, &pods[i])
		}
	}
	slices.SortFunc(live, func(a, b *corev1.Pod) int { return strings.Compare(a.Name, b.Name) })
	var failedPods []string
	for _, p := range live {
		if isPodReady(p) {
			h.ready++
			if restartedWithin(p, now, workerSettleTime) {
				h.settled = false
			}
		}
		if f := podFailure(p); f != "" {
			h.failing++
			if h.failure == "" {
				h.failure = f
			}
		} else if p.Status.Phase == corev1.PodFailed {
			failedPods = append(failedPods, podFailedMessage(p))
		}
	}
	if h.ready < h.wanted && len(failedPods) > 0 {
		h.failing += len(failedPods)
		if h.failure == "" {
			h.failure = failedPods[0]
		}
	}
	if h.failure == "" {
		h.failure = deploymentFailure(deploy)
	}
	return h
}

// condition is the WorkersAvailable condition the health calls for, and whether to set it:
// after WorkersFailing, workers that are not all ready and settled yet, with no failure seen
// now, leave the condition as it is, so the Normal Event says the workers really recovered.
func (h workerHealth) condition(wasFailing bool) (metav1.Condition, bool) {
	counts := fmt.Sprintf("%d of %d wanted workers ready", h.ready, h.wanted)
	c := metav1.Condition{Type: jobsv1alpha1.ConditionWorkersAvailable}
	switch {
	case h.wanted == 0:
		c.Status, c.Reason, c.Message = metav1.ConditionTrue, jobsv1alpha1.ReasonNoWorkersWanted, "the worker Deployment is scaled to 0"
	case h.failure != "":
		msg := h.failure + "; " + counts
		if h.failing > 1 {
			msg += fmt.Sprintf("; %d worker pods failing", h.failing)
		}
		c.Status, c.Reason, c.Message = metav1.ConditionFalse, jobsv1alpha1.ReasonWorkersFailing, truncate(msg, maxWorkersMessage)
	case h.ready >= h.wanted && (h.settled || !wasFailing):
		c.Status, c.Reason, c.Message = metav1.ConditionTrue, jobsv1alpha1.ReasonWorkersRunning, counts
	case wasFailing:
		return c, false
	default:
		c.Status, c.Reason, c.Message = metav1.ConditionFalse, jobsv1alpha1.ReasonWorkersStarting, counts
	}
	return c, true
}

func isPodReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// restartedWithin tells whether a container of the pod runs since a restart less than d ago.
func restartedWithin(p *corev1.Pod, now time.Time, d time.Duration) bool {
	for _, cs := range p.Status.ContainerStatuses {
		if cs.RestartCount > 0 && cs.State.Running != nil && !cs.State.Running.StartedAt.IsZero() &&
			now.Sub(cs.State.Running.StartedAt.Time) < d {
			return true
		}
	}
	return false
}

// podFailure describes the pod's first container (init containers first) that cannot start or
// keeps crashing, or is "".
func podFailure(p *corev1.Pod) string {
	for _, statuses := range [][]corev1.ContainerStatus{p.Status.InitContainerStatuses, p.Status.ContainerStatuses} {
		for _, cs := range statuses {
			if f := containerFailure(cs); f != "" {
				return fmt.Sprintf("pod %s: %s", p.Name, f)
			}
		}
	}
	return ""
}

// containerFailure describes a container waiting for a reason that means it cannot start, or
// just ended with a non-zero exit code (before its back-off shows), with how it ended last and
// how often it restarted; "" for any other state.
func containerFailure(cs corev1.ContainerStatus) string {
	var msg string
	switch {
	case cs.State.Waiting != nil && failingWaitReasons[cs.State.Waiting.Reason]:
		msg = fmt.Sprintf("container %s waiting: %s", cs.Name, cs.State.Waiting.Reason)
		if m := oneLine(cs.State.Waiting.Message); m != "" {
			msg += " (" + truncate(m, maxFailureDetail) + ")"
		}
	case cs.State.Terminated != nil && cs.State.Terminated.ExitCode != 0:
		msg = fmt.Sprintf("container %s terminated: %s", cs.Name, termination(cs.State.Terminated))
	default:
		return ""
	}
	if t := cs.LastTerminationState.Terminated; t != nil {
		msg += "; last termination: " + termination(t)
	}
	if cs.RestartCount > 0 {
		msg += fmt.Sprintf("; restarted %d times", cs.RestartCount)
	}
	return msg
}

// termination is how a container ended: reason, exit code and its termination message (the
// worker's is the tail of its log: the controller sets FallbackToLogsOnError).
func termination(t *corev1.ContainerStateTerminated) string {
	s := fmt.Sprintf("exit code %d", t.ExitCode)
	if t.Reason != "" {
		s = t.Reason + ", " + s
	}
	if m := oneLine(t.Message); m != "" {
		s += ": " + truncate(m, maxFailureDetail)
	}
	return s
}

func podFailedMessage(p *corev1.Pod) string {
	msg := fmt.Sprintf("pod %s failed", p.Name)
	if p.Status.Reason != "" {
		msg += ": " + p.Status.Reason
	}
	if m := oneLine(p.Status.Message); m != "" {
		msg += ": " + truncate(m, maxFailureDetail)
	}
	return msg
}

// deploymentFailure describes a Deployment that cannot create its pods (ReplicaFailure: quota,
// admission, a missing ServiceAccount) or whose rollout is past its progress deadline, or is
// "". Conditions written for an older generation are not trusted.
func deploymentFailure(d *appsv1.Deployment) string {
	if d.Status.ObservedGeneration < d.Generation {
		return ""
	}
	for _, c := range d.Status.Conditions {
		failed := c.Type == appsv1.DeploymentReplicaFailure && c.Status == corev1.ConditionTrue ||
			c.Type == appsv1.DeploymentProgressing && c.Status == corev1.ConditionFalse && c.Reason == progressDeadlineExceeded
		if failed {
			return fmt.Sprintf("Deployment %s %s: %s: %s", d.Name, c.Type, c.Reason, truncate(oneLine(c.Message), maxFailureDetail))
		}
	}
	return ""
}

// oneLine folds a multi-line text (a stack trace) into one line.
func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// truncate cuts s to at most n bytes, on a rune boundary, marking the cut.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	const mark = "…"
	cut := n - len(mark)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + mark
}
