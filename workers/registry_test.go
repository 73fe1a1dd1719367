package workers_test

import (
	"context"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"

	jobsv1alpha1 "github.com/jengu/queue-operator/api/v1alpha1"
	"github.com/jengu/queue-operator/workers"
)

func TestRegistry(t *testing.T) {
	var got workers.ProcessorDeps
	okProcessor := workers.ProcessorFunc(func(context.Context, workers.Task, workers.Progress) ([]byte, error) {
		return []byte("done"), nil
	})
	errBadSetting := errors.New("bad setting")
	// Listed against JobKinds' order on purpose.
	r := workers.Registry{
		jobsv1alpha1.QueueAnalytics: func(d workers.ProcessorDeps) (workers.Processor, error) {
			got = d
			return okProcessor, nil
		},
		jobsv1alpha1.QueueEnrichment: func(workers.ProcessorDeps) (workers.Processor, error) { return nil, errBadSetting },
	}

	if diff := cmp.Diff([]jobsv1alpha1.QueueName{jobsv1alpha1.QueueEnrichment, jobsv1alpha1.QueueAnalytics}, r.Queues()); diff != "" {
		t.Errorf("Queues() (-want +got):\n%s", diff)
	}
	if _, err := r.For(jobsv1alpha1.QueueCompetitor); !errors.Is(err, workers.ErrNoProcessor) ||
		err.Error() != "queue competitor: no processor for this queue" {
		t.Errorf("For(competitor) = %v, want ErrNoProcessor naming the queue", err)
	}
	if _, err := r.New(jobsv1alpha1.QueueCompetitor, workers.ProcessorDeps{}); !errors.Is(err, workers.ErrNoProcessor) {
		t.Errorf("New(competitor) = %v, want ErrNoProcessor", err)
	}
	if _, err := r.New(jobsv1alpha1.QueueEnrichment, workers.ProcessorDeps{}); !errors.Is(err, errBadSetting) {
		t.Errorf("New(enrichment) = %v, want the constructor's error", err)
	}
	deps := workers.ProcessorDeps{Getenv: func(name string) string { return "value of " + name }}
	p, err := r.New(jobsv1alpha1.QueueAnalytics, deps)
	if err != nil {
		t.Fatal(err)
	}
	if out, _ := p.Process(context.Background(), workers.Task{}, nil); string(out) != "done" {
		t.Errorf("the processor built is not the constructor's: Process = %q", out)
	}
	if v := got.Env("X"); v != "value of X" {
		t.Errorf("the constructor got other deps: Env(X) = %q", v)
	}
}

func TestProcessorDepsEnvDefaultsToTheProcess(t *testing.T) {
	t.Setenv("QUEUE_OPERATOR_DEPS_TEST", "from the process")
	if v := (workers.ProcessorDeps{}).Env("QUEUE_OPERATOR_DEPS_TEST"); v != "from the process" {
		t.Errorf("Env with no Getenv = %q, want the process environment's", v)
	}
}
