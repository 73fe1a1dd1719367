package workers

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// MetricsServer serves a worker's /metrics and /healthz.
type MetricsServer struct {
	server   *http.Server
	listener net.Listener
	done     chan struct{}
}

// ServeMetrics listens on addr and serves, until Close, /metrics from gatherer (the worker's
// own registry, metrics.RegisterWorker on it) and /healthz.
func ServeMetrics(addr string, gatherer prometheus.Gatherer, log logr.Logger) (*MetricsServer, error) {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{}))
	// Alive while the process serves; Kubernetes restarts a wedged worker, and its leases come
	// back through the stall sweep.
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) })
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics server: %w", err)
	}
	s := &MetricsServer{
		server:   &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second},
		listener: l,
		done:     make(chan struct{}),
	}
	go func() {
		defer close(s.done)
		if err := s.server.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error(err, "Metrics server")
		}
	}()
	return s, nil
}

// Addr is the address the server listens on (the port chosen, for ":0").
func (s *MetricsServer) Addr() net.Addr { return s.listener.Addr() }

// Close stops the server at once and waits for it to return.
func (s *MetricsServer) Close() error {
	err := s.server.Close()
	<-s.done
	return err
}
