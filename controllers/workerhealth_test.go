package controllers

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	jobsv1alpha1 "github.com/jengu/queue-operator/api/v1alpha1"
)

func TestWorkersAvailableCondition(t *testing.T) {
	now := time.Date(2027, 3, 1, 12, 0, 0, 0, time.UTC)
	deploy := func(replicas int32, conds ...appsv1.DeploymentCondition) *appsv1.Deployment {
		return &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "competitor-worker", Generation: 2},
			Spec:   appsv1.DeploymentSpec{Replicas: ptr.To(replicas)},
			Status: appsv1.DeploymentStatus{ObservedGeneration: 2, Conditions: conds}}
	}
	ready := func(name string, restarts int32, startedAgo time.Duration) corev1.Pod {
		return corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name}, Status: corev1.PodStatus{Phase: corev1.PodRunning,
			Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}},
			ContainerStatuses: []corev1.ContainerStatus{{Name: "worker", Ready: true, RestartCount: restarts,
				State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: metav1.NewTime(now.Add(-startedAgo))}}}}}}
	}
	crashing := func(name string) corev1.Pod {
		return corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name}, Status: corev1.PodStatus{Phase: corev1.PodRunning,
			ContainerStatuses: []corev1.ContainerStatus{{Name: "worker", RestartCount: 4,
				State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff", Message: "back-off 1m20s"}},
				LastTerminationState: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 1, Reason: "Error",
					Message: "panic: REDIS_URL is not set\n\ngoroutine 1 [running]:"}}}}}}
	}
	evicted := corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "w-evicted"}, Status: corev1.PodStatus{Phase: corev1.PodFailed,
		Reason: "Evicted", Message: "The node was low on resource: memory."}}
	deleting := crashing("w-deleting")
	deleting.DeletionTimestamp = ptr.To(metav1.NewTime(now))
	pending := corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "w-pending"}, Status: corev1.PodStatus{Phase: corev1.PodPending,
		ContainerStatuses: []corev1.ContainerStatus{{Name: "worker",
			State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ContainerCreating"}}}}}}
	crashLoopMsg := "pod w-a: container worker waiting: CrashLoopBackOff (back-off 1m20s); last termination: Error, exit code 1: " +
		"panic: REDIS_URL is not set goroutine 1 [running]:; restarted 4 times"

	cases := []struct {
		name       string
		deploy     *appsv1.Deployment
		pods       []corev1.Pod
		wasFailing bool
		want       *metav1.Condition // nil: left as it is
	}{
		{name: "scaled to zero", deploy: deploy(0), pods: []corev1.Pod{crashing("w-a")},
			want: &metav1.Condition{Status: metav1.ConditionTrue, Reason: jobsv1alpha1.ReasonNoWorkersWanted, Message: "the worker Deployment is scaled to 0"}},
		{name: "all ready", deploy: deploy(2), pods: []corev1.Pod{ready("w-a", 0, time.Second), ready("w-b", 0, time.Second)},
			want: &metav1.Condition{Status: metav1.ConditionTrue, Reason: jobsv1alpha1.ReasonWorkersRunning, Message: "2 of 2 wanted workers ready"}},
		{name: "starting", deploy: deploy(2), pods: []corev1.Pod{ready("w-a", 0, time.Second), pending},
			want: &metav1.Condition{Status: metav1.ConditionFalse, Reason: jobsv1alpha1.ReasonWorkersStarting, Message: "1 of 2 wanted workers ready"}},
		{name: "crash loop, first pod by name named", deploy: deploy(1), pods: []corev1.Pod{crashing("w-b"), crashing("w-a")},
			want: &metav1.Condition{Status: metav1.ConditionFalse, Reason: jobsv1alpha1.ReasonWorkersFailing,
				Message: crashLoopMsg + "; 0 of 1 wanted workers ready; 2 worker pods failing"}},
		{name: "crash loop beside ready pods (a stuck rollout)", deploy: deploy(1), pods: []corev1.Pod{ready("w-b", 0, time.Hour), crashing("w-a")},
			want: &metav1.Condition{Status: metav1.ConditionFalse, Reason: jobsv1alpha1.ReasonWorkersFailing,
				Message: crashLoopMsg + "; 1 of 1 wanted workers ready"}},
		{name: "a pod being deleted does not count", deploy: deploy(1), pods: []corev1.Pod{ready("w-b", 0, time.Hour), deleting},
			want: &metav1.Condition{Status: metav1.ConditionTrue, Reason: jobsv1alpha1.ReasonWorkersRunning, Message: "1 of 1 wanted workers ready"}},
		{name: "evicted, no replacement ready", deploy: deploy(1), pods: []corev1.Pod{evicted, pending},
			want: &metav1.Condition{Status: metav1.ConditionFalse, Reason: jobsv1alpha1.ReasonWorkersFailing,
				Message: "pod w-evicted failed: Evicted: The node was low on resource: memory.; 0 of 1 wanted workers ready"}},
		{name: "evicted, replacement ready", deploy: deploy(1), pods: []corev1.Pod{evicted, ready("w-b", 0, time.Second)},
			want: &metav1.Condition{Status: metav1.ConditionTrue, Reason: jobsv1alpha1.ReasonWorkersRunning, Message: "1 of 1 wanted workers ready"}},
		{name: "replica failure", deploy: deploy(1, appsv1.DeploymentCondition{Type: appsv1.DeploymentReplicaFailure, Status: corev1.ConditionTrue,
			Reason: "FailedCreate", Message: `pods "competitor-worker-1" is forbidden: exceeded quota`}),
			want: &metav1.Condition{Status: metav1.ConditionFalse, Reason: jobsv1alpha1.ReasonWorkersFailing,
				Message: `Deployment competitor-worker ReplicaFailure: FailedCreate: pods "competitor-worker-1" is forbidden: exceeded quota; 0 of 1 wanted workers ready`}},
		{name: "progress deadline exceeded", deploy: deploy(1, appsv1.DeploymentCondition{Type: appsv1.DeploymentProgressing, Status: corev1.ConditionFalse,
			Reason: "ProgressDeadlineExceeded", Message: `ReplicaSet "competitor-worker-5d" has timed out progressing.`}),
			pods: []corev1.Pod{ready("w-a", 0, time.Hour)},
			want: &metav1.Condition{Status: metav1.ConditionFalse, Reason: jobsv1alpha1.ReasonWorkersFailing,
				Message: `Deployment competitor-worker Progressing: ProgressDeadlineExceeded: ReplicaSet "competitor-worker-5d" has timed out progressing.; 1 of 1 wanted workers ready`}},
		{name: "a Deployment condition of an older generation is not trusted", deploy: func() *appsv1.Deployment {
			d := deploy(1, appsv1.DeploymentCondition{Type: appsv1.DeploymentReplicaFailure, Status: corev1.ConditionTrue, Reason: "FailedCreate"})
			d.Generation = 3
			return d
		}(), pods: []corev1.Pod{ready("w-a", 0, time.Hour)},
			want: &metav1.Condition{Status: metav1.ConditionTrue, Reason: jobsv1alpha1.ReasonWorkersRunning, Message: "1 of 1 wanted workers ready"}},
		{name: "after failing, a crash loop's short run is not a recovery", deploy: deploy(1), pods: []corev1.Pod{ready("w-a", 5, 10*time.Second)},
			wasFailing: true},
		{name: "after failing, pods starting leave it failing", deploy: deploy(1), pods: []corev1.Pod{pending}, wasFailing: true},
		{name: "after failing, a restarted worker that runs for a while recovers", deploy: deploy(1), pods: []corev1.Pod{ready("w-a", 5, 2*time.Minute)},
			wasFailing: true,
			want:       &metav1.Condition{Status: metav1.ConditionTrue, Reason: jobsv1alpha1.ReasonWorkersRunning, Message: "1 of 1 wanted workers ready"}},
		{name: "after failing, a new pod that never restarted recovers at once", deploy: deploy(1), pods: []corev1.Pod{ready("w-b", 0, time.Second)},
			wasFailing: true,
			want:       &metav1.Condition{Status: metav1.ConditionTrue, Reason: jobsv1alpha1.ReasonWorkersRunning, Message: "1 of 1 wanted workers ready"}},
		{name: "not failing before, a restarted worker is running", deploy: deploy(1), pods: []corev1.Pod{ready("w-a", 1, 10*time.Second)},
			want: &metav1.Condition{Status: metav1.ConditionTrue, Reason: jobsv1alpha1.ReasonWorkersRunning, Message: "1 of 1 wanted workers ready"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, set := assessWorkers(tc.deploy, tc.pods, now).condition(tc.wasFailing)
			if tc.want == nil {
				if set {
					t.Fatalf("condition set to %+v, want it left as it is", got)
				}
				return
			}
			if !set {
				t.Fatalf("condition left as it is, want %+v", *tc.want)
			}
			tc.want.Type = jobsv1alpha1.ConditionWorkersAvailable
			if diff := cmp.Diff(*tc.want, got); diff != "" {
				t.Errorf("condition (-want +got):\n%s", diff)
			}
		})
	}
}

func TestContainerFailureQuotesAtMostAFewHundredBytesOfEachText(t *testing.T) {
	long := strings.Repeat("é", 400) // 800 bytes, two per rune
	cs := corev1.ContainerStatus{Name: "worker", RestartCount: 9,
		State:                corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff", Message: long}},
		LastTerminationState: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 2, Message: long}}}
	got := containerFailure(cs)
	cut := truncate(long, maxFailureDetail)
	if len(cut) > maxFailureDetail || !strings.HasSuffix(cut, "…") || !strings.HasPrefix(long, strings.TrimSuffix(cut, "…")) {
		t.Fatalf("truncate(%d bytes, %d) = %d bytes %q", len(long), maxFailureDetail, len(cut), cut)
	}
	want := "container worker waiting: CrashLoopBackOff (" + cut + "); last termination: exit code 2: " + cut + "; restarted 9 times"
	if got != want {
		t.Errorf("containerFailure:\n got %q\nwant %q", got, want)
	}
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: strings.Repeat("p", 253)},
		Status: corev1.PodStatus{InitContainerStatuses: []corev1.ContainerStatus{cs}, ContainerStatuses: []corev1.ContainerStatus{cs, cs}}}
	c, _ := assessWorkers(&appsv1.Deployment{}, []corev1.Pod{*pod}, time.Now()).condition(false)
	if len(c.Message) > maxWorkersMessage {
		t.Errorf("condition message is %d bytes, over %d (an Event's note must stay under 1 kB)", len(c.Message), maxWorkersMessage)
	}
}
