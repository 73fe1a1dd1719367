package cmd

import (
	"github.com/go-logr/logr"
	"github.com/spf13/cobra"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/jengu/queue-operator/internal/scheme"
	"github.com/jengu/queue-operator/internal/uninstall"
)

// Client-side rate limits of `uninstall`: its requests are few (one deletecollection per kind
// and pass), except the finalizer patches past the timeout, one per job left.
const (
	uninstallKubeQPS   = 100
	uninstallKubeBurst = 200
)

// uninstallOptions are the flags of `uninstall`, the chart's pre-delete hook.
type uninstallOptions struct {
	QPS       float32
	Burst     int
	Uninstall uninstall.Options
}

func newUninstallOptions() *uninstallOptions {
	return &uninstallOptions{Uninstall: uninstall.DefaultOptions()}
}

func (o *uninstallOptions) command() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "uninstall",
		Short: "Delete a namespace's JobSchedules and jobs while the controller runs, so none is left on its finalizer (helm pre-delete hook)",
		RunE:  func(*cobra.Command, []string) error { return o.run() },
	}
	u := &o.Uninstall
	f := cmd.Flags()
	bindNamespace(f, &u.Namespace, "the jobs and schedules to delete")
	f.DurationVar(&u.Timeout, "timeout", u.Timeout, "how long the controller gets to release the jobs' finalizers before this command removes them itself")
	f.DurationVar(&u.PollInterval, "poll-interval", u.PollInterval, "how often to list the jobs left")
	bindKubeRateLimits(f, &o.QPS, &o.Burst, uninstallKubeQPS, uninstallKubeBurst, "kube-apiserver requests per second")
	return cmd
}

func (o *uninstallOptions) run() error {
	log := zap.New()
	ctrl.SetLogger(log)
	ctx := ctrl.SetupSignalHandler()
	cfg, err := kubeConfig(o.QPS, o.Burst)
	if err != nil {
		return err
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme.New()})
	if err != nil {
		return err
	}
	_, err = uninstall.Run(logr.NewContext(ctx, log), c, o.Uninstall)
	return err
}
