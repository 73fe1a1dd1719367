package apiserver_test

import (
	"context"
	"net/http"
	"regexp"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"sigs.k8s.io/controller-runtime/pkg/client"

	jobsv1alpha1 "github.com/jengu/queue-operator/api/v1alpha1"
	"github.com/jengu/queue-operator/queue"
)

func TestEnrichmentJobThroughItsLife(t *testing.T) {
	g := NewWithT(t)
	f := newFixture(t)
	propertyID := f.property("user-a", false)

	r := f.do(http.MethodPost, "/api/files/"+propertyID+"/enrich", "user-a",
		map[string]any{"location": map[string]any{"latitude": 48.85, "longitude": 2.35}, "countryCode": "FR"})
	g.Expect(r.Code).To(Equal(http.StatusAccepted), r.Raw)
	g.Expect(r.Body).To(HaveLen(3))
	g.Expect(r.Body).To(HaveKeyWithValue("success", true))
	g.Expect(r.Body).To(HaveKeyWithValue("status", "queued"))
	id := r.Body["jobId"].(string)
	g.Expect(id).To(MatchRegexp(`^enrich-[0-9a-f]{8}-[0-9]{13}$`))
	g.Expect(r.Header.Get("Location")).To(Equal("/api/jobs/" + id))

	// Read at once: the cache may not have it yet, the facade must still answer for it.
	r = f.do(http.MethodGet, "/api/jobs/"+id, "user-a", nil)
	g.Expect(r.Code).To(Equal(http.StatusOK), r.Raw)
	g.Expect(r.Body["job"]).To(And(HaveKeyWithValue("id", id), HaveKeyWithValue("status", "waiting"),
		HaveKeyWithValue("queue", "enrichment"), HaveKeyWithValue("progress", 0.0), HaveKeyWithValue("attemptsMade", 0.0)))
	g.Expect(r.Body["job"].(map[string]any)["data"]).To(And(HaveKeyWithValue("propertyId", propertyID),
		HaveKeyWithValue("userId", "user-a"), HaveKeyWithValue("countryCode", "FR"),
		HaveKeyWithValue("location", map[string]any{"latitude": 48.85, "longitude": 2.35})))

	// The CR carries the finalizer from its create and the owner's labels.
	cr := &jobsv1alpha1.EnrichmentJob{}
	g.Expect(env.Client.Get(context.Background(), client.ObjectKey{Namespace: f.ns, Name: id}, cr)).To(Succeed())
	g.Expect(cr.Finalizers).To(ContainElement(jobsv1alpha1.Finalizer))
	g.Expect(cr.Labels).To(And(HaveKeyWithValue(jobsv1alpha1.LabelUserID, "user-a"), HaveKeyWithValue(jobsv1alpha1.LabelQueue, "enrichment")))

	// A worker takes it and reports progress: Redis has it before the CR does.
	leased := f.lease(g, jobsv1alpha1.QueueEnrichment, id)
	_, err := f.queue(jobsv1alpha1.QueueEnrichment).Progress(context.Background(), id, leased.Token, 45, "weather fetched")
	g.Expect(err).NotTo(HaveOccurred())
	job := f.job("user-a", id)()
	g.Expect(job).To(And(HaveKeyWithValue("status", "active"), HaveKeyWithValue("progress", 45.0),
		HaveKeyWithValue("message", "weather fetched"), HaveKey("processedOn")))
	g.Expect(job["processedOn"]).To(BeNumerically("~", float64(time.Now().UnixMilli()), 60_000))

	_, err = f.queue(jobsv1alpha1.QueueEnrichment).Complete(context.Background(), id, leased.Token, []byte(`{"rows":31}`))
	g.Expect(err).NotTo(HaveOccurred())
	job = f.job("user-a", id)()
	g.Expect(job).To(And(HaveKeyWithValue("status", "completed"), HaveKeyWithValue("progress", 100.0),
		HaveKeyWithValue("attemptsMade", 1.0), HaveKey("finishedOn"), HaveKeyWithValue("returnvalue", map[string]any{"rows": 31.0})))
	g.Expect(job).NotTo(HaveKey("failedReason"))
}

func TestEnrichmentTakesTheStoredLocation(t *testing.T) {
	g := NewWithT(t)
	f := newFixture(t)
	propertyID := f.property("user-a", true)
	r := f.do(http.MethodPost, "/api/files/"+propertyID+"/enrich", "user-a", nil)
	g.Expect(r.Code).To(Equal(http.StatusAccepted), r.Raw)
	data := f.job("user-a", r.Body["jobId"].(string))()["data"]
	g.Expect(data).To(And(HaveKeyWithValue("countryCode", "ES"),
		HaveKeyWithValue("location", map[string]any{"latitude": 41.39, "longitude": 2.17})))
}

func TestEnqueueRefusesBadInputNamingTheField(t *testing.T) {
	f := newFixture(t)
	located, unlocated, others := f.property("user-a", true), f.property("user-a", false), f.property("user-b", true)
	cases := []struct {
		name, path string
		body       any
		code       int
		errCode    string
		field      string
		message    string
	}{
		{"latitude out of range", "/api/files/" + located + "/enrich", map[string]any{"location": map[string]any{"latitude": 91, "longitude": 2}},
			400, "invalid_request", "location.latitude", "less than or equal to 90"},
		{"half a location", "/api/files/" + located + "/enrich", map[string]any{"location": map[string]any{"latitude": 41}},
			400, "invalid_request", "location.longitude", "required"},
		{"no location anywhere", "/api/files/" + unlocated + "/enrich", map[string]any{},
			400, "invalid_request", "location", "none is stored"},
		{"API key in the request", "/api/files/" + located + "/enrich", map[string]any{"calendarificApiKey": "k"},
			400, "invalid_request", "calendarificApiKey", "not accepted"},
		{"unknown field", "/api/files/" + located + "/enrich", map[string]any{"lattitude": 4},
			400, "invalid_request", "lattitude", "unknown field"},
		{"wrong type", "/api/files/" + located + "/enrich", map[string]any{"location": map[string]any{"latitude": "north"}},
			400, "invalid_request", "location.latitude", "must be a number"},
		{"bad country", "/api/files/" + located + "/enrich", map[string]any{"countryCode": "spain"},
			400, "invalid_request", "countryCode", "should match"},
		{"not JSON", "/api/files/" + located + "/enrich", "{", 400, "invalid_request", "", "not valid JSON"},
		{"another file's id in the body", "/api/files/" + located + "/enrich", map[string]any{"propertyId": "other"},
			400, "invalid_request", "propertyId", "file id of the path"},
		{"another user in the body", "/api/files/" + located + "/enrich", map[string]any{"userId": "user-b"},
			400, "invalid_request", "userId", "the caller"},
		{"priority is not the caller's", "/api/files/" + located + "/enrich", map[string]any{"priority": 1000},
			400, "invalid_request", "priority", "unknown field"},
		{"unknown file", "/api/files/no-such-file/enrich", map[string]any{}, 404, "file_not_found", "", "not found"},
		{"another user's file", "/api/files/" + others + "/enrich", map[string]any{}, 404, "file_not_found", "", "not found"},
		{"competitor without dates", "/api/files/" + located + "/competitors", map[string]any{"location": "Barcelona", "adults": 2},
			400, "invalid_request", "checkIn", ""},
		{"competitor check-out before check-in", "/api/files/" + located + "/competitors",
			map[string]any{"location": "Barcelona", "checkIn": "2026-07-10", "checkOut": "2026-07-01", "adults": 2},
			400, "invalid_request", "checkOut", "after checkIn"},
		{"competitor with 0 adults", "/api/files/" + located + "/competitors",
			map[string]any{"location": "Barcelona", "checkIn": "2026-07-01", "checkOut": "2026-07-03", "adults": 0},
			400, "invalid_request", "adults", "greater than or equal to 1"},
		{"analytics of an unknown type", "/api/files/" + located + "/analytics",
			map[string]any{"analysisType": "astrology", "data": []any{map[string]any{"price": 1}}},
			400, "invalid_request", "analysisType", "Unsupported value"},
		{"analytics with no rows", "/api/files/" + located + "/analytics", map[string]any{"analysisType": "summary", "data": []any{}},
			400, "invalid_request", "data", "at least one row"},
		{"analytics data not rows", "/api/files/" + located + "/analytics", map[string]any{"analysisType": "summary", "data": "rows"},
			400, "invalid_request", "data", "JSON array"},
		{"analytics data not an array", "/api/files/" + located + "/analytics", map[string]any{"analysisType": "summary", "data": map[string]any{}},
			400, "invalid_request", "data", "JSON array"},
		{"analytics with a param its type does not take", "/api/files/" + located + "/analytics",
			map[string]any{"analysisType": "summary", "data": []any{map[string]any{"date": "2026-01-01"}}, "params": map[string]any{"weekly": true}},
			400, "invalid_request", "params.weekly", "unknown parameter: summary takes no params"},
		{"analytics horizon over a year", "/api/files/" + located + "/analytics",
			map[string]any{"analysisType": "demand-forecast", "data": []any{map[string]any{"date": "2026-01-01"}}, "params": map[string]any{"horizonDays": 400}},
			400, "invalid_request", "params.horizonDays", "from 1 to 365"},
		{"analytics with an unknown model", "/api/files/" + located + "/analytics",
			map[string]any{"analysisType": "demand-forecast", "data": []any{map[string]any{"date": "2026-01-01"}}, "params": map[string]any{"model": "prophet"}},
			400, "invalid_request", "params.model", "one of holt-winters, regression"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			r := f.do(http.MethodPost, tc.path, "user-a", tc.body)
			g.Expect(r.Code).To(Equal(tc.code), r.Raw)
			g.Expect(r.Body).To(HaveKeyWithValue("success", false))
			e := r.Body["error"].(map[string]any)
			g.Expect(e).To(HaveKeyWithValue("code", tc.errCode))
			g.Expect(e["message"]).To(ContainSubstring(tc.message))
			if tc.field != "" {
				g.Expect(e["fields"]).To(HaveKeyWithValue(tc.field, ContainSubstring(tc.message)))
			}
		})
	}
	// Nothing of the refused requests was created.
	for _, kind := range jobsv1alpha1.JobKinds {
		list := kind.NewList()
		NewWithT(t).Expect(env.Client.List(context.Background(), list, client.InNamespace(f.ns))).To(Succeed())
		NewWithT(t).Expect(list.Jobs()).To(BeEmpty(), string(kind.Queue))
	}
}

func TestUnknownJobAnswersNotFoundInTheSeedsShape(t *testing.T) {
	g := NewWithT(t)
	f := newFixture(t)
	for _, id := range []string{"enrich-00000000-1734512345000", "no-such-job", "Not_A_Name"} {
		r := f.do(http.MethodGet, "/api/jobs/"+id, "user-a", nil)
		g.Expect(r.Code).To(Equal(http.StatusNotFound))
		g.Expect(r.Body).To(Equal(map[string]any{
			"success": false,
			"job":     map[string]any{"id": id, "status": "not_found"},
			"error":   map[string]any{"code": "job_not_found", "message": "job " + id + " not found"},
		}))
	}
}

func TestAnotherUsersJobIsAbsentOnEveryRoute(t *testing.T) {
	g := NewWithT(t)
	f := newFixture(t)
	id := f.enqueue("user-a")
	g.Eventually(f.job("user-a", id)).WithTimeout(timeout).Should(HaveKeyWithValue("status", "waiting"))

	unknown := "enrich-00000000-1000000000000"
	for _, route := range []struct{ method, path string }{
		{http.MethodGet, "/api/jobs/%s"},
		{http.MethodGet, "/api/jobs/%s/events"},
		{http.MethodGet, "/api/jobs/%s/result"},
		{http.MethodPost, "/api/jobs/%s/retry"},
		{http.MethodDelete, "/api/jobs/%s"},
	} {
		theirs := f.do(route.method, sprintf(route.path, id), "user-b", nil)
		absent := f.do(route.method, sprintf(route.path, unknown), "user-b", nil)
		g.Expect(theirs.Code).To(Equal(http.StatusNotFound), route.method+" "+route.path)
		g.Expect(theirs.Raw).To(Equal(regexp.MustCompile(unknown).ReplaceAllString(absent.Raw, id)), route.method+" "+route.path)
	}
	for _, path := range []string{"/api/jobs", "/api/jobs/dlq/list"} {
		r := f.do(http.MethodGet, path, "user-b", nil)
		g.Expect(r.Code).To(Equal(http.StatusOK))
		g.Expect(r.Body["total"]).To(Equal(0.0))
	}
	// Still there for its owner.
	g.Expect(f.job("user-a", id)()).To(HaveKeyWithValue("status", "waiting"))
}

func TestRetryThroughTheAPIReachesRedisViaTheController(t *testing.T) {
	g := NewWithT(t)
	f := newFixture(t)
	id := f.enqueue("user-a")

	r := f.do(http.MethodPost, "/api/jobs/"+id+"/retry", "user-a", nil)
	g.Expect(r.Code).To(Equal(http.StatusConflict), r.Raw)
	g.Expect(r.Body["error"]).To(HaveKeyWithValue("code", "job_not_failed"))

	leased := f.lease(g, jobsv1alpha1.QueueEnrichment, id)
	_, err := f.queue(jobsv1alpha1.QueueEnrichment).Fail(context.Background(), id, leased.Token,
		queue.Failure{Kind: queue.FailPermanent, Message: "property deleted"})
	g.Expect(err).NotTo(HaveOccurred())
	g.Eventually(f.job("user-a", id)).WithTimeout(timeout).Should(And(HaveKeyWithValue("status", "failed"),
		HaveKeyWithValue("failedReason", "property deleted")))
	// The DLQ lists from the CR, which the controller catches up.
	g.Eventually(func() any { return f.do(http.MethodGet, "/api/jobs/dlq/list", "user-a", nil).Body["total"] }).
		WithTimeout(timeout).Should(Equal(1.0))
	dlq := f.do(http.MethodGet, "/api/jobs/dlq/list", "user-a", nil).Body
	g.Expect(dlq).To(HaveLen(3))
	g.Expect(dlq["success"]).To(BeTrue())
	failed := dlq["failedJobs"].([]any)
	g.Expect(failed).To(HaveLen(1))
	g.Expect(failed[0]).To(And(HaveLen(6), HaveKeyWithValue("id", id), HaveKeyWithValue("queue", "enrichment"),
		HaveKeyWithValue("error", "property deleted"), HaveKeyWithValue("attemptsMade", 1.0),
		HaveKeyWithValue("failedAt", BeNumerically(">", 0)), HaveKeyWithValue("data", HaveKeyWithValue("userId", "user-a"))))

	r = f.do(http.MethodPost, "/api/jobs/"+id+"/retry", "user-a", nil)
	g.Expect(r.Code).To(Equal(http.StatusOK), r.Raw)
	g.Expect(r.Body).To(Equal(map[string]any{"success": true, "message": "Job retry initiated", "jobId": id}))
	g.Eventually(func() queue.State {
		j, err := f.queue(jobsv1alpha1.QueueEnrichment).Get(context.Background(), id)
		if err != nil {
			return ""
		}
		return j.State
	}).WithTimeout(timeout).Should(Equal(queue.StateWaiting))
	g.Eventually(f.job("user-a", id)).WithTimeout(timeout).Should(HaveKeyWithValue("status", "waiting"))
}

func TestCancelThroughTheAPIRemovesTheRedisRecord(t *testing.T) {
	g := NewWithT(t)
	f := newFixture(t)
	id := f.enqueue("user-a")
	g.Eventually(func() error {
		_, err := f.queue(jobsv1alpha1.QueueEnrichment).Get(context.Background(), id)
		return err
	}).WithTimeout(timeout).Should(Succeed())

	r := f.do(http.MethodDelete, "/api/jobs/"+id, "user-a", nil)
	g.Expect(r.Code).To(Equal(http.StatusOK), r.Raw)
	g.Expect(r.Body).To(Equal(map[string]any{"success": true, "jobId": id, "status": "cancelled"}))
	g.Eventually(func() error {
		_, err := f.queue(jobsv1alpha1.QueueEnrichment).Get(context.Background(), id)
		return err
	}).WithTimeout(timeout).Should(MatchError(queue.ErrNotFound))
	g.Eventually(func() int { return f.do(http.MethodGet, "/api/jobs/"+id, "user-a", nil).Code }).
		WithTimeout(timeout).Should(Equal(http.StatusNotFound))
}
