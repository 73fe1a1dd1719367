// Package workercmd is the command line of `queue-operator worker`, written once for the
// command that parses it and for the controller and the dev environment that start workers.
// It is a leaf (the API types and the standard library) so that controllers/ can use it
// without importing the worker runtime.
package workercmd

import (
	"strconv"
	"time"

	jobsv1alpha1 "github.com/jengu/queue-operator/api/v1alpha1"
)

// Name is the worker's subcommand.
const Name = "worker"

// The worker's flags.
const (
	FlagQueue              = "queue"
	FlagNamespace          = "namespace"
	FlagConcurrency        = "concurrency"
	FlagMetricsBindAddress = "metrics-bind-address"
	FlagShutdownGrace      = "shutdown-grace"
	FlagWorkerID           = "worker-id"
)

const (
	// MetricsPort serves the worker's /metrics and /healthz by default.
	MetricsPort = 8082
	// MetricsPortName names that port in the worker's Pod, for the liveness probe and scrapes.
	MetricsPortName = "metrics"
	// MetricsOff as the metrics address runs the worker without a metrics server.
	MetricsOff = "0"
	// DefaultShutdownGrace is how long running jobs may finish on SIGTERM when the command
	// line does not say.
	DefaultShutdownGrace = 25 * time.Second
	// DefaultKubeQPS and DefaultKubeBurst are the worker's client-side rate limits towards the
	// kube-apiserver. client-go's default (5/s) lets job status fall seconds behind Redis under
	// a burst (every transition costs a read and a patch), and a status that lags is what a lost
	// Redis is repaired from: jobs finished in Redis but not yet on their CR would run again.
	DefaultKubeQPS   = 50
	DefaultKubeBurst = 100
)

// DefaultMetricsAddr is the worker's default metrics address, all interfaces on MetricsPort.
var DefaultMetricsAddr = ":" + strconv.Itoa(MetricsPort)

// Command is one worker's command line.
type Command struct {
	Queue     jobsv1alpha1.QueueName
	Namespace string
	// ShutdownGrace is left out of the arguments when 0 (DefaultShutdownGrace applies).
	ShutdownGrace time.Duration
	// MetricsAddr is left out of the arguments when empty (DefaultMetricsAddr applies);
	// MetricsOff turns the server off.
	MetricsAddr string
}

// Args are the binary's arguments: worker --queue Q --namespace NS [--shutdown-grace D]
// [--metrics-bind-address A].
func (c Command) Args() []string {
	args := []string{Name, "--" + FlagQueue, string(c.Queue), "--" + FlagNamespace, c.Namespace}
	if c.ShutdownGrace != 0 {
		args = append(args, "--"+FlagShutdownGrace, c.ShutdownGrace.String())
	}
	if c.MetricsAddr != "" {
		args = append(args, "--"+FlagMetricsBindAddress, c.MetricsAddr)
	}
	return args
}
