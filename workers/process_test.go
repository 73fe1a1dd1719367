package workers_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"syscall"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/config"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	jobsv1alpha1 "github.com/jengu/queue-operator/api/v1alpha1"
	"github.com/jengu/queue-operator/internal/testenv"
	"github.com/jengu/queue-operator/internal/testpg"
	"github.com/jengu/queue-operator/internal/testredis"
	"github.com/jengu/queue-operator/queue"
	"github.com/jengu/queue-operator/store"
	"github.com/jengu/queue-operator/workers"
)

// The tests below run workers as processes of their own (this test binary, re-executed with
// WORKER_PROCESS_NAMESPACE set), so they can be killed and signalled like real ones.

const hotels = 3

// competitorProcessor writes the job's competitor prices, then works for WORKER_JOB_SECONDS.
func competitorProcessor(db *store.Store, work time.Duration) workers.Processor {
	return workers.ProcessorFunc(func(ctx context.Context, job workers.Task, progress workers.Progress) ([]byte, error) {
		var spec jobsv1alpha1.CompetitorJobSpec
		if err := json.Unmarshal(job.Payload, &spec); err != nil {
			return nil, workers.Permanent(err)
		}
		checkIn, _ := time.Parse(time.DateOnly, spec.CheckIn)
		checkOut, _ := time.Parse(time.DateOnly, spec.CheckOut)
		var prices []store.CompetitorPrice
		for i := range hotels {
			prices = append(prices, store.CompetitorPrice{HotelID: fmt.Sprintf("hotel-%d", i), HotelName: "Hotel", Price: ptr(100 + float64(i)), Currency: "EUR"})
		}
		err := db.ReplaceCompetitorPrices(ctx, store.CompetitorSearch{Namespace: job.Namespace, JobID: job.ID, PropertyID: spec.PropertyID,
			CheckIn: checkIn, CheckOut: checkOut, Adults: int(spec.Adults)}, prices)
		if err != nil {
			return nil, err
		}
		progress(50, "prices written")
		select {
		case <-time.After(work):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		return []byte(`{"hotels":3}`), nil
	})
}

// workerProcessMain runs when this binary is a worker process.
func workerProcessMain() int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	fail := func(err error) int { fmt.Fprintln(os.Stderr, "worker process:", err); return 2 }
	db, err := store.Open(ctx, os.Getenv("DATABASE_URL"))
	if err != nil {
		return fail(err)
	}
	defer db.Close()
	kube, err := client.New(config.GetConfigOrDie(), client.Options{Scheme: testenv.NewScheme()})
	if err != nil {
		return fail(err)
	}
	rdb := testredis.SharedFromEnv()
	defer rdb.Close()
	work, _ := time.ParseDuration(os.Getenv("WORKER_JOB_DURATION"))
	err = workers.Run(ctx, workers.Config{
		Namespace: os.Getenv("WORKER_PROCESS_NAMESPACE"), Queue: jobsv1alpha1.QueueCompetitor,
		Redis: rdb, Kube: kube, Processor: competitorProcessor(db, work), Concurrency: 1,
		WorkerID: os.Getenv("WORKER_ID"), ShutdownGrace: 500 * time.Millisecond,
		LeaseDuration: 2 * time.Second, HeartbeatInterval: 300 * time.Millisecond,
		ProgressInterval: time.Second, Log: zap.New(zap.WriteTo(os.Stderr)),
	})
	if err != nil {
		return fail(err)
	}
	return 0
}

// startWorkerProcess starts a worker process for the fixture's namespace.
func (f *fixture) startWorkerProcess(id string, jobDuration time.Duration) *exec.Cmd {
	f.t.Helper()
	kubeconfig, err := env.KubeconfigFile(f.t.TempDir())
	if err != nil {
		f.t.Fatalf("kubeconfig: %v", err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "WORKER_PROCESS_NAMESPACE="+f.ns, "WORKER_ID="+id, "KUBECONFIG="+kubeconfig,
		"WORKER_JOB_DURATION="+jobDuration.String())
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		f.t.Fatalf("start worker process: %v", err)
	}
	f.t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	return cmd
}

// competitorJob creates a property, a CompetitorJob for it, and enqueues the job as the
// controller does.
func (f *fixture) competitorJob(db *store.Store, name string) (*jobsv1alpha1.CompetitorJob, *queue.Queue) {
	f.t.Helper()
	if _, err := db.UpsertProperty(context.Background(), store.Property{ID: "prop-" + name, UserID: "user-1"}); err != nil {
		f.t.Fatalf("property: %v", err)
	}
	job := &jobsv1alpha1.CompetitorJob{
		ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: name},
		Spec: jobsv1alpha1.CompetitorJobSpec{JobCommonSpec: jobsv1alpha1.JobCommonSpec{PropertyID: "prop-" + name, UserID: "user-1"},
			CompetitorFields: jobsv1alpha1.CompetitorFields{Location: "Barcelona", CheckIn: "2026-12-18", CheckOut: "2026-12-20", Adults: 2}},
	}
	if err := env.Client.Create(context.Background(), job); err != nil {
		f.t.Fatalf("create job: %v", err)
	}
	payload, _ := json.Marshal(job.Spec)
	q := queue.New(testredis.Shared(f.t)).Queue(f.ns, string(jobsv1alpha1.QueueCompetitor))
	if _, err := q.Enqueue(context.Background(), queue.EnqueueRequest{ID: name, UID: string(job.UID), Payload: payload,
		MaxAttempts: 3, Timeout: time.Minute}); err != nil {
		f.t.Fatalf("enqueue: %v", err)
	}
	return job, q
}

func TestKilledWorkerProcessLosesNoJob(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	db := testpg.OpenShared(t)
	f := newFixture(t)
	job, q := f.competitorJob(db, "competitor-kill-1")

	first := f.startWorkerProcess("worker-a", time.Hour)
	g.Eventually(func() string { r, _ := q.Get(ctx, job.Name); return r.Worker }).WithTimeout(timeout).Should(Equal("worker-a"))
	g.Eventually(func() int { rows, _ := db.ListCompetitorPrices(ctx, job.Namespace, job.Name); return len(rows) }).WithTimeout(timeout).Should(Equal(hotels))
	g.Expect(first.Process.Kill()).To(Succeed())
	_ = first.Wait()

	f.startWorkerProcess("worker-b", 0)
	// The controller's housekeeping reclaims expired leases; here the test does it.
	g.Eventually(func() jobsv1alpha1.JobPhase {
		_, _ = q.ReclaimStalled(ctx, 1)
		obj := &jobsv1alpha1.CompetitorJob{}
		_ = env.Client.Get(ctx, client.ObjectKeyFromObject(job), obj)
		return obj.Status.Phase
	}).WithTimeout(timeout).WithPolling(200 * time.Millisecond).Should(Equal(jobsv1alpha1.PhaseCompleted))
	record, err := q.Get(ctx, job.Name)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(record.Worker).To(Equal("worker-b"))
	g.Expect(record.AttemptsMade).To(Equal(2), "the killed worker's attempt counts")
	rows, err := db.ListCompetitorPrices(ctx, job.Namespace, job.Name)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(rows).To(HaveLen(hotels), "each row exactly once after the re-run")
}

func TestSIGTERMHandsTheJobBackAndExitsZero(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	db := testpg.OpenShared(t)
	f := newFixture(t)
	job, q := f.competitorJob(db, "competitor-term-1")
	worker := f.startWorkerProcess("worker-t", time.Hour)
	g.Eventually(func() string { r, _ := q.Get(ctx, job.Name); return r.Worker }).WithTimeout(timeout).Should(Equal("worker-t"))

	g.Expect(worker.Process.Signal(syscall.SIGTERM)).To(Succeed())
	err := worker.Wait()
	var exit *exec.ExitError
	g.Expect(errors.As(err, &exit)).To(BeFalse(), "exit status: %v", err)
	record, err := q.Get(ctx, job.Name)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(record.State).To(Equal(queue.StateWaiting))
	g.Expect(record.AttemptsMade).To(BeZero())
}
func ptr[T any](v T) *T { return &v }
