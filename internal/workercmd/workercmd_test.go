package workercmd_test

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	jobsv1alpha1 "github.com/jengu/queue-operator/api/v1alpha1"
	"github.com/jengu/queue-operator/internal/workercmd"
)

func TestCommandArgs(t *testing.T) {
	tests := []struct {
		name string
		cmd  workercmd.Command
		want []string
	}{
		{
			name: "the controller's Deployment",
			cmd:  workercmd.Command{Queue: jobsv1alpha1.QueueCompetitor, Namespace: "team-a", ShutdownGrace: 5 * time.Minute},
			want: []string{"worker", "--queue", "competitor", "--namespace", "team-a", "--shutdown-grace", "5m0s"},
		},
		{
			name: "the dev environment, metrics off",
			cmd:  workercmd.Command{Queue: jobsv1alpha1.QueueEnrichment, Namespace: "default", MetricsAddr: workercmd.MetricsOff},
			want: []string{"worker", "--queue", "enrichment", "--namespace", "default", "--metrics-bind-address", "0"},
		},
		{
			name: "everything",
			cmd: workercmd.Command{Queue: jobsv1alpha1.QueueAnalytics, Namespace: "ns", ShutdownGrace: 90 * time.Second,
				MetricsAddr: "127.0.0.1:9000"},
			want: []string{"worker", "--queue", "analytics-heavy", "--namespace", "ns", "--shutdown-grace", "1m30s",
				"--metrics-bind-address", "127.0.0.1:9000"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, tt.cmd.Args()); diff != "" {
				t.Errorf("Args() (-want +got):\n%s", diff)
			}
		})
	}
	if workercmd.DefaultMetricsAddr != ":8082" {
		t.Errorf("DefaultMetricsAddr = %q, want :8082", workercmd.DefaultMetricsAddr)
	}
}
