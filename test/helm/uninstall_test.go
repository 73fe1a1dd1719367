package helm_test

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	jobsv1alpha1 "github.com/jengu/queue-operator/api/v1alpha1"
	"github.com/jengu/queue-operator/internal/testenv"
	"github.com/jengu/queue-operator/internal/uninstall"
)

// hookWeight is the object's helm.sh/hook-weight after checking it is a pre-delete hook that
// is deleted once it succeeded and replaced when it runs again.
func hookWeight(g Gomega, o *unstructured.Unstructured) int {
	g.Expect(o).NotTo(BeNil())
	a := o.GetAnnotations()
	g.Expect(a).To(HaveKeyWithValue("helm.sh/hook", "pre-delete"), "%s %s", o.GetKind(), o.GetName())
	g.Expect(a).To(HaveKeyWithValue("helm.sh/hook-delete-policy", "before-hook-creation,hook-succeeded"), "%s %s", o.GetKind(), o.GetName())
	w, err := strconv.Atoi(a["helm.sh/hook-weight"])
	g.Expect(err).NotTo(HaveOccurred(), "%s %s hook-weight", o.GetKind(), o.GetName())
	return w
}

// TestUninstallHookRenders: by default the chart has a pre-delete hook, a Job running
// `queue-operator uninstall` for the release namespace as a ServiceAccount of its own, whose
// ServiceAccount, Role and RoleBinding come first; uninstall.deleteJobs=false renders no hook.
func TestUninstallHookRenders(t *testing.T) {
	g := NewWithT(t)
	_, objs := render(t, "qo", "jobs", append([]string{"--set", "uninstall.timeout=45s",
		"--set", "imagePullSecrets[0].name=ghcr"}, requiredValues...)...)
	const name = "qo-queue-operator-uninstall"
	job := find(objs, "Job", name)
	jobWeight := hookWeight(g, job)
	for _, kind := range []string{"ServiceAccount", "Role", "RoleBinding"} {
		g.Expect(hookWeight(g, find(objs, kind, name))).To(BeNumerically("<", jobWeight), "%s exists before the Job", kind)
	}
	g.Expect(hookWeight(g, find(objs, "Role", name))).To(BeNumerically("<", hookWeight(g, find(objs, "RoleBinding", name))))

	j := &batchv1.Job{}
	g.Expect(fromUnstructured(job, j)).To(Succeed())
	pod := j.Spec.Template.Spec
	g.Expect(pod.ServiceAccountName).To(Equal(name))
	g.Expect(pod.RestartPolicy).To(Equal(corev1.RestartPolicyNever))
	g.Expect(pod.ImagePullSecrets).To(Equal([]corev1.LocalObjectReference{{Name: "ghcr"}}))
	g.Expect(pod.SecurityContext).To(Equal(&corev1.PodSecurityContext{RunAsNonRoot: ptr.To(true), RunAsUser: ptr.To(int64(65532)),
		SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault}}), "the chart's podSecurityContext")
	g.Expect(pod.Containers).To(HaveLen(1))
	c := pod.Containers[0]
	g.Expect(c.Image).To(Equal("ghcr.io/jengu/queue-operator:0.1.0"))
	g.Expect(c.Args).To(Equal([]string{"uninstall", "--namespace=jobs", "--timeout=45s"}))
	g.Expect(c.SecurityContext).To(Equal(&corev1.SecurityContext{AllowPrivilegeEscalation: ptr.To(false),
		ReadOnlyRootFilesystem: ptr.To(true), Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}}}), "the chart's securityContext")
	g.Expect(c.Resources.Limits.Memory().String()).To(Equal("128Mi"))

	role := &rbacv1.Role{}
	g.Expect(fromUnstructured(find(objs, "Role", name), role)).To(Succeed())
	g.Expect(role.Rules).To(Equal([]rbacv1.PolicyRule{
		{APIGroups: []string{"jobs.jengu.io"}, Resources: []string{"enrichmentjobs", "competitorjobs", "analyticsjobs"},
			Verbs: []string{"list", "deletecollection", "patch"}},
		{APIGroups: []string{"jobs.jengu.io"}, Resources: []string{"jobschedules"}, Verbs: []string{"list", "deletecollection"}},
	}))

	_, objs = render(t, "qo", "jobs", append([]string{"--set", "uninstall.deleteJobs=false"}, requiredValues...)...)
	g.Expect(kinds(objs)).NotTo(HaveKey("Job"))
	g.Expect(kinds(objs)).NotTo(HaveKey("Role"))
	for _, o := range objs {
		g.Expect(o.GetName()).NotTo(HaveSuffix("-uninstall"), "%s %s", o.GetKind(), o.GetName())
		g.Expect(o.GetAnnotations()).NotTo(HaveKey("helm.sh/hook"), "%s %s", o.GetKind(), o.GetName())
	}
}

// TestUninstallHookHasItsRights runs the hook's logic as the hook's ServiceAccount against the
// RBAC the chart installed, with no controller: it deletes the release namespace's schedules
// and jobs and, past its timeout, removes their finalizers; it can do nothing elsewhere.
func TestUninstallHookHasItsRights(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	ns, other := newNamespace(t, "helm-uninstall"), newNamespace(t, "helm-uninstall-other")
	install(t, "un", ns, requiredValues...)
	hook := as(t, ns, "un-queue-operator-uninstall")

	var jobs []jobsv1alpha1.JobObject
	for _, name := range []string{"enrich-0000eeee-1734512345000", "enrich-0000ffff-1734512345000"} {
		job := sampleJob(t, ns, name)
		jobsv1alpha1.Stamp(job, ns)
		g.Expect(env.Client.Create(ctx, job)).To(Succeed())
		jobs = append(jobs, job)
	}
	schedule := &jobsv1alpha1.JobSchedule{}
	data, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "config", "samples", "jobschedule.yaml"))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(yaml.Unmarshal(data, schedule)).To(Succeed())
	schedule.Namespace = ns
	g.Expect(env.Client.Create(ctx, schedule)).To(Succeed())
	elsewhere := sampleJob(t, other, "enrich-00001111-1734512345000")
	jobsv1alpha1.Stamp(elsewhere, other)
	g.Expect(env.Client.Create(ctx, elsewhere)).To(Succeed())

	res, err := uninstall.Run(ctx, hook, uninstall.Options{Namespace: ns, Timeout: time.Second,
		PollInterval: 100 * time.Millisecond, Clock: clock.RealClock{}})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(res.Schedules).To(Equal(1))
	g.Expect(res.Released).To(ConsistOf(uninstall.Job("EnrichmentJob/"+jobs[0].GetName()), uninstall.Job("EnrichmentJob/"+jobs[1].GetName())))
	list := &jobsv1alpha1.EnrichmentJobList{}
	g.Expect(env.Client.List(ctx, list, client.InNamespace(ns))).To(Succeed())
	g.Expect(list.Items).To(BeEmpty())
	schedules := &jobsv1alpha1.JobScheduleList{}
	g.Expect(env.Client.List(ctx, schedules, client.InNamespace(ns))).To(Succeed())
	g.Expect(schedules.Items).To(BeEmpty())
	g.Expect(env.Client.Get(ctx, client.ObjectKeyFromObject(elsewhere), elsewhere)).To(Succeed())
	g.Expect(elsewhere.DeletionTimestamp).To(BeNil(), "another namespace's job is not touched")

	// Nothing beyond the release namespace's jobs and schedules.
	_, err = uninstall.Run(ctx, hook, uninstall.Options{Namespace: other, Clock: clock.RealClock{}})
	g.Expect(apierrors.IsForbidden(err)).To(BeTrue(), "the hook may not touch another namespace: %v", err)
	err = hook.List(ctx, &jobsv1alpha1.JobQueueList{}, client.InNamespace(ns))
	g.Expect(apierrors.IsForbidden(err)).To(BeTrue(), "the hook may not read JobQueues: %v", err)
	err = hook.DeleteAllOf(ctx, &corev1.Secret{}, client.InNamespace(ns))
	g.Expect(apierrors.IsForbidden(err)).To(BeTrue(), "the hook may not delete Secrets: %v", err)
}
