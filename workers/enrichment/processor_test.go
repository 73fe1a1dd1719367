package enrichment

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/google/go-cmp/cmp"
	. "github.com/onsi/gomega"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	jobsv1alpha1 "github.com/jengu/queue-operator/api/v1alpha1"
	"github.com/jengu/queue-operator/internal/testenv"
	"github.com/jengu/queue-operator/internal/testpg"
	"github.com/jengu/queue-operator/internal/testqueue"
	"github.com/jengu/queue-operator/queue"
	"github.com/jengu/queue-operator/store"
	"github.com/jengu/queue-operator/workers"
)

// processorFixture runs the enrichment processor in a worker pool against the real Redis and
// PostgreSQL of `make test`, with a fake Open-Meteo.
type processorFixture struct {
	t      *testing.T
	db     *store.Store
	queue  *queue.Queue
	meteo  *fakeOpenMeteo
	prefix string
}

var processorSeq atomic.Int32

func newProcessorFixture(t *testing.T) *processorFixture { return newProcessorFixtureWith(t, nil) }

// newProcessorFixtureWith adds enricher options (after the fake Open-Meteo's) and processor
// options.
func newProcessorFixtureWith(t *testing.T, enricherOpts []Option, opts ...ProcessorOption) *processorFixture {
	t.Helper()
	db := testpg.OpenShared(t)
	prefix := fmt.Sprintf("enr-%d-%d", time.Now().UnixNano()%1_000_000, processorSeq.Add(1))
	f := &processorFixture{t: t, db: db, prefix: prefix, meteo: newFakeOpenMeteo(t, map[string]omDay{
		"2024-12-25": {TempMax: ptr(12.5), TempMin: ptr(3.1), Precip: ptr(0.0), Code: ptr(3)},
	}),
		queue: testqueue.New(t, prefix, "enrichment")}
	enricherOpts = append(append(f.meteo.options(), WithClock(fixedClock("2025-06-01T12:00:00Z"))), enricherOpts...)
	testqueue.Run(t, f.queue, NewProcessor(db, NewEnricher(enricherOpts...), opts...))
	return f
}

// property stores a Madrid property with prices for 2024-12-23 to 2024-12-27.
func (f *processorFixture) property(name string) string {
	f.t.Helper()
	ctx := context.Background()
	id := f.prefix + "-" + name
	if _, err := f.db.UpsertProperty(ctx, store.Property{ID: id, UserID: "user-1", CountryCode: "ES",
		Location: &store.Location{Latitude: 40.4168, Longitude: -3.7038}}); err != nil {
		f.t.Fatalf("property: %v", err)
	}
	var rows []store.PricingBase
	for d := 23; d <= 27; d++ {
		rows = append(rows, store.PricingBase{Date: date(fmt.Sprintf("2024-12-%d", d)), Price: ptr(100.0 + float64(d))})
	}
	if err := f.db.UpsertPricingRows(ctx, id, rows); err != nil {
		f.t.Fatalf("pricing rows: %v", err)
	}
	return id
}

// enqueue adds an enrichment job for the property, as the controller would.
func (f *processorFixture) enqueue(jobID, propertyID string, mutate ...func(*jobsv1alpha1.EnrichmentJobSpec)) {
	f.t.Helper()
	spec := jobsv1alpha1.EnrichmentJobSpec{
		JobCommonSpec: jobsv1alpha1.JobCommonSpec{PropertyID: propertyID, UserID: "user-1"},
		EnrichmentFields: jobsv1alpha1.EnrichmentFields{
			Location:    jobsv1alpha1.GeoLocation{Latitude: 40.4168, Longitude: -3.7038},
			CountryCode: "ES",
		},
	}
	for _, m := range mutate {
		m(&spec)
	}
	testqueue.Enqueue(f.t, f.queue, jobID, spec, 5, queue.Backoff{Type: queue.BackoffExponential, Delay: 100 * time.Millisecond, Multiplier: 2})
}

func (f *processorFixture) finished(g Gomega, jobID string) *queue.Record {
	return testqueue.Finished(g, f.queue, jobID)
}

func TestProcessorEnrichesEveryRow(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	f := newProcessorFixture(t)
	id := f.property("ok")
	f.enqueue(f.prefix+"-job-1", id)
	job := f.finished(g, f.prefix+"-job-1")
	g.Expect(job.State).To(Equal(queue.StateCompleted), job.Error)
	g.Expect(job.Progress).To(Equal(100))
	var summary Summary
	g.Expect(json.Unmarshal(job.Result, &summary)).To(Succeed())
	g.Expect(summary.Rows).To(Equal(5))
	g.Expect(summary.Sources).To(ContainElements(SourceOpenMeteoArchive, SourceOfflinePrefix+"ES"))

	rows, err := f.db.ListPricingRows(ctx, id)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(rows).To(HaveLen(5))
	christmas := rows[2].Features
	g.Expect(rows[2].Date.Format(dateLayout)).To(Equal("2024-12-25"))
	g.Expect(christmas).NotTo(BeNil())
	g.Expect(christmas.IsHoliday).To(BeTrue())
	g.Expect(*christmas.TempMaxC).To(Equal(12.5))
	g.Expect(*christmas.TempMinC).To(Equal(3.1))
	g.Expect(*christmas.WeatherCode).To(Equal(3))
	g.Expect(christmas.DayOfWeek).To(Equal(3), "a Wednesday")
	g.Expect(christmas.Season).To(Equal(store.SeasonWinter))
	g.Expect(*christmas.DaysToNextHoliday).To(BeZero())
	g.Expect(*rows[4].Features.DaysToNextHoliday).To(Equal(5), "27 Dec to New Year's Day")
	g.Expect(rows[4].Price).NotTo(BeNil(), "prices are kept")
	property, err := f.db.GetProperty(ctx, id)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(property.EnrichmentStatus).To(Equal(store.EnrichmentCompleted))

	// A re-run leaves the rows as they were.
	f.enqueue(f.prefix+"-job-2", id)
	g.Expect(f.finished(g, f.prefix+"-job-2").State).To(Equal(queue.StateCompleted))
	again, err := f.db.ListPricingRows(ctx, id)
	g.Expect(err).NotTo(HaveOccurred())
	ignoreTimes := cmp.Transformer("noEnrichedAt", func(r store.PricingRow) store.PricingRow { r.EnrichedAt = time.Time{}; return r })
	if diff := cmp.Diff(rows, again, ignoreTimes); diff != "" {
		t.Errorf("re-run changed the rows (-first +second):\n%s", diff)
	}
}

func TestProcessorRetriesAFailingWeatherAPI(t *testing.T) {
	g := NewWithT(t)
	f := newProcessorFixture(t)
	f.meteo.Failures.Store(2)
	f.enqueue(f.prefix+"-job", f.property("flaky"))
	job := f.finished(g, f.prefix+"-job")
	g.Expect(job.State).To(Equal(queue.StateCompleted), job.Error)
	g.Expect(job.AttemptsMade).To(Equal(3), "completed on attempt 3 after the backoff")
}

func TestProcessorFailsPermanentlyForADeletedProperty(t *testing.T) {
	g := NewWithT(t)
	f := newProcessorFixture(t)
	f.enqueue(f.prefix+"-job", f.prefix+"-gone")
	job := f.finished(g, f.prefix+"-job")
	g.Expect(job.State).To(Equal(queue.StateFailed))
	g.Expect(job.AttemptsMade).To(Equal(1), "no retry")
	g.Expect(job.Error).To(ContainSubstring("no longer exists"))
}

func TestProcessorRateLimitedAttemptIsNotCounted(t *testing.T) {
	g := NewWithT(t)
	f := newProcessorFixture(t)
	f.meteo.RateLimits.Store(1)
	f.enqueue(f.prefix+"-job", f.property("limited"))
	job := f.finished(g, f.prefix+"-job")
	g.Expect(job.State).To(Equal(queue.StateCompleted), job.Error)
	g.Expect(job.AttemptsMade).To(Equal(1), "the 429 was not counted")
	events, err := f.queue.ReadEvents(context.Background(), queue.StreamStart, 100, 0)
	g.Expect(err).NotTo(HaveOccurred())
	var reasons []string
	for _, e := range events {
		if e.Type == "delayed" {
			reasons = append(reasons, e.Fields["reason"])
		}
	}
	g.Expect(reasons).To(Equal([]string{"rate-limited"}))
}

func TestProcessorUsesTheJobsCredentialSecret(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	env, err := testenv.Start()
	g.Expect(err).NotTo(HaveOccurred())
	t.Cleanup(func() { _ = env.Stop() })
	calendarific := newFakeCalendarific(t, map[int][]calHoliday{})
	f := newProcessorFixtureWith(t, calendarific.options(), WithSecrets(workers.KubeSecrets{Client: env.Client}))
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: f.prefix}}
	g.Expect(env.Client.Create(ctx, ns)).To(Succeed())
	g.Expect(env.Client.Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: f.prefix, Name: "calendarific", Labels: map[string]string{
			jobsv1alpha1.LabelCredential: "true", jobsv1alpha1.LabelCredentialOwner: "user-1"}},
		Data: map[string][]byte{CredentialKey: []byte("key-of-the-job")},
	})).To(Succeed())

	f.enqueue(f.prefix+"-job", f.property("credential"), func(s *jobsv1alpha1.EnrichmentJobSpec) { s.CredentialSecretName = "calendarific" })
	job := f.finished(g, f.prefix+"-job")
	g.Expect(job.State).To(Equal(queue.StateCompleted), job.Error)
	g.Expect(calendarific.seen()).NotTo(BeEmpty())
	for _, r := range calendarific.seen() {
		g.Expect(r.Key).To(Equal("key-of-the-job"))
	}

	f.enqueue(f.prefix+"-job-2", f.property("nosecret"), func(s *jobsv1alpha1.EnrichmentJobSpec) { s.CredentialSecretName = "missing" })
	failed := f.finished(g, f.prefix+"-job-2")
	g.Expect(failed.State).To(Equal(queue.StateFailed))
	g.Expect(failed.Error).To(HavePrefix(`credential Secret "missing" cannot be used by this job`))
}

// BenchmarkProcessor3Years enriches three years of daily pricing rows end to end: read the
// rows from PostgreSQL, weather from the fake Open-Meteo (one archive request), offline
// holidays, features, and the upsert of 1,096 rows.
func BenchmarkProcessor3Years(b *testing.B) {
	ctx := context.Background()
	dbURL := os.Getenv("DATABASE_URL")
	if dbURL == "" {
		b.Fatal("DATABASE_URL is not set: run under hack/with-services.sh")
	}
	if err := store.Migrate(ctx, dbURL, logr.Discard()); err != nil {
		b.Fatal(err)
	}
	db, err := store.Open(ctx, dbURL)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	meteo := newFakeOpenMeteo(b, nil)
	meteo.Synthetic = true
	id := fmt.Sprintf("bench-%d", time.Now().UnixNano())
	if _, err := db.UpsertProperty(ctx, store.Property{ID: id, UserID: "user-1", CountryCode: "ES"}); err != nil {
		b.Fatal(err)
	}
	var rows []store.PricingBase
	for d := date("2022-01-01"); d.Before(date("2025-01-01")); d = d.AddDate(0, 0, 1) {
		rows = append(rows, store.PricingBase{Date: d, Price: ptr(120.0)})
	}
	if err := db.UpsertPricingRows(ctx, id, rows); err != nil {
		b.Fatal(err)
	}
	p := NewProcessor(db, NewEnricher(append(meteo.options(), WithClock(fixedClock("2025-06-01T12:00:00Z")))...))
	spec, _ := json.Marshal(jobsv1alpha1.EnrichmentJobSpec{
		JobCommonSpec:    jobsv1alpha1.JobCommonSpec{PropertyID: id, UserID: "user-1"},
		EnrichmentFields: jobsv1alpha1.EnrichmentFields{Location: jobsv1alpha1.GeoLocation{Latitude: 40.4168, Longitude: -3.7038}, CountryCode: "ES"}})
	job := workers.Task{ID: "bench", Payload: spec, Attempt: 1, MaxAttempts: 5}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := p.Process(ctx, job, func(int, string) {}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(rows)), "rows/op")
}
