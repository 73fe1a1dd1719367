package controllers

import (
	"context"
	"fmt"
	"net/http"

	"github.com/go-logr/logr"
	"github.com/redis/go-redis/v9"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/jengu/queue-operator/internal/scheme"
	"github.com/jengu/queue-operator/metrics"
	"github.com/jengu/queue-operator/queue"
)

// ManagerConfig is how `queue-operator controller` (and `make dev`) runs the controllers.
type ManagerConfig struct {
	// Redis is the queues' Redis.
	Redis redis.UniversalClient
	// MetricsAddr and ProbeAddr serve /metrics and /healthz, /readyz ("0" turns one off).
	MetricsAddr, ProbeAddr string
	// LeaderElection lets several replicas run with one active.
	LeaderElection          bool
	LeaderElectionNamespace string
	// Namespaces limits the controllers to these namespaces (tests); empty watches all.
	Namespaces []string
	// SkipNameValidation allows several managers in one process (tests).
	SkipNameValidation bool
	Options            Options
	Logger             logr.Logger
}

// +kubebuilder:rbac:groups=coordination.k8s.io,resources=leases,verbs=get;list;watch;create;update;patch;delete

// NewManager builds a manager running the job controllers against cfg and the given Redis.
func NewManager(cfg *rest.Config, mc ManagerConfig) (ctrl.Manager, error) {
	// The JobQueue reconciler watches its worker pods; the cache keeps those only, not every pod
	// of the cluster. A pod read through the manager's client sees worker pods only.
	cacheOpts := cache.Options{ByObject: map[client.Object]cache.ByObject{
		&corev1.Pod{}: {Label: labels.SelectorFromSet(labels.Set{workerAppLabel: workerAppName})},
	}}
	if len(mc.Namespaces) > 0 {
		cacheOpts.DefaultNamespaces = map[string]cache.Config{}
		for _, ns := range mc.Namespaces {
			cacheOpts.DefaultNamespaces[ns] = cache.Config{}
		}
	}
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                  scheme.New(),
		Logger:                  mc.Logger,
		Cache:                   cacheOpts,
		Metrics:                 metricsserver.Options{BindAddress: mc.MetricsAddr},
		HealthProbeBindAddress:  mc.ProbeAddr,
		LeaderElection:          mc.LeaderElection,
		LeaderElectionID:        "queue-operator.jobs.jengu.io",
		LeaderElectionNamespace: mc.LeaderElectionNamespace,
		// Let the housekeeping and reconcilers stop quickly on a handover.
		LeaderElectionReleaseOnCancel: true,
		Controller:                    config.Controller{SkipNameValidation: &mc.SkipNameValidation},
	})
	if err != nil {
		return nil, fmt.Errorf("new manager: %w", err)
	}
	engine := queue.New(mc.Redis, queue.WithLogger(mc.Logger.WithName("queue")))
	if err := SetupWithManager(mgr, engine, mc.Options); err != nil {
		return nil, fmt.Errorf("set up controllers: %w", err)
	}
	if err := mgr.AddHealthzCheck("ping", func(*http.Request) error { return nil }); err != nil {
		return nil, err
	}
	if err := mgr.AddReadyzCheck("redis", func(r *http.Request) error { return mc.Redis.Ping(r.Context()).Err() }); err != nil {
		return nil, err
	}
	return mgr, nil
}

// CheckRedis warns loudly, in the log and the metric, when the queues' Redis may evict job
// records.
func CheckRedis(ctx context.Context, rdb redis.UniversalClient, log logr.Logger) {
	if _, err := checkEvictionPolicy(ctx, rdb, log); err != nil {
		log.Error(err, "Could not check Redis' eviction policy")
	}
}

// checkEvictionPolicy reads Redis' eviction policy and reports it in the metric.
func checkEvictionPolicy(ctx context.Context, rdb redis.UniversalClient, log logr.Logger) (queue.EvictionPolicy, error) {
	policy, err := queue.CheckEvictionPolicy(ctx, rdb, log)
	if err == nil {
		metrics.ReportRedisEvictionPolicy(policy.Policy, policy.OK)
	}
	return policy, err
}

// RegisterMetrics registers the controller's collectors with controller-runtime's registry,
// which its /metrics serves.
func RegisterMetrics() error {
	return metrics.RegisterController(ctrlmetrics.Registry)
}
