// Package metrics holds the product's Prometheus collectors. Nothing registers itself: each
// binary calls Register with the registry it serves, so no two components export one name.
package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
)

// RedisEvictionPolicyOK is 1 when Redis' maxmemory-policy is noeviction, 0 when Redis may evict
// (and so lose) job records, by policy found.
var RedisEvictionPolicyOK = prometheus.NewGaugeVec(prometheus.GaugeOpts{
	Name: "queue_operator_redis_eviction_policy_ok",
	Help: "1 when Redis maxmemory-policy is noeviction; 0 when Redis may evict job records and lose jobs.",
}, []string{"policy"})

// Register adds the collectors shared by every component to reg.
func Register(reg prometheus.Registerer) error {
	for _, c := range []prometheus.Collector{RedisEvictionPolicyOK} {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}
