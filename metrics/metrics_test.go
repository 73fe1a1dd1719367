package metrics

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestReportRedisEvictionPolicyKeepsOnlyTheCurrentPolicy(t *testing.T) {
	tests := []struct {
		policy string
		ok     bool
		want   float64
	}{
		{"noeviction", true, 1},
		{"allkeys-lru", false, 0},
		{"volatile-ttl", false, 0},
	}
	for _, tt := range tests {
		ReportRedisEvictionPolicy(tt.policy, tt.ok)
		if got := testutil.ToFloat64(redisEvictionPolicyOK.WithLabelValues(tt.policy)); got != tt.want {
			t.Errorf("%s: gauge = %v, want %v", tt.policy, got, tt.want)
		}
		if n := testutil.CollectAndCount(redisEvictionPolicyOK); n != 1 {
			t.Errorf("%s: %d series, want only the current policy's", tt.policy, n)
		}
	}
}
