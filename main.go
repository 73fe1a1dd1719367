// Command queue-operator is the one binary of the product: the controller, the REST facade, the
// workers and a local development environment, each a subcommand (internal/cmd).
package main

import (
	"os"

	"github.com/jengu/queue-operator/internal/cmd"
)

func main() { os.Exit(cmd.Execute()) }
