package cmd

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/spf13/cobra"

	jobsv1alpha1 "github.com/jengu/queue-operator/api/v1alpha1"
	"github.com/jengu/queue-operator/apiserver"
	"github.com/jengu/queue-operator/controllers"
	"github.com/jengu/queue-operator/internal/devenv"
	"github.com/jengu/queue-operator/internal/uninstall"
	"github.com/jengu/queue-operator/internal/workercmd"
	"github.com/jengu/queue-operator/workers"
)

const defaultRedisURL = "redis://127.0.0.1:6379/0"

// setEnv sets the variables the flags' defaults read: those in env, and the others empty (as
// unset), so the developer's environment does not leak into the defaults.
func setEnv(t *testing.T, env map[string]string) {
	t.Helper()
	for _, name := range []string{"REDIS_URL", "POD_NAMESPACE", "PORT", "OPS_PORT", "JWT_AUDIENCE", "WORKER_IMAGE", "JWT_ISSUER",
		"SUPABASE_JWKS_URL", "SUPABASE_JWT_SECRET", "STREAM_TICKET_SECRET", "CORS_ALLOWED_ORIGINS"} {
		t.Setenv(name, env[name])
	}
}

// execute runs the root command with args and returns its output; the commands that get this
// far must not reach a RunE that connects anywhere.
func execute(t *testing.T, args ...string) (string, error) {
	t.Helper()
	root := NewRootCommand()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(args)
	err := root.Execute()
	return out.String(), err
}

func TestHelp(t *testing.T) {
	tests := []struct {
		args []string
		want []string
	}{
		{args: []string{"--help"}, want: []string{
			"queue-operator [command]", "controller", "apiserver", "worker", "dev", "uninstall",
			"Process the jobs of one queue",
		}},
		{args: []string{"controller", "--help"}, want: []string{
			"queue-operator controller [flags]", "--redis-url string", "(env REDIS_URL)", `(default "` + defaultRedisURL + `")`,
			"--kube-api-qps float32", "(default 50)", "--kube-api-burst int", "(default 100)",
			"--metrics-bind-address string", `(default ":8080")`, "--health-probe-bind-address", `(default ":8081")`,
			"--leader-elect", "--leader-election-namespace", "--resync-period duration", "--redis-down-grace",
			"--housekeeping-interval", "--worker-image string", "(env WORKER_IMAGE)", "--max-stalls int",
		}},
		{args: []string{"apiserver", "--help"}, want: []string{
			"queue-operator apiserver [flags]", "--bind-address string", `(env PORT sets the port) (default ":3001")`,
			"--ops-bind-address string", `(env OPS_PORT sets the port)`, `(default ":3002")`, "--user-rate float", "(default 20)",
			"--max-live-jobs-per-user int", "(default 100)", "--max-stream-lifetime duration", "(default 10m0s)",
			"--namespace string", "namespace of the jobs (env POD_NAMESPACE)", "--redis-url string",
			"--kube-api-qps", "(each enqueue is one)", "--jwt-audience string", "(env JWT_AUDIENCE)",
			"--jwt-issuer string", "(env JWT_ISSUER)", "--jwks-url string", "(env SUPABASE_JWKS_URL)",
			"--stream-ticket-ttl duration", "STREAM_TICKET_SECRET", "(default 1m0s)", "--cors-allowed-origins strings", "(env CORS_ALLOWED_ORIGINS)",
		}},
		{args: []string{"worker", "--help"}, want: []string{
			"queue-operator worker [flags]", "--queue string", "--namespace string", "namespace of the queue (env POD_NAMESPACE)",
			"--redis-url string", "--concurrency int", "--metrics-bind-address string", `("0" turns it off) (default ":8082")`,
			"--shutdown-grace duration", "(default 25s)", "--worker-id string",
		}},
		{args: []string{"dev", "--help"}, want: []string{
			"queue-operator dev [flags]", "--crd-dir string", "--samples-dir string", "--state-dir string",
			"--namespace string", "--api-address string",
		}},
		{args: []string{"uninstall", "--help"}, want: []string{
			"queue-operator uninstall [flags]", "--namespace string", "namespace of the jobs and schedules to delete (env POD_NAMESPACE)",
			"--timeout duration", "(default 2m0s)", "--poll-interval duration", "(default 1s)",
			"--kube-api-qps float32", "(default 100)", "--kube-api-burst int", "(default 200)",
		}},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			setEnv(t, nil)
			out, err := execute(t, tt.args...)
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range tt.want {
				if !strings.Contains(out, w) {
					t.Errorf("help lacks %q:\n%s", w, out)
				}
			}
		})
	}
}

// parse parses args with the command's flags, as Execute would, without running it.
func parse(t *testing.T, cmd *cobra.Command, args []string) {
	t.Helper()
	if err := cmd.ParseFlags(args); err != nil {
		t.Fatal(err)
	}
	if err := cmd.ValidateRequiredFlags(); err != nil {
		t.Fatal(err)
	}
}

func TestControllerFlags(t *testing.T) {
	defaults := func(edit func(*controllerOptions)) controllerOptions {
		o := controllerOptions{
			Service: serviceFlags{RedisURL: defaultRedisURL, QPS: 50, Burst: 100},
			Manager: controllers.ManagerConfig{MetricsAddr: ":8080", ProbeAddr: ":8081", Options: controllers.DefaultOptions()},
		}
		if edit != nil {
			edit(&o)
		}
		return o
	}
	tests := []struct {
		name string
		env  map[string]string
		args []string
		want controllerOptions
	}{
		{name: "defaults", want: defaults(nil)},
		{name: "environment", env: map[string]string{"REDIS_URL": "redis://redis:6379/1", "WORKER_IMAGE": "registry.example/qo:v1"},
			want: defaults(func(o *controllerOptions) {
				o.Service.RedisURL = "redis://redis:6379/1"
				o.Manager.Options.WorkerImage = "registry.example/qo:v1"
			})},
		{name: "flags win over the environment", env: map[string]string{"REDIS_URL": "redis://env", "WORKER_IMAGE": "env-image"},
			args: []string{"--redis-url", "redis://flag", "--worker-image", "flag-image", "--kube-api-qps", "5", "--kube-api-burst", "7",
				"--metrics-bind-address", "0", "--health-probe-bind-address", ":9", "--leader-elect", "--leader-election-namespace", "ops",
				"--resync-period", "1m", "--redis-down-grace", "2m", "--housekeeping-interval", "3s", "--max-stalls", "4"},
			want: defaults(func(o *controllerOptions) {
				o.Service = serviceFlags{RedisURL: "redis://flag", QPS: 5, Burst: 7}
				o.Manager.MetricsAddr, o.Manager.ProbeAddr = "0", ":9"
				o.Manager.LeaderElection, o.Manager.LeaderElectionNamespace = true, "ops"
				o.Manager.Options.WorkerImage = "flag-image"
				o.Manager.Options.ResyncPeriod, o.Manager.Options.RedisDownGrace = time.Minute, 2*time.Minute
				o.Manager.Options.HousekeepingInterval, o.Manager.Options.MaxStalls = 3*time.Second, 4
			})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			setEnv(t, tt.env)
			o := newControllerOptions()
			parse(t, o.command(), tt.args)
			if diff := cmp.Diff(tt.want, *o, cmpopts.IgnoreTypes(logr.Logger{})); diff != "" {
				t.Errorf("options (-want +got):\n%s", diff)
			}
		})
	}
}

func TestAPIServerFlags(t *testing.T) {
	service := serviceFlags{RedisURL: defaultRedisURL, QPS: apiserver.DefaultKubeQPS, Burst: apiserver.DefaultKubeBurst}
	limits := apiserver.DefaultLimits()
	limits.UserRate, limits.UserBurst, limits.MaxLiveJobsPerUser = 20, 40, 100
	flagLimits := limits
	flagLimits.UserRate, flagLimits.MaxLiveJobsPerUser, flagLimits.MaxStreamLifetime, flagLimits.IdleTimeout = 0, 7, time.Minute, 5*time.Second
	tests := []struct {
		name string
		env  map[string]string
		args []string
		want apiServerOptions
	}{
		{name: "defaults", want: apiServerOptions{Addr: ":3001", OpsAddr: ":3002", Namespace: "default", Audience: apiserver.DefaultAudience,
			StreamTicketTTL: time.Minute, Service: service, Limits: limits}},
		{name: "environment",
			env: map[string]string{"PORT": "8080", "OPS_PORT": "8081", "POD_NAMESPACE": "team-a", "JWT_AUDIENCE": "other", "REDIS_URL": "redis://redis:6379/1",
				"JWT_ISSUER": "https://ref.supabase.co/auth/v1", "SUPABASE_JWKS_URL": "https://ref.supabase.co/auth/v1/.well-known/jwks.json",
				"CORS_ALLOWED_ORIGINS": "https://app.example.com, http://localhost:5173"},
			want: apiServerOptions{Addr: ":8080", OpsAddr: ":8081", Namespace: "team-a", Audience: "other",
				Issuer: "https://ref.supabase.co/auth/v1", JWKSURL: "https://ref.supabase.co/auth/v1/.well-known/jwks.json",
				StreamTicketTTL: time.Minute, AllowedOrigins: []string{"https://app.example.com", "http://localhost:5173"},
				Service: serviceFlags{RedisURL: "redis://redis:6379/1", QPS: apiserver.DefaultKubeQPS, Burst: apiserver.DefaultKubeBurst}, Limits: limits}},
		{name: "flags win over the environment",
			env: map[string]string{"PORT": "8080", "POD_NAMESPACE": "team-a", "JWT_AUDIENCE": "other", "REDIS_URL": "redis://env",
				"JWT_ISSUER": "env", "SUPABASE_JWKS_URL": "env", "CORS_ALLOWED_ORIGINS": "https://env.example.com"},
			args: []string{"--bind-address", "127.0.0.1:9", "--namespace", "team-b", "--jwt-audience", "flag", "--redis-url", "redis://flag",
				"--kube-api-qps", "1.5", "--kube-api-burst", "3", "--ops-bind-address", "127.0.0.1:10", "--user-rate", "0",
				"--max-live-jobs-per-user", "7", "--max-stream-lifetime", "1m", "--idle-timeout", "5s",
				"--jwt-issuer", "https://flag.supabase.co/auth/v1", "--jwks-url", "https://flag/jwks",
				"--stream-ticket-ttl", "30s", "--cors-allowed-origins", "https://a.example.com,https://b.example.com"},
			want: apiServerOptions{Addr: "127.0.0.1:9", OpsAddr: "127.0.0.1:10", Namespace: "team-b", Audience: "flag",
				Issuer: "https://flag.supabase.co/auth/v1", JWKSURL: "https://flag/jwks", StreamTicketTTL: 30 * time.Second,
				AllowedOrigins: []string{"https://a.example.com", "https://b.example.com"},
				Service:        serviceFlags{RedisURL: "redis://flag", QPS: 1.5, Burst: 3}, Limits: flagLimits}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			setEnv(t, tt.env)
			o := newAPIServerOptions()
			parse(t, o.command(), tt.args)
			if diff := cmp.Diff(tt.want, *o); diff != "" {
				t.Errorf("options (-want +got):\n%s", diff)
			}
		})
	}
}

// TestAPIServerRefusesWeakAuthentication: the facade refuses to start, before it connects to
// anything, without an issuer, without a way to verify tokens, or with a short secret.
func TestAPIServerRefusesWeakAuthentication(t *testing.T) {
	const issuer, secret = "https://ref.supabase.co/auth/v1", "a-supabase-project-jwt-secret-of-more-than-32-bytes"
	tests := []struct {
		name    string
		env     map[string]string
		wantErr string
	}{
		{name: "no issuer", env: map[string]string{"SUPABASE_JWT_SECRET": secret}, wantErr: "--jwt-issuer (JWT_ISSUER) is not set"},
		{name: "neither secret nor JWKS", env: map[string]string{"JWT_ISSUER": issuer}, wantErr: "no token verification configured"},
		{name: "a short secret", env: map[string]string{"JWT_ISSUER": issuer, "SUPABASE_JWT_SECRET": "test-jwt-secret"},
			wantErr: "SUPABASE_JWT_SECRET) is 15 bytes; at least 32 are required"},
		{name: "a plain-http JWKS URL", env: map[string]string{"JWT_ISSUER": issuer, "SUPABASE_JWKS_URL": "http://ref.supabase.co/auth/v1/.well-known/jwks.json"},
			wantErr: "must be https"},
		{name: "a short ticket secret", env: map[string]string{"JWT_ISSUER": issuer, "SUPABASE_JWT_SECRET": secret, "STREAM_TICKET_SECRET": "short"},
			wantErr: "STREAM_TICKET_SECRET is 5 bytes; at least 32 are required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			setEnv(t, tt.env)
			_, err := execute(t, "apiserver")
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error = %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestWorkerFlags(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		args []string
		want workerOptions
	}{
		{name: "defaults", args: []string{"--queue", "enrichment"},
			want: workerOptions{Queue: "enrichment", Namespace: "default", RedisURL: defaultRedisURL, MetricsAddr: ":8082",
				ShutdownGrace: 25 * time.Second, QPS: 50, Burst: 100}},
		{name: "environment", env: map[string]string{"POD_NAMESPACE": "team-a", "REDIS_URL": "redis://redis:6379/1"},
			args: []string{"--queue", "competitor"},
			want: workerOptions{Queue: "competitor", Namespace: "team-a", RedisURL: "redis://redis:6379/1", MetricsAddr: ":8082",
				ShutdownGrace: 25 * time.Second, QPS: 50, Burst: 100}},
		{name: "flags win over the environment", env: map[string]string{"POD_NAMESPACE": "team-a", "REDIS_URL": "redis://env"},
			args: []string{"--queue", "analytics-heavy", "--namespace", "team-b", "--redis-url", "redis://flag", "--concurrency", "4",
				"--metrics-bind-address", "0", "--shutdown-grace", "1m", "--worker-id", "w-1", "--kube-api-qps", "20", "--kube-api-burst", "40"},
			want: workerOptions{Queue: "analytics-heavy", Namespace: "team-b", RedisURL: "redis://flag", Concurrency: 4, MetricsAddr: "0",
				ShutdownGrace: time.Minute, WorkerID: "w-1", QPS: 20, Burst: 40}},
		{name: "the controller's command line",
			args: workercmd.Command{Queue: jobsv1alpha1.QueueCompetitor, Namespace: "team-a", ShutdownGrace: 5 * time.Minute}.Args()[1:],
			want: workerOptions{Queue: "competitor", Namespace: "team-a", RedisURL: defaultRedisURL, MetricsAddr: ":8082",
				ShutdownGrace: 5 * time.Minute, QPS: 50, Burst: 100}},
		{name: "the dev environment's command line",
			args: workercmd.Command{Queue: jobsv1alpha1.QueueEnrichment, Namespace: "default", MetricsAddr: workercmd.MetricsOff}.Args()[1:],
			want: workerOptions{Queue: "enrichment", Namespace: "default", RedisURL: defaultRedisURL, MetricsAddr: "0",
				ShutdownGrace: 25 * time.Second, QPS: 50, Burst: 100}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			setEnv(t, tt.env)
			o := newWorkerOptions()
			parse(t, o.command(), tt.args)
			if diff := cmp.Diff(tt.want, *o); diff != "" {
				t.Errorf("options (-want +got):\n%s", diff)
			}
		})
	}
}

func TestWorkerRefusals(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		wantErr string
		wantIs  error
	}{
		{name: "no queue", args: []string{"worker"}, wantErr: `required flag(s) "queue" not set`},
		{name: "a queue without a processor", args: []string{"worker", "--queue", "reports"},
			wantErr: `"reports" is not a queue of this build (its queues: [enrichment competitor analytics-heavy])`, wantIs: workers.ErrNoProcessor},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			setEnv(t, nil)
			_, err := execute(t, tt.args...)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error = %v, want one containing %q", err, tt.wantErr)
			}
			if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
				t.Errorf("error = %v, want one wrapping %v", err, tt.wantIs)
			}
		})
	}
}

func TestUninstallFlags(t *testing.T) {
	defaults := func(edit func(*uninstallOptions)) uninstallOptions {
		o := uninstallOptions{QPS: 100, Burst: 200, Uninstall: uninstall.DefaultOptions()}
		if edit != nil {
			edit(&o)
		}
		return o
	}
	tests := []struct {
		name string
		env  map[string]string
		args []string
		want uninstallOptions
	}{
		{name: "defaults", want: defaults(nil)},
		{name: "environment", env: map[string]string{"POD_NAMESPACE": "jobs"},
			want: defaults(func(o *uninstallOptions) { o.Uninstall.Namespace = "jobs" })},
		{name: "the chart's hook", env: map[string]string{"POD_NAMESPACE": "env"},
			args: []string{"--namespace=jobs", "--timeout=30s", "--poll-interval=250ms", "--kube-api-qps=10", "--kube-api-burst=20"},
			want: defaults(func(o *uninstallOptions) {
				o.QPS, o.Burst = 10, 20
				o.Uninstall.Namespace, o.Uninstall.Timeout, o.Uninstall.PollInterval = "jobs", 30*time.Second, 250*time.Millisecond
			})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			setEnv(t, tt.env)
			o := newUninstallOptions()
			parse(t, o.command(), tt.args)
			if diff := cmp.Diff(tt.want, *o); diff != "" {
				t.Errorf("options (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDevFlags(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want devenv.Options
	}{
		{name: "defaults", want: devenv.Options{CRDDir: "config/crd/bases", SamplesDir: "config/samples", StateDir: ".dev",
			Namespace: "default", APIAddress: "localhost:3001", ScrapeInterval: 5 * time.Second}},
		{name: "flags", args: []string{"--crd-dir", "crds", "--samples-dir", "samples", "--state-dir", "/tmp/dev", "--namespace", "demo",
			"--api-address", ":4000", "--prometheus-scrape-interval", "2s"},
			want: devenv.Options{CRDDir: "crds", SamplesDir: "samples", StateDir: "/tmp/dev", Namespace: "demo", APIAddress: ":4000",
				ScrapeInterval: 2 * time.Second}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// dev reads no environment in its flags: POD_NAMESPACE is the pod's, not the samples'.
			setEnv(t, map[string]string{"POD_NAMESPACE": "ignored"})
			o := newDevOptions()
			parse(t, o.command(), tt.args)
			if diff := cmp.Diff(tt.want, o.Env, cmpopts.IgnoreFields(devenv.Options{}, "Out")); diff != "" {
				t.Errorf("options (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDevFakeAPIsFlag(t *testing.T) {
	tests := []struct {
		env  string
		args []string
		want bool
	}{
		{env: "", want: false},
		{env: "0", want: false},
		{env: "1", want: true},
		{env: "", args: []string{"--fake-apis"}, want: true},
		{env: "1", args: []string{"--fake-apis=false"}, want: false},
	}
	for _, tt := range tests {
		t.Setenv(EnvFakeAPIs, tt.env)
		o := newDevOptions()
		parse(t, o.command(), tt.args)
		if o.FakeAPIs != tt.want {
			t.Errorf("FAKE_APIS=%q %v: fake APIs %v, want %v", tt.env, tt.args, o.FakeAPIs, tt.want)
		}
	}
}

func TestProcessors(t *testing.T) {
	if diff := cmp.Diff([]jobsv1alpha1.QueueName{jobsv1alpha1.QueueEnrichment, jobsv1alpha1.QueueCompetitor, jobsv1alpha1.QueueAnalytics}, processors.Queues()); diff != "" {
		t.Errorf("queues with a processor (-want +got):\n%s", diff)
	}
	for _, q := range processors.Queues() {
		if _, err := processors.New(q, workers.ProcessorDeps{Getenv: func(string) string { return "" }}); err != nil {
			t.Errorf("build the %s processor: %v", q, err)
		}
	}
}
