package apiserver_test

import (
	"context"
	"net/http"
	"testing"

	. "github.com/onsi/gomega"
	"sigs.k8s.io/controller-runtime/pkg/client"

	jobsv1alpha1 "github.com/jengu/queue-operator/api/v1alpha1"
)

// The seed's example: an enrichment whose then holds an analysis of the same file. The
// analysis is created once the enrichment completed, and GET /api/jobs/:jobId shows it.
func TestEnrichWithThenCreatesTheAnalysisAfterTheEnrichmentCompleted(t *testing.T) {
	g := NewWithT(t)
	f := newFixture(t)
	file := f.property("user-a", true)
	r := f.do(http.MethodPost, "/api/files/"+file+"/enrich", "user-a", map[string]any{
		"then": []any{map[string]any{"analytics": map[string]any{"analysisType": "weather-impact", "params": map[string]any{"rainThresholdMm": 2}}}},
	})
	g.Expect(r.Code).To(Equal(http.StatusAccepted), r.Raw)
	id := r.Body["jobId"].(string)
	cr := &jobsv1alpha1.EnrichmentJob{}
	g.Expect(env.Client.Get(context.Background(), client.ObjectKey{Namespace: f.ns, Name: id}, cr)).To(Succeed())
	g.Expect(cr.Spec.Then).To(HaveLen(1))
	g.Expect(cr.Spec.Then[0].Analytics).To(HaveField("Params", HaveKeyWithValue("rainThresholdMm", "2")))
	g.Expect(cr.Spec.Location).To(Equal(jobsv1alpha1.GeoLocation{Latitude: 41.39, Longitude: 2.17}), "from the file's row")
	g.Expect(f.job("user-a", id)()).NotTo(HaveKey("followUps"))

	leased := f.lease(g, jobsv1alpha1.QueueEnrichment, id)
	_, err := f.queue(jobsv1alpha1.QueueEnrichment).Complete(context.Background(), id, leased.Token, []byte(`{"rows":30}`))
	g.Expect(err).NotTo(HaveOccurred())
	g.Eventually(func() any { return f.job("user-a", id)()["followUps"] }).WithTimeout(timeout).Should(HaveLen(1))
	followUp := f.job("user-a", id)()["followUps"].([]any)[0].(string)
	job := f.job("user-a", followUp)()
	g.Expect(job).To(And(HaveKeyWithValue("queue", "analytics-heavy"), HaveKeyWithValue("parentId", id)))
	g.Expect(job["data"]).To(And(HaveKeyWithValue("propertyId", file), HaveKeyWithValue("analysisType", "weather-impact")))
	g.Expect(f.do(http.MethodGet, "/api/jobs/"+followUp, "user-b", nil).Code).To(Equal(http.StatusNotFound), "another user's follow-up")
}

func TestThenIsCheckedAsItsKindsRouteChecksIt(t *testing.T) {
	f := newFixture(t, withoutController())
	file := f.property("user-a", true)
	analysis := func(fields map[string]any) map[string]any { return map[string]any{"analytics": fields} }
	tests := []struct {
		name  string
		then  []any
		field string
		want  string
	}{
		{"an unknown param", []any{analysis(map[string]any{"analysisType": "demand-forecast", "params": map[string]any{"window": 3}})},
			"then[0].analytics.params.window", ""},
		{"two kinds", []any{map[string]any{"analytics": map[string]any{"analysisType": "summary"}, "competitor": map[string]any{}}},
			"then[0]", "exactly one of enrichment, competitor and analytics"},
		{"data in a follow-up", []any{analysis(map[string]any{"analysisType": "summary", "data": []any{map[string]any{"date": "2026-01-01"}}})},
			"then[0].analytics.data", "stored rows"},
		{"then inside the kind", []any{analysis(map[string]any{"analysisType": "summary", "then": []any{analysis(map[string]any{"analysisType": "summary"})}})},
			"then[0].analytics.then", "beside its kind"},
		{"a follow-up of another user", []any{analysis(map[string]any{"analysisType": "summary", "userId": "user-b"})},
			"then[0].analytics.userId", "must be the caller"},
		{"an invalid competitor stay (the CRD's rule)", []any{map[string]any{"competitor": map[string]any{"location": "Barcelona",
			"checkIn": "2026-07-03", "checkOut": "2026-07-01", "adults": 2}}}, "then[0].competitor.checkOut", "checkOut must be after checkIn"},
		{"a chain too deep (the CRD's shape)", []any{map[string]any{"analytics": map[string]any{"analysisType": "summary"},
			"then": []any{map[string]any{"analytics": map[string]any{"analysisType": "summary"},
				"then": []any{analysis(map[string]any{"analysisType": "summary"})}}}}}, "then[0].then[0].then", "at most 3 jobs deep"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			r := f.do(http.MethodPost, "/api/files/"+file+"/enrich", "user-a", map[string]any{"then": tt.then})
			g.Expect(r.Code).To(Equal(http.StatusBadRequest), r.Raw)
			fields := r.Body["error"].(map[string]any)["fields"]
			g.Expect(fields).To(HaveKeyWithValue(tt.field, ContainSubstring(tt.want)), r.Raw)
		})
	}
}

func TestSchedulesThroughTheAPI(t *testing.T) {
	g := NewWithT(t)
	f := newFixture(t, withoutController())
	file := f.property("user-a", true)
	body := map[string]any{"schedule": "30 3 * * *", "timeZone": "Europe/Madrid", "concurrencyPolicy": "Forbid",
		"jobTemplate": map[string]any{"enrichment": map[string]any{"then": []any{map[string]any{"analytics": map[string]any{"analysisType": "summary"}}}}}}
	r := f.do(http.MethodPost, "/api/files/"+file+"/schedules", "user-a", body)
	g.Expect(r.Code).To(Equal(http.StatusCreated), r.Raw)
	id := r.Body["scheduleId"].(string)
	g.Expect(id).To(MatchRegexp(`^schedule-[0-9a-f]{8}-[0-9]{13}$`))
	g.Expect(r.Header.Get("Location")).To(Equal("/api/schedules/" + id))

	js := &jobsv1alpha1.JobSchedule{}
	g.Expect(env.Client.Get(context.Background(), client.ObjectKey{Namespace: f.ns, Name: id}, js)).To(Succeed())
	g.Expect(js.Spec.JobTemplate.Enrichment).NotTo(BeNil())
	g.Expect(js.Spec.JobTemplate.Enrichment.UserID).To(Equal("user-a"))
	g.Expect(js.Spec.JobTemplate.Enrichment.PropertyID).To(Equal(file))
	g.Expect(js.Spec.JobTemplate.Enrichment.Location).To(Equal(jobsv1alpha1.GeoLocation{Latitude: 41.39, Longitude: 2.17}))
	g.Expect(js.Spec.JobTemplate.Enrichment.Then).To(HaveLen(1))
	g.Expect(js.Labels).To(HaveKeyWithValue(jobsv1alpha1.LabelUserID, "user-a"))

	one := f.do(http.MethodGet, "/api/schedules/"+id, "user-a", nil)
	g.Expect(one.Code).To(Equal(http.StatusOK), one.Raw)
	g.Expect(one.Body["schedule"]).To(And(HaveKeyWithValue("id", id), HaveKeyWithValue("fileId", file),
		HaveKeyWithValue("queue", "enrichment"), HaveKeyWithValue("schedule", "30 3 * * *"),
		HaveKeyWithValue("timeZone", "Europe/Madrid"), HaveKeyWithValue("concurrencyPolicy", "Forbid"), HaveKeyWithValue("suspend", false)))

	other := f.property("user-a", true)
	r = f.do(http.MethodPost, "/api/files/"+other+"/schedules", "user-a", map[string]any{"schedule": "@daily",
		"jobTemplate": map[string]any{"analytics": map[string]any{"analysisType": "summary"}}})
	g.Expect(r.Code).To(Equal(http.StatusCreated), r.Raw)
	daily := r.Body["scheduleId"].(string)
	g.Eventually(func() any { return f.do(http.MethodGet, "/api/schedules", "user-a", nil).Body["total"] }).WithTimeout(timeout).Should(Equal(2.0))
	g.Eventually(func() any { return f.do(http.MethodGet, "/api/files/"+file+"/schedules", "user-a", nil).Body["total"] }).WithTimeout(timeout).Should(Equal(1.0))

	r = f.do(http.MethodPatch, "/api/schedules/"+id, "user-a", map[string]any{"suspend": true})
	g.Expect(r.Code).To(Equal(http.StatusOK), r.Raw)
	g.Expect(r.Body["schedule"]).To(HaveKeyWithValue("suspend", true))
	g.Expect(env.Client.Get(context.Background(), client.ObjectKey{Namespace: f.ns, Name: id}, js)).To(Succeed())
	g.Expect(js.Spec.Suspend).To(BeTrue())
	g.Expect(f.do(http.MethodPatch, "/api/schedules/"+id, "user-a", map[string]any{"schedule": "* * * * *"}).Code).To(Equal(http.StatusBadRequest))

	r = f.do(http.MethodDelete, "/api/schedules/"+id, "user-a", nil)
	g.Expect(r.Code).To(Equal(http.StatusOK), r.Raw)
	g.Expect(r.Body).To(HaveKeyWithValue("status", "deleted"))
	g.Eventually(func() int { return f.do(http.MethodGet, "/api/schedules/"+id, "user-a", nil).Code }).WithTimeout(timeout).Should(Equal(http.StatusNotFound))

	// Deleting a file deletes its schedules: no run starts on a deleted file.
	r = f.do(http.MethodDelete, "/api/files/"+other, "user-a", nil)
	g.Expect(r.Code).To(Equal(http.StatusOK), r.Raw)
	g.Expect(r.Body["deletedSchedules"]).To(Equal([]any{daily}))
	g.Eventually(func() int { return f.do(http.MethodGet, "/api/schedules/"+daily, "user-a", nil).Code }).WithTimeout(timeout).Should(Equal(http.StatusNotFound))
}

// A schedule is the caller's as a job is: another user's schedule, or a schedule on another
// user's file, is exactly as absent as an unknown one on every route.
func TestAnotherUsersScheduleIsAbsentOnEveryRoute(t *testing.T) {
	g := NewWithT(t)
	f := newFixture(t, withoutController())
	file := f.property("user-a", true)
	template := map[string]any{"schedule": "@hourly", "jobTemplate": map[string]any{"analytics": map[string]any{"analysisType": "summary"}}}
	r := f.do(http.MethodPost, "/api/files/"+file+"/schedules", "user-a", template)
	g.Expect(r.Code).To(Equal(http.StatusCreated), r.Raw)
	id := r.Body["scheduleId"].(string)

	r = f.do(http.MethodPost, "/api/files/"+file+"/schedules", "user-b", template)
	g.Expect(r.Code).To(Equal(http.StatusNotFound), r.Raw)
	g.Expect(r.Body["error"]).To(HaveKeyWithValue("code", "file_not_found"))
	g.Expect(f.do(http.MethodGet, "/api/files/"+file+"/schedules", "user-b", nil).Code).To(Equal(http.StatusNotFound))

	unknown := f.do(http.MethodGet, "/api/schedules/schedule-00000000-1", "user-b", nil)
	g.Expect(unknown.Code).To(Equal(http.StatusNotFound))
	for _, method := range []string{http.MethodGet, http.MethodDelete, http.MethodPatch} {
		var body any
		if method == http.MethodPatch {
			body = map[string]any{"suspend": true}
		}
		r := f.do(method, "/api/schedules/"+id, "user-b", body)
		g.Expect(r.Code).To(Equal(http.StatusNotFound), "%s: %s", method, r.Raw)
		g.Expect(r.Body["error"]).To(Equal(map[string]any{"code": "schedule_not_found", "message": "schedule " + id + " not found"}))
	}
	g.Expect(f.do(http.MethodGet, "/api/schedules", "user-b", nil).Body["total"]).To(Equal(0.0))
	js := &jobsv1alpha1.JobSchedule{}
	g.Expect(env.Client.Get(context.Background(), client.ObjectKey{Namespace: f.ns, Name: id}, js)).To(Succeed())
	g.Expect(js.Spec.Suspend).To(BeFalse(), "user-b's PATCH changed nothing")
}

func TestScheduleRequestsAreCheckedNamingTheField(t *testing.T) {
	f := newFixture(t, withoutController())
	file := f.property("user-a", true)
	analytics := map[string]any{"analytics": map[string]any{"analysisType": "summary"}}
	tests := []struct {
		name  string
		body  map[string]any
		field string
		want  string
	}{
		{"an invalid cron string (the kube-apiserver's rule)", map[string]any{"schedule": "61 * * * *", "jobTemplate": analytics},
			"schedule", "schedule must be five cron fields"},
		{"a macro that is not cron", map[string]any{"schedule": "@every 5m", "jobTemplate": analytics}, "schedule", "five cron fields"},
		{"no template", map[string]any{"schedule": "@daily"}, "jobTemplate", "required"},
		{"a template of two kinds", map[string]any{"schedule": "@daily", "jobTemplate": map[string]any{
			"analytics": map[string]any{"analysisType": "summary"}, "competitor": map[string]any{}}}, "jobTemplate", "exactly one"},
		{"a bad param", map[string]any{"schedule": "@daily", "jobTemplate": map[string]any{
			"analytics": map[string]any{"analysisType": "demand-forecast", "params": map[string]any{"horizonDays": 0}}}},
			"jobTemplate.analytics.params.horizonDays", ""},
		{"a bad latitude (the CRD's bound)", map[string]any{"schedule": "@daily", "jobTemplate": map[string]any{
			"enrichment": map[string]any{"location": map[string]any{"latitude": 95, "longitude": 2}}}},
			"jobTemplate.enrichment.location.latitude", "less than or equal to 90"},
		{"analytics data", map[string]any{"schedule": "@daily", "jobTemplate": map[string]any{
			"analytics": map[string]any{"analysisType": "summary", "data": []any{map[string]any{"date": "2026-01-01"}}}}},
			"jobTemplate.analytics.data", "stored rows"},
		{"an unknown policy", map[string]any{"schedule": "@daily", "concurrencyPolicy": "Sometimes", "jobTemplate": analytics},
			"concurrencyPolicy", "Unsupported value"},
		{"an unknown field", map[string]any{"schedule": "@daily", "cron": "x", "jobTemplate": analytics}, "cron", "unknown field"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			r := f.do(http.MethodPost, "/api/files/"+file+"/schedules", "user-a", tt.body)
			g.Expect(r.Code).To(Equal(http.StatusBadRequest), r.Raw)
			g.Expect(r.Body["error"].(map[string]any)["fields"]).To(HaveKeyWithValue(tt.field, ContainSubstring(tt.want)), r.Raw)
		})
	}
}
