package queue

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"github.com/go-logr/logr"
	"github.com/redis/go-redis/v9"
)

// NewRedisClient connects to the Redis that rawURL names: redis:// or rediss:// (TLS), with a
// password (and user) from the URL. Extra ?addr=host:port parameters give a Cluster client
// (go-redis' cluster URL form); ?master_name=NAME a Sentinel one, the URL's host being a
// sentinel.
func NewRedisClient(rawURL string) (redis.UniversalClient, error) {
	switch {
	case strings.Contains(rawURL, "addr="):
		opts, err := redis.ParseClusterURL(rawURL)
		if err != nil {
			return nil, fmt.Errorf("parse Redis Cluster URL: %w", err)
		}
		return redis.NewClusterClient(opts), nil
	case strings.Contains(rawURL, "master_name="):
		opts, err := redis.ParseFailoverURL(rawURL)
		if err != nil {
			return nil, fmt.Errorf("parse Redis Sentinel URL: %w", err)
		}
		return redis.NewFailoverClient(opts), nil
	}
	opts, err := redis.ParseURL(rawURL)
	if err != nil {
		return nil, fmt.Errorf("parse Redis URL: %w", err)
	}
	return redis.NewClient(opts), nil
}

// EvictionPolicy is what CheckEvictionPolicy found.
type EvictionPolicy struct {
	// Policy is Redis' maxmemory-policy, or "" when it could not be read (managed Redis often
	// disables CONFIG).
	Policy string
	// OK is true only for noeviction: any other policy may delete job records under memory
	// pressure, silently losing jobs.
	OK bool
}

// CheckEvictionPolicy reads maxmemory-policy and warns loudly in the log when it is not
// noeviction. It only reads: the caller reports the result where it should be seen (the
// metric queue_operator_redis_eviction_policy_ok, a condition).
func CheckEvictionPolicy(ctx context.Context, rdb redis.UniversalClient, log logr.Logger) (EvictionPolicy, error) {
	var (
		mu     sync.Mutex // ForEachMaster reads the masters concurrently
		policy string
	)
	read := func(ctx context.Context, node redis.UniversalClient) error {
		v, err := node.ConfigGet(ctx, "maxmemory-policy").Result()
		if err != nil {
			return err
		}
		mu.Lock()
		defer mu.Unlock()
		if p := v["maxmemory-policy"]; policy == "" || p != "noeviction" {
			policy = p // the worst node's policy wins
		}
		return nil
	}
	var err error
	if cluster, ok := rdb.(*redis.ClusterClient); ok {
		err = cluster.ForEachMaster(ctx, func(ctx context.Context, node *redis.Client) error { return read(ctx, node) })
	} else {
		err = read(ctx, rdb)
	}
	if err != nil {
		log.Error(err, "Cannot read Redis maxmemory-policy; make sure it is noeviction, or jobs may be lost")
		return EvictionPolicy{}, fmt.Errorf("read maxmemory-policy: %w", err)
	}
	result := EvictionPolicy{Policy: policy, OK: policy == "noeviction"}
	if !result.OK {
		log.Info("WARNING: Redis maxmemory-policy is not noeviction: under memory pressure Redis will delete job records and jobs will be lost; set maxmemory-policy noeviction",
			"maxmemoryPolicy", policy)
	}
	return result, nil
}
