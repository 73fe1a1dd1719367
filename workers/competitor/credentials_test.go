package competitor

import (
	"context"
	"strings"
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
	credential := func(name, owner, key string) {
		labels := map[string]string{jobsv1alpha1.LabelCredential: "true"}
		if owner != "" {
			labels[jobsv1alpha1.LabelCredentialOwner] = owner
		}
		g.Expect(env.Client.Create(ctx, &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Namespace: f.prefix, Name: name, Labels: labels},
			Data:       map[string][]byte{CredentialKey: []byte(key)},
		})).To(Succeed())
	}
	credential("serpapi", "user-1", testKey)
	// Another user's key, in the same namespace and labelled as a credential: the attack is a
	// job of user-1 naming it, so user-1's searches are paid with user-2's plan.
	credential("serpapi-of-user-2", "user-2", "key-of-user-2")
	credential("serpapi-of-nobody", "", "key-of-nobody")

	withSecret := func(name string) func(*jobsv1alpha1.CompetitorJobSpec) {
		return func(s *jobsv1alpha1.CompetitorJobSpec) { s.CredentialSecretName = name }
	}
	f.enqueue(f.prefix+"-job", f.property("credential"), withSecret("serpapi"))
	job := f.finished(g, f.prefix+"-job")
	g.Expect(job.State).To(Equal(queue.StateCompleted), job.Error)
	for _, r := range f.api.Requests() {
		g.Expect(r.Get("api_key")).To(Equal(testKey))
	}

	// Missing, unowned and someone else's Secret fail alike, at once, and the error tells them
	// apart in no way, so a user cannot probe which Secrets exist.
	var reasons []string
	for i, name := range []string{"missing", "serpapi-of-nobody", "serpapi-of-user-2"} {
		id := f.prefix + "-bad-" + string(rune('a'+i))
		f.enqueue(id, f.property("bad-"+name), withSecret(name))
		failed := f.finished(g, id)
		g.Expect(failed.State).To(Equal(queue.StateFailed), "a job naming %s", name)
		g.Expect(failed.AttemptsMade).To(Equal(1))
		reasons = append(reasons, failed.Error)
	}
	want := `credential Secret "NAME" cannot be used by this job: it must exist in the job's namespace, be labelled ` +
		jobsv1alpha1.LabelCredential + `=true and ` + jobsv1alpha1.LabelCredentialOwner + `=<the job's userId>, and hold the key ` + CredentialKey
	g.Expect(reasons).To(Equal([]string{
		strings.ReplaceAll(want, "NAME", "missing"), strings.ReplaceAll(want, "NAME", "serpapi-of-nobody"), strings.ReplaceAll(want, "NAME", "serpapi-of-user-2")}))
	for _, r := range f.api.Requests() {
		g.Expect(r.Get("api_key")).To(Equal(testKey), "no search ran with another user's key")
	}
}
