package apiserver

import (
	"context"
	"maps"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"sigs.k8s.io/controller-runtime/pkg/client"

	jobsv1alpha1 "github.com/jengu/queue-operator/api/v1alpha1"
	"github.com/jengu/queue-operator/metrics"
)

// The ops port serves the probes and metrics, apart from the public API: the Service that
// exposes the API does not expose them, and a flood of them costs what a flood of a cached value
// costs.
const (
	// readinessPeriod is how often the background check reaches Redis, PostgreSQL and the
	// kube-apiserver.
	readinessPeriod = 5 * time.Second
	// depthsMaxAge is how long the queues' depths read for /metrics and /metrics/json are
	// served again.
	depthsMaxAge = time.Second
)

func (s *Server) opsRoutes() http.Handler {
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	r.Use(s.recover)
	r.NoRoute(func(c *gin.Context) {
		s.fail(c, &apiError{Status: http.StatusNotFound, Code: "route_not_found", Message: "no route " + c.Request.Method + " " + c.Request.URL.Path})
	})
	r.GET("/healthz", s.healthz)
	r.GET("/readyz", s.readyz)
	r.GET("/metrics", gin.WrapH(promhttp.HandlerFor(s.registry, promhttp.HandlerOpts{MaxRequestsInFlight: 4})))
	r.GET("/metrics/json", s.metricsJSON)
	return r
}

// healthz says the process serves.
func (s *Server) healthz(c *gin.Context) { c.JSON(http.StatusOK, gin.H{"status": "ok"}) }

// readiness is the last background check: whether the job cache synced and Redis, PostgreSQL
// and the kube-apiserver answered.
type readiness struct {
	synced atomic.Bool
	last   atomic.Pointer[readyState]
}

type readyState struct {
	ready  bool
	checks map[string]string
}

// readyz answers the last background check; it reaches nothing itself.
func (s *Server) readyz(c *gin.Context) {
	state := s.ready.last.Load()
	if state == nil || !s.ready.synced.Load() {
		c.JSON(http.StatusServiceUnavailable, gin.H{"status": "unavailable", "checks": gin.H{"cache": "not synced"}})
		return
	}
	code, status := http.StatusOK, "ok"
	if !state.ready {
		code, status = http.StatusServiceUnavailable, "unavailable"
	}
	c.JSON(code, gin.H{"status": status, "checks": state.checks})
}

// checkReady reaches Redis, PostgreSQL and the kube-apiserver once and keeps the outcome for
// /readyz.
func (s *Server) checkReady(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	state := &readyState{ready: true, checks: map[string]string{}}
	check := func(name string, err error) {
		state.checks[name] = "ok"
		if err != nil {
			// The detail (hosts, users) is for the log, not for an unauthenticated caller.
			s.log.Error(err, "Not ready", "dependency", name)
			state.checks[name], state.ready = "unavailable", false
		}
	}
	check("redis", s.cfg.Redis.Ping(ctx).Err())
	check("postgres", s.cfg.Store.Ping(ctx))
	check("kubernetes", s.cfg.Reader.List(ctx, &jobsv1alpha1.EnrichmentJobList{}, client.InNamespace(s.cfg.Namespace), client.Limit(1)))
	s.ready.last.Store(state)
}

// checkReadyEvery runs checkReady every readinessPeriod until ctx ends.
func (s *Server) checkReadyEvery(ctx context.Context) {
	t := time.NewTicker(readinessPeriod)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.checkReady(ctx)
		}
	}
}

// depthCache keeps the queues' depths for depthsMaxAge; one read at a time reaches Redis.
type depthCache struct {
	mu     sync.Mutex
	at     time.Time
	depths map[string]metrics.QueueDepth
}

// queueDepths reads the three queues' counts, for both metrics routes.
func (s *Server) queueDepths(ctx context.Context) (map[string]metrics.QueueDepth, error) {
	s.depths.mu.Lock()
	defer s.depths.mu.Unlock()
	if s.depths.depths != nil && time.Since(s.depths.at) < depthsMaxAge {
		return maps.Clone(s.depths.depths), nil
	}
	out := map[string]metrics.QueueDepth{}
	for _, kind := range jobsv1alpha1.JobKinds {
		counts, err := s.engine.Queue(s.cfg.Namespace, string(kind.Queue)).Counts(ctx)
		if err != nil {
			return nil, err
		}
		out[string(kind.Queue)] = metrics.QueueDepth{Waiting: counts.Waiting + counts.Paused, Active: counts.Active,
			Completed: counts.Completed, Failed: counts.Failed, Delayed: counts.Delayed}
	}
	s.depths.depths, s.depths.at = out, time.Now()
	return maps.Clone(out), nil
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
