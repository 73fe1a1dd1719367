package competitor

import (
	"context"
	"testing"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	jobsv1alpha1 "github.com/jengu/queue-operator/api/v1alpha1"
	"github.com/jengu/queue-operator/internal/testenv"
	"github.com/jengu/queue-operator/queue"
	"github.com/jengu/queue-operator/workers"
)

func TestProcessorUsesTheJobsCredentialSecret(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	env, err := testenv.Start()
	g.Expect(err).NotTo(HaveOccurred())
	t.Cleanup(func() { _ = env.Stop() })
	// The worker has no key of its own: the job's Secret is the only one.
	f := newProcessorFixture(t, WithAPIKey(""), WithSecrets(workers.KubeSecrets{Client: env.Client}))
	g.Expect(env.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: f.prefix}})).To(Succeed())
	g.Expect(env.Client.Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: f.prefix, Name: "serpapi", Labels: map[string]string{jobsv1alpha1.LabelCredential: "true"}},
		Data:       map[string][]byte{CredentialKey: []byte(testKey)},
	})).To(Succeed())

	withSecret := func(name string) func(*jobsv1alpha1.CompetitorJobSpec) {
		return func(s *jobsv1alpha1.CompetitorJobSpec) { s.CredentialSecretName = name }
	}
	f.enqueue(f.prefix+"-job", f.property("credential"), withSecret("serpapi"))
	job := f.finished(g, f.prefix+"-job")
	g.Expect(job.State).To(Equal(queue.StateCompleted), job.Error)
	for _, r := range f.api.Requests() {
		g.Expect(r.Get("api_key")).To(Equal(testKey))
	}

	f.enqueue(f.prefix+"-job-2", f.property("nosecret"), withSecret("missing"))
	failed := f.finished(g, f.prefix+"-job-2")
	g.Expect(failed.State).To(Equal(queue.StateFailed))
	g.Expect(failed.AttemptsMade).To(Equal(1))
	g.Expect(failed.Error).To(ContainSubstring("not found"))
}
