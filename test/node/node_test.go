package node_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	jobsv1alpha1 "github.com/jengu/queue-operator/api/v1alpha1"
)

// TestNode runs its parts in order on one installed release: each part leaves the release as
// it found it (no job left running, the worker Deployment back at zero).
func TestNode(t *testing.T) {
	s := setUp(t)
	t.Run("EnrichThroughTheFacadePod", s.enrichThroughTheFacadePod)
	t.Run("WorkersScaleFromZeroToNAndBack", s.workersScaleFromZeroToNAndBack)
	t.Run("AWorkerPodDeletedMidJobHandsItBack", s.aWorkerPodDeletedMidJobHandsItBack)
	t.Run("AWorkerPodKilledMidJobLosesNoJob", s.aWorkerPodKilledMidJobLosesNoJob)
	t.Run("AQueueWhoseWorkersCannotStartSaysSo", s.aQueueWhoseWorkersCannotStartSaysSo)
	t.Run("UpgradeRollsOut", s.upgradeRollsOut)
	t.Run("UninstallLeavesNoJobStuck", s.uninstallLeavesNoJobStuck)
}

// enrichThroughTheFacadePod: a file uploaded and enriched through the facade's pod, processed by
// a worker pod the queue scaled up from zero, answered as completed.
func (s *suite) enrichThroughTheFacadePod(t *testing.T) {
	g := NewWithT(t)
	fileID := s.uploadFile(g)
	answer := s.call(g, http.MethodPost, "/api/files/"+fileID+"/enrich", "{}")
	g.Expect(answer).To(HaveKeyWithValue("status", "queued"), "%v", answer)
	jobID := answer["jobId"].(string)
	g.Eventually(func(g Gomega) any { return s.call(g, http.MethodGet, "/api/jobs/"+jobID, "")["job"] }).
		WithTimeout(2 * time.Minute).WithPolling(time.Second).Should(HaveKeyWithValue("status", "completed"))
	job := &jobsv1alpha1.EnrichmentJob{}
	g.Expect(s.kube.Get(s.ctx, client.ObjectKey{Namespace: namespace, Name: jobID}, job)).To(Succeed())
	g.Expect(job.Status.Worker).To(HavePrefix(workerDeployment+"-"), "a worker pod ran it")
	g.Expect(s.weather.seen()).To(BeNumerically(">", 0), "the worker pod asked the weather stand-in")
	s.waitForWorkers(g, 0)
}

// workersScaleFromZeroToNAndBack: jobs pile up behind a weather source that holds its answers,
// the worker Deployment grows from zero to more than one real pod, and once the answers come and
// the queue is idle it shrinks back to zero. (A rate limit cannot pile them up: the autoscaler
// caps the replicas at what the limit can feed.) Attempts held past the queue's 10 s timeout fail
// and are retried after their backoff, so completion may take a retry or two.
func (s *suite) workersScaleFromZeroToNAndBack(t *testing.T) {
	g := NewWithT(t)
	s.waitForWorkers(g, 0)
	fileID := s.uploadFile(g)
	release := s.weather.hold()
	defer release()
	var jobIDs []string
	for range 12 {
		answer := s.call(g, http.MethodPost, "/api/files/"+fileID+"/enrich", "{}")
		g.Expect(answer).To(HaveKey("jobId"), "%v", answer)
		jobIDs = append(jobIDs, answer["jobId"].(string))
	}
	g.Eventually(func(g Gomega) int { return len(s.readyWorkerPods(g)) }).WithTimeout(90*time.Second).WithPolling(time.Second).
		Should(BeNumerically(">=", 2), "ready worker pods while 12 jobs wait")
	release()
	for _, id := range jobIDs {
		g.Eventually(func(g Gomega) any { return s.call(g, http.MethodGet, "/api/jobs/"+id, "")["job"] }).
			WithTimeout(3*time.Minute).WithPolling(time.Second).Should(HaveKeyWithValue("status", "completed"), id)
	}
	s.waitForWorkers(g, 0)
}

// aWorkerPodDeletedMidJobHandsItBack: the pod running a job is deleted as a rollout or a
// scale-down would (SIGTERM, its grace period); at the end of the worker's shutdown grace it hands
// the job back uncounted, and another pod completes it.
func (s *suite) aWorkerPodDeletedMidJobHandsItBack(t *testing.T) {
	s.removePodMidJob(t, "handed-back", nil, 1, "a job handed back at shutdown costs no attempt")
}

// aWorkerPodKilledMidJobLosesNoJob: the pod running a job is force-deleted (SIGKILL after 2 s,
// well inside the worker's shutdown grace); its lease runs out, the controller reclaims the job,
// another pod completes it.
func (s *suite) aWorkerPodKilledMidJobLosesNoJob(t *testing.T) {
	s.removePodMidJob(t, "killed", []client.DeleteOption{client.GracePeriodSeconds(0)}, 2, "the killed attempt counts")
}

// removePodMidJob deletes the pod running a job held at the weather gate, waits until another pod
// leases the job, lets it complete and checks how many attempts it cost.
func (s *suite) removePodMidJob(t *testing.T, name string, deleteOpts []client.DeleteOption, wantAttempts int32, why string) {
	g := NewWithT(t)
	release := s.weather.hold()
	defer release()
	job := s.createJob(g, name)
	first := s.podRunning(g, job)
	logs := s.followLogs(first)
	defer func() {
		if t.Failed() {
			t.Logf("log of %s, removed mid-job:\n%s", first.Name, logs())
		}
	}()
	g.Expect(s.kube.Delete(s.ctx, first, deleteOpts...)).To(Succeed())
	g.Eventually(func(g Gomega) string { return s.jobOf(g, job).Status.Worker }).WithTimeout(2*time.Minute).WithPolling(time.Second).
		ShouldNot(Or(BeEmpty(), HavePrefix(first.Name+"-")), "another pod leases the job")
	release()
	g.Eventually(func(g Gomega) jobsv1alpha1.JobPhase { return s.jobOf(g, job).Status.Phase }).WithTimeout(time.Minute).
		WithPolling(time.Second).Should(Equal(jobsv1alpha1.PhaseCompleted))
	g.Expect(s.jobOf(g, job).Status.AttemptsMade).To(Equal(wantAttempts), why)
	s.waitForWorkers(g, 0)
}

// aQueueWhoseWorkersCannotStartSaysSo: a JobQueue whose worker image does not exist shows it in
// its status and an Event, instead of silently crash-looping.
func (s *suite) aQueueWhoseWorkersCannotStartSaysSo(t *testing.T) {
	g := NewWithT(t)
	s.patchJobQueue(g, "competitor", `{"spec":{"worker":{"image":"localhost/queue-operator/missing:1"},"autoscaling":{"minReplicas":1}}}`)
	defer s.patchJobQueue(g, "competitor", `{"spec":{"worker":{"image":null},"autoscaling":{"minReplicas":0}}}`)
	g.Eventually(func(g Gomega) *metav1.Condition {
		jq := &jobsv1alpha1.JobQueue{}
		g.Expect(s.kube.Get(s.ctx, client.ObjectKey{Namespace: namespace, Name: "competitor"}, jq)).To(Succeed())
		return findCondition(jq.Status.Conditions, jobsv1alpha1.ConditionWorkersAvailable)
	}).WithTimeout(2 * time.Minute).WithPolling(time.Second).Should(And(Not(BeNil()),
		HaveField("Status", metav1.ConditionFalse), HaveField("Message", ContainSubstring("missing:1"))))
	g.Eventually(func(g Gomega) []string {
		events := &corev1.EventList{}
		g.Expect(s.kube.List(s.ctx, events, client.InNamespace(namespace))).To(Succeed())
		var reasons []string
		for _, e := range events.Items {
			if e.InvolvedObject.Kind == "JobQueue" && e.InvolvedObject.Name == "competitor" && e.Type == corev1.EventTypeWarning {
				reasons = append(reasons, e.Reason)
			}
		}
		return reasons
	}).WithTimeout(time.Minute).Should(ContainElement(jobsv1alpha1.ReasonWorkersFailing))
}

// upgradeRollsOut: `helm upgrade` with a changed value of the facade's pod template rolls its
// pods out: new pods, from a new ReplicaSet, all ready, and the API answers from them.
func (s *suite) upgradeRollsOut(t *testing.T) {
	g := NewWithT(t)
	before := s.facadePods(g)
	s.helm(g, "upgrade", release, chartDir, "-n", namespace, "-f", s.valuesFile, "--set", "apiserver.replicas=2",
		"--set", "apiserver.podAnnotations.rolled=yes", "--wait", "--timeout", "3m")
	d := s.deployment(g, apiserverDeployment)
	g.Expect(d.Status.ReadyReplicas).To(Equal(int32(2)))
	g.Expect(d.Status.UpdatedReplicas).To(Equal(int32(2)))
	g.Eventually(func(g Gomega) []string { return s.facadePods(g) }).WithTimeout(time.Minute).
		Should(And(HaveLen(2), Not(ContainElements(before))), "the old pods are gone, two new ones run")
	s.findFacade(g)
	g.Expect(s.call(g, http.MethodGet, "/api/jobs?limit=1", "")).To(HaveKeyWithValue("httpStatus", 200.0))
}

// uninstallLeavesNoJobStuck: jobs are left in every state that matters (finished, waiting), the
// release is uninstalled, and no job CR remains held by the controller's finalizer.
func (s *suite) uninstallLeavesNoJobStuck(t *testing.T) {
	g := NewWithT(t)
	s.createJob(g, "left-waiting")
	s.patchJobQueue(g, "enrichment", `{"spec":{"paused":true}}`)
	s.createJob(g, "left-paused")
	s.helm(g, "uninstall", release, "-n", namespace, "--wait", "--timeout", "3m")
	g.Eventually(func(g Gomega) []string {
		list := &jobsv1alpha1.EnrichmentJobList{}
		g.Expect(s.kube.List(s.ctx, list, client.InNamespace(namespace))).To(Succeed())
		var stuck []string
		for _, j := range list.Items {
			stuck = append(stuck, fmt.Sprintf("%s (finalizers %v, deleting %v)", j.Name, j.Finalizers, j.DeletionTimestamp != nil))
		}
		return stuck
	}).WithTimeout(3 * time.Minute).WithPolling(time.Second).Should(BeEmpty())
	g.Expect(s.kube.Delete(s.ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}})).To(Succeed())
	g.Eventually(func() error {
		return s.kube.Get(s.ctx, client.ObjectKey{Name: namespace}, &corev1.Namespace{})
	}).WithTimeout(3*time.Minute).WithPolling(time.Second).Should(MatchError(ContainSubstring("not found")), "the namespace goes")
}

// createJob creates an enrichment job as kubectl would, with an attempt timeout long enough to
// outlast the worker's shutdown grace.
func (s *suite) createJob(g Gomega, name string) *jobsv1alpha1.EnrichmentJob {
	fileID := s.uploadFile(g)
	job := &jobsv1alpha1.EnrichmentJob{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name},
		Spec: jobsv1alpha1.EnrichmentJobSpec{
			JobCommonSpec:    jobsv1alpha1.JobCommonSpec{PropertyID: fileID, UserID: user, TimeoutSeconds: ptr.To(int32(300))},
			EnrichmentFields: jobsv1alpha1.EnrichmentFields{Location: madrid, CountryCode: "ES"},
		},
	}
	g.Expect(s.kube.Create(s.ctx, job)).To(Succeed())
	return job
}

func (s *suite) jobOf(g Gomega, job *jobsv1alpha1.EnrichmentJob) *jobsv1alpha1.EnrichmentJob {
	got := &jobsv1alpha1.EnrichmentJob{}
	g.Expect(s.kube.Get(s.ctx, client.ObjectKeyFromObject(job), got)).To(Succeed())
	return got
}

// podRunning waits until a worker pod runs the job (its request is held at the weather
// stand-in) and returns that pod.
func (s *suite) podRunning(g Gomega, job *jobsv1alpha1.EnrichmentJob) *corev1.Pod {
	var pod *corev1.Pod
	g.Eventually(func(g Gomega) error {
		worker := s.jobOf(g, job).Status.Worker
		if worker == "" || s.weather.waiting() == 0 {
			return fmt.Errorf("job %s not running yet (worker %q)", job.Name, worker)
		}
		for _, p := range s.workerPods(g) {
			if strings.HasPrefix(worker, p.Name+"-") {
				pod = &p
				return nil
			}
		}
		return fmt.Errorf("no pod runs worker %s", worker)
	}).WithTimeout(2 * time.Minute).WithPolling(time.Second).Should(Succeed())
	return pod
}

func (s *suite) workerPods(g Gomega) []corev1.Pod {
	pods := &corev1.PodList{}
	g.Expect(s.kube.List(s.ctx, pods, client.InNamespace(namespace),
		client.MatchingLabels{jobsv1alpha1.LabelQueue: string(jobsv1alpha1.QueueEnrichment)})).To(Succeed())
	return pods.Items
}

func (s *suite) readyWorkerPods(g Gomega) []string {
	var ready []string
	for _, p := range s.workerPods(g) {
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue && p.DeletionTimestamp == nil {
				ready = append(ready, p.Name)
			}
		}
	}
	return ready
}

// waitForWorkers waits until the enrichment worker Deployment wants n replicas and runs n pods.
func (s *suite) waitForWorkers(g Gomega, n int32) {
	g.Eventually(func(g Gomega) string {
		d := s.deployment(g, workerDeployment)
		return fmt.Sprintf("want %d, have %d pods", ptr.Deref(d.Spec.Replicas, -1), len(s.workerPods(g)))
	}).WithTimeout(3 * time.Minute).WithPolling(time.Second).Should(Equal(fmt.Sprintf("want %d, have %d pods", n, n)))
}

func (s *suite) deployment(g Gomega, name string) *appsv1.Deployment {
	d := &appsv1.Deployment{}
	g.Expect(s.kube.Get(s.ctx, client.ObjectKey{Namespace: namespace, Name: name}, d)).To(Succeed())
	return d
}

func (s *suite) patchJobQueue(g Gomega, name, patch string) {
	jq := &jobsv1alpha1.JobQueue{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name}}
	g.Expect(s.kube.Patch(context.Background(), jq, client.RawPatch("application/merge-patch+json", []byte(patch)))).To(Succeed())
}

// followLogs streams a pod's log from now until its container ends, and returns what came.
func (s *suite) followLogs(pod *corev1.Pod) func() string {
	var mu sync.Mutex
	var buf strings.Builder
	go func() {
		stream, err := s.cluster.Client.CoreV1().Pods(namespace).GetLogs(pod.Name, &corev1.PodLogOptions{Follow: true}).Stream(s.ctx)
		if err != nil {
			mu.Lock()
			fmt.Fprintf(&buf, "(log stream: %v)", err)
			mu.Unlock()
			return
		}
		defer stream.Close()
		chunk := make([]byte, 4096)
		for {
			n, err := stream.Read(chunk)
			mu.Lock()
			buf.Write(chunk[:n])
			mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	return func() string { mu.Lock(); defer mu.Unlock(); return buf.String() }
}

func (s *suite) facadePods(g Gomega) []string {
	pods := &corev1.PodList{}
	g.Expect(s.kube.List(s.ctx, pods, client.InNamespace(namespace),
		client.MatchingLabels{"app.kubernetes.io/component": "apiserver"})).To(Succeed())
	var names []string
	for _, p := range pods.Items {
		if p.DeletionTimestamp == nil {
			names = append(names, p.Name)
		}
	}
	return names
}

func findCondition(conds []metav1.Condition, t string) *metav1.Condition {
	for i := range conds {
		if conds[i].Type == t {
			return &conds[i]
		}
	}
	return nil
}
