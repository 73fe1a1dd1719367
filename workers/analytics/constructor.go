package analytics

import "github.com/jengu/queue-operator/workers"

var _ workers.NewProcessorFunc = New

// New is the analytics-heavy queue's processor as the worker builds it, over deps' store. It
// reads no settings.
func New(deps workers.ProcessorDeps) (workers.Processor, error) {
	return NewProcessor(deps.Store), nil
}
