package main

import (
	"fmt"
	"net"
	"os"

	"github.com/spf13/cobra"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/jengu/queue-operator/apiserver"
	"github.com/jengu/queue-operator/store"
)

func newAPIServerCommand() *cobra.Command {
	var (
		addr, namespace, redisURL, audience string
		qps                                 float32
		burst                               int
		zapOpts                             = zap.Options{}
	)
	cmd := &cobra.Command{
		Use:   "apiserver",
		Short: "Serve the REST API (the seed's /api/jobs contract) over the job CRs",
		RunE: func(cmd *cobra.Command, _ []string) error {
			log := zap.New(zap.UseFlagOptions(&zapOpts))
			ctrl.SetLogger(log)
			secret := os.Getenv("SUPABASE_JWT_SECRET")
			if secret == "" {
				return fmt.Errorf("SUPABASE_JWT_SECRET is not set: the facade verifies HS256 tokens with it")
			}
			ctx := ctrl.SetupSignalHandler()
			cfg, err := kubeConfig(qps, burst)
			if err != nil {
				return err
			}
			rdb, err := openRedis(ctx, redisURL, log)
			if err != nil {
				return err
			}
			defer rdb.Close()
			// The facade reads properties and the history before any worker may have run (workers
			// scale to zero), so it brings the schema up to date too.
			db, err := store.OpenFromEnv(ctx, os.Getenv, log)
			if err != nil {
				return err
			}
			defer db.Close()
			server, err := apiserver.Connect(ctx, cfg, apiserver.Config{Namespace: namespace, Redis: rdb, Store: db,
				JWTSecret: []byte(secret), Audience: audience}, apiserver.WithLogger(log.WithName("apiserver")))
			if err != nil {
				return err
			}
			l, err := net.Listen("tcp", addr)
			if err != nil {
				return err
			}
			return server.Serve(ctx, l)
		},
	}
	f := cmd.Flags()
	f.StringVar(&addr, "bind-address", ":"+envOr("PORT", "3001"), "address of the REST API, /metrics and /healthz (env PORT sets the port)")
	f.StringVar(&namespace, "namespace", envOr("POD_NAMESPACE", "default"), "namespace of the jobs (env POD_NAMESPACE)")
	f.StringVar(&redisURL, "redis-url", envOr("REDIS_URL", "redis://127.0.0.1:6379/0"), "Redis of the queues (env REDIS_URL)")
	f.Float32Var(&qps, "kube-api-qps", apiserver.DefaultKubeQPS, "API server requests per second (each enqueue is one)")
	f.IntVar(&burst, "kube-api-burst", apiserver.DefaultKubeBurst, "API server request burst")
	f.StringVar(&audience, "jwt-audience", envOr("JWT_AUDIENCE", apiserver.DefaultAudience), "aud the bearer tokens must carry (env JWT_AUDIENCE)")
	return cmd
}
