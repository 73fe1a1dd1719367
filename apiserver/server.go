// Package apiserver is the REST facade: the seed document's /api routes over the job CRs. It
// creates CRs (the controller enqueues them), reads them from an informer cache plus Redis,
// and streams a job's events; it never writes Redis or a CR's status.
package apiserver

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/redis/go-redis/v9"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/jengu/queue-operator/apiserver/authn"
	"github.com/jengu/queue-operator/metrics"
	"github.com/jengu/queue-operator/queue"
	"github.com/jengu/queue-operator/store"
)

// The facade's service account may create, read, annotate and delete the three job kinds, and
// read JobQueues (for backpressure). Bind this ClusterRole with a RoleBinding in the facade's
// namespace.
// +kubebuilder:rbac:groups=jobs.jengu.io,resources=enrichmentjobs;competitorjobs;analyticsjobs,verbs=get;list;watch;create;patch;delete
// +kubebuilder:rbac:groups=jobs.jengu.io,resources=jobqueues,verbs=get;list;watch

// Config is what the facade serves from.
type Config struct {
	// Namespace holds the jobs this facade creates and serves.
	Namespace string
	// Kube reads from an informer cache indexed by indexJobs and writes to the kube-apiserver;
	// Connect sets it and Reader.
	Kube client.Client
	// Reader reads the kube-apiserver directly: a job read right after its create may miss the cache.
	Reader client.Reader
	Redis  redis.UniversalClient
	// Store holds properties, analytics inputs and the history of finished jobs.
	Store *store.Store
	// JWTSecret verifies HS256 bearer tokens (Supabase's legacy JWT secret, at least 32 bytes);
	// JWKSURL's keys verify ES256 and RS256 ones (Supabase's asymmetric signing keys). Either
	// may be empty, not both.
	JWTSecret []byte
	JWKSURL   string
	// Issuer is the iss the tokens must carry (https://<project>.supabase.co/auth/v1; empty
	// leaves it unchecked); Audience the aud ("authenticated" when empty).
	Issuer   string
	Audience string
	// StreamTicketSecret signs the event streams' tickets (at least 32 bytes); when empty it is
	// derived from JWTSecret, and without one either each process draws its own (tickets then
	// work only on the replica that issued them). StreamTicketTTL is their lifetime
	// (authn.DefaultTicketTTL when 0).
	StreamTicketSecret []byte
	StreamTicketTTL    time.Duration
	// AllowedOrigins are the browser origins (scheme://host[:port]) that may call the API
	// cross-origin; none when empty.
	AllowedOrigins []string
}

// Server is the facade's HTTP handler and the event follower behind its SSE streams.
type Server struct {
	cfg      Config
	engine   *queue.Engine
	verifier *authn.Verifier
	tickets  *authn.Tickets
	cors     *corsPolicy
	events   *eventHub
	registry *prometheus.Registry
	log      logr.Logger
	clock    clock.Clock
	// sseKeepAlive is how often an idle event stream gets a comment line and a fresh status read.
	sseKeepAlive time.Duration
	openAPIJSON  []byte
	handler      http.Handler
	opsHandler   http.Handler
	// stopping ends the event streams when the server shuts down.
	stopping chan struct{}
	stopOnce sync.Once

	limits      Limits
	userRates   *userRates // nil without a per-user rate
	largeBodies *bodySlots
	streams     *streamSlots
	ready       readiness
	depths      depthCache
}

// Option configures a Server.
type Option func(*Server)

// WithLogger sets the logger.
func WithLogger(l logr.Logger) Option { return func(s *Server) { s.log = l } }

// WithClock sets the clock that checks token expiry and stamps job ids.
func WithClock(c clock.Clock) Option { return func(s *Server) { s.clock = c } }

// WithSSEKeepAlive sets how often an idle event stream is kept alive (default 15 s).
func WithSSEKeepAlive(d time.Duration) Option { return func(s *Server) { s.sseKeepAlive = d } }

// New builds the facade. Run must run for its event streams to move.
func New(cfg Config, opts ...Option) (*Server, error) {
	if cfg.Namespace == "" || cfg.Kube == nil || cfg.Reader == nil || cfg.Redis == nil || cfg.Store == nil {
		return nil, fmt.Errorf("apiserver: namespace, kube client, reader, redis and store are required")
	}
	s := &Server{cfg: cfg, log: logr.Discard(), clock: clock.RealClock{}, sseKeepAlive: 15 * time.Second,
		stopping: make(chan struct{}), limits: DefaultLimits()}
	for _, o := range opts {
		o(s)
	}
	if s.limits.UserRate > 0 {
		s.userRates = newUserRates(s.limits.UserRate, s.limits.UserBurst, s.clock)
	}
	s.largeBodies = newBodySlots(s.limits.MaxLargeBodies, s.limits.LargeBodyWait)
	s.streams = newStreamSlots(s.limits.MaxStreams, s.limits.MaxStreamsPerUser)
	s.engine = queue.New(cfg.Redis, queue.WithLogger(s.log.WithName("queue")))
	if err := s.setUpAuth(); err != nil {
		return nil, err
	}
	s.events = newEventHub(s.engine, cfg.Namespace, s.log.WithName("events"))
	s.registry = prometheus.NewRegistry()
	if err := metrics.RegisterAPI(s.registry, s.queueDepths); err != nil {
		return nil, err
	}
	if err := s.registry.Register(collectors.NewGoCollector()); err != nil {
		return nil, err
	}
	if err := s.registry.Register(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})); err != nil {
		return nil, err
	}
	var err error
	if s.openAPIJSON, err = openAPIDocument(); err != nil {
		return nil, err
	}
	s.handler = s.routes()
	s.opsHandler = s.opsRoutes()
	return s, nil
}

// Handler serves the facade's REST API.
func (s *Server) Handler() http.Handler { return s.handler }

// OpsHandler serves the probes and metrics: /healthz, /readyz, /metrics and /metrics/json.
func (s *Server) OpsHandler() http.Handler { return s.opsHandler }

// Run follows the queues' event streams for the SSE routes, and checks the dependencies for
// /readyz, until ctx ends.
func (s *Server) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	wg.Go(func() { s.checkReadyEvery(ctx) })
	s.events.run(ctx)
	wg.Wait()
	return nil
}

func (s *Server) routes() http.Handler {
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	r.ContextWithFallback = true // handlers pass c as the request's context
	r.Use(s.recover, s.observe, s.cors.handle, s.deadlines)
	r.NoRoute(func(c *gin.Context) {
		s.fail(c, &apiError{Status: http.StatusNotFound, Code: "route_not_found", Message: "no route " + c.Request.Method + " " + c.Request.URL.Path})
	})
	r.HandleMethodNotAllowed = true
	r.NoMethod(func(c *gin.Context) {
		s.fail(c, &apiError{Status: http.StatusMethodNotAllowed, Code: "method_not_allowed", Message: c.Request.Method + " is not allowed on " + c.Request.URL.Path})
	})

	r.GET(openAPIRoute, s.openAPI)

	api := r.Group("/api", s.authenticate, s.rateLimit)
	api.POST("/files/:id/enrich", s.createEnrichment)
	api.POST("/files/:id/competitors", s.createCompetitor)
	api.POST("/files/:id/analytics", s.createAnalytics)
	api.GET("/jobs", s.listJobs)
	api.GET("/jobs/dlq/list", s.listDeadLetters)
	api.GET("/jobs/:jobId", s.getJob)
	api.GET("/jobs/:jobId/result", s.getJobResult)
	api.GET(strings.TrimPrefix(eventsRoute, "/api"), s.jobEvents)
	api.POST(strings.TrimPrefix(ticketRoute, "/api"), s.streamTicket)
	api.POST("/jobs/:jobId/retry", s.retryJob)
	api.DELETE("/jobs/:jobId", s.cancelJob)
	s.fileRoutes(api)
	s.scheduleRoutes(api)
	return r
}

const eventsRoute = "/api/jobs/:jobId/events"

// observe times every request under its route template, so the label set stays bounded. Event
// streams last as long as their job and are left out.
func (s *Server) observe(c *gin.Context) {
	started := time.Now()
	c.Next()
	route := c.FullPath()
	if route == eventsRoute {
		return
	}
	if route == "" {
		route = "unmatched"
	}
	metrics.ObserveAPIRequest(methodLabel(c.Request.Method), route, c.Writer.Status(), time.Since(started))
}

// methodLabel keeps the label set bounded: a client may send any method name.
func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodPost, http.MethodDelete, http.MethodHead, http.MethodOptions, http.MethodPut, http.MethodPatch:
		return m
	}
	return "other"
}

// recover turns a handler's panic into a 500 in the API's error shape.
func (s *Server) recover(c *gin.Context) {
	defer func() {
		if r := recover(); r != nil {
			s.log.Error(fmt.Errorf("%v", r), "Handler panicked", "route", c.FullPath())
			if !c.Writer.Written() {
				s.fail(c, &apiError{Status: http.StatusInternalServerError, Code: "internal", Message: "internal error"})
			}
			c.Abort()
		}
	}()
	c.Next()
}
