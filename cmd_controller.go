package main

import (
	"os"

	"github.com/spf13/cobra"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/jengu/queue-operator/controllers"
)

func newControllerCommand() *cobra.Command {
	var (
		redisURL string
		qps      float32
		burst    int
		mc       = controllers.ManagerConfig{Options: controllers.DefaultOptions()}
		zapOpts  = zap.Options{}
	)
	cmd := &cobra.Command{
		Use:   "controller",
		Short: "Mirror job CRs into Redis, keep their status true, retry, cancel and clean up",
		RunE: func(cmd *cobra.Command, _ []string) error {
			log := zap.New(zap.UseFlagOptions(&zapOpts))
			ctrl.SetLogger(log)
			mc.Logger = log
			ctx := ctrl.SetupSignalHandler()
			cfg, err := kubeConfig(qps, burst)
			if err != nil {
				return err
			}
			rdb, err := openRedis(ctx, redisURL, log)
			if err != nil {
				return err
			}
			defer rdb.Close()
			mc.Redis = rdb
			mc.Options.RedisURL = redisURL
			if err := controllers.RegisterMetrics(); err != nil {
				return err
			}
			mgr, err := controllers.NewManager(cfg, mc)
			if err != nil {
				return err
			}
			return mgr.Start(ctx)
		},
	}
	f := cmd.Flags()
	f.StringVar(&redisURL, "redis-url", envOr("REDIS_URL", "redis://127.0.0.1:6379/0"), "Redis of the queues (env REDIS_URL)")
	f.StringVar(&mc.MetricsAddr, "metrics-bind-address", ":8080", `address of /metrics ("0" turns it off)`)
	f.StringVar(&mc.ProbeAddr, "health-probe-bind-address", ":8081", "address of /healthz and /readyz")
	f.BoolVar(&mc.LeaderElection, "leader-elect", false, "elect a leader, so several replicas can run")
	f.StringVar(&mc.LeaderElectionNamespace, "leader-election-namespace", "", "namespace of the leader lease (default: the pod's)")
	f.Float32Var(&qps, "kube-api-qps", 50, "API server requests per second")
	f.IntVar(&burst, "kube-api-burst", 100, "API server request burst")
	f.DurationVar(&mc.Options.ResyncPeriod, "resync-period", mc.Options.ResyncPeriod, "full pass over live jobs")
	f.DurationVar(&mc.Options.RedisDownGrace, "redis-down-grace", mc.Options.RedisDownGrace, "how long a deleted job's finalizer waits for an unreachable Redis")
	f.DurationVar(&mc.Options.HousekeepingInterval, "housekeeping-interval", mc.Options.HousekeepingInterval, "stalled-lease and retention sweep interval")
	f.StringVar(&mc.Options.WorkerImage, "worker-image", envOr("WORKER_IMAGE", controllers.DefaultWorkerImage), "image of the worker Deployments when a JobQueue names none (env WORKER_IMAGE)")
	f.IntVar(&mc.Options.MaxStalls, "max-stalls", mc.Options.MaxStalls, "times a job may lose its worker before it fails")
	return cmd
}

func envOr(name, fallback string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return fallback
}
