package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	"github.com/golang-jwt/jwt/v5"
	. "github.com/onsi/gomega"
	"sigs.k8s.io/controller-runtime/pkg/client"

	jobsv1alpha1 "github.com/jengu/queue-operator/api/v1alpha1"
	"github.com/jengu/queue-operator/apiserver"
	"github.com/jengu/queue-operator/store"
)

// TestEnrichmentThroughTheRESTAPI is a client written from the seed document alone: it enqueues
// with POST /api/files/:id/enrich, polls GET /api/jobs/:jobId as the seed's useJobStatus hook
// does until data.job.status is completed, and still reads the job once its CR is gone.
func TestEnrichmentThroughTheRESTAPI(t *testing.T) {
	g := NewWithT(t)
	sys := newSystem(t, g)
	call := restClient(t, g, sys, "user-1")

	enqueued := call(http.MethodPost, "/api/files/"+sys.propertyID+"/enrich")
	g.Expect(enqueued).To(HaveKeyWithValue("status", "queued"))
	jobID := enqueued["jobId"].(string)

	// The seed's hook: every poll reads data.job.status and data.job.progress, and stops on
	// completed or failed.
	var seen []string
	var job map[string]any
	g.Eventually(func() string {
		job = call(http.MethodGet, "/api/jobs/"+jobID)["job"].(map[string]any)
		status := job["status"].(string)
		if len(seen) == 0 || seen[len(seen)-1] != status {
			seen = append(seen, status)
		}
		return status
	}).WithTimeout(30 * time.Second).WithPolling(100 * time.Millisecond).Should(BeElementOf("completed", "failed"))
	g.Expect(job).To(And(HaveKeyWithValue("status", "completed"), HaveKeyWithValue("progress", 100.0),
		HaveKeyWithValue("attemptsMade", 1.0), HaveKey("processedOn"), HaveKey("finishedOn")), "statuses seen: %v", seen)
	g.Expect(seen).NotTo(ContainElement("not_found"))
	g.Expect(job["message"]).To(ContainSubstring("10 rows"))

	// The worker recorded how it ended; once the CR is gone (its TTL), the job answers from there.
	g.Eventually(func() error { _, err := sys.db.GetJobResult(context.Background(), sys.ns, jobID); return err }).Should(Succeed())
	cr := &jobsv1alpha1.EnrichmentJob{}
	g.Expect(env.Client.Get(sys.ctx, client.ObjectKey{Namespace: sys.ns, Name: jobID}, cr)).To(Succeed())
	g.Expect(env.Client.Delete(sys.ctx, cr)).To(Succeed())
	g.Eventually(func() error {
		return env.Client.Get(sys.ctx, client.ObjectKey{Namespace: sys.ns, Name: jobID}, &jobsv1alpha1.EnrichmentJob{})
	}).WithTimeout(15 * time.Second).Should(MatchError(ContainSubstring("not found")))
	g.Eventually(func() map[string]any { return call(http.MethodGet, "/api/jobs/"+jobID)["job"].(map[string]any) }).
		WithTimeout(15 * time.Second).Should(And(HaveKeyWithValue("status", "completed"), HaveKeyWithValue("progress", 100.0),
		HaveKeyWithValue("returnvalue", HaveKey("rows"))))

	rows, err := sys.db.ListPricingRows(sys.ctx, sys.propertyID)
	g.Expect(err).NotTo(HaveOccurred())
	for _, r := range rows {
		g.Expect(r.Features).NotTo(BeNil())
	}
	property, err := sys.db.GetProperty(sys.ctx, sys.propertyID)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(property.EnrichmentStatus).To(Equal(store.EnrichmentCompleted))
}

// restClient serves the REST facade for the system's namespace and returns a call as user with
// a JSON body ("{}" when none), decoding the JSON answer (its HTTP status as "httpStatus").
func restClient(t *testing.T, g Gomega, sys *system, user string) func(method, path string, body ...string) map[string]any {
	secret := []byte("e2e-jwt-secret-e2e-jwt-secret-e2e-jwt")
	facade, err := apiserver.Connect(sys.ctx, env.Config, apiserver.Config{Namespace: sys.ns, Redis: sys.rdb, Store: sys.db,
		JWTSecret: secret}, apiserver.WithLogger(testr.New(t)))
	g.Expect(err).NotTo(HaveOccurred())
	go func() { _ = facade.Run(sys.ctx) }()
	api := httptest.NewServer(facade.Handler())
	t.Cleanup(api.Close)

	token, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"sub": user, "aud": "authenticated", "role": "authenticated",
		"exp": time.Now().Add(time.Hour).Unix()}).SignedString(secret)
	g.Expect(err).NotTo(HaveOccurred())
	return func(method, path string, body ...string) map[string]any {
		return callAPI(g, api.URL, token, method, path, append(body, "{}")[0])
	}
}

func callAPI(g Gomega, base, token, method, path, body string) map[string]any {
	req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	g.Expect(err).NotTo(HaveOccurred())
	defer resp.Body.Close()
	var decoded map[string]any
	g.Expect(json.NewDecoder(resp.Body).Decode(&decoded)).To(Succeed())
	decoded["httpStatus"] = float64(resp.StatusCode)
	return decoded
}
