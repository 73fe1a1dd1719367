package helm_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	jobsv1alpha1 "github.com/jengu/queue-operator/api/v1alpha1"
	"github.com/jengu/queue-operator/internal/testenv"
)

func fromUnstructured(obj *unstructured.Unstructured, into any) error {
	return runtime.DefaultUnstructuredConverter.FromUnstructured(obj.Object, into)
}

// as is a client acting as the ServiceAccount namespace/name, the way its pods' token would.
func as(t *testing.T, namespace, name string) client.Client {
	t.Helper()
	cfg := rest.CopyConfig(env.Config)
	cfg.Impersonate = rest.ImpersonationConfig{
		UserName: "system:serviceaccount:" + namespace + ":" + name,
		Groups:   []string{"system:serviceaccounts", "system:serviceaccounts:" + namespace, "system:authenticated"},
	}
	c, err := client.New(cfg, client.Options{Scheme: env.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// sampleJob is config/samples/enrichmentjob.yaml in namespace under name.
func sampleJob(t *testing.T, namespace, name string) *jobsv1alpha1.EnrichmentJob {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "config", "samples", "enrichmentjob.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	job := &jobsv1alpha1.EnrichmentJob{}
	if err := yaml.Unmarshal(data, job); err != nil {
		t.Fatal(err)
	}
	job.Namespace, job.Name = namespace, name
	return job
}

// TestServiceAccountsHaveTheirRights runs each component's API calls as its ServiceAccount
// against the RBAC the chart installed.
func TestServiceAccountsHaveTheirRights(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	ns, other := newNamespace(t, "helm-rbac"), newNamespace(t, "helm-rbac-other")
	install(t, "rbac", ns, append([]string{"--set", "workerServiceAccount.credentialSecretNames={calendarific}"}, requiredValues...)...)

	facade := as(t, ns, "rbac-queue-operator-apiserver")
	controller := as(t, ns, "rbac-queue-operator-controller")
	worker := as(t, ns, "rbac-queue-operator-worker")

	// The facade: jobs of its namespace only.
	job := sampleJob(t, ns, "enrich-0000aaaa-1734512345000")
	g.Expect(facade.Create(ctx, job)).To(Succeed(), "the facade creates a job in its namespace")
	g.Expect(facade.Get(ctx, client.ObjectKeyFromObject(job), &jobsv1alpha1.EnrichmentJob{})).To(Succeed())
	g.Expect(facade.List(ctx, &jobsv1alpha1.JobQueueList{}, client.InNamespace(ns))).To(Succeed())
	err := facade.Create(ctx, sampleJob(t, other, "enrich-0000bbbb-1734512345000"))
	g.Expect(apierrors.IsForbidden(err)).To(BeTrue(), "the facade may not create a job in another namespace: %v", err)
	err = facade.List(ctx, &jobsv1alpha1.EnrichmentJobList{})
	g.Expect(apierrors.IsForbidden(err)).To(BeTrue(), "the facade may not list jobs cluster-wide: %v", err)
	err = facade.Status().Update(ctx, job)
	g.Expect(apierrors.IsForbidden(err)).To(BeTrue(), "the facade may not write status: %v", err)

	// The controller: status of any job, worker Deployments, leases.
	g.Expect(controller.Get(ctx, client.ObjectKeyFromObject(job), job)).To(Succeed())
	job.Status.Phase = jobsv1alpha1.PhaseWaiting
	job.Status.Message = "queued by the helm test"
	g.Expect(controller.Status().Update(ctx, job)).To(Succeed(), "the controller updates job status")
	g.Expect(controller.List(ctx, &jobsv1alpha1.EnrichmentJobList{})).To(Succeed(), "the controller watches every namespace")
	g.Expect(controller.Update(ctx, job)).To(Succeed(), "the controller updates jobs (finalizer)")

	// The controller reads no Secret: not the JWT key, not a job's credentials.
	for _, name := range []string{"rbac-queue-operator", "rbac-queue-operator-jwt"} {
		err = controller.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &corev1.Secret{})
		g.Expect(apierrors.IsForbidden(err)).To(BeTrue(), "the controller may not read Secret %s: %v", name, err)
	}

	// The workers (their own ServiceAccount): status patch, JobQueue, listed credentials only.
	before := job.DeepCopy()
	job.Status.Progress = 40
	g.Expect(worker.Status().Patch(ctx, job, client.MergeFrom(before))).To(Succeed(), "a worker patches job status")
	g.Expect(worker.Get(ctx, client.ObjectKey{Namespace: ns, Name: "enrichment"}, &jobsv1alpha1.JobQueue{})).To(Succeed())
	cred := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "calendarific",
		Labels: map[string]string{jobsv1alpha1.LabelCredential: "true"}}, StringData: map[string]string{"calendarificApiKey": "k"}}
	g.Expect(env.Client.Create(ctx, cred)).To(Succeed())
	g.Expect(worker.Get(ctx, client.ObjectKeyFromObject(cred), &corev1.Secret{})).To(Succeed(), "a worker reads a listed credential Secret")
	for _, name := range []string{"rbac-queue-operator", "rbac-queue-operator-jwt"} {
		err = worker.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &corev1.Secret{})
		g.Expect(apierrors.IsForbidden(err)).To(BeTrue(), "a worker may not read Secret %s: %v", name, err)
	}
	err = as(t, ns, "default").Get(ctx, client.ObjectKeyFromObject(cred), &corev1.Secret{})
	g.Expect(apierrors.IsForbidden(err)).To(BeTrue(), "the namespace's default ServiceAccount, shared by every pod, gets nothing: %v", err)
	otherJob := sampleJob(t, other, "enrich-0000cccc-1734512345000")
	g.Expect(env.Client.Create(ctx, otherJob)).To(Succeed())
	err = worker.Get(ctx, client.ObjectKeyFromObject(otherJob), &jobsv1alpha1.EnrichmentJob{})
	g.Expect(apierrors.IsForbidden(err)).To(BeTrue(), "a worker may not read jobs of another namespace: %v", err)
	err = worker.Delete(ctx, job)
	g.Expect(apierrors.IsForbidden(err)).To(BeTrue(), "a worker may not delete jobs: %v", err)
	err = as(t, other, "default").Status().Patch(ctx, otherJob, client.MergeFrom(otherJob.DeepCopy()))
	g.Expect(apierrors.IsForbidden(err)).To(BeTrue(), "another namespace's default ServiceAccount gets nothing: %v", err)
}

// TestNamespacedControllerNeedsOnlyRoles: with controller.namespaces the chart installs no
// cluster-wide rights for the controller, and its Roles let it do its work in those namespaces.
func TestNamespacedControllerNeedsOnlyRoles(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	ns, tenant, outside := newNamespace(t, "helm-nsmode"), newNamespace(t, "helm-nsmode-tenant"), newNamespace(t, "helm-nsmode-out")
	// kubectl apply -n refuses objects of other namespaces, as helm install does not: create them.
	_, objs := render(t, "nsmode", ns, append([]string{"--set", "controller.namespaces={" + tenant + "}"}, requiredValues...)...)
	for _, o := range objs {
		if o.GetNamespace() == "" && o.GetKind() != "ClusterRole" && o.GetKind() != "ClusterRoleBinding" {
			o.SetNamespace(ns)
		}
		g.Expect(env.Client.Create(ctx, o)).To(Succeed(), "%s %s", o.GetKind(), o.GetName())
	}
	for _, o := range objs {
		if o.GetKind() == "ClusterRole" || o.GetKind() == "ClusterRoleBinding" {
			g.Expect(o.GetName()).NotTo(ContainSubstring("controller"), "no cluster-wide rights for the controller")
		}
	}
	d := find(objs, "Deployment", "nsmode-queue-operator-controller")
	g.Expect(d).NotTo(BeNil())
	args, _, _ := unstructured.NestedSlice(d.Object, "spec", "template", "spec", "containers")
	g.Expect(args[0].(map[string]any)["args"]).To(ContainElement("--namespaces=" + tenant))

	controller := as(t, ns, "nsmode-queue-operator-controller")
	job := sampleJob(t, tenant, "enrich-0000dddd-1734512345000")
	g.Expect(env.Client.Create(ctx, job)).To(Succeed())
	g.Expect(controller.List(ctx, &jobsv1alpha1.EnrichmentJobList{}, client.InNamespace(tenant))).To(Succeed())
	g.Expect(controller.Update(ctx, job)).To(Succeed(), "the controller updates jobs (finalizer) in its namespaces")
	g.Expect(controller.List(ctx, &jobsv1alpha1.JobQueueList{}, client.InNamespace(ns))).To(Succeed(), "and in the release namespace")
	err := controller.List(ctx, &jobsv1alpha1.EnrichmentJobList{})
	g.Expect(apierrors.IsForbidden(err)).To(BeTrue(), "no cluster-wide list: %v", err)
	err = controller.List(ctx, &jobsv1alpha1.EnrichmentJobList{}, client.InNamespace(outside))
	g.Expect(apierrors.IsForbidden(err)).To(BeTrue(), "nothing in other namespaces: %v", err)
}
