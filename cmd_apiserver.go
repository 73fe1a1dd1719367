package main

import (
	"fmt"
	"net"
	"os"

	"github.com/spf13/cobra"

	"github.com/jengu/queue-operator/apiserver"
	"github.com/jengu/queue-operator/store"
)

func newAPIServerCommand() *cobra.Command {
	var (
		addr, namespace, audience string
		flags                     serviceFlags
	)
	cmd := &cobra.Command{
		Use:   "apiserver",
		Short: "Serve the REST API (the seed's /api/jobs contract) over the job CRs",
		RunE: func(cmd *cobra.Command, _ []string) error {
			secret := os.Getenv("SUPABASE_JWT_SECRET")
			if secret == "" {
				return fmt.Errorf("SUPABASE_JWT_SECRET is not set: the facade verifies HS256 tokens with it")
			}
			svc, err := flags.start()
			if err != nil {
				return err
			}
			defer svc.redis.Close()
			ctx, log := svc.ctx, svc.log
			// The facade reads properties and the history before any worker may have run (workers
			// scale to zero), so it brings the schema up to date too.
			db, err := store.OpenFromEnv(ctx, os.Getenv, log)
			if err != nil {
				return err
			}
			defer db.Close()
			server, err := apiserver.Connect(ctx, svc.kube, apiserver.Config{Namespace: namespace, Redis: svc.redis, Store: db,
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
	flags.register(f, apiserver.DefaultKubeQPS, apiserver.DefaultKubeBurst, "API server requests per second (each enqueue is one)")
	f.StringVar(&audience, "jwt-audience", envOr("JWT_AUDIENCE", apiserver.DefaultAudience), "aud the bearer tokens must carry (env JWT_AUDIENCE)")
	return cmd
}
