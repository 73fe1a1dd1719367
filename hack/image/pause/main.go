// Command pause is the process of the pod sandbox ("pause") image the test cluster's containerd
// runs (internal/image.Pause builds it). It holds the pod's namespaces open, reaps the zombies
// a pod sharing its PID namespace leaves to it, and exits 0 on SIGTERM or SIGINT.
package main

import (
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	// SIGCHLD is asked for as well: as PID 1 of a shared PID namespace this process inherits the
	// pod's orphans, and nobody else would wait for them.
	signals := make(chan os.Signal, 16)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT, syscall.SIGCHLD)
	// Said once the signals are asked for: before this line a SIGTERM kills the process by the
	// default action instead of a clean exit 0 (the tests wait for it).
	fmt.Fprintln(os.Stderr, "pause: waiting for SIGTERM or SIGINT")
	for s := range signals {
		if s == syscall.SIGCHLD {
			reap()
			continue
		}
		os.Exit(0)
	}
}

// reap waits for every child that has exited, without blocking: one SIGCHLD may stand for many.
func reap() {
	for {
		var status syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &status, syscall.WNOHANG, nil)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if err != nil || pid <= 0 {
			return
		}
	}
}
