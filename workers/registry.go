package workers

import (
	"errors"
	"fmt"
	"os"

	jobsv1alpha1 "github.com/jengu/queue-operator/api/v1alpha1"
	"github.com/jengu/queue-operator/store"
)

// ProcessorDeps is what a processor is built from.
type ProcessorDeps struct {
	// Store is the product's PostgreSQL.
	Store *store.Store
	// Secrets reads the credential Secrets jobs name (nil: jobs may name none).
	Secrets SecretReader
	// Getenv reads the processor's settings (os.Getenv when nil).
	Getenv func(string) string
}

// Env returns the environment variable name through Getenv.
func (d ProcessorDeps) Env(name string) string {
	if d.Getenv == nil {
		return os.Getenv(name)
	}
	return d.Getenv(name)
}

// NewProcessorFunc builds a queue's processor. It returns an error for settings it cannot use.
type NewProcessorFunc func(ProcessorDeps) (Processor, error)

// Registry maps the queues that have a processor in this build to their constructors. Looking
// a queue up constructs nothing, so the worker can refuse a queue before it connects anywhere.
type Registry map[jobsv1alpha1.QueueName]NewProcessorFunc

// ErrNoProcessor: the queue has no processor in this build.
var ErrNoProcessor = errors.New("no processor for this queue")

// For returns the constructor of the queue's processor, ErrNoProcessor when it has none.
func (r Registry) For(queueName jobsv1alpha1.QueueName) (NewProcessorFunc, error) {
	newProcessor, ok := r[queueName]
	if !ok || newProcessor == nil {
		return nil, fmt.Errorf("queue %s: %w", queueName, ErrNoProcessor)
	}
	return newProcessor, nil
}

// New builds the queue's processor from deps.
func (r Registry) New(queueName jobsv1alpha1.QueueName, deps ProcessorDeps) (Processor, error) {
	newProcessor, err := r.For(queueName)
	if err != nil {
		return nil, err
	}
	p, err := newProcessor(deps)
	if err != nil {
		return nil, fmt.Errorf("queue %s: build its processor: %w", queueName, err)
	}
	return p, nil
}

// Queues lists the queues that have a processor, in JobKinds order.
func (r Registry) Queues() []jobsv1alpha1.QueueName {
	var queues []jobsv1alpha1.QueueName
	for _, k := range jobsv1alpha1.JobKinds {
		if _, err := r.For(k.Queue); err == nil {
			queues = append(queues, k.Queue)
		}
	}
	return queues
}
