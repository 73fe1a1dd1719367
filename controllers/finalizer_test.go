package controllers_test

import (
	"context"
	"fmt"
	"testing"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	jobsv1alpha1 "github.com/jengu/queue-operator/api/v1alpha1"
	"github.com/jengu/queue-operator/controllers"
	"github.com/jengu/queue-operator/internal/testredis"
	"github.com/jengu/queue-operator/queue"
)

// laggingReads answers Get of one object with an older copy of it, as a cache that has not seen
// the latest events does; everything else goes to the kube-apiserver.
type laggingReads struct {
	client.Client
	key   client.ObjectKey
	stale client.Object
}

func (l laggingReads) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	if key == l.key {
		l.stale.(*jobsv1alpha1.EnrichmentJob).DeepCopyInto(obj.(*jobsv1alpha1.EnrichmentJob))
		return nil
	}
	return l.Client.Get(ctx, key, obj, opts...)
}

func TestReleasingAFinalizerNeverTouchesANewCROfTheSameName(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	ns := fmt.Sprintf("ctl-fin-%d", nsSeq.Add(1))
	g.Expect(env.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})).To(Succeed())
	newJob := func() *jobsv1alpha1.EnrichmentJob {
		job := &jobsv1alpha1.EnrichmentJob{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "enrich-reused-name",
			Finalizers: []string{jobsv1alpha1.Finalizer}},
			Spec: jobsv1alpha1.EnrichmentJobSpec{JobCommonSpec: jobsv1alpha1.JobCommonSpec{PropertyID: "p", UserID: "u"},
				EnrichmentFields: jobsv1alpha1.EnrichmentFields{Location: jobsv1alpha1.GeoLocation{Latitude: 41.38, Longitude: 2.17}}}}
		g.Expect(env.Client.Create(ctx, job)).To(Succeed())
		return job
	}

	// The first CR is deleted; the cache's last copy of it carries the deletion.
	first := newJob()
	g.Expect(env.Client.Delete(ctx, first)).To(Succeed())
	stale := &jobsv1alpha1.EnrichmentJob{}
	g.Expect(env.Client.Get(ctx, client.ObjectKeyFromObject(first), stale)).To(Succeed())
	gone := stale.DeepCopy()
	gone.Finalizers = nil
	g.Expect(env.Client.Update(ctx, gone)).To(Succeed())

	// A new CR takes the name before the cache catches up.
	second := newJob()
	kind, _ := jobsv1alpha1.KindOf(jobsv1alpha1.QueueEnrichment)
	r := controllers.NewJobReconciler(kind, laggingReads{Client: env.Client, key: client.ObjectKeyFromObject(first), stale: stale},
		env.Client, queue.New(testredis.Shared(t)), testOptions())
	_, _ = r.Reconcile(ctx, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(first)})

	now := &jobsv1alpha1.EnrichmentJob{}
	g.Expect(env.Client.Get(ctx, client.ObjectKeyFromObject(second), now)).To(Succeed())
	g.Expect(now.UID).To(Equal(second.UID))
	g.Expect(now.Finalizers).To(ContainElement(jobsv1alpha1.Finalizer), "the new CR keeps its finalizer")
}

func TestAStatusConflictIsRetriedOnAFreshRead(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	ns := fmt.Sprintf("ctl-conflict-%d", nsSeq.Add(1))
	g.Expect(env.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})).To(Succeed())
	job := &jobsv1alpha1.EnrichmentJob{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "enrich-conflict",
		Finalizers: []string{jobsv1alpha1.Finalizer}},
		Spec: jobsv1alpha1.EnrichmentJobSpec{JobCommonSpec: jobsv1alpha1.JobCommonSpec{PropertyID: "p", UserID: "u"},
			EnrichmentFields: jobsv1alpha1.EnrichmentFields{Location: jobsv1alpha1.GeoLocation{Latitude: 41.38, Longitude: 2.17}}}}
	g.Expect(env.Client.Create(ctx, job)).To(Succeed())
	stale := job.DeepCopy()
	// The CR moves on (a label, a kubectl annotate) while the cache still holds the old copy.
	updated := job.DeepCopy()
	updated.Labels = map[string]string{"team": "pricing"}
	g.Expect(env.Client.Update(ctx, updated)).To(Succeed())

	kind, _ := jobsv1alpha1.KindOf(jobsv1alpha1.QueueEnrichment)
	r := controllers.NewJobReconciler(kind, laggingReads{Client: env.Client, key: client.ObjectKeyFromObject(job), stale: stale},
		env.Client, queue.New(testredis.Shared(t)), testOptions())
	_, err := r.Reconcile(ctx, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(job)})
	g.Expect(err).NotTo(HaveOccurred(), "the write conflicts once, then goes through on a fresh read")
	now := &jobsv1alpha1.EnrichmentJob{}
	g.Expect(env.Client.Get(ctx, client.ObjectKeyFromObject(job), now)).To(Succeed())
	g.Expect(now.Status.Conditions).To(ContainElement(HaveField("Type", jobsv1alpha1.ConditionQueueReady)),
		"no JobQueue: the job says so")
}
