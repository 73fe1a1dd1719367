// Package e2e runs the product's parts together on a local control plane: the controller, a
// worker with the real enrichment processor, Redis, PostgreSQL, and a fake Open-Meteo (the one
// outside service, faked in its real format).
package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/testr"
	. "github.com/onsi/gomega"
	"github.com/redis/go-redis/v9"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"

	jobsv1alpha1 "github.com/jengu/queue-operator/api/v1alpha1"
	"github.com/jengu/queue-operator/controllers"
	"github.com/jengu/queue-operator/internal/testenv"
	"github.com/jengu/queue-operator/internal/testredis"
	"github.com/jengu/queue-operator/store"
	"github.com/jengu/queue-operator/workers"
	"github.com/jengu/queue-operator/workers/enrichment"
)

var env *testenv.Env

func TestMain(m *testing.M) { testenv.Main(m, &env) }

// openMeteo answers the daily archive API with a temperature that depends on the day.
func openMeteo(t *testing.T) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		start, err1 := time.Parse(time.DateOnly, q.Get("start_date"))
		end, err2 := time.Parse(time.DateOnly, q.Get("end_date"))
		if err1 != nil || err2 != nil {
			w.WriteHeader(http.StatusBadRequest)
			_, _ = w.Write([]byte(`{"error":true,"reason":"Invalid date"}`))
			return
		}
		var days []string
		var tmax, tmin, precip []float64
		var codes []int
		for d := start; !d.After(end); d = d.AddDate(0, 0, 1) {
			days = append(days, d.Format(time.DateOnly))
			tmax = append(tmax, 10+float64(d.Day()))
			tmin = append(tmin, float64(d.Day()))
			precip = append(precip, 0.5)
			codes = append(codes, 61)
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{
			"latitude": q.Get("latitude"), "longitude": q.Get("longitude"), "timezone": "Europe/Madrid",
			"daily_units": map[string]string{"time": "iso8601", "temperature_2m_max": "°C"},
			"daily": map[string]any{"time": days, "temperature_2m_max": tmax, "temperature_2m_min": tmin,
				"precipitation_sum": precip, "weather_code": codes},
		})
	}))
	t.Cleanup(srv.Close)
	return srv
}

// system is the product running for one test: a namespace with the enrichment JobQueue, a
// property of user-1 with ten days of prices, the controller and a worker with the real
// enrichment processor.
type system struct {
	ctx        context.Context
	ns         string
	propertyID string
	db         *store.Store
	rdb        *redis.Client
	workerDone chan error
}

// newSystem runs the enrichment queue with the real enrichment processor against a fake
// Open-Meteo (holidays offline).
func newSystem(t *testing.T, g Gomega) *system {
	meteo := openMeteo(t)
	return newSystemWith(t, g, jobsv1alpha1.QueueEnrichment, func(db *store.Store) workers.Processor {
		return enrichment.NewProcessor(db, enrichment.NewEnricher(enrichment.WithArchiveURL(meteo.URL+"/v1/archive"),
			enrichment.WithForecastURL(meteo.URL+"/v1/forecast")))
	})
}

// newSystemWith runs one queue with its JobQueue, the controller and a worker of processor.
func newSystemWith(t *testing.T, g Gomega, queueName jobsv1alpha1.QueueName, processor func(*store.Store) workers.Processor) *system {
	ctx, cancel := context.WithCancel(context.Background())
	dbURL := os.Getenv("DATABASE_URL")
	if dbURL == "" {
		t.Fatal("DATABASE_URL is not set: run the tests with `make test`")
	}
	g.Expect(store.Migrate(ctx, dbURL, logr.Discard())).To(Succeed())
	db, err := store.Open(ctx, dbURL)
	g.Expect(err).NotTo(HaveOccurred())
	t.Cleanup(db.Close)
	s := &system{ctx: ctx, db: db, rdb: testredis.Shared(t), workerDone: make(chan error, 1),
		ns: fmt.Sprintf("e2e-%d", time.Now().UnixNano()%1_000_000)}

	g.Expect(env.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: s.ns}})).To(Succeed())
	g.Expect(env.Client.Create(ctx, &jobsv1alpha1.JobQueue{ObjectMeta: metav1.ObjectMeta{Namespace: s.ns, Name: string(queueName)},
		Spec: jobsv1alpha1.JobQueueSpec{Queue: queueName}})).To(Succeed())
	s.propertyID = s.ns + "-madrid"
	_, err = db.UpsertProperty(ctx, store.Property{ID: s.propertyID, UserID: "user-1", CountryCode: "ES",
		Location: &store.Location{Latitude: 40.4168, Longitude: -3.7038}})
	g.Expect(err).NotTo(HaveOccurred())
	var base []store.PricingBase
	for d := 1; d <= 10; d++ {
		price := 140.0
		base = append(base, store.PricingBase{Date: time.Date(2024, 10, d, 0, 0, 0, 0, time.UTC), Price: &price})
	}
	g.Expect(db.UpsertPricingRows(ctx, s.propertyID, base)).To(Succeed())

	// The controller, scoped to the namespace.
	opts := controllers.DefaultOptions()
	opts.History = db
	mgr, err := controllers.NewManager(env.Config, controllers.ManagerConfig{Redis: s.rdb, MetricsAddr: "0", ProbeAddr: "0",
		Namespaces: []string{s.ns}, Options: opts, Logger: testr.New(t), SkipNameValidation: true})
	g.Expect(err).NotTo(HaveOccurred())
	mgrDone := make(chan struct{})
	go func() { defer close(mgrDone); _ = mgr.Start(ctx) }()
	t.Cleanup(func() { // no logging into a finished test
		cancel()
		<-mgrDone
		select {
		case err := <-s.workerDone:
			if err != nil {
				t.Errorf("worker: %v", err)
			}
		case <-time.After(15 * time.Second):
			t.Error("the worker did not stop")
		}
	})

	go func() {
		s.workerDone <- workers.Run(ctx, workers.Config{Namespace: s.ns, Queue: queueName, Redis: s.rdb,
			Kube: env.Client, Processor: processor(db), Results: db, WorkerID: "e2e-worker", Log: testr.New(t), ProgressInterval: time.Second})
	}()
	return s
}

func TestEnrichmentJobRunsEndToEnd(t *testing.T) {
	g := NewWithT(t)
	sys := newSystem(t, g)
	ctx, ns, propertyID, db := sys.ctx, sys.ns, sys.propertyID, sys.db

	// Watch the job's phases as kubectl would see them.
	w, err := env.WatchClient().Watch(ctx, &jobsv1alpha1.EnrichmentJobList{}, client.InNamespace(ns))
	g.Expect(err).NotTo(HaveOccurred())
	defer w.Stop()
	phases := make(chan jobsv1alpha1.JobPhase, 100)
	go func() {
		for e := range w.ResultChan() {
			if e.Type == watch.Modified {
				phases <- e.Object.(*jobsv1alpha1.EnrichmentJob).Status.Phase
			}
		}
		close(phases)
	}()

	job := &jobsv1alpha1.EnrichmentJob{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "enrich-e2e00001-" + strconv.FormatInt(time.Now().UnixMilli(), 10)},
		Spec: jobsv1alpha1.EnrichmentJobSpec{
			JobCommonSpec: jobsv1alpha1.JobCommonSpec{PropertyID: propertyID, UserID: "user-1"},
			EnrichmentFields: jobsv1alpha1.EnrichmentFields{
				Location:    jobsv1alpha1.GeoLocation{Latitude: 40.4168, Longitude: -3.7038},
				CountryCode: "ES",
			},
		},
	}
	g.Expect(env.Client.Create(ctx, job)).To(Succeed())

	stored := &jobsv1alpha1.EnrichmentJob{}
	g.Eventually(func() jobsv1alpha1.JobPhase {
		_ = env.Client.Get(ctx, client.ObjectKeyFromObject(job), stored)
		return stored.Status.Phase
	}).WithTimeout(30 * time.Second).Should(Equal(jobsv1alpha1.PhaseCompleted))
	g.Expect(stored.Status.Progress).To(Equal(int32(100)))
	g.Expect(stored.Status.Message).To(ContainSubstring("10 rows"), "the result summary shows on the job")
	g.Expect(stored.Status.AttemptsMade).To(Equal(int32(1)))
	g.Expect(meta.IsStatusConditionTrue(stored.Status.Conditions, jobsv1alpha1.ConditionComplete)).To(BeTrue())

	var seen []jobsv1alpha1.JobPhase
	g.Eventually(func() []jobsv1alpha1.JobPhase {
		for {
			select {
			case p := <-phases:
				if len(seen) == 0 || seen[len(seen)-1] != p {
					seen = append(seen, p)
				}
			default:
				return seen
			}
		}
	}).Should(ContainElement(jobsv1alpha1.PhaseCompleted))
	// Waiting and Active may be skipped: the controller leaves Waiting to a worker that starts the
	// job within the status grace, and the worker writes Active only for an attempt that runs
	// longer than its start delay. What kubectl sees last is the end.
	g.Expect(seen[len(seen)-1]).To(Equal(jobsv1alpha1.PhaseCompleted), "phases seen: %v", seen)
	g.Expect(seen).NotTo(ContainElement(jobsv1alpha1.PhaseFailed), "phases seen: %v", seen)
	g.Expect(stored.Status.QueuedAt).NotTo(BeNil())
	g.Expect(stored.Status.StartedAt).NotTo(BeNil())

	rows, err := db.ListPricingRows(ctx, propertyID)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(rows).To(HaveLen(10))
	for _, r := range rows {
		g.Expect(r.Features).NotTo(BeNil())
		g.Expect(*r.Features.TempMaxC).To(Equal(10 + float64(r.Date.Day())))
	}
	g.Expect(rows[2].Features.IsHoliday).To(BeFalse())
	g.Expect(rows[2].Features.DayOfWeek).To(Equal(4), "2024-10-03 is a Thursday")
	property, err := db.GetProperty(ctx, propertyID)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(property.EnrichmentStatus).To(Equal(store.EnrichmentCompleted))

}
