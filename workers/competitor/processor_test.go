package competitor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
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
	"github.com/jengu/queue-operator/workers/competitor/fakeserpapi"
)

// processorFixture runs the competitor processor in a worker pool against the real Redis and
// PostgreSQL of `make test`, with a fake SerpApi.
type processorFixture struct {
	t      *testing.T
	db     *store.Store
	queue  *queue.Queue
	api    *fakeserpapi.Server
	prefix string
}

var processorSeq atomic.Int32

func newProcessorFixture(t *testing.T, opts ...ProcessorOption) *processorFixture {
	t.Helper()
	prefix := fmt.Sprintf("cmp-%d-%d", time.Now().UnixNano()%1_000_000, processorSeq.Add(1))
	f := &processorFixture{t: t, db: testpg.OpenShared(t), prefix: prefix,
		api:   fakeserpapi.New(fakeserpapi.WithAPIKey(testKey), fakeserpapi.WithHotels(threeHotels...), fakeserpapi.WithPageSize(2)),
		queue: testqueue.New(t, prefix, "competitor")}
	t.Cleanup(f.api.Close)
	provider := NewSerpAPI(WithBaseURL(f.api.Endpoint()), WithMaxResponseBytes(64<<10))
	opts = append([]ProcessorOption{WithAPIKey(testKey), WithCurrency("EUR")}, opts...)
	testqueue.Run(t, f.queue, NewProcessor(f.db, provider, opts...))
	return f
}

// property stores a property of user-1 priced 130 on 2026-07-01, the check-in night.
func (f *processorFixture) property(name string) string {
	f.t.Helper()
	ctx := context.Background()
	id := f.prefix + "-" + name
	if _, err := f.db.UpsertProperty(ctx, store.Property{ID: id, UserID: "user-1"}); err != nil {
		f.t.Fatalf("property: %v", err)
	}
	if err := f.db.UpsertPricingRows(ctx, id, []store.PricingBase{{Date: day("2026-07-01"), Price: ptr(130.0)}}); err != nil {
		f.t.Fatalf("pricing rows: %v", err)
	}
	return id
}

// enqueue adds a competitor job for the property, as the controller would (3 attempts).
func (f *processorFixture) enqueue(jobID, propertyID string, mutate ...func(*jobsv1alpha1.CompetitorJobSpec)) {
	f.t.Helper()
	spec := jobsv1alpha1.CompetitorJobSpec{
		JobCommonSpec:    jobsv1alpha1.JobCommonSpec{PropertyID: propertyID, UserID: "user-1"},
		CompetitorFields: jobsv1alpha1.CompetitorFields{Location: "Barcelona", CheckIn: "2026-07-01", CheckOut: "2026-07-03", Adults: 2},
	}
	for _, m := range mutate {
		m(&spec)
	}
	testqueue.Enqueue(f.t, f.queue, jobID, spec, 3, queue.Backoff{Type: queue.BackoffExponential, Delay: 100 * time.Millisecond, Multiplier: 2})
}

func (f *processorFixture) finished(g Gomega, jobID string) *queue.Record {
	return testqueue.Finished(g, f.queue, jobID)
}

func (f *processorFixture) prices(g Gomega, jobID string) []store.CompetitorPrice {
	rows, err := f.db.ListCompetitorPrices(context.Background(), f.prefix, jobID)
	g.Expect(err).NotTo(HaveOccurred())
	return rows
}

func (f *processorFixture) delayReasons(g Gomega) []string {
	events, err := f.queue.ReadEvents(context.Background(), queue.StreamStart, 100, 0)
	g.Expect(err).NotTo(HaveOccurred())
	var reasons []string
	for _, e := range events {
		if e.Type == "delayed" {
			reasons = append(reasons, e.Fields["reason"])
		}
	}
	return reasons
}

func TestProcessorStoresHotelsAndComparesTheProperty(t *testing.T) {
	g := NewWithT(t)
	f := newProcessorFixture(t)
	id := f.property("ok")
	job := f.prefix + "-job"
	f.enqueue(job, id)
	record := f.finished(g, job)
	g.Expect(record.State).To(Equal(queue.StateCompleted), record.Error)
	g.Expect(record.Progress).To(Equal(100))
	var summary Summary
	g.Expect(json.Unmarshal(record.Result, &summary)).To(Succeed())
	// Hotel A (120 EUR) is the one priced in EUR; C is in MXN, B has no price.
	g.Expect(summary).To(Equal(Summary{Source: SourceSerpAPI, Pages: 2, Hotels: 3, Priced: 1, OtherCurrency: 1,
		Currency: "EUR", Min: ptr(120.0), P25: ptr(120.0), Median: ptr(120.0), Mean: ptr(120.0), P75: ptr(120.0),
		Max: ptr(120.0), Property: &Position{Price: 130, PercentileRank: 100, DiffToMedian: 10}}))
	rows := f.prices(g, job)
	g.Expect(rows).To(HaveLen(3))
	g.Expect(rows[0].HotelID).To(Equal("tok-a"))
	g.Expect(*rows[0].TotalPrice).To(Equal(240.0))
	g.Expect(rows[1].Currency).To(Equal("MXN"), "kept with its own currency")
	g.Expect(rows[2].Price).To(BeNil(), "the hotel with no price is kept, unpriced")

	// A re-run of the same job that no longer finds A and B leaves only C.
	f.api.SetHotels(threeHotels[2])
	removed, err := f.queue.Remove(context.Background(), job, "uid-"+job)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(removed).To(BeTrue())
	f.enqueue(job, id)
	g.Expect(f.finished(g, job).State).To(Equal(queue.StateCompleted))
	rows = f.prices(g, job)
	g.Expect(rows).To(HaveLen(1))
	g.Expect(rows[0].HotelID).To(Equal("tok-c"))
}

func TestProcessorOutcomes(t *testing.T) {
	tests := []struct {
		name         string
		answers      []fakeserpapi.Answer
		hotels       []fakeserpapi.Hotel
		opts         []ProcessorOption
		spec         func(*jobsv1alpha1.CompetitorJobSpec)
		wantState    queue.State
		wantAttempts int
		wantDelays   []string
		wantError    string
	}{
		{name: "429 is not counted", answers: []fakeserpapi.Answer{{Status: 429, Error: "Too many requests", RetryAfter: "1"}},
			wantState: queue.StateCompleted, wantAttempts: 1, wantDelays: []string{"rate-limited"}},
		{name: "5xx are counted", answers: []fakeserpapi.Answer{{Status: 502, Body: "Bad Gateway"}, {Status: 500, Error: "Internal error"}},
			wantState: queue.StateCompleted, wantAttempts: 3, wantDelays: []string{"retry", "retry"}},
		{name: "401 is permanent", opts: []ProcessorOption{WithAPIKey("sk-wrong-key-42")},
			wantState: queue.StateFailed, wantAttempts: 1, wantError: "Invalid API key"},
		{name: "no results complete with 0 hotels", hotels: []fakeserpapi.Hotel{},
			wantState: queue.StateCompleted, wantAttempts: 1},
		{name: "no key at all", opts: []ProcessorOption{WithAPIKey("")},
			wantState: queue.StateFailed, wantAttempts: 1, wantError: "no SerpApi API key: set SERPAPI_API_KEY"},
		{name: "a job's credential Secret needs a Secret reader", spec: func(s *jobsv1alpha1.CompetitorJobSpec) { s.CredentialSecretName = "serpapi" },
			wantState: queue.StateFailed, wantAttempts: 1, wantError: "cannot read credential Secrets"},
		{name: "over the size cap: retried, then failed with the reason", answers: []fakeserpapi.Answer{
			{Status: 200, Body: huge()}, {Status: 200, Body: huge()}, {Status: 200, Body: huge()}},
			wantState: queue.StateFailed, wantAttempts: 3, wantDelays: []string{"retry", "retry"}, wantError: "response body larger than 65536 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			f := newProcessorFixture(t, tt.opts...)
			if tt.hotels != nil {
				f.api.SetHotels(tt.hotels...)
			}
			f.api.Enqueue(tt.answers...)
			job := f.prefix + "-job"
			var mutate []func(*jobsv1alpha1.CompetitorJobSpec)
			if tt.spec != nil {
				mutate = append(mutate, tt.spec)
			}
			f.enqueue(job, f.property("p"), mutate...)
			record := f.finished(g, job)
			g.Expect(record.State).To(Equal(tt.wantState), record.Error)
			g.Expect(record.AttemptsMade).To(Equal(tt.wantAttempts))
			g.Expect(f.delayReasons(g)).To(Equal(tt.wantDelays))
			g.Expect(record.Error).To(ContainSubstring(tt.wantError))
			for _, key := range []string{testKey, "sk-wrong-key-42"} {
				g.Expect(record.Error).NotTo(ContainSubstring(key), "the key never shows")
			}
			if tt.wantState == queue.StateCompleted {
				var summary Summary
				g.Expect(json.Unmarshal(record.Result, &summary)).To(Succeed())
				g.Expect(summary.Hotels).To(Equal(len(f.prices(g, job))))
			}
		})
	}
}

// huge is a valid page over the fixture's 64 KiB cap.
func huge() string {
	return `{"search_metadata": {"status": "Success"}, "properties": [` +
		strings.Repeat(`{"name": "padding padding padding padding", "property_token": "x"},`, 2000) + `{}]}`
}

func TestRedactKeyKeepsTheOutcome(t *testing.T) {
	err := redactKey(workers.Permanent(fmt.Errorf("provider said: bad key %s", testKey)), testKey)
	if strings.Contains(err.Error(), testKey) || !strings.Contains(err.Error(), "bad key REDACTED") {
		t.Errorf("error %q: want the key replaced", err)
	}
	var permanent *workers.PermanentError
	if !errors.As(err, &permanent) {
		t.Errorf("error %v no longer unwraps to its PermanentError", err)
	}
}

// A property uploaded with its currency prices a job that names none in that currency, and a job
// priced in another currency does not compare the property's own price with it.
func TestAPropertysCurrencyPricesItsSearch(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	f := newProcessorFixture(t)
	id := f.prefix + "-gbp"
	_, err := f.db.CreateFile(ctx, store.Property{ID: id, UserID: "user-1", Currency: "GBP"},
		[]store.PricingBase{{Date: day("2026-07-01"), Price: ptr(130.0)}}) // as an upload stores it
	g.Expect(err).NotTo(HaveOccurred())

	f.enqueue(f.prefix+"-own", id)
	record := f.finished(g, f.prefix+"-own")
	g.Expect(record.State).To(Equal(queue.StateCompleted), record.Error)
	g.Expect(f.api.Requests()[0].Get("currency")).To(Equal("GBP"))

	f.enqueue(f.prefix+"-eur", id, func(s *jobsv1alpha1.CompetitorJobSpec) { s.Currency = "EUR" })
	record = f.finished(g, f.prefix+"-eur")
	g.Expect(record.State).To(Equal(queue.StateCompleted), record.Error)
	var summary Summary
	g.Expect(json.Unmarshal(record.Result, &summary)).To(Succeed())
	g.Expect(summary.Currency).To(Equal("EUR"))
	g.Expect(summary.Property).To(BeNil(), "a GBP price is not ranked among EUR rates")
}
