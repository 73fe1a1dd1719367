package cmd

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/jengu/queue-operator/apiserver"
	"github.com/jengu/queue-operator/apiserver/authn"
	"github.com/jengu/queue-operator/store"
)

// The facade's secrets come from the environment only (a flag would show in the process list).
const (
	envJWTSecret          = "SUPABASE_JWT_SECRET"
	envStreamTicketSecret = "STREAM_TICKET_SECRET"
)

// apiServerOptions are the facade's flags.
type apiServerOptions struct {
	Addr, OpsAddr, Namespace, Audience string
	Issuer, JWKSURL                    string
	StreamTicketTTL                    time.Duration
	AllowedOrigins                     []string
	Service                            serviceFlags
	Limits                             apiserver.Limits
}

func newAPIServerOptions() *apiServerOptions { return &apiServerOptions{} }

// Per-user limits of the command (the library's defaults leave them off): 20 requests per second
// with bursts of 40, and 100 unfinished jobs per queue, ten minutes of the enrichment queue's
// global rate of 10 per minute.
const (
	defaultUserRate           = 20
	defaultUserBurst          = 40
	defaultMaxLiveJobsPerUser = 100
)

func (o *apiServerOptions) command() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "apiserver",
		Short: "Serve the REST API (the seed's /api/jobs contract) over the job CRs",
		RunE:  func(*cobra.Command, []string) error { return o.run() },
	}
	f := cmd.Flags()
	f.StringVar(&o.Addr, "bind-address", ":"+envOr("PORT", "3001"), "address of the REST API (env PORT sets the port)")
	f.StringVar(&o.OpsAddr, "ops-bind-address", ":"+envOr("OPS_PORT", "3002"), "address of /healthz, /readyz, /metrics and /metrics/json (env OPS_PORT sets the port); keep it off the public Service")
	bindNamespace(f, &o.Namespace, "the jobs")
	o.Service.register(f, apiserver.DefaultKubeQPS, apiserver.DefaultKubeBurst, "kube-apiserver requests per second (each enqueue is one)")
	bindEnvString(f, &o.Audience, "jwt-audience", "JWT_AUDIENCE", apiserver.DefaultAudience, "aud the bearer tokens must carry")
	bindEnvString(f, &o.Issuer, "jwt-issuer", "JWT_ISSUER", "",
		"iss the bearer tokens must carry, https://<project>.supabase.co/auth/v1 (required)")
	bindEnvString(f, &o.JWKSURL, "jwks-url", "SUPABASE_JWKS_URL", "",
		"JWKS whose keys verify ES256/RS256 tokens, https://<project>.supabase.co/auth/v1/.well-known/jwks.json; "+
			"empty: no asymmetric keys. "+envJWTSecret+" (environment only) turns HS256 on; at least one of the two is required")
	f.DurationVar(&o.StreamTicketTTL, "stream-ticket-ttl", authn.DefaultTicketTTL,
		"lifetime of the tickets that open an event stream without a bearer token (signed with env "+envStreamTicketSecret+
			", else a key derived from "+envJWTSecret+")")
	f.StringSliceVar(&o.AllowedOrigins, "cors-allowed-origins", splitList(os.Getenv("CORS_ALLOWED_ORIGINS")),
		"browser origins (scheme://host[:port], comma-separated) that may call the API cross-origin (env CORS_ALLOWED_ORIGINS)")
	o.bindLimits(f)
	return cmd
}

func splitList(v string) []string {
	var out []string
	for item := range strings.SplitSeq(v, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}

// authConfig is the facade's authentication, checked before anything connects: an issuer, and
// HS256 with a secret of 32 bytes or more, or a JWKS URL, or both.
func (o *apiServerOptions) authConfig() (apiserver.Config, error) {
	cfg := apiserver.Config{JWTSecret: []byte(os.Getenv(envJWTSecret)), JWKSURL: o.JWKSURL, Issuer: o.Issuer, Audience: o.Audience,
		StreamTicketSecret: []byte(os.Getenv(envStreamTicketSecret)), StreamTicketTTL: o.StreamTicketTTL, AllowedOrigins: o.AllowedOrigins}
	if o.Issuer == "" {
		return cfg, errors.New("--jwt-issuer (JWT_ISSUER) is not set: the facade accepts only tokens of its Supabase project, " +
			"https://<project>.supabase.co/auth/v1")
	}
	if _, err := authn.NewVerifier(authn.Config{Secret: cfg.JWTSecret, JWKSURL: cfg.JWKSURL, Issuer: cfg.Issuer}); err != nil {
		return cfg, err
	}
	if len(cfg.StreamTicketSecret) > 0 && len(cfg.StreamTicketSecret) < authn.MinSecretBytes {
		return cfg, fmt.Errorf("%s is %d bytes; at least %d are required", envStreamTicketSecret, len(cfg.StreamTicketSecret), authn.MinSecretBytes)
	}
	return cfg, nil
}

func (o *apiServerOptions) run() error {
	cfg, err := o.authConfig()
	if err != nil {
		return err
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
	cfg.Namespace, cfg.Redis, cfg.Store = o.Namespace, svc.redis, db
	server, err := apiserver.Connect(ctx, svc.kube, cfg, apiserver.WithLogger(log.WithName("apiserver")), apiserver.WithLimits(o.Limits))
	if err != nil {
		return err
	}
	l, err := net.Listen("tcp", o.Addr)
	if err != nil {
		return err
	}
	ops, err := net.Listen("tcp", o.OpsAddr)
	if err != nil {
		return err
	}
	return server.Serve(ctx, l, ops)
}

func (o *apiServerOptions) bindLimits(f *pflag.FlagSet) {
	d, l := apiserver.DefaultLimits(), &o.Limits
	l.LargeBodyWait = d.LargeBodyWait
	f.Float64Var(&l.UserRate, "user-rate", defaultUserRate, "requests per second each user may send to /api, per facade replica (0 turns it off)")
	f.IntVar(&l.UserBurst, "user-burst", defaultUserBurst, "requests each user may send at once")
	f.IntVar(&l.MaxLiveJobsPerUser, "max-live-jobs-per-user", defaultMaxLiveJobsPerUser, "unfinished jobs each user may have per queue (0: no cap)")
	f.IntVar(&l.MaxLargeBodies, "max-large-bodies", d.MaxLargeBodies, "analytics and upload bodies read at once")
	f.IntVar(&l.MaxStreams, "max-streams", d.MaxStreams, "event streams open at once")
	f.IntVar(&l.MaxStreamsPerUser, "max-streams-per-user", d.MaxStreamsPerUser, "event streams each user may have open")
	f.DurationVar(&l.MaxStreamLifetime, "max-stream-lifetime", d.MaxStreamLifetime, "an event stream ends after this long; the client reconnects")
	f.DurationVar(&l.IdleTimeout, "idle-timeout", d.IdleTimeout, "an idle keep-alive connection is closed after this long")
	f.DurationVar(&l.BodyTimeout, "body-timeout", d.BodyTimeout, "time to read a JSON request")
	f.DurationVar(&l.UploadTimeout, "upload-timeout", d.UploadTimeout, "time to read an upload or analytics request")
	f.DurationVar(&l.WriteTimeout, "write-timeout", d.WriteTimeout, "time to write an answer (event streams excepted)")
}
