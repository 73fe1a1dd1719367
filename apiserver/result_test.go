package apiserver_test

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	. "github.com/onsi/gomega"

	jobsv1alpha1 "github.com/jengu/queue-operator/api/v1alpha1"
	"github.com/jengu/queue-operator/queue"
	"github.com/jengu/queue-operator/store"
)

// enqueueCompetitor creates a competitor job of user through the API and returns its id.
func (f *fixture) enqueueCompetitor(user string) string {
	f.t.Helper()
	r := f.do(http.MethodPost, "/api/files/"+f.property(user, false)+"/competitors", user,
		map[string]any{"location": "Barcelona", "checkIn": "2026-07-01", "checkOut": "2026-07-03", "adults": 2, "currency": "EUR"})
	if r.Code != http.StatusAccepted {
		f.t.Fatalf("enqueue: %d %s", r.Code, r.Raw)
	}
	return r.Body["jobId"].(string)
}

func TestResultOfACompetitorJob(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	f := newFixture(t)
	id := f.enqueueCompetitor("user-a")

	early := f.do(http.MethodGet, "/api/jobs/"+id+"/result", "user-a", nil)
	g.Expect(early.Code).To(Equal(http.StatusConflict), early.Raw)
	g.Expect(early.Body["error"]).To(HaveKeyWithValue("code", "job_not_finished"))

	// A worker's doing: the rows, then the completion with the summary as return value.
	leased := f.lease(g, jobsv1alpha1.QueueCompetitor, id)
	var spec jobsv1alpha1.CompetitorJobSpec
	g.Expect(json.Unmarshal(leased.Payload, &spec)).To(Succeed())
	g.Expect(spec.Currency).To(Equal("EUR"))
	price, rating := 99.5, 4.2
	g.Expect(db.ReplaceCompetitorPrices(ctx, store.CompetitorSearch{Namespace: f.ns, JobID: id, PropertyID: spec.PropertyID,
		CheckIn: time.Date(2026, 7, 1, 0, 0, 0, 0, time.UTC), CheckOut: time.Date(2026, 7, 3, 0, 0, 0, 0, time.UTC), Adults: 2},
		[]store.CompetitorPrice{{HotelID: "h2", HotelName: "Unpriced", Currency: "EUR"},
			{HotelID: "h1", HotelName: "Hotel One", Price: &price, Currency: "EUR", OverallRating: &rating}})).To(Succeed())
	_, err := f.queue(jobsv1alpha1.QueueCompetitor).Complete(ctx, id, leased.Token, []byte(`{"hotels":2,"priced":1,"median":99.5}`))
	g.Expect(err).NotTo(HaveOccurred())

	var r response
	g.Eventually(func() int {
		r = f.do(http.MethodGet, "/api/jobs/"+id+"/result", "user-a", nil)
		return r.Code
	}).WithTimeout(timeout).Should(Equal(http.StatusOK))
	g.Expect(r.Body).To(And(HaveKeyWithValue("success", true), HaveKeyWithValue("jobId", id),
		HaveKeyWithValue("queue", "competitor"), HaveKeyWithValue("status", "completed")))
	result := r.Body["result"].(map[string]any)
	g.Expect(result["summary"]).To(Equal(map[string]any{"hotels": 2.0, "priced": 1.0, "median": 99.5}))
	hotels := result["hotels"].([]any)
	g.Expect(hotels).To(HaveLen(2))
	g.Expect(hotels[0]).To(And(HaveKeyWithValue("id", "h1"), HaveKeyWithValue("nightlyRate", 99.5),
		HaveKeyWithValue("overallRating", 4.2), HaveKeyWithValue("currency", "EUR")))
	g.Expect(hotels[1]).To(And(HaveKeyWithValue("id", "h2"), HaveKeyWithValue("nightlyRate", BeNil())))

	theirs := f.do(http.MethodGet, "/api/jobs/"+id+"/result", "user-b", nil)
	g.Expect(theirs.Code).To(Equal(http.StatusNotFound))
	g.Expect(theirs.Body["error"]).To(HaveKeyWithValue("code", "job_not_found"))
}

func TestResultOfAFailedJobIsAConflict(t *testing.T) {
	g := NewWithT(t)
	f := newFixture(t)
	id := f.enqueueCompetitor("user-a")
	leased := f.lease(g, jobsv1alpha1.QueueCompetitor, id)
	_, err := f.queue(jobsv1alpha1.QueueCompetitor).Fail(context.Background(), id, leased.Token,
		queue.Failure{Kind: queue.FailPermanent, Message: "no SerpApi API key"})
	g.Expect(err).NotTo(HaveOccurred())
	g.Eventually(func() any {
		return f.do(http.MethodGet, "/api/jobs/"+id+"/result", "user-a", nil).Body["error"]
	}).WithTimeout(timeout).Should(HaveKeyWithValue("code", "job_failed"))
}

func TestResultOfAnEnrichmentJobIsItsReturnValue(t *testing.T) {
	g := NewWithT(t)
	f := newFixture(t)
	id := f.enqueue("user-a")
	leased := f.lease(g, jobsv1alpha1.QueueEnrichment, id)
	_, err := f.queue(jobsv1alpha1.QueueEnrichment).Complete(context.Background(), id, leased.Token, []byte(`{"rows":10}`))
	g.Expect(err).NotTo(HaveOccurred())
	g.Eventually(func() any {
		return f.do(http.MethodGet, "/api/jobs/"+id+"/result", "user-a", nil).Body["result"]
	}).WithTimeout(timeout).Should(Equal(map[string]any{"rows": 10.0}))
}
