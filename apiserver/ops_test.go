package apiserver_test

import (
	"context"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	. "github.com/onsi/gomega"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	jobsv1alpha1 "github.com/jengu/queue-operator/api/v1alpha1"
	"github.com/jengu/queue-operator/apiserver"
	"github.com/jengu/queue-operator/queue"
)

func TestAuthRefusesEveryBadToken(t *testing.T) {
	f := newFixture(t)
	sign := func(method jwt.SigningMethod, key any, claims jwt.MapClaims) string {
		s, err := jwt.NewWithClaims(method, claims).SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	valid := func() jwt.MapClaims {
		return jwt.MapClaims{"sub": "user-a", "aud": "authenticated", "role": "authenticated", "exp": time.Now().Add(time.Hour).Unix()}
	}
	with := func(k string, v any) jwt.MapClaims { c := valid(); c[k] = v; return c }
	without := func(k string) jwt.MapClaims { c := valid(); delete(c, k); return c }
	cases := map[string]string{
		"no header":          "",
		"not bearer":         "Basic dXNlcjpwYXNz",
		"empty bearer":       "Bearer ",
		"garbage":            "Bearer not.a.jwt",
		"alg none":           "Bearer " + sign(jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, valid()),
		"HS512":              "Bearer " + sign(jwt.SigningMethodHS512, jwtSecret, valid()),
		"wrong secret":       "Bearer " + sign(jwt.SigningMethodHS256, []byte("another-secret-another-secret-another"), valid()),
		"expired":            "Bearer " + sign(jwt.SigningMethodHS256, jwtSecret, with("exp", time.Now().Add(-time.Hour).Unix())),
		"no expiry":          "Bearer " + sign(jwt.SigningMethodHS256, jwtSecret, without("exp")),
		"wrong audience":     "Bearer " + sign(jwt.SigningMethodHS256, jwtSecret, with("aud", "anon")),
		"no subject":         "Bearer " + sign(jwt.SigningMethodHS256, jwtSecret, without("sub")),
		"subject not an id":  "Bearer " + sign(jwt.SigningMethodHS256, jwtSecret, with("sub", "user a/../b")),
		"issued in a future": "Bearer " + sign(jwt.SigningMethodHS256, jwtSecret, with("iat", time.Now().Add(time.Hour).Unix())),
	}
	for name, header := range cases {
		t.Run(name, func(t *testing.T) {
			g := NewWithT(t)
			for _, route := range []struct{ method, path string }{
				{http.MethodGet, "/api/jobs"}, {http.MethodGet, "/api/jobs/enrich-1"}, {http.MethodPost, "/api/files/p/enrich"},
			} {
				r := f.do(route.method, route.path, "", nil, "Authorization", header)
				g.Expect(r.Code).To(Equal(http.StatusUnauthorized), route.path+": "+r.Raw)
				g.Expect(r.Header.Get("WWW-Authenticate")).To(HavePrefix("Bearer"))
				g.Expect(r.Body).To(HaveKeyWithValue("success", false))
				g.Expect(r.Body["error"]).To(HaveKeyWithValue("code", "unauthorized"))
			}
		})
	}
	NewWithT(t).Expect(f.do(http.MethodGet, "/api/jobs", "user-a", nil).Code).To(Equal(http.StatusOK))
	// The scheme is case-insensitive (RFC 9110).
	NewWithT(t).Expect(f.do(http.MethodGet, "/api/jobs", "", nil, "Authorization", "bearer "+token("user-a")).Code).To(Equal(http.StatusOK))
}

func TestBackpressureAnswers503WithRetryAfter(t *testing.T) {
	g := NewWithT(t)
	f := newFixture(t, withJobQueue(func(jq *jobsv1alpha1.JobQueue) {
		maxWaiting := int32(1)
		jq.Spec.MaxWaiting = &maxWaiting
	}))
	keyed := f.property("user-a", true)
	r := f.do(http.MethodPost, "/api/files/"+keyed+"/enrich", "user-a", nil, "Idempotency-Key", "k1")
	g.Expect(r.Code).To(Equal(http.StatusAccepted), r.Raw)
	first := r.Body["jobId"].(string)
	waiting := func() int64 {
		c, _ := f.queue(jobsv1alpha1.QueueEnrichment).Counts(context.Background())
		return c.Waiting
	}
	g.Eventually(waiting).WithTimeout(timeout).Should(Equal(int64(1)))
	second := f.enqueue("user-a") // at the limit, not over it: admitted
	g.Eventually(waiting).WithTimeout(timeout).Should(Equal(int64(2)), first+" "+second)

	r = f.do(http.MethodPost, "/api/files/"+f.property("user-a", true)+"/enrich", "user-a", nil)
	g.Expect(r.Code).To(Equal(http.StatusServiceUnavailable), r.Raw)
	g.Expect(r.Body["error"]).To(And(HaveKeyWithValue("code", "queue_full"), HaveKeyWithValue("message", ContainSubstring("2 jobs waiting"))))
	// One job over the seed's 10 per minute: 6 s.
	g.Expect(r.Header.Get("Retry-After")).To(Equal("6"))

	// A repeat of a request whose job exists adds nothing and is not turned away.
	r = f.do(http.MethodPost, "/api/files/"+keyed+"/enrich", "user-a", nil, "Idempotency-Key", "k1")
	g.Expect(r.Code).To(Equal(http.StatusAccepted), r.Raw)
	g.Expect(r.Body["jobId"]).To(Equal(first))

	// Other queues are not held back.
	r = f.do(http.MethodPost, "/api/files/"+f.property("user-a", true)+"/competitors", "user-a",
		map[string]any{"location": "Paris", "checkIn": "2026-07-01", "checkOut": "2026-07-02", "adults": 1})
	g.Expect(r.Code).To(Equal(http.StatusAccepted), r.Raw)
}

func TestBackpressureCountsJobsNotYetEnqueued(t *testing.T) {
	g := NewWithT(t)
	f := newFixture(t, withoutController(), withJobQueue(func(jq *jobsv1alpha1.JobQueue) {
		maxWaiting := int32(1)
		jq.Spec.MaxWaiting = &maxWaiting
	}))
	property := f.property("user-a", true)
	enqueue := func() response { return f.do(http.MethodPost, "/api/files/"+property+"/enrich", "user-a", nil) }
	g.Expect(enqueue().Code).To(Equal(http.StatusAccepted))
	// The cache sees the first job before the second request counts it.
	g.Eventually(func() any { return f.do(http.MethodGet, "/api/jobs", "user-a", nil).Body["total"] }).Should(Equal(1.0))
	g.Expect(enqueue().Code).To(Equal(http.StatusAccepted))
	g.Eventually(func() any { return f.do(http.MethodGet, "/api/jobs", "user-a", nil).Body["total"] }).Should(Equal(2.0))
	// Nothing reached Redis, yet the queue is over its limit.
	r := enqueue()
	g.Expect(r.Code).To(Equal(http.StatusServiceUnavailable), r.Raw)
	g.Expect(r.Body["error"]).To(HaveKeyWithValue("code", "queue_full"))
}

func TestMetricsExportTheSeedsGaugesForEveryQueue(t *testing.T) {
	g := NewWithT(t)
	f := newFixture(t)
	f.completedJob(g, "user-a")
	f.enqueue("user-a")
	g.Eventually(func() int64 {
		c, _ := f.queue(jobsv1alpha1.QueueEnrichment).Counts(context.Background())
		return c.Waiting
	}).WithTimeout(timeout).Should(Equal(int64(1)))

	r := f.do(http.MethodGet, f.ops+"/metrics", "", nil) // no auth, as the seed says
	g.Expect(r.Code).To(Equal(http.StatusOK))
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(strings.NewReader(r.Raw))
	g.Expect(err).NotTo(HaveOccurred())
	value := func(name, queue string) float64 {
		family, ok := families[name]
		g.Expect(ok).To(BeTrue(), name)
		g.Expect(family.GetType()).To(Equal(dto.MetricType_GAUGE))
		for _, m := range family.Metric {
			if m.Label[0].GetName() == "queue" && m.Label[0].GetValue() == queue {
				return m.Gauge.GetValue()
			}
		}
		t.Fatalf("%s has no queue=%q", name, queue)
		return 0
	}
	for _, q := range []string{"enrichment", "competitor", "analytics-heavy"} {
		for _, state := range []string{"waiting", "active", "completed", "failed", "delayed"} {
			value("bullmq_queue_"+state+"_jobs", q)
		}
	}
	g.Expect(value("bullmq_queue_waiting_jobs", "enrichment")).To(Equal(1.0))
	g.Expect(value("bullmq_queue_completed_jobs", "enrichment")).To(Equal(1.0))
	g.Expect(value("bullmq_queue_waiting_jobs", "competitor")).To(Equal(0.0))
	g.Expect(families).To(HaveKey("queue_operator_api_request_duration_seconds"))
	g.Expect(families).To(HaveKey("queue_operator_api_enqueue_duration_seconds"))
	g.Expect(families["queue_operator_api_queue_scrape_ok"].Metric[0].Gauge.GetValue()).To(Equal(1.0))

	r = f.do(http.MethodGet, f.ops+"/metrics/json", "", nil)
	g.Expect(r.Code).To(Equal(http.StatusOK))
	g.Expect(r.Body["timestamp"]).To(MatchRegexp(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$`))
	g.Expect(r.Body["queues"]).To(And(HaveLen(3), HaveKeyWithValue("enrichment",
		map[string]any{"waiting": 1.0, "active": 0.0, "completed": 1.0, "failed": 0.0, "delayed": 0.0})))
}

func TestHealthAndReadiness(t *testing.T) {
	g := NewWithT(t)
	f := newFixture(t)
	g.Expect(f.do(http.MethodGet, f.ops+"/healthz", "", nil).Code).To(Equal(http.StatusOK))
	r := f.do(http.MethodGet, f.ops+"/readyz", "", nil)
	g.Expect(r.Code).To(Equal(http.StatusOK), r.Raw)
	g.Expect(r.Body).To(HaveKeyWithValue("checks", map[string]any{"redis": "ok", "postgres": "ok", "kubernetes": "ok"}))
	r = f.do(http.MethodGet, "/api/nothing-here", "user-a", nil)
	g.Expect(r.Code).To(Equal(http.StatusNotFound))
	g.Expect(r.Body["error"]).To(HaveKeyWithValue("code", "route_not_found"))

	// Any method name a client invents is counted as "other": the label set stays bounded.
	g.Expect(f.do("BREW", "/coffee", "", nil).Code).To(Equal(http.StatusNotFound))
	metrics := f.do(http.MethodGet, f.ops+"/metrics", "", nil).Raw
	g.Expect(metrics).To(ContainSubstring(`method="other",route="unmatched"`))
	g.Expect(metrics).NotTo(ContainSubstring("BREW"))
}

// The facade runs, in every test here, as a user bound to the generated role alone; this one
// checks the role lets it do nothing more.
func TestFacadeRoleIsNarrow(t *testing.T) {
	g := NewWithT(t)
	f := newFixture(t)
	ctx := context.Background()
	other := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: f.ns + "-other"}}
	g.Expect(env.Client.Create(ctx, other)).To(Succeed())

	job := &jobsv1alpha1.EnrichmentJob{ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: "enrich-rbac"},
		Spec: jobsv1alpha1.EnrichmentJobSpec{JobCommonSpec: jobsv1alpha1.JobCommonSpec{PropertyID: "p", UserID: "u"},
			EnrichmentFields: jobsv1alpha1.EnrichmentFields{Location: jobsv1alpha1.GeoLocation{Latitude: 1, Longitude: 1}}}}
	g.Expect(f.facade.Create(ctx, job)).To(Succeed())
	job.Status.Phase = jobsv1alpha1.PhaseCompleted
	g.Expect(apierrors.IsForbidden(f.facade.Status().Update(ctx, job))).To(BeTrue(), "status update")
	g.Expect(apierrors.IsForbidden(f.facade.Update(ctx, job))).To(BeTrue(), "update")
	g.Expect(apierrors.IsForbidden(f.facade.Get(ctx, client.ObjectKey{Namespace: f.ns, Name: "any"}, &corev1.Secret{}))).To(BeTrue(), "secrets")
	jq := &jobsv1alpha1.JobQueue{}
	g.Expect(f.facade.Get(ctx, client.ObjectKey{Namespace: f.ns, Name: "enrichment"}, jq)).To(Succeed())
	g.Expect(apierrors.IsForbidden(f.facade.Delete(ctx, jq))).To(BeTrue(), "JobQueue delete")
	elsewhere := job.DeepCopy()
	elsewhere.Namespace, elsewhere.ResourceVersion = other.Name, ""
	g.Expect(apierrors.IsForbidden(f.facade.Create(ctx, elsewhere))).To(BeTrue(), "another namespace")
}

func TestServeOverASocketAndStop(t *testing.T) {
	g := NewWithT(t)
	f := newFixture(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	server, err := apiserver.Connect(ctx, env.Config, apiserver.Config{Namespace: f.ns, Redis: f.rdb, Store: db, JWTSecret: jwtSecret})
	g.Expect(err).NotTo(HaveOccurred())
	l, err := net.Listen("tcp", "127.0.0.1:0")
	g.Expect(err).NotTo(HaveOccurred())
	serveCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- server.Serve(serveCtx, l, nil) }()

	id := f.enqueue("user-a")
	req, _ := http.NewRequest(http.MethodGet, "http://"+l.Addr().String()+"/api/jobs/"+id+"/events", nil)
	req.Header.Set("Authorization", "Bearer "+token("user-a"))
	resp, err := http.DefaultClient.Do(req)
	g.Expect(err).NotTo(HaveOccurred())
	defer resp.Body.Close()
	g.Expect(resp.StatusCode).To(Equal(http.StatusOK))

	stop() // an open event stream does not hold the shutdown
	g.Eventually(done).WithTimeout(timeout).Should(Receive(BeNil()))
	_, err = queue.New(f.rdb).Queue(f.ns, "enrichment").Get(ctx, id)
	g.Expect(err).NotTo(HaveOccurred())
}
