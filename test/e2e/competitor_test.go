package e2e

import (
	"net/http"
	"strconv"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"sigs.k8s.io/controller-runtime/pkg/client"

	jobsv1alpha1 "github.com/jengu/queue-operator/api/v1alpha1"
	"github.com/jengu/queue-operator/store"
	"github.com/jengu/queue-operator/workers"
	"github.com/jengu/queue-operator/workers/competitor"
	"github.com/jengu/queue-operator/workers/competitor/fakeserpapi"
)

// TestCompetitorThroughTheRESTAPI enqueues a competitor job with POST /api/files/:id/competitors,
// sees its result refused while the provider rate-limits it, and reads the full result at
// GET /api/jobs/:jobId/result once it completed; another user finds neither.
func TestCompetitorThroughTheRESTAPI(t *testing.T) {
	g := NewWithT(t)
	serp := fakeserpapi.New(fakeserpapi.WithAPIKey("e2e-serpapi-key"), fakeserpapi.WithHotels(fakeserpapi.DemoHotels(45, 2, 7)...))
	t.Cleanup(serp.Close)
	// The first search is rate limited: the job waits, delayed, with no attempt counted.
	serp.Enqueue(fakeserpapi.Answer{Status: http.StatusTooManyRequests, Error: "Too many requests", RetryAfter: "6"})
	sys := newSystemWith(t, g, jobsv1alpha1.QueueCompetitor, func(db *store.Store) workers.Processor {
		return competitor.NewProcessor(db, competitor.NewSerpAPI(competitor.WithBaseURL(serp.Endpoint())),
			competitor.WithAPIKey("e2e-serpapi-key"), competitor.WithCurrency("EUR"))
	})
	call := restClient(t, g, sys, "user-1")
	stranger := restClient(t, g, sys, "user-2")

	enqueued := call(http.MethodPost, "/api/files/"+sys.propertyID+"/competitors",
		`{"location": "Madrid", "checkIn": "2024-10-02", "checkOut": "2024-10-04", "adults": 2}`)
	g.Expect(enqueued).To(HaveKeyWithValue("status", "queued"), "%v", enqueued)
	jobID := enqueued["jobId"].(string)

	status := func() any { return call(http.MethodGet, "/api/jobs/"+jobID)["job"].(map[string]any)["status"] }
	g.Eventually(status).WithTimeout(30 * time.Second).WithPolling(50 * time.Millisecond).Should(Equal("delayed"))
	early := call(http.MethodGet, "/api/jobs/"+jobID+"/result")
	g.Expect(early).To(And(HaveKeyWithValue("httpStatus", 409.0), HaveKeyWithValue("success", false),
		HaveKeyWithValue("error", HaveKeyWithValue("code", "job_not_finished"))))

	g.Eventually(status).WithTimeout(30 * time.Second).WithPolling(100 * time.Millisecond).Should(Equal("completed"))
	job := call(http.MethodGet, "/api/jobs/"+jobID)["job"].(map[string]any)
	g.Expect(job).To(And(HaveKeyWithValue("attemptsMade", 1.0), HaveKeyWithValue("progress", 100.0)))
	g.Expect(job["message"]).To(ContainSubstring("45 hotels from serpapi-google-hotels"))

	result := call(http.MethodGet, "/api/jobs/"+jobID+"/result")
	g.Expect(result).To(And(HaveKeyWithValue("httpStatus", 200.0), HaveKeyWithValue("queue", "competitor"),
		HaveKeyWithValue("status", "completed")))
	body := result["result"].(map[string]any)
	g.Expect(body["hotels"]).To(HaveLen(45))
	g.Expect(body["summary"]).To(And(HaveKeyWithValue("hotels", 45.0), HaveKeyWithValue("priced", 45.0),
		HaveKeyWithValue("pages", 3.0), HaveKeyWithValue("currency", "EUR"),
		HaveKeyWithValue("property", HaveKeyWithValue("price", 140.0))))
	cheapest := body["hotels"].([]any)[0].(map[string]any)
	g.Expect(cheapest["nightlyRate"]).To(Equal(body["summary"].(map[string]any)["min"]))

	// The CR carries the summary, shortened, not the rows.
	cr := &jobsv1alpha1.CompetitorJob{}
	g.Expect(env.Client.Get(sys.ctx, client.ObjectKey{Namespace: sys.ns, Name: jobID}, cr)).To(Succeed())
	g.Expect(cr.Status.Message).To(ContainSubstring("45 hotels"))

	for _, path := range []string{"/api/jobs/" + jobID, "/api/jobs/" + jobID + "/result"} {
		g.Expect(stranger(http.MethodGet, path)).To(HaveKeyWithValue("httpStatus", 404.0), path)
	}
	g.Expect(call(http.MethodGet, "/api/jobs/competitor-00000000-"+strconv.FormatInt(time.Now().UnixMilli(), 10)+"/result")).
		To(HaveKeyWithValue("httpStatus", 404.0))
}
