package main

import (
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/jengu/queue-operator/internal/devenv"
)

func newDevCommand() *cobra.Command {
	opts := devenv.Options{Out: os.Stdout}
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run the whole system locally: control plane, CRDs, sample JobQueues (use `make dev`)",
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts.WorkerQueues = processorQueues()
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			log := zap.New(zap.UseDevMode(true))
			ctrl.SetLogger(log)
			return devenv.Run(ctx, log, opts)
		},
	}
	cmd.Flags().StringVar(&opts.CRDDir, "crd-dir", "config/crd/bases", "directory of the generated CRDs")
	cmd.Flags().StringVar(&opts.SamplesDir, "samples-dir", "config/samples", "directory of the samples")
	cmd.Flags().StringVar(&opts.StateDir, "state-dir", ".dev", "directory for the kubeconfig")
	cmd.Flags().StringVar(&opts.Namespace, "namespace", "default", "namespace of the sample JobQueues")
	cmd.Flags().StringVar(&opts.APIAddress, "api-address", "localhost:3001", "address of the REST facade")
	return cmd
}
