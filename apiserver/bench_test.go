package apiserver_test

import (
	"net/http"
	"testing"
)

// The seed's targets: enqueue latency under 150 ms, and GET /api/jobs/:jobId well under 1 s.
// Run with: make test TESTFLAGS='-run ^$ -bench . ./apiserver/' (or go test -bench under
// hack/with-services.sh with KUBEBUILDER_ASSETS set). ns/op is the latency of one request over
// a real socket, through the facade's role, to a real kube-apiserver, Redis and PostgreSQL.

func BenchmarkEnqueueEnrichment(b *testing.B) {
	f := newFixture(b)
	path := "/api/files/" + f.property("user-a", true) + "/enrich"
	for b.Loop() {
		if r := f.do(http.MethodPost, path, "user-a", nil); r.Code != http.StatusAccepted {
			b.Fatalf("enqueue: %d %s", r.Code, r.Raw)
		}
	}
}

func BenchmarkGetJob(b *testing.B) {
	f := newFixture(b)
	id := f.enqueue("user-a")
	for b.Loop() {
		if r := f.do(http.MethodGet, "/api/jobs/"+id, "user-a", nil); r.Code != http.StatusOK {
			b.Fatalf("get: %d %s", r.Code, r.Raw)
		}
	}
}
