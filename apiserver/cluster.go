package apiserver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/cluster"

	"github.com/jengu/queue-operator/internal/scheme"
)

// Client-side rate limits of the facade's kube-apiserver client, when the config sets none (client-go
// would allow 5 requests per second): every enqueue is one create.
const (
	DefaultKubeQPS   = 50
	DefaultKubeBurst = 100
)

// newCluster connects to the kube-apiserver with an informer cache of the namespace alone (its
// jobs and JobQueues, managed fields stripped), indexed as the facade lists. Start it, and wait
// for its cache, before serving.
func newCluster(cfg *rest.Config, namespace string) (cluster.Cluster, error) {
	cfg = rest.CopyConfig(cfg)
	if cfg.QPS == 0 {
		cfg.QPS, cfg.Burst = DefaultKubeQPS, DefaultKubeBurst
	}
	cl, err := cluster.New(cfg, func(o *cluster.Options) {
		o.Scheme = scheme.New()
		o.Cache = cache.Options{
			DefaultNamespaces: map[string]cache.Config{namespace: {}},
			DefaultTransform:  cache.TransformStripManagedFields(),
		}
	})
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	if err := indexJobs(context.Background(), cl.GetFieldIndexer()); err != nil {
		return nil, err
	}
	if err := indexSchedules(context.Background(), cl.GetFieldIndexer()); err != nil {
		return nil, err
	}
	return cl, nil
}

// Connect builds the facade over a cluster of its own (newCluster) for cfg's Kube and Reader,
// starts the cluster's cache until ctx ends and waits for it to sync.
func Connect(ctx context.Context, kube *rest.Config, cfg Config, opts ...Option) (*Server, error) {
	cl, err := newCluster(kube, cfg.Namespace)
	if err != nil {
		return nil, err
	}
	cfg.Kube, cfg.Reader = cl.GetClient(), cl.GetAPIReader()
	s, err := New(cfg, opts...)
	if err != nil {
		return nil, err
	}
	go func() {
		if err := cl.Start(ctx); err != nil {
			s.log.Error(err, "Job cache stopped")
		}
	}()
	if !cl.GetCache().WaitForCacheSync(ctx) {
		return nil, fmt.Errorf("the job cache did not sync")
	}
	s.ready.synced.Store(true)
	s.checkReady(ctx) // ready from the start when the dependencies answer; Run checks again
	return s, nil
}

// Serve serves the REST API on l and, when ops is not nil, the probes and metrics on ops
// (OpsHandler), and follows the queues' events until ctx ends; then lets requests in flight
// finish for up to 10 s (event streams are cut).
func (s *Server) Serve(ctx context.Context, l, ops net.Listener) error {
	api := s.httpServer(s.handler)
	api.RegisterOnShutdown(func() { s.stopOnce.Do(func() { close(s.stopping) }) })
	servers := []*http.Server{api}
	listeners := []net.Listener{l}
	if ops != nil {
		servers = append(servers, &http.Server{Handler: s.opsHandler, ReadHeaderTimeout: 10 * time.Second,
			ReadTimeout: 10 * time.Second, WriteTimeout: 30 * time.Second, IdleTimeout: s.limits.IdleTimeout, MaxHeaderBytes: maxHeaderBytes})
		listeners = append(listeners, ops)
	}
	eventsCtx, stopEvents := context.WithCancel(ctx)
	defer stopEvents()
	eventsDone := make(chan struct{})
	go func() { defer close(eventsDone); _ = s.Run(eventsCtx) }()
	errs := make(chan error, len(servers))
	for i, server := range servers {
		go func() { errs <- server.Serve(listeners[i]) }()
	}
	s.log.Info("Serving the REST API", "address", l.Addr().String(), "namespace", s.cfg.Namespace)
	if ops != nil {
		s.log.Info("Serving probes and metrics", "address", ops.Addr().String())
	}
	var err error
	select {
	case err = <-errs:
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	for _, server := range servers {
		if shutdownErr := server.Shutdown(shutdownCtx); err == nil || errors.Is(err, http.ErrServerClosed) {
			err = shutdownErr
		}
	}
	stopEvents()
	<-eventsDone
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}
