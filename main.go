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
		newAPIServerCommand(),
		newWorkerCommand(),
		newDevCommand(),
	)
	return root
}
