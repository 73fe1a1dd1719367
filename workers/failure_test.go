package workers_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	. "github.com/onsi/gomega"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	jobsv1alpha1 "github.com/jengu/queue-operator/api/v1alpha1"
	"github.com/jengu/queue-operator/internal/testredis"
	"github.com/jengu/queue-operator/queue"
	"github.com/jengu/queue-operator/workers"
)

func TestPublicReason(t *testing.T) {
	pgErr := &pgconn.PgError{Severity: "FATAL", Code: "28P01", Message: `password authentication failed for user "app_secret"`}
	dial := &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connect: connection refused 10.1.2.3:5432")}
	timeout := errors.New("job timed out after 5m0s")
	tests := []struct {
		name  string
		err   error
		cause error
		want  string
	}{
		{"the job's data", workers.Permanent(errors.New("property p1 no longer exists")), nil, "property p1 no longer exists"},
		{"rate limited", workers.RateLimited(errors.New("serpapi: rate limited"), time.Minute), nil, "serpapi: rate limited (retry after 1m0s)"},
		{"public", workers.Public("credential Secret \"x\" cannot be used", errors.New("not found")), nil, "credential Secret \"x\" cannot be used"},
		{"public inside permanent", workers.Permanent(workers.Public("safe", pgErr)), nil, "safe"},
		{"database", fmt.Errorf("store rows: %w", pgErr), nil, workers.ReasonInternalDatabase},
		{"database inside permanent", workers.Permanent(fmt.Errorf("upsert: %w", pgErr)), nil, workers.ReasonInternalDatabase},
		{"kubernetes", fmt.Errorf("read: %w", apierrors.NewForbidden(schema.GroupResource{Resource: "secrets"}, "db", errors.New("no"))), nil, workers.ReasonInternalCluster},
		{"network", fmt.Errorf("call: %w", dial), nil, workers.ReasonInternalNetwork},
		{"anything else", errors.New("unexpected state at /var/run/x"), nil, workers.ReasonInternal},
		{"the job's timeout", fmt.Errorf("weather: %w", context.DeadlineExceeded), timeout, "job timed out after 5m0s"},
	}
	for _, tt := range tests {
		if diff := cmp.Diff(tt.want, workers.PublicReason(tt.err, tt.cause)); diff != "" {
			t.Errorf("%s: PublicReason(%v) (-want +got):\n%s", tt.name, tt.err, diff)
		}
	}
}

// TestFailureDetailStaysOutOfTheJob: a processor failing on a real PostgreSQL connection error
// (which names the host, the port and the database user) gives the job's user a fixed message in
// the record and the CR; the detail goes to the CR's Events.
func TestFailureDetailStaysOutOfTheJob(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	f := newFixture(t)
	port := testredis.FreePort(t)
	_, connErr := pgx.Connect(ctx, fmt.Sprintf("postgres://app_secret_user:pw@127.0.0.1:%d/appdb?connect_timeout=5", port))
	g.Expect(connErr).To(HaveOccurred())
	g.Expect(connErr.Error()).To(ContainSubstring("app_secret_user"), "the detail names the user")

	job := f.job("enrich-leak-"+f.ns, func(r *queue.EnqueueRequest) { r.MaxAttempts = 1 })
	events, err := workers.NewKubeEvents(ctx, env.Config, env.Scheme, func() jobsv1alpha1.JobObject { return &jobsv1alpha1.EnrichmentJob{} }, f.ns)
	g.Expect(err).NotTo(HaveOccurred())
	f.run(workers.ProcessorFunc(func(context.Context, workers.Task, workers.Progress) ([]byte, error) {
		return nil, workers.Permanent(fmt.Errorf("read the property: %w", connErr))
	}), workers.WithEvents(events))

	g.Eventually(func() queue.State { return f.record(job.Name)().State }).WithTimeout(timeout).Should(Equal(queue.StateFailed))
	g.Expect(f.record(job.Name)().Error).To(Equal(workers.ReasonInternalDatabase))
	g.Eventually(func() string { return f.status(job)().Message }).WithTimeout(timeout).Should(Equal(workers.ReasonInternalDatabase))
	g.Eventually(func() []string {
		list := &eventsv1.EventList{}
		if err := env.Client.List(ctx, list, client.InNamespace(f.ns)); err != nil {
			return nil
		}
		var notes []string
		for _, e := range list.Items {
			if e.Regarding.Name == job.Name && e.Reason == "AttemptFailed" {
				notes = append(notes, e.Note)
			}
		}
		return notes
	}).WithTimeout(timeout).Should(ContainElement(ContainSubstring("app_secret_user")), "the detail is in the job's Events")
}
