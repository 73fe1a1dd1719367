package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	. "github.com/onsi/gomega"

	jobsv1alpha1 "github.com/jengu/queue-operator/api/v1alpha1"
	"github.com/jengu/queue-operator/store"
	"github.com/jengu/queue-operator/workers"
	"github.com/jengu/queue-operator/workers/analytics"
)

// TestAnalyticsThroughTheRESTAPI posts the seed's AnalyticsJobData (ten weeks of prices with a
// weekly pattern) and polls the job to completed: the real analytics worker forecasts it, stores
// the full result and releases the stored rows.
func TestAnalyticsThroughTheRESTAPI(t *testing.T) {
	g := NewWithT(t)
	sys := newSystemWith(t, g, jobsv1alpha1.QueueAnalytics, func(db *store.Store) workers.Processor { return analytics.NewProcessor(db) })
	rest := restClient(t, g, sys, "user-1")
	call := func(method, path string, body any) (int, map[string]any) {
		doc, _ := json.Marshal(body)
		answer := rest(method, path, string(doc))
		return int(answer["httpStatus"].(float64)), answer
	}

	var rows []map[string]any
	for i := range 70 {
		d := time.Date(2025, 3, 3, 0, 0, 0, 0, time.UTC).AddDate(0, 0, i) // from a Monday
		rows = append(rows, map[string]any{"date": d.Format(time.DateOnly), "price": 100 + 0.2*float64(i) + 5*float64(i%7)})
	}
	code, enqueued := call(http.MethodPost, "/api/files/"+sys.propertyID+"/analytics", map[string]any{
		"analysisType": "demand-forecast", "data": rows, "params": map[string]any{"horizonDays": 14}})
	g.Expect(code).To(Equal(http.StatusAccepted), "%v", enqueued)
	jobID := enqueued["jobId"].(string)
	code, refused := call(http.MethodPost, "/api/files/"+sys.propertyID+"/analytics", map[string]any{
		"analysisType": "demand-forecast", "data": rows, "params": map[string]any{"model": "arima"}})
	g.Expect(code).To(Equal(http.StatusBadRequest))
	g.Expect(refused["error"]).To(HaveKeyWithValue("fields", HaveKeyWithValue("params.model", ContainSubstring("holt-winters, regression"))))

	var job map[string]any
	g.Eventually(func() string {
		_, body := call(http.MethodGet, "/api/jobs/"+jobID, nil)
		job = body["job"].(map[string]any)
		return job["status"].(string)
	}).WithTimeout(30 * time.Second).WithPolling(100 * time.Millisecond).Should(BeElementOf("completed", "failed"))
	g.Expect(job).To(HaveKeyWithValue("status", "completed"), "%v", job)
	returned := job["returnvalue"].(map[string]any)
	headline := fmt.Sprint(returned["headline"])
	g.Expect(headline).To(HavePrefix("forecast 14 d of price (holt-winters), backtest MAPE 0.0%"))
	g.Expect(returned).To(HaveKeyWithValue("rows", 70.0))
	g.Eventually(func() any {
		_, body := call(http.MethodGet, "/api/jobs/"+jobID, nil)
		return body["job"].(map[string]any)["message"]
	}).
		Should(Equal(headline), "the CR's message is the headline")

	stored, err := sys.db.GetAnalyticsResult(sys.ctx, sys.ns, jobID)
	g.Expect(err).NotTo(HaveOccurred())
	var result analytics.Result
	g.Expect(json.Unmarshal(stored.Result, &result)).To(Succeed())
	g.Expect(result.Forecast.Points).To(HaveLen(14))
	// The first forecast day is day 70, a Monday: 100 + 0.2·70 + 0.
	g.Expect(float64(result.Forecast.Points[0].Value)).To(BeNumerically("~", 114, 0.01))
	g.Eventually(func() error { _, err := sys.db.GetAnalyticsInput(sys.ctx, jobID); return err }).
		Should(MatchError(store.ErrNotFound), "the stored rows went with the job's history row")
}
