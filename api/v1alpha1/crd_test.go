package v1alpha1_test

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	jobsv1alpha1 "github.com/jengu/queue-operator/api/v1alpha1"
	"github.com/jengu/queue-operator/internal/devenv"
	"github.com/jengu/queue-operator/internal/testenv"
)

var env *testenv.Env

func TestMain(m *testing.M) { testenv.Main(m, &env) }

var namespaceSeq atomic.Int32

// newNamespace creates a namespace of the test's own.
func newNamespace(t *testing.T) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("crd-test-%d", namespaceSeq.Add(1))}}
	if err := env.Client.Create(context.Background(), ns); err != nil {
		t.Fatalf("create namespace: %v", err)
	}
	return ns.Name
}

// fromYAML builds an object the way `kubectl apply` would send it: fields absent stay absent.
func fromYAML(t *testing.T, namespace, doc string) *unstructured.Unstructured {
	t.Helper()
	obj := &unstructured.Unstructured{}
	if err := yaml.Unmarshal([]byte(doc), &obj.Object); err != nil {
		t.Fatalf("parse %q: %v", doc, err)
	}
	obj.SetNamespace(namespace)
	return obj
}

func TestEverySampleIsAccepted(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	files, err := filepath.Glob(filepath.Join(testenv.RepoRoot(), "config", "samples", "*.yaml"))
	g.Expect(err).NotTo(HaveOccurred())
	kinds := map[string]bool{}
	for _, file := range files {
		objs, err := devenv.ReadManifests(file)
		g.Expect(err).NotTo(HaveOccurred())
		for _, obj := range objs {
			obj.SetNamespace(ns)
			g.Expect(env.Client.Create(context.Background(), obj)).To(Succeed(), "sample %s", file)
			kinds[obj.GetKind()] = true
		}
	}
	g.Expect(kinds).To(HaveKey("EnrichmentJob"))
	g.Expect(kinds).To(HaveKey("CompetitorJob"))
	g.Expect(kinds).To(HaveKey("AnalyticsJob"))
	g.Expect(kinds).To(HaveKey("JobQueue"))

	queues := &jobsv1alpha1.JobQueueList{}
	g.Expect(env.Client.List(context.Background(), queues, client.InNamespace(ns))).To(Succeed())
	g.Expect(queues.Items).To(HaveLen(len(jobsv1alpha1.JobKinds)), "one sample JobQueue per queue")
}

const validEnrichment = `
apiVersion: jobs.jengu.io/v1alpha1
kind: EnrichmentJob
metadata: {name: enrich-0a1b2c3d-1734512345000}
spec:
  propertyId: prop-1
  userId: user-1
  location: {latitude: 41.38, longitude: 2.17}
`

const validCompetitor = `
apiVersion: jobs.jengu.io/v1alpha1
kind: CompetitorJob
metadata: {name: competitor-0a1b2c3d-1734512345000}
spec:
  propertyId: prop-1
  userId: user-1
  location: Barcelona
  checkIn: "2026-12-18"
  checkOut: "2026-12-20"
  adults: 2
`

const validAnalytics = `
apiVersion: jobs.jengu.io/v1alpha1
kind: AnalyticsJob
metadata: {name: analytics-0a1b2c3d-1734512345000}
spec:
  propertyId: prop-1
  userId: user-1
  analysisType: summary
`

const validJobQueue = `
apiVersion: jobs.jengu.io/v1alpha1
kind: JobQueue
metadata: {name: competitor}
spec:
  queue: competitor
`

// edit applies a change to the spec of a parsed object.
func edit(doc string, change func(spec map[string]any)) func(*testing.T, string) *unstructured.Unstructured {
	return func(t *testing.T, ns string) *unstructured.Unstructured {
		obj := fromYAML(t, ns, doc)
		change(obj.Object["spec"].(map[string]any))
		return obj
	}
}

func TestInvalidObjectsAreRejectedWithTheSchemaMessage(t *testing.T) {
	tests := []struct {
		name  string
		build func(*testing.T, string) *unstructured.Unstructured
		want  []string // substrings of the kube-apiserver's message
	}{
		{"latitude above 90", edit(validEnrichment, func(s map[string]any) {
			s["location"] = map[string]any{"latitude": 91, "longitude": 2}
		}), []string{"spec.location.latitude", "should be less than or equal to 90"}},
		{"longitude below -180", edit(validEnrichment, func(s map[string]any) {
			s["location"] = map[string]any{"latitude": 1, "longitude": -181}
		}), []string{"spec.location.longitude", "should be greater than or equal to -180"}},
		{"country code not alpha-2", edit(validEnrichment, func(s map[string]any) { s["countryCode"] = "ESP" }),
			[]string{"spec.countryCode", "should match"}},
		{"currency not ISO 4217", edit(validCompetitor, func(s map[string]any) { s["currency"] = "eur" }),
			[]string{"spec.currency", "should match"}},
		{"adults 0", edit(validCompetitor, func(s map[string]any) { s["adults"] = 0 }),
			[]string{"spec.adults", "should be greater than or equal to 1"}},
		{"adults 31", edit(validCompetitor, func(s map[string]any) { s["adults"] = 31 }),
			[]string{"spec.adults", "should be less than or equal to 30"}},
		{"checkOut before checkIn", edit(validCompetitor, func(s map[string]any) { s["checkOut"] = "2026-12-17" }),
			[]string{"spec.checkOut", "checkOut must be after checkIn"}},
		{"checkOut equal to checkIn", edit(validCompetitor, func(s map[string]any) { s["checkOut"] = "2026-12-18" }),
			[]string{"spec.checkOut", "checkOut must be after checkIn"}},
		{"checkIn not a date", edit(validCompetitor, func(s map[string]any) { s["checkIn"] = "2026-02-30" }),
			[]string{"spec.checkIn", "date"}},
		{"unknown analysisType", edit(validAnalytics, func(s map[string]any) { s["analysisType"] = "astrology" }),
			[]string{"spec.analysisType", `Unsupported value: "astrology"`}},
		{"unknown queue name", edit(validJobQueue, func(s map[string]any) { s["queue"] = "emails" }),
			[]string{"spec.queue", `Unsupported value: "emails"`}},
		{"JobQueue name differs from its queue", func(t *testing.T, ns string) *unstructured.Unstructured {
			obj := fromYAML(t, ns, validJobQueue)
			obj.SetName("my-queue")
			return obj
		}, []string{"metadata.name must equal spec.queue"}},
		{"JobQueue duration not a duration", edit(validJobQueue, func(s map[string]any) {
			s["retry"] = map[string]any{"backoff": map[string]any{"delay": "5 seconds"}}
		}), []string{"spec.retry.backoff.delay", "should match"}},
		{"JobQueue rate limit both unlimited and capped", edit(validJobQueue, func(s map[string]any) {
			s["rateLimit"] = map[string]any{"unlimited": true, "max": 10, "duration": "1m"}
		}), []string{"spec.rateLimit", "either unlimited: true, or max and duration"}},
		{"JobQueue rate limit without its window", edit(validJobQueue, func(s map[string]any) {
			s["rateLimit"] = map[string]any{"max": 10}
		}), []string{"spec.rateLimit", "either unlimited: true, or max and duration"}},
		{"JobQueue minReplicas above maxReplicas", edit(validJobQueue, func(s map[string]any) {
			s["autoscaling"] = map[string]any{"minReplicas": 5, "maxReplicas": 2}
		}), []string{"minReplicas must not exceed maxReplicas"}},
		{"missing required userId", edit(validEnrichment, func(s map[string]any) { delete(s, "userId") }),
			[]string{"spec.userId", "Required value"}},
		{"missing required location", edit(validEnrichment, func(s map[string]any) { delete(s, "location") }),
			[]string{"spec.location", "Required value"}},
		{"over-long location", edit(validCompetitor, func(s map[string]any) { s["location"] = strings.Repeat("x", 257) }),
			[]string{"spec.location", "Too long", "256"}},
		{"over-long userId", edit(validAnalytics, func(s map[string]any) { s["userId"] = strings.Repeat("u", 64) }),
			[]string{"spec.userId", "Too long", "63"}},
		{"too many params", edit(validAnalytics, func(s map[string]any) {
			params := map[string]any{}
			for i := range 33 {
				params[fmt.Sprintf("p%d", i)] = "1"
			}
			s["params"] = params
		}), []string{"spec.params", "32"}},
		{"over-long param value", edit(validAnalytics, func(s map[string]any) {
			s["params"] = map[string]any{"note": strings.Repeat("v", 257)}
		}), []string{"values at most 256"}},
		{"priority out of range", edit(validAnalytics, func(s map[string]any) { s["priority"] = 5000 }),
			[]string{"spec.priority", "should be less than or equal to 1000"}},
	}
	ns := newNamespace(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			err := env.Client.Create(context.Background(), tt.build(t, ns))
			g.Expect(err).To(HaveOccurred(), "the API server accepted an invalid object")
			for _, want := range tt.want {
				g.Expect(err.Error()).To(ContainSubstring(want))
			}
		})
	}
}

func TestSpecIsImmutableExceptPriority(t *testing.T) {
	tests := []struct {
		name    string
		doc     string
		change  func(spec map[string]any)
		allowed bool
		want    string
	}{
		{"priority may change", validEnrichment, func(s map[string]any) { s["priority"] = int64(10) }, true, ""},
		{"latitude may not", validEnrichment, func(s map[string]any) {
			s["location"] = map[string]any{"latitude": 10.0, "longitude": 2.17}
		}, false, "spec is immutable except priority"},
		{"propertyId may not", validEnrichment, func(s map[string]any) { s["propertyId"] = "prop-2" }, false, "propertyId is immutable"},
		{"userId may not", validCompetitor, func(s map[string]any) { s["userId"] = "user-2" }, false, "userId is immutable"},
		{"countryCode may not be added", validEnrichment, func(s map[string]any) { s["countryCode"] = "DE" }, false, "spec is immutable except priority"},
		{"timeoutSeconds may not be added", validCompetitor, func(s map[string]any) { s["timeoutSeconds"] = int64(60) }, false, "spec is immutable except priority"},
		{"adults may not", validCompetitor, func(s map[string]any) { s["adults"] = int64(3) }, false, "spec is immutable except priority"},
		{"currency may not be added", validCompetitor, func(s map[string]any) { s["currency"] = "GBP" }, false, "spec is immutable except priority"},
		{"credentialSecretName may not be added", validCompetitor, func(s map[string]any) { s["credentialSecretName"] = "serpapi" }, false, "spec is immutable except priority"},
		{"params may not be added", validAnalytics, func(s map[string]any) { s["params"] = map[string]any{"a": "b"} }, false, "spec is immutable except priority"},
		{"queue may not", validJobQueue, func(s map[string]any) { s["queue"] = "enrichment" }, false, "queue is immutable"},
	}
	ns := newNamespace(t)
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			ctx := context.Background()
			obj := fromYAML(t, ns, tt.doc)
			if obj.GetKind() != "JobQueue" {
				obj.SetName(fmt.Sprintf("%s-%d", obj.GetName(), i))
			}
			g.Expect(env.Client.Create(ctx, obj)).To(Succeed())
			generation := obj.GetGeneration()

			tt.change(obj.Object["spec"].(map[string]any))
			err := env.Client.Update(ctx, obj)
			if !tt.allowed {
				g.Expect(err).To(HaveOccurred())
				g.Expect(err.Error()).To(ContainSubstring(tt.want))
				return
			}
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(obj.GetGeneration()).To(Equal(generation+1), "a spec change bumps generation")
		})
	}
}

func TestStatusSubresourceLeavesSpecAlone(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	ns := newNamespace(t)
	job := &jobsv1alpha1.EnrichmentJob{
		ObjectMeta: metav1.ObjectMeta{Name: "enrich-0a1b2c3d-1", Namespace: ns},
		Spec: jobsv1alpha1.EnrichmentJobSpec{
			JobCommonSpec: jobsv1alpha1.JobCommonSpec{PropertyID: "prop-1", UserID: "user-1"},
			EnrichmentFields: jobsv1alpha1.EnrichmentFields{
				Location:    jobsv1alpha1.GeoLocation{Latitude: -33.87, Longitude: 151.21},
				CountryCode: "AU",
			},
		},
	}
	g.Expect(env.Client.Create(ctx, job)).To(Succeed())
	g.Expect(job.Generation).To(Equal(int64(1)))

	job.Spec.Priority = 7
	job.Status.Phase = jobsv1alpha1.PhaseActive
	job.Status.Progress = 45
	job.Status.QueueVersion = 3
	g.Expect(env.Client.Status().Update(ctx, job)).To(Succeed())

	stored := &jobsv1alpha1.EnrichmentJob{}
	g.Expect(env.Client.Get(ctx, client.ObjectKeyFromObject(job), stored)).To(Succeed())
	g.Expect(stored.Spec.Priority).To(BeZero(), "a status write must not change spec")
	g.Expect(stored.Generation).To(Equal(int64(1)), "a status write must not bump generation")
	g.Expect(stored.Status.Phase).To(Equal(jobsv1alpha1.PhaseActive))
	g.Expect(stored.Status.Progress).To(Equal(int32(45)))

	// A spec write ignores status and bumps generation.
	stored.Spec.Priority = 7
	stored.Status.Phase = jobsv1alpha1.PhaseCompleted
	g.Expect(env.Client.Update(ctx, stored)).To(Succeed())
	g.Expect(env.Client.Get(ctx, client.ObjectKeyFromObject(job), stored)).To(Succeed())
	g.Expect(stored.Generation).To(Equal(int64(2)))
	g.Expect(stored.Status.Phase).To(Equal(jobsv1alpha1.PhaseActive), "a spec write must not change status")

	// A status value out of bounds is refused.
	stored.Status.Progress = 101
	err := env.Client.Status().Update(ctx, stored)
	g.Expect(err).To(HaveOccurred())
	g.Expect(err.Error()).To(ContainSubstring("status.progress"))
}

func TestPrinterColumnsAndCategory(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	for _, name := range []string{"enrichmentjobs", "competitorjobs", "analyticsjobs"} {
		crd := &apiextensionsv1.CustomResourceDefinition{}
		g.Expect(env.Client.Get(ctx, types.NamespacedName{Name: name + ".jobs.jengu.io"}, crd)).To(Succeed())
		g.Expect(crd.Spec.Names.Categories).To(ContainElement("queuejobs"), name)
		g.Expect(crd.Spec.Scope).To(Equal(apiextensionsv1.NamespaceScoped))
		var columns []string
		for _, c := range crd.Spec.Versions[0].AdditionalPrinterColumns {
			columns = append(columns, c.Name)
		}
		g.Expect(columns).To(ContainElements("Phase", "Progress", "Attempts", "Age", "Property", "Worker"), name)
		g.Expect(crd.Spec.Versions[0].Subresources.Status).NotTo(BeNil(), name)
	}
}

func TestKubectlShowsPhaseAndProgress(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	ns := newNamespace(t)
	kubeconfig, err := env.KubeconfigFile(t.TempDir())
	g.Expect(err).NotTo(HaveOccurred())
	kubectl := func(args ...string) string {
		out, err := exec.Command(testenv.Kubectl(), append([]string{"--kubeconfig", kubeconfig, "-n", ns}, args...)...).CombinedOutput()
		g.Expect(err).NotTo(HaveOccurred(), "kubectl %v: %s", args, out)
		return string(out)
	}

	for _, doc := range []string{validEnrichment, validCompetitor, validAnalytics, validJobQueue} {
		g.Expect(env.Client.Create(ctx, fromYAML(t, ns, doc))).To(Succeed())
	}
	job := &jobsv1alpha1.EnrichmentJob{}
	g.Expect(env.Client.Get(ctx, types.NamespacedName{Namespace: ns, Name: "enrich-0a1b2c3d-1734512345000"}, job)).To(Succeed())
	// A status patch that names only the phase, as a merge patch from an empty status does:
	// progress and attempts show 0, not nothing.
	g.Expect(env.Client.Status().Patch(ctx, job, client.RawPatch(types.MergePatchType, []byte(`{"status":{"phase":"Waiting"}}`)))).To(Succeed())
	waiting := strings.Split(strings.TrimSpace(kubectl("get", "enrichmentjobs")), "\n")
	g.Expect(strings.Fields(waiting[1])[:4]).To(Equal([]string{"enrich-0a1b2c3d-1734512345000", "Waiting", "0", "0"}))
	job.Status.Phase = jobsv1alpha1.PhaseActive
	job.Status.Progress = 45
	job.Status.AttemptsMade = 1
	job.Status.Worker = "enrichment-worker-7f9c"
	g.Expect(env.Client.Status().Update(ctx, job)).To(Succeed())

	out := kubectl("get", "enrichmentjobs")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	g.Expect(lines).To(HaveLen(2), out)
	g.Expect(strings.Fields(lines[0])).To(Equal([]string{"NAME", "PHASE", "PROGRESS", "ATTEMPTS", "AGE"}))
	g.Expect(strings.Fields(lines[1])[:4]).To(Equal([]string{"enrich-0a1b2c3d-1734512345000", "Active", "45", "1"}))

	wide := kubectl("get", "ejob", "-o", "wide")
	g.Expect(wide).To(ContainSubstring("PROPERTY"))
	g.Expect(wide).To(ContainSubstring("enrichment-worker-7f9c"))

	all := kubectl("get", "queuejobs", "-o", "name")
	g.Expect(all).To(ContainSubstring("enrichmentjob.jobs.jengu.io/enrich-0a1b2c3d-1734512345000"))
	g.Expect(all).To(ContainSubstring("competitorjob.jobs.jengu.io/competitor-0a1b2c3d-1734512345000"))
	g.Expect(all).To(ContainSubstring("analyticsjob.jobs.jengu.io/analytics-0a1b2c3d-1734512345000"))

	queues := strings.Split(strings.TrimSpace(kubectl("get", "jobqueues")), "\n")
	g.Expect(strings.Fields(queues[0])).To(Equal([]string{"NAME", "WAITING", "ACTIVE", "FAILED", "REPLICAS", "WORKERS", "AGE"}))

	version := kubectl("version", "--client")
	g.Expect(version).To(ContainSubstring("v1.37"), "kubectl is stamped with its version")
}

func TestAnUnlimitedRateLimitSwitchesTheSeedsOff(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	ns := newNamespace(t)
	obj := fromYAML(t, ns, strings.Replace(validJobQueue, "competitor", "enrichment", 2))
	obj.Object["spec"].(map[string]any)["rateLimit"] = map[string]any{"unlimited": true}
	g.Expect(env.Client.Create(ctx, obj)).To(Succeed())
	jq := &jobsv1alpha1.JobQueue{}
	g.Expect(env.Client.Get(ctx, types.NamespacedName{Namespace: ns, Name: "enrichment"}, jq)).To(Succeed())
	g.Expect(jq.Spec.Settings().RateLimit).To(BeNil(), "no limit, not the seed's 10 per minute")

	seeded := &jobsv1alpha1.JobQueueSpec{Queue: jobsv1alpha1.QueueEnrichment}
	g.Expect(seeded.Settings().RateLimit).NotTo(BeNil(), "unset: the seed's limit")
	g.Expect(seeded.Settings().RateLimit.Max).To(Equal(int32(10)))
}
