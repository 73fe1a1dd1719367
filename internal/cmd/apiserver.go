package cmd

import (
	"fmt"
	"net"
	"os"

	"github.com/spf13/cobra"

	"github.com/jengu/queue-operator/apiserver"
	"github.com/jengu/queue-operator/store"
)

// apiServerOptions are the facade's flags.
type apiServerOptions struct {
	Addr, Namespace, Audience string
	Service                   serviceFlags
}

func newAPIServerOptions() *apiServerOptions { return &apiServerOptions{} }

func (o *apiServerOptions) command() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "apiserver",
		Short: "Serve the REST API (the seed's /api/jobs contract) over the job CRs",
		RunE:  func(*cobra.Command, []string) error { return o.run() },
	}
	f := cmd.Flags()
	f.StringVar(&o.Addr, "bind-address", ":"+envOr("PORT", "3001"), "address of the REST API, /metrics and /healthz (env PORT sets the port)")
	bindNamespace(f, &o.Namespace, "the jobs")
	o.Service.register(f, apiserver.DefaultKubeQPS, apiserver.DefaultKubeBurst, "kube-apiserver requests per second (each enqueue is one)")
	bindEnvString(f, &o.Audience, "jwt-audience", "JWT_AUDIENCE", apiserver.DefaultAudience, "aud the bearer tokens must carry")
	return cmd
}

func (o *apiServerOptions) run() error {
	secret := os.Getenv("SUPABASE_JWT_SECRET")
	if secret == "" {
		return fmt.Errorf("SUPABASE_JWT_SECRET is not set: the facade verifies HS256 tokens with it")
	}
	svc, err := o.Service.start()
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
	server, err := apiserver.Connect(ctx, svc.kube, apiserver.Config{Namespace: o.Namespace, Redis: svc.redis, Store: db,
		JWTSecret: []byte(secret), Audience: o.Audience}, apiserver.WithLogger(log.WithName("apiserver")))
	if err != nil {
		return err
	}
	l, err := net.Listen("tcp", o.Addr)
	if err != nil {
		return err
	}
	return server.Serve(ctx, l)
}
