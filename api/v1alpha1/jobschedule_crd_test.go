package v1alpha1_test

import (
	"context"
	"fmt"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"github.com/robfig/cron/v3"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	jobsv1alpha1 "github.com/jengu/queue-operator/api/v1alpha1"
	"github.com/jengu/queue-operator/internal/testenv"
)

const validSchedule = `
apiVersion: jobs.jengu.io/v1alpha1
kind: JobSchedule
metadata: {name: nightly-enrich}
spec:
  schedule: "30 3 * * *"
  timeZone: Europe/Madrid
  jobTemplate:
    enrichment:
      propertyId: prop-1
      userId: user-1
      location: {latitude: 41.38, longitude: 2.17}
      then:
      - analytics: {analysisType: weather-impact}
`

// The schedule's rule and robfig/cron's standard parser, which the controller runs, agree: what
// the kube-apiserver accepts parses, and the usual mistakes are refused at admission with the
// field named.
func TestScheduleIsValidatedAtAdmissionAsTheParserReadsIt(t *testing.T) {
	ns := newNamespace(t)
	tests := []struct {
		schedule string
		valid    bool
		// onPurpose: the parser takes it but the rule refuses it (not cron, or a zone outside
		// timeZone).
		onPurpose bool
	}{
		{"* * * * *", true, false},
		{"30 3 * * *", true, false},
		{"*/15 9-17 * * MON-FRI", true, false},
		{"0 0 1,15 * *", true, false},
		{"0 12 * jan,jul sun", true, false},
		{"5/10 * ? * *", true, false},
		{"0 0 31 12 6", true, false},
		{"@daily", true, false},
		{"@hourly", true, false},
		{"@yearly", true, false},
		{"  0  3 * * *  ", true, false},
		{"60 * * * *", false, false},
		{"* 24 * * *", false, false},
		{"* * 0 * *", false, false},
		{"* * 32 * *", false, false},
		{"* * * 13 *", false, false},
		{"* * * * 7", false, false},
		{"*/0 * * * *", false, false},
		{"* * * *", false, false},
		{"* * * * * *", false, false},
		{"every minute", false, false},
		{"@every 5m", false, true},
		{"@DAILY", false, false},
		{"TZ=Europe/Madrid 0 3 * * *", false, true},
		{"0 3 * * FUNDAY", false, false},
		{"1-2-3 * * * *", false, false},
	}
	for i, tt := range tests {
		t.Run(tt.schedule, func(t *testing.T) {
			g := NewWithT(t)
			_, parseErr := cron.ParseStandard(tt.schedule)
			g.Expect(parseErr == nil).To(Equal(tt.valid || tt.onPurpose), "robfig/cron on %q: %v", tt.schedule, parseErr)
			g.Expect(regexp.MustCompile(jobsv1alpha1.CronPattern).MatchString(tt.schedule)).To(Equal(tt.valid), "CronPattern")

			obj := fromYAML(t, ns, validSchedule)
			obj.SetName(fmt.Sprintf("s-%d", i))
			obj.Object["spec"].(map[string]any)["schedule"] = tt.schedule
			err := env.Client.Create(context.Background(), obj)
			if tt.valid {
				g.Expect(err).NotTo(HaveOccurred())
				return
			}
			g.Expect(err).To(HaveOccurred(), "the API server accepted schedule %q", tt.schedule)
			g.Expect(err.Error()).To(ContainSubstring("spec.schedule"))
			g.Expect(err.Error()).To(ContainSubstring("schedule must be five cron fields"))
		})
	}
}

func TestInvalidSchedulesAndChainsAreRefusedWithTheFieldNamed(t *testing.T) {
	analytics := map[string]any{"analytics": map[string]any{"analysisType": "summary"}}
	tests := []struct {
		name  string
		doc   string
		edit  func(spec map[string]any)
		want  []string
		valid bool
	}{
		{"a chain 3 deep", validEnrichment, func(s map[string]any) {
			s["then"] = []any{map[string]any{"analytics": map[string]any{"analysisType": "summary"}, "then": []any{analytics}}}
		}, nil, true},
		{"a chain 4 deep", validEnrichment, func(s map[string]any) {
			s["then"] = []any{map[string]any{"analytics": map[string]any{"analysisType": "summary"},
				"then": []any{map[string]any{"analytics": map[string]any{"analysisType": "summary"}, "then": []any{analytics}}}}}
		}, []string{"spec.then[0].then[0].then", "a chain is at most 3 jobs deep"}, false},
		{"too many follow-ups", validCompetitor, func(s map[string]any) {
			s["then"] = []any{analytics, analytics, analytics, analytics, analytics}
		}, []string{"spec.then", "must have at most 4 items"}, false},
		{"a follow-up of two kinds", validAnalytics, func(s map[string]any) {
			s["then"] = []any{map[string]any{"analytics": map[string]any{"analysisType": "summary"},
				"enrichment": map[string]any{"location": map[string]any{"latitude": 1, "longitude": 1}}}}
		}, []string{"spec.then[0]", "exactly one of enrichment, competitor and analytics"}, false},
		{"a follow-up of no kind", validAnalytics, func(s map[string]any) { s["then"] = []any{map[string]any{}} },
			[]string{"spec.then[0]", "exactly one of enrichment, competitor and analytics"}, false},
		{"a follow-up's own field is checked", validEnrichment, func(s map[string]any) {
			s["then"] = []any{map[string]any{"competitor": map[string]any{"location": "Barcelona", "checkIn": "2026-12-18", "checkOut": "2026-12-17", "adults": 2}}}
		}, []string{"spec.then[0].competitor.checkOut", "checkOut must be after checkIn"}, false},
		{"a template of no kind", validSchedule, func(s map[string]any) { s["jobTemplate"] = map[string]any{} },
			[]string{"spec.jobTemplate", "exactly one of enrichment, competitor and analytics"}, false},
		{"a template with a stored input", validSchedule, func(s map[string]any) {
			s["jobTemplate"] = map[string]any{"analytics": map[string]any{"propertyId": "p", "userId": "u", "analysisType": "summary", "inputRef": "x"}}
		}, []string{"spec.jobTemplate.analytics.inputRef"}, false},
		{"an unknown concurrency policy", validSchedule, func(s map[string]any) { s["concurrencyPolicy"] = "Queue" },
			[]string{"spec.concurrencyPolicy", `Unsupported value: "Queue"`}, false},
		{"a time zone that is no zone name", validSchedule, func(s map[string]any) { s["timeZone"] = "UTC+2 hours" },
			[]string{"spec.timeZone", "should match"}, false},
		{"a negative deadline", validSchedule, func(s map[string]any) { s["startingDeadlineSeconds"] = -1 },
			[]string{"spec.startingDeadlineSeconds"}, false},
	}
	ns := newNamespace(t)
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			obj := fromYAML(t, ns, tt.doc)
			obj.SetName(fmt.Sprintf("%s-%d", obj.GetName(), i))
			tt.edit(obj.Object["spec"].(map[string]any))
			err := env.Client.Create(context.Background(), obj)
			if tt.valid {
				g.Expect(err).NotTo(HaveOccurred())
				return
			}
			g.Expect(err).To(HaveOccurred(), "the API server accepted an invalid object")
			for _, want := range tt.want {
				g.Expect(err.Error()).To(ContainSubstring(want))
			}
		})
	}

	t.Run("a job with then has a name short enough for its follow-ups' label", func(t *testing.T) {
		g := NewWithT(t)
		obj := fromYAML(t, ns, validAnalytics)
		obj.SetName(strings.Repeat("a", 64))
		obj.Object["spec"].(map[string]any)["then"] = []any{analytics}
		err := env.Client.Create(context.Background(), obj)
		g.Expect(err).To(HaveOccurred())
		g.Expect(err.Error()).To(ContainSubstring("at most 63 characters"))
	})
	t.Run("a schedule's name leaves room for its jobs' suffix", func(t *testing.T) {
		g := NewWithT(t)
		obj := fromYAML(t, ns, validSchedule)
		obj.SetName(strings.Repeat("s", 53))
		err := env.Client.Create(context.Background(), obj)
		g.Expect(err).To(HaveOccurred())
		g.Expect(err.Error()).To(ContainSubstring("at most 52 characters"))
	})
}

// A job's then is as immutable as the rest of its spec; a schedule's template may change, except
// whose it is.
func TestThenIsImmutableAndATemplateIsNot(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	ns := newNamespace(t)

	job := fromYAML(t, ns, validEnrichment)
	job.Object["spec"].(map[string]any)["then"] = []any{map[string]any{"analytics": map[string]any{"analysisType": "summary"}}}
	g.Expect(env.Client.Create(ctx, job)).To(Succeed())
	job.Object["spec"].(map[string]any)["then"] = []any{map[string]any{"analytics": map[string]any{"analysisType": "weather-impact"}}}
	err := env.Client.Update(ctx, job)
	g.Expect(err).To(HaveOccurred())
	g.Expect(err.Error()).To(ContainSubstring("spec is immutable except priority"))
	delete(job.Object["spec"].(map[string]any), "then")
	g.Expect(env.Client.Update(ctx, job)).NotTo(Succeed(), "then may not be removed")

	schedule := fromYAML(t, ns, validSchedule)
	g.Expect(env.Client.Create(ctx, schedule)).To(Succeed())
	enrichment := schedule.Object["spec"].(map[string]any)["jobTemplate"].(map[string]any)["enrichment"].(map[string]any)
	enrichment["location"] = map[string]any{"latitude": 40.41, "longitude": -3.7}
	enrichment["then"] = []any{map[string]any{"analytics": map[string]any{"analysisType": "summary"}}}
	g.Expect(env.Client.Update(ctx, schedule)).To(Succeed(), "a template's fields may change")
	// The update replaced schedule's content with the stored object.
	schedule.Object["spec"].(map[string]any)["jobTemplate"].(map[string]any)["enrichment"].(map[string]any)["userId"] = "user-2"
	err = env.Client.Update(ctx, schedule)
	g.Expect(err).To(HaveOccurred())
	g.Expect(err.Error()).To(ContainSubstring("userId is immutable"))
}

func TestKubectlGetJobSchedulesShowsTheScheduleColumns(t *testing.T) {
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
	g.Expect(env.Client.Create(ctx, fromYAML(t, ns, validSchedule))).To(Succeed())
	js := &jobsv1alpha1.JobSchedule{}
	g.Expect(env.Client.Get(ctx, types.NamespacedName{Namespace: ns, Name: "nightly-enrich"}, js)).To(Succeed())
	last := metav1.NewTime(time.Now().Add(-90 * time.Second).Truncate(time.Second))
	next := metav1.NewTime(time.Date(2030, 1, 2, 2, 30, 0, 0, time.UTC))
	js.Status = jobsv1alpha1.JobScheduleStatus{LastScheduleTime: &last, NextScheduleTime: &next, ActiveCount: 2,
		Active: []jobsv1alpha1.JobReference{{Kind: "EnrichmentJob", Name: "nightly-enrich-1"}, {Kind: "EnrichmentJob", Name: "nightly-enrich-2"}}}
	g.Expect(env.Client.Status().Update(ctx, js)).To(Succeed())

	lines := strings.Split(strings.TrimSpace(kubectl("get", "jobschedules")), "\n")
	g.Expect(lines).To(HaveLen(2))
	g.Expect(strings.Fields(lines[0])).To(Equal([]string{"NAME", "SCHEDULE", "SUSPEND", "ACTIVE", "LAST", "NEXT", "AGE"}))
	// The schedule has spaces: read the row around it.
	row := strings.Fields(strings.Replace(lines[1], "30 3 * * *", "30_3_*_*_*", 1))
	g.Expect(row[:4]).To(Equal([]string{"nightly-enrich", "30_3_*_*_*", "false", "2"}))
	g.Expect(row[4]).To(MatchRegexp(`^9\ds$`), "LAST is the last run's age")
	g.Expect(row[5]).To(Equal("2030-01-02T02:30:00Z"))

	wide := kubectl("get", "js", "-o", "wide")
	g.Expect(wide).To(ContainSubstring("Europe/Madrid"))
	g.Expect(wide).To(ContainSubstring("Allow"), "the default concurrency policy")
	g.Expect(kubectl("get", "jengu", "-o", "name")).To(ContainSubstring("jobschedule.jobs.jengu.io/nightly-enrich"))
}
