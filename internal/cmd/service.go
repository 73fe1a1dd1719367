package cmd

import (
	"context"
	"fmt"

	"github.com/go-logr/logr"
	"github.com/redis/go-redis/v9"
	"github.com/spf13/pflag"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/jengu/queue-operator/controllers"
	"github.com/jengu/queue-operator/queue"
)

// serviceFlags are the flags the controller and the facade share: the queues' Redis and the
// client-side rate limits towards the kube-apiserver.
type serviceFlags struct {
	RedisURL string
	QPS      float32
	Burst    int
}

func (s *serviceFlags) register(f *pflag.FlagSet, qps float32, burst int, qpsUsage string) {
	bindRedisURL(f, &s.RedisURL)
	bindKubeRateLimits(f, &s.QPS, &s.Burst, qps, burst, qpsUsage)
}

// service is what the controller and the facade start from.
type service struct {
	ctx   context.Context // ends on SIGTERM or SIGINT
	log   logr.Logger
	kube  *rest.Config
	redis redis.UniversalClient // the caller closes it
}

// start sets the logger, the signal context, the kube-apiserver's config and Redis up.
func (s *serviceFlags) start() (service, error) {
	log := zap.New()
	ctrl.SetLogger(log)
	ctx := ctrl.SetupSignalHandler()
	cfg, err := kubeConfig(s.QPS, s.Burst)
	if err != nil {
		return service{}, err
	}
	rdb, err := openRedis(ctx, s.RedisURL, log)
	if err != nil {
		return service{}, err
	}
	return service{ctx: ctx, log: log, kube: cfg, redis: rdb}, nil
}

// kubeConfig is the kubeconfig of the process (in-cluster, KUBECONFIG or --kubeconfig) with the
// client-side rate limits given.
func kubeConfig(qps float32, burst int) (*rest.Config, error) {
	cfg, err := ctrl.GetConfig()
	if err != nil {
		return nil, fmt.Errorf("kubeconfig: %w", err)
	}
	cfg.QPS, cfg.Burst = qps, burst
	return cfg, nil
}

// openRedis connects to the queues' Redis and warns loudly when it may evict job records.
func openRedis(ctx context.Context, url string, log logr.Logger) (redis.UniversalClient, error) {
	rdb, err := queue.NewRedisClient(url)
	if err != nil {
		return nil, err
	}
	controllers.CheckRedis(ctx, rdb, log)
	return rdb, nil
}
