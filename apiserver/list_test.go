package apiserver_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	. "github.com/onsi/gomega"

	"github.com/jengu/queue-operator/store"
)

func TestListShowsTheCallersJobsNewestFirst(t *testing.T) {
	g := NewWithT(t)
	f := newFixture(t)
	var ids []string
	for range 3 {
		ids = append(ids, f.enqueue("user-a")) // within a second or not, newest first
	}
	competitor := f.do(http.MethodPost, "/api/files/"+f.property("user-a", false)+"/competitors", "user-a",
		map[string]any{"location": "Barcelona", "checkIn": "2026-07-01", "checkOut": "2026-07-03", "adults": 2})
	g.Expect(competitor.Code).To(Equal(http.StatusAccepted), competitor.Raw)
	f.enqueue("user-b")

	list := func(query string) func() response {
		return func() response { return f.do(http.MethodGet, "/api/jobs"+query, "user-a", nil) }
	}
	g.Eventually(list("")).WithTimeout(timeout).Should(HaveField("Body", HaveKeyWithValue("total", 4.0)))
	r := list("?queue=enrichment")()
	g.Expect(r.Body["total"]).To(Equal(3.0))
	jobs := r.Body["jobs"].([]any)
	g.Expect(jobs).To(HaveLen(3))
	g.Expect(jobs[0]).To(And(HaveKeyWithValue("id", ids[2]), HaveKeyWithValue("queue", "enrichment"),
		HaveKeyWithValue("status", "waiting"), HaveKeyWithValue("progress", 0.0), HaveKey("timestamp")))
	g.Expect(jobs[0].(map[string]any)).To(HaveLen(5))
	g.Expect(jobs[2]).To(HaveKeyWithValue("id", ids[0]))

	r = list("?limit=2")()
	g.Expect(r.Body["jobs"]).To(HaveLen(2))
	g.Expect(r.Body["total"]).To(Equal(4.0))
	r = list("?queue=competitor")()
	g.Expect(r.Body["jobs"]).To(ConsistOf(HaveKeyWithValue("id", competitor.Body["jobId"])))
	g.Expect(list("?status=completed")().Body["total"]).To(Equal(0.0))
	g.Expect(list("?status=cancelled")().Body["total"]).To(Equal(0.0))
	g.Eventually(list("?status=waiting")).WithTimeout(timeout).Should(HaveField("Body", HaveKeyWithValue("total", 4.0)))

	for query, field := range map[string]string{"?limit=0": "limit", "?limit=101": "limit", "?limit=x": "limit",
		"?queue=emails": "queue", "?status=stuck": "status"} {
		r := list(query)()
		g.Expect(r.Code).To(Equal(http.StatusBadRequest), query)
		g.Expect(r.Body["error"]).To(HaveKeyWithValue("fields", HaveKey(field)), query)
	}
}

func TestJobPastItsTTLIsServedFromTheHistory(t *testing.T) {
	g := NewWithT(t)
	f := newFixture(t)
	id := "enrich-0badc0de-" + f.ns
	created := time.Now().Add(-48 * time.Hour).Truncate(time.Millisecond)
	g.Expect(db.RecordJobResult(context.Background(), store.JobResult{JobID: id, Queue: "enrichment", Namespace: f.ns,
		UserID: "user-a", PropertyID: "prop-1", Status: store.JobFailed, Attempts: 5, Error: "Weather API timeout",
		CreatedAt: created})).To(Succeed())

	r := f.do(http.MethodGet, "/api/jobs/"+id, "user-a", nil)
	g.Expect(r.Code).To(Equal(http.StatusOK), r.Raw)
	g.Expect(r.Body["job"]).To(And(HaveKeyWithValue("id", id), HaveKeyWithValue("status", "failed"),
		HaveKeyWithValue("attemptsMade", 5.0), HaveKeyWithValue("failedReason", "Weather API timeout"),
		HaveKeyWithValue("timestamp", float64(created.UnixMilli())), HaveKey("finishedOn"),
		HaveKeyWithValue("data", map[string]any{"propertyId": "prop-1", "userId": "user-a"})))
	g.Expect(f.do(http.MethodGet, "/api/jobs/"+id, "user-b", nil).Code).To(Equal(http.StatusNotFound))
	// A job of the same user in another namespace is not this facade's.
	elsewhere := "enrich-0badc0de-elsewhere-" + f.ns
	g.Expect(db.RecordJobResult(context.Background(), store.JobResult{JobID: elsewhere, Queue: "enrichment", Namespace: f.ns + "-other",
		UserID: "user-a", PropertyID: "prop-1", Status: store.JobCompleted, Attempts: 1, CreatedAt: created})).To(Succeed())
	g.Expect(f.do(http.MethodGet, "/api/jobs/"+elsewhere, "user-a", nil).Code).To(Equal(http.StatusNotFound))
	g.Expect(f.do(http.MethodGet, "/api/jobs/"+elsewhere+"/events", "user-a", nil).Code).To(Equal(http.StatusNotFound))

	// Its event stream says how it ended, and ends.
	events := f.events("user-a", id)
	g.Expect(next(g, events)).To(And(HaveField("Name", "failed"), HaveField("Job", HaveKeyWithValue("failedReason", "Weather API timeout"))))
	g.Eventually(events).WithTimeout(timeout).Should(BeClosed())
}

func TestIdempotencyKeyReturnsTheSameJob(t *testing.T) {
	g := NewWithT(t)
	f := newFixture(t)
	property := f.property("user-a", true)
	path := "/api/files/" + property + "/enrich"
	first := f.do(http.MethodPost, path, "user-a", map[string]any{"countryCode": "ES"}, "Idempotency-Key", "upload-42")
	g.Expect(first.Code).To(Equal(http.StatusAccepted), first.Raw)
	again := f.do(http.MethodPost, path, "user-a", map[string]any{"countryCode": "ES"}, "Idempotency-Key", "upload-42")
	g.Expect(again.Code).To(Equal(http.StatusAccepted), again.Raw)
	g.Expect(again.Body["jobId"]).To(Equal(first.Body["jobId"]))
	g.Expect(again.Header.Get("Idempotent-Replayed")).To(Equal("true"))

	other := f.do(http.MethodPost, path, "user-a", map[string]any{"countryCode": "PT"}, "Idempotency-Key", "upload-42")
	g.Expect(other.Code).To(Equal(http.StatusConflict), other.Raw)
	g.Expect(other.Body["error"]).To(HaveKeyWithValue("code", "idempotency_key_reused"))

	// Another user's key of the same text is another job.
	theirs := f.do(http.MethodPost, "/api/files/"+f.property("user-b", true)+"/enrich", "user-b", map[string]any{"countryCode": "ES"},
		"Idempotency-Key", "upload-42")
	g.Expect(theirs.Code).To(Equal(http.StatusAccepted), theirs.Raw)
	g.Expect(theirs.Body["jobId"]).NotTo(Equal(first.Body["jobId"]))
}

func TestAnalyticsWithoutDataAnalysesTheStoredRows(t *testing.T) {
	g := NewWithT(t)
	f := newFixture(t)
	property := f.property("user-a", false)
	r := f.do(http.MethodPost, "/api/files/"+property+"/analytics", "user-a", map[string]any{
		"analysisType": "demand-forecast", "params": map[string]any{"horizonDays": 14}})
	g.Expect(r.Code).To(Equal(http.StatusAccepted), r.Raw)
	id := r.Body["jobId"].(string)
	_, err := db.GetAnalyticsInput(context.Background(), id)
	g.Expect(err).To(MatchError(store.ErrNotFound), "no input is stored")
	data := f.job("user-a", id)()["data"]
	g.Expect(data).NotTo(HaveKey("inputRef"))
	g.Expect(data).To(HaveKeyWithValue("params", map[string]any{"horizonDays": "14"}))
}

func TestAnalyticsDataGoesToPostgreSQLAndTheJobRefersToIt(t *testing.T) {
	g := NewWithT(t)
	f := newFixture(t)
	property := f.property("user-a", false)
	rows := []any{map[string]any{"date": "2026-01-01", "price": 120.5}, map[string]any{"date": "2026-01-02", "price": 99}}
	r := f.do(http.MethodPost, "/api/files/"+property+"/analytics", "user-a", map[string]any{
		"analysisType": "demand-forecast", "data": rows, "params": map[string]any{"horizonDays": 14, "model": "regression", "target": "occupancy", "holdoutDays": "21"}})
	g.Expect(r.Code).To(Equal(http.StatusAccepted), r.Raw)
	id := r.Body["jobId"].(string)
	g.Expect(id).To(MatchRegexp(`^analytics-[0-9a-f]{8}-[0-9]{13}$`))

	input, err := db.GetAnalyticsInput(context.Background(), id)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(input.UserID).To(Equal("user-a"))
	g.Expect(input.PropertyID).To(Equal(property))
	g.Expect(string(input.Rows)).To(MatchJSON(`[{"date":"2026-01-01","price":120.5},{"date":"2026-01-02","price":99}]`))

	data := f.job("user-a", id)()["data"]
	g.Expect(data).To(And(HaveKeyWithValue("inputRef", id), HaveKeyWithValue("analysisType", "demand-forecast"),
		HaveKeyWithValue("params", map[string]any{"horizonDays": "14", "model": "regression", "target": "occupancy",
			"holdoutDays": "21"})))
}
