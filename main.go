// Command queue-operator is the one binary of the product: the controller, the REST facade, the
// workers and a local development environment, each a subcommand.
package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

func main() {
	if err := newRootCommand().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "Error:", err)
		os.Exit(1)
	}
}

func newRootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:           "queue-operator",
		Short:         "Background jobs on Kubernetes: enrichment, competitor and analytics queues",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(
		newControllerCommand(),
		notBuilt("apiserver", "Serve the REST API (the seed's /api/jobs contract) over the job CRs"),
		newWorkerCommand(),
		newDevCommand(),
	)
	return root
}

// notBuilt stands for a subcommand that a later issue builds; it says so and fails, rather than
// pretend to work.
func notBuilt(use, short string) *cobra.Command {
	return &cobra.Command{
		Use:                use,
		Short:              short + " (not built yet)",
		DisableFlagParsing: true,
		RunE: func(*cobra.Command, []string) error {
			return fmt.Errorf("%s: not built yet", use)
		},
	}
}
