package analytics_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	. "github.com/onsi/gomega"

	jobsv1alpha1 "github.com/jengu/queue-operator/api/v1alpha1"
	"github.com/jengu/queue-operator/internal/testpg"
	"github.com/jengu/queue-operator/internal/testqueue"
	"github.com/jengu/queue-operator/queue"
	"github.com/jengu/queue-operator/store"
	"github.com/jengu/queue-operator/workers"
	"github.com/jengu/queue-operator/workers/analytics"
)

// fixture runs the analytics processor in a worker pool against the real Redis and PostgreSQL of
// `make test`; each test has its own namespace (queue) and ids.
type fixture struct {
	t      *testing.T
	db     *store.Store
	queue  *queue.Queue
	prefix string
}

var seq atomic.Int32

func newFixture(t *testing.T) *fixture {
	t.Helper()
	db := testpg.OpenShared(t)
	prefix := fmt.Sprintf("an-%d-%d", time.Now().UnixNano()%1_000_000, seq.Add(1))
	f := &fixture{t: t, db: db, prefix: prefix,
		queue: testqueue.New(t, prefix, string(jobsv1alpha1.QueueAnalytics))}
	testqueue.Run(t, f.queue, analytics.NewProcessor(db), workers.WithResults(db))
	return f
}

// property stores a property of user-1 with the days as its pricing rows (prices, occupancy in
// percent) and, for the days with weather, their features.
func (f *fixture) property(name string, days []analytics.Row) string {
	f.t.Helper()
	ctx := context.Background()
	id := f.prefix + "-" + name
	if _, err := f.db.UpsertProperty(ctx, store.Property{ID: id, UserID: "user-1"}); err != nil {
		f.t.Fatal(err)
	}
	var base []store.PricingBase
	var features []store.PricingFeatures
	for _, d := range days {
		price, occupancy := d.Price, 100*d.Occupancy
		base = append(base, store.PricingBase{Date: d.Date, Price: &price, Occupancy: &occupancy})
		if d.TempMaxC == d.TempMaxC { // not NaN
			tmax, tmin, precip := d.TempMaxC, min(d.TempMinC, d.TempMaxC), d.PrecipitationMM
			features = append(features, store.PricingFeatures{Date: d.Date, TempMaxC: &tmax, TempMinC: &tmin,
				PrecipitationMM: &precip, IsHoliday: d.IsHoliday == 1, DayOfWeek: (int(d.Date.Weekday())+6)%7 + 1,
				IsWeekend: d.Date.Weekday() == time.Saturday || d.Date.Weekday() == time.Sunday, Month: int(d.Date.Month()),
				Quarter: (int(d.Date.Month())-1)/3 + 1, ISOWeek: isoWeek(d.Date), ISOYear: isoYear(d.Date), Season: store.SeasonWinter})
		}
	}
	if err := f.db.UpsertPricingRows(ctx, id, base); err != nil {
		f.t.Fatal(err)
	}
	if err := f.db.UpsertPricingFeatures(ctx, id, features); err != nil {
		f.t.Fatal(err)
	}
	return id
}

func isoWeek(d time.Time) int { _, w := d.ISOWeek(); return w }
func isoYear(d time.Time) int { y, _ := d.ISOWeek(); return y }

// input stores rows as the facade does for a request's data, under the job's id.
func (f *fixture) input(id, propertyID, user, rows string) {
	f.t.Helper()
	if err := f.db.SaveAnalyticsInput(context.Background(), store.AnalyticsInput{ID: id, PropertyID: propertyID,
		UserID: user, Rows: json.RawMessage(rows)}); err != nil {
		f.t.Fatal(err)
	}
}

// enqueue adds an AnalyticsJob of user-1, as the controller would.
func (f *fixture) enqueue(jobID string, spec jobsv1alpha1.AnalyticsJobSpec) {
	f.t.Helper()
	if spec.UserID == "" {
		spec.UserID = "user-1"
	}
	testqueue.Enqueue(f.t, f.queue, jobID, spec, 2, queue.Backoff{Type: queue.BackoffFixed, Delay: 100 * time.Millisecond})
}

func (f *fixture) finished(g Gomega, jobID string) *queue.Record {
	return testqueue.Finished(g, f.queue, jobID)
}

func TestAStoredInputIsAnalysedAndItsResultStored(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	f := newFixture(t)
	property := f.property("input", nil)
	id := f.prefix + "-summary"
	f.input(id, property, "user-1", `[{"date":"2024-01-01","price":100,"occupancy":0.5},{"date":"2024-01-02","price":"n/a"},
		{"date":"2024-01-03","price":300,"occupancy":1}]`)
	f.enqueue(id, jobsv1alpha1.AnalyticsJobSpec{JobCommonSpec: jobsv1alpha1.JobCommonSpec{PropertyID: property},
		AnalyticsFields: jobsv1alpha1.AnalyticsFields{AnalysisType: jobsv1alpha1.AnalysisSummary, InputRef: id}})

	job := f.finished(g, id)
	g.Expect(job.State).To(Equal(queue.StateCompleted), job.Error)
	headline := "summary of 2 days 2024-01-01..2024-01-03, mean price 200.00, mean occupancy 75.0%, 1 days missing"
	g.Expect(job.Progress).To(Equal(100))
	g.Expect(job.ProgressMessage).To(Equal(headline), "the CR's message once completed")
	g.Expect(string(job.Result)).To(MatchJSON(`{"analysisType":"summary","headline":"` + headline + `","rows":2,"rejectedRows":1}`))

	stored, err := f.db.GetAnalyticsResult(ctx, f.prefix, id)
	g.Expect(err).NotTo(HaveOccurred())
	var result analytics.Result
	g.Expect(json.Unmarshal(stored.Result, &result)).To(Succeed())
	g.Expect(result.Headline).To(Equal(headline))
	g.Expect(result.Input).To(Equal(analytics.InputReport{Source: "input", Rows: 2, RejectedRows: 1,
		Rejected: []analytics.Rejected{{Row: 1, Reason: "price: must be a number, not a JSON string"}}}))
	g.Expect(float64(result.Summary.Overall.Price.Mean)).To(Equal(200.0))

	// The job's history row released its input.
	g.Eventually(func() error {
		_, err := f.db.GetAnalyticsInput(ctx, id)
		return err
	}).Should(MatchError(store.ErrNotFound))
}

func TestWithoutAnInputThePropertysEnrichedRowsAreAnalysed(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	f := newFixture(t)
	property := f.property("enriched", syntheticDays(120, true))
	id := f.prefix + "-weather"
	f.enqueue(id, jobsv1alpha1.AnalyticsJobSpec{JobCommonSpec: jobsv1alpha1.JobCommonSpec{PropertyID: property},
		AnalyticsFields: jobsv1alpha1.AnalyticsFields{AnalysisType: jobsv1alpha1.AnalysisWeatherImpact, Params: map[string]string{"rainThresholdMm": "2"}}})

	job := f.finished(g, id)
	g.Expect(job.State).To(Equal(queue.StateCompleted), job.Error)
	g.Expect(job.ProgressMessage).To(HavePrefix("weather impact: strongest price vs temp_max_c"))
	stored, err := f.db.GetAnalyticsResult(ctx, f.prefix, id)
	g.Expect(err).NotTo(HaveOccurred())
	var result analytics.Result
	g.Expect(json.Unmarshal(stored.Result, &result)).To(Succeed())
	g.Expect(result.Input.Source).To(Equal("pricing_rows"))
	g.Expect(float64(result.WeatherImpact.RainThresholdMM)).To(Equal(2.0))
	g.Expect(result.WeatherImpact.Relations).To(ContainElement(And(HaveField("Target", "occupancy"), HaveField("N", 120))),
		"occupancy is read as a ratio from the stored percent")
}

func TestBadJobsFailAtOnceWithTheirReason(t *testing.T) {
	f := newFixture(t)
	plain := f.property("plain", withoutEnrichment(syntheticDays(60, false)))
	theirs := f.prefix + "-theirs"
	f.input(theirs, plain, "user-2", `[{"date":"2024-01-01","price":1}]`)
	cases := []struct {
		name string
		spec jobsv1alpha1.AnalyticsJobSpec
		want string
	}{
		{"unknown param", jobsv1alpha1.AnalyticsJobSpec{AnalyticsFields: jobsv1alpha1.AnalyticsFields{AnalysisType: jobsv1alpha1.AnalysisDemandForecast,
			Params: map[string]string{"model": "prophet"}}}, `params.model: must be one of holt-winters, regression, not "prophet"`},
		{"no weather", jobsv1alpha1.AnalyticsJobSpec{AnalyticsFields: jobsv1alpha1.AnalyticsFields{AnalysisType: jobsv1alpha1.AnalysisWeatherImpact}},
			"has weather (temp_max_c, temp_min_c, precipitation_mm): enrich the property first"},
		{"input gone", jobsv1alpha1.AnalyticsJobSpec{AnalyticsFields: jobsv1alpha1.AnalyticsFields{AnalysisType: jobsv1alpha1.AnalysisSummary, InputRef: f.prefix + "-gone"}},
			"stored input " + f.prefix + "-gone does not exist"},
		{"another user's input", jobsv1alpha1.AnalyticsJobSpec{AnalyticsFields: jobsv1alpha1.AnalyticsFields{AnalysisType: jobsv1alpha1.AnalysisSummary, InputRef: theirs}},
			"belongs to another user or property"},
		{"another user's property", jobsv1alpha1.AnalyticsJobSpec{AnalyticsFields: jobsv1alpha1.AnalyticsFields{AnalysisType: jobsv1alpha1.AnalysisSummary},
			JobCommonSpec: jobsv1alpha1.JobCommonSpec{UserID: "user-2"}}, "does not belong to user user-2"},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			tc.spec.PropertyID = plain
			id := fmt.Sprintf("%s-bad-%d", f.prefix, i)
			f.enqueue(id, tc.spec)
			job := f.finished(g, id)
			g.Expect(job.State).To(Equal(queue.StateFailed))
			g.Expect(job.AttemptsMade).To(Equal(1), "no retry")
			g.Expect(job.Error).To(ContainSubstring(tc.want))
			_, err := f.db.GetAnalyticsResult(context.Background(), f.prefix, id)
			g.Expect(err).To(MatchError(store.ErrNotFound))
		})
	}
	if _, err := f.db.GetAnalyticsInput(context.Background(), theirs); err != nil {
		t.Errorf("another user's input after a job named it: %v", err)
	}
}
