package cmd

import (
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/jengu/queue-operator/internal/devenv"
)

// EnvPrometheus set (not "0") makes `make dev` start Prometheus: `make dev PROMETHEUS=1`.
const EnvPrometheus = "PROMETHEUS"

// devOptions are the dev environment's flags.
type devOptions struct {
	Env devenv.Options
	// FakeAPIs runs loopback stand-ins of the outside APIs and points the workers at them.
	FakeAPIs bool
}

func newDevOptions() *devOptions { return &devOptions{Env: devenv.Options{Out: os.Stdout}} }

func (o *devOptions) command() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run the whole system locally: control plane, CRDs, sample JobQueues (use `make dev`)",
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts := o.Env
			opts.WorkerQueues = processors.Queues()
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			log := zap.New(zap.UseDevMode(true))
			ctrl.SetLogger(log)
			if o.FakeAPIs {
				env, stopFakes := startFakeAPIs(log.WithName("fakeapis"))
				defer stopFakes()
				opts.WorkerEnv, opts.FakeAPIs = env, true
			}
			return devenv.Run(ctx, log, opts)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Env.CRDDir, "crd-dir", "config/crd/bases", "directory of the generated CRDs")
	f.StringVar(&o.Env.SamplesDir, "samples-dir", "config/samples", "directory of the samples")
	f.StringVar(&o.Env.StateDir, "state-dir", ".dev", "directory for the kubeconfig")
	f.StringVar(&o.Env.Namespace, "namespace", "default", "namespace of the sample JobQueues")
	f.StringVar(&o.Env.APIAddress, "api-address", "localhost:3001", "address of the REST facade")
	f.DurationVar(&o.Env.ScrapeInterval, "prometheus-scrape-interval", 5*time.Second, "scrape and rule evaluation interval of the printed Prometheus config")
	f.BoolVar(&o.Env.Prometheus, "prometheus", os.Getenv(EnvPrometheus) != "" && os.Getenv(EnvPrometheus) != "0",
		"start Prometheus (installed: Debian's prometheus package, or PROMETHEUS_BIN) on the printed config (env PROMETHEUS)")
	f.BoolVar(&o.FakeAPIs, "fake-apis", os.Getenv(EnvFakeAPIs) != "" && os.Getenv(EnvFakeAPIs) != "0",
		"run loopback stand-ins of Open-Meteo and Calendarific and point the workers at them, so jobs complete offline (env FAKE_APIS)")
	return cmd
}
