package main

import (
	"context"
	"fmt"

	"github.com/go-logr/logr"
	"github.com/redis/go-redis/v9"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/jengu/queue-operator/controllers"
	"github.com/jengu/queue-operator/queue"
)

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
