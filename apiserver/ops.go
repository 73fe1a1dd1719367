package apiserver

import (
	"context"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
	"sigs.k8s.io/controller-runtime/pkg/client"

	jobsv1alpha1 "github.com/jengu/queue-operator/api/v1alpha1"
	"github.com/jengu/queue-operator/metrics"
)

// healthz says the process serves.
func (s *Server) healthz(c *gin.Context) { c.JSON(http.StatusOK, gin.H{"status": "ok"}) }

// readyz says whether Redis, PostgreSQL and the kube-apiserver answer; a facade that cannot reach either is
// taken out of its Service until it can.
func (s *Server) readyz(c *gin.Context) {
	ctx, cancel := context.WithTimeout(c, 3*time.Second)
	defer cancel()
	checks, ready := gin.H{}, true
	check := func(name string, err error) {
		checks[name] = "ok"
		if err != nil {
			// The detail (hosts, users) is for the log, not for an unauthenticated caller.
			s.log.Error(err, "Not ready", "dependency", name)
			checks[name], ready = "unavailable", false
		}
	}
	check("redis", s.cfg.Redis.Ping(ctx).Err())
	check("postgres", s.cfg.Store.Ping(ctx))
	check("kubernetes", s.cfg.Reader.List(ctx, &jobsv1alpha1.EnrichmentJobList{}, client.InNamespace(s.cfg.Namespace), client.Limit(1)))
	code, status := http.StatusOK, "ok"
	if !ready {
		code, status = http.StatusServiceUnavailable, "unavailable"
	}
	c.JSON(code, gin.H{"status": status, "checks": checks})
}

// queueDepths reads the three queues' counts, for both metrics routes.
func (s *Server) queueDepths(ctx context.Context) (map[string]metrics.QueueDepth, error) {
	out := map[string]metrics.QueueDepth{}
	for _, kind := range jobsv1alpha1.JobKinds {
		counts, err := s.engine.Queue(s.cfg.Namespace, string(kind.Queue)).Counts(ctx)
		if err != nil {
			return nil, err
		}
		out[string(kind.Queue)] = metrics.QueueDepth{Waiting: counts.Waiting + counts.Paused, Active: counts.Active,
			Completed: counts.Completed, Failed: counts.Failed, Delayed: counts.Delayed}
	}
	return out, nil
}

// metricsJSON answers GET /metrics/json in the seed's shape.
func (s *Server) metricsJSON(c *gin.Context) {
	depths, err := s.queueDepths(c)
	if err != nil {
		s.log.Error(err, "Reading the queues' depth failed")
		s.fail(c, unavailable("the queues are unreachable; try again"))
		return
	}
	queues := gin.H{}
	for name, d := range depths {
		queues[name] = gin.H{"waiting": d.Waiting, "active": d.Active, "completed": d.Completed, "failed": d.Failed, "delayed": d.Delayed}
	}
	c.JSON(http.StatusOK, gin.H{"timestamp": s.clock.Now().UTC().Format("2006-01-02T15:04:05.000Z"), "queues": queues})
}
