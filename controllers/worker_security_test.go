package controllers_test

import (
	"context"
	"testing"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	jobsv1alpha1 "github.com/jengu/queue-operator/api/v1alpha1"
)

// TestWorkerPodsPassTheRestrictedPodSecurityProfile: in a namespace that enforces the restricted
// Pod Security profile, a pod made from the worker Deployment's template (there is no
// kube-controller-manager here to make it) is admitted by the kube-apiserver's own PodSecurity
// admission, and runs as the worker ServiceAccount.
func TestWorkerPodsPassTheRestrictedPodSecurityProfile(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	opts := scalingOptions()
	opts.WorkerServiceAccount = "queue-worker"
	f := newFixture(t, nil, opts)
	ns := &corev1.Namespace{}
	g.Expect(f.c.Get(ctx, client.ObjectKey{Name: f.ns}, ns)).To(Succeed())
	before := ns.DeepCopy()
	ns.Labels["pod-security.kubernetes.io/enforce"] = "restricted"
	g.Expect(f.c.Patch(ctx, ns, client.MergeFrom(before))).To(Succeed())
	g.Expect(f.c.Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: "queue-worker"}})).To(Succeed())

	jq := f.scalingQueue()
	g.Eventually(f.deployment(jq)).WithTimeout(timeout).ShouldNot(BeNil())
	tpl := f.deployment(jq)().Spec.Template
	g.Expect(tpl.Spec.ServiceAccountName).To(Equal("queue-worker"))
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, GenerateName: "worker-", Labels: tpl.Labels}, Spec: tpl.Spec}
	g.Expect(f.c.Create(ctx, pod)).To(Succeed(), "the restricted profile admits the worker pod")

	// A template's own service account and securityContext are the JobQueue author's.
	other := f.jobQueue(jobsv1alpha1.QueueEnrichment, func(jq *jobsv1alpha1.JobQueue) {
		jq.Spec.Worker.Image = "example.test/queue-operator:v1"
		jq.Spec.Worker.Template = &corev1.PodTemplateSpec{Spec: corev1.PodSpec{
			ServiceAccountName: "own",
			SecurityContext:    &corev1.PodSecurityContext{RunAsUser: ptr.To(int64(1000))},
			Containers:         []corev1.Container{{Name: "worker", SecurityContext: &corev1.SecurityContext{Privileged: ptr.To(false)}}},
		}}
	})
	g.Eventually(f.deployment(other)).WithTimeout(timeout).ShouldNot(BeNil())
	spec := f.deployment(other)().Spec.Template.Spec
	g.Expect(spec.ServiceAccountName).To(Equal("own"))
	g.Expect(spec.SecurityContext).To(Equal(&corev1.PodSecurityContext{RunAsUser: ptr.To(int64(1000))}))
	g.Expect(spec.Containers[0].SecurityContext).To(Equal(&corev1.SecurityContext{Privileged: ptr.To(false)}))
}

// TestWorkersGetRedisURLFromTheNamedSecret: a JobQueue naming a Secret for REDIS_URL gets a
// secretKeyRef, never the controller's URL in plain text; without one, the plain URL goes only
// where the controller allows it.
func TestWorkersGetRedisURLFromTheNamedSecret(t *testing.T) {
	g := NewWithT(t)
	opts := scalingOptions()
	opts.RedisURL = "redis://:password@redis.example:6379/0"
	opts.WorkerPlainRedisURL = false
	f := newFixture(t, nil, opts)

	withRef := f.scalingQueue(func(jq *jobsv1alpha1.JobQueue) {
		jq.Spec.Worker.RedisURLSecretRef = &jobsv1alpha1.SecretKeyRef{Name: "queue-redis", Key: "url"}
	})
	without := f.jobQueue(jobsv1alpha1.QueueEnrichment, func(jq *jobsv1alpha1.JobQueue) { jq.Spec.Worker.Image = "example.test/queue-operator:v1" })
	g.Eventually(f.deployment(withRef)).WithTimeout(timeout).ShouldNot(BeNil())
	g.Eventually(f.deployment(without)).WithTimeout(timeout).ShouldNot(BeNil())
	redisEnv := func(jq *jobsv1alpha1.JobQueue) []corev1.EnvVar {
		var out []corev1.EnvVar
		for _, e := range f.deployment(jq)().Spec.Template.Spec.Containers[0].Env {
			if e.Name == "REDIS_URL" {
				out = append(out, e)
			}
		}
		return out
	}
	g.Expect(redisEnv(withRef)).To(Equal([]corev1.EnvVar{{Name: "REDIS_URL", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
		LocalObjectReference: corev1.LocalObjectReference{Name: "queue-redis"}, Key: "url"}}}}))
	g.Expect(redisEnv(without)).To(BeEmpty(), "no plain-text URL when the controller may not pass one")
}

func ptrTo[T any](v T) *T { return &v }

// TestWorkerPodsGetAWritableTmp: the worker's root filesystem is read-only, and the binary panics
// at start without a writable temp directory (test/node saw every pod crash-loop), so the worker
// container mounts an emptyDir at /tmp, unless its template mounts something there itself.
func TestWorkerPodsGetAWritableTmp(t *testing.T) {
	g := NewWithT(t)
	f := newFixture(t, nil, scalingOptions())
	jq := f.scalingQueue()
	g.Eventually(f.deployment(jq)).WithTimeout(timeout).ShouldNot(BeNil())
	spec := f.deployment(jq)().Spec.Template.Spec
	g.Expect(spec.Containers[0].VolumeMounts).To(ContainElement(And(HaveField("MountPath", "/tmp"), HaveField("Name", "tmp"))))
	g.Expect(spec.Volumes).To(ContainElement(And(HaveField("Name", "tmp"), HaveField("EmptyDir", Not(BeNil())))))
}
