package cmd

import (
	"os"

	"github.com/spf13/cobra"

	"github.com/jengu/queue-operator/controllers"
	"github.com/jengu/queue-operator/store"
)

// controllerOptions are the controller's flags.
type controllerOptions struct {
	Service serviceFlags
	// Manager gets its Logger and Redis when the command runs.
	Manager controllers.ManagerConfig
}

func newControllerOptions() *controllerOptions {
	return &controllerOptions{Manager: controllers.ManagerConfig{Options: controllers.DefaultOptions()}}
}

func (o *controllerOptions) command() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "controller",
		Short: "Mirror job CRs into Redis, keep their status true, retry, cancel and clean up",
		RunE:  func(*cobra.Command, []string) error { return o.run() },
	}
	mc := &o.Manager
	f := cmd.Flags()
	o.Service.register(f, controllers.DefaultKubeQPS, controllers.DefaultKubeBurst, "kube-apiserver requests per second")
	f.StringVar(&mc.MetricsAddr, "metrics-bind-address", ":8080", `address of /metrics ("0" turns it off)`)
	f.StringVar(&mc.ProbeAddr, "health-probe-bind-address", ":8081", "address of /healthz and /readyz")
	f.BoolVar(&mc.LeaderElection, "leader-elect", false, "elect a leader, so several replicas can run")
	f.StringVar(&mc.LeaderElectionNamespace, "leader-election-namespace", "", "namespace of the leader lease (default: the pod's)")
	f.DurationVar(&mc.Options.ResyncPeriod, "resync-period", mc.Options.ResyncPeriod, "full pass over live jobs")
	f.DurationVar(&mc.Options.RedisDownGrace, "redis-down-grace", mc.Options.RedisDownGrace, "how long a deleted job's finalizer waits for an unreachable Redis")
	f.DurationVar(&mc.Options.HousekeepingInterval, "housekeeping-interval", mc.Options.HousekeepingInterval, "stalled-lease and retention sweep interval")
	bindEnvString(f, &mc.Options.WorkerImage, "worker-image", "WORKER_IMAGE", controllers.DefaultWorkerImage, "image of the worker Deployments when a JobQueue names none")
	f.BoolVar(&mc.Options.WorkerPlainRedisURL, "worker-plain-redis-url", mc.Options.WorkerPlainRedisURL,
		"give worker Deployments this controller's Redis URL in plain text when their JobQueue names no spec.worker.redisURLSecretRef")
	f.StringVar(&mc.Options.WorkerServiceAccount, "worker-service-account", "", "service account of worker pods whose JobQueue's template names none (default: the namespace's default)")
	f.StringSliceVar(&mc.Namespaces, "namespaces", nil, "watch and cache only these namespaces (comma-separated; default all): the controller then needs only Roles there")
	f.IntVar(&mc.Options.MaxStalls, "max-stalls", mc.Options.MaxStalls, "times a job may lose its worker before it fails")
	f.DurationVar(&mc.Options.StatusGrace, "status-grace", mc.Options.StatusGrace, "how long a job's status may lag its record before the controller writes it (the worker writes its own transitions sooner)")
	return cmd
}

func (o *controllerOptions) run() error {
	svc, err := o.Service.start()
	if err != nil {
		return err
	}
	defer svc.redis.Close()
	mc := o.Manager
	mc.Logger, mc.Redis, mc.Options.RedisURL = svc.log, svc.redis, o.Service.RedisURL
	// With PostgreSQL, every finished job gets its history row before its CR expires.
	if os.Getenv(store.EnvDatabaseURL) != "" {
		db, err := store.OpenFromEnv(svc.ctx, os.Getenv, svc.log)
		if err != nil {
			return err
		}
		defer db.Close()
		mc.Options.History = db
	} else {
		svc.log.Info("DATABASE_URL is not set: jobs no worker recorded (stalled, lost replies) leave no history row when their CR expires")
	}
	if err := controllers.RegisterMetrics(); err != nil {
		return err
	}
	mgr, err := controllers.NewManager(svc.kube, mc)
	if err != nil {
		return err
	}
	return mgr.Start(svc.ctx)
}
