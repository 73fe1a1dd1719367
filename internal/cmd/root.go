// Package cmd is the queue-operator command line: the controller, the REST facade, the workers,
// a local development environment and the chart's uninstall hook, each a subcommand of one binary.
package cmd

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

// Execute runs the command line of os.Args and returns the process's exit code.
func Execute() int {
	if err := NewRootCommand().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "Error:", err)
		return 1
	}
	return 0
}

// NewRootCommand returns the queue-operator command with its subcommands. The flags' defaults
// read the environment (REDIS_URL, POD_NAMESPACE, ...) when it is called.
func NewRootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:           "queue-operator",
		Short:         "Background jobs on Kubernetes: enrichment, competitor and analytics queues",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(
		newControllerOptions().command(),
		newAPIServerOptions().command(),
		newWorkerOptions().command(),
		newDevOptions().command(),
		newUninstallOptions().command(),
	)
	return root
}
