package cmd

import (
	"os"

	"github.com/spf13/pflag"

	"github.com/jengu/queue-operator/internal/workercmd"
)

// bindEnvString binds a string flag whose default is the environment variable env, else
// fallback; the usage names the variable.
func bindEnvString(f *pflag.FlagSet, p *string, name, env, fallback, usage string) {
	f.StringVar(p, name, envOr(env, fallback), usage+" (env "+env+")")
}

// bindRedisURL binds --redis-url, the queues' Redis, for the commands that use it.
func bindRedisURL(f *pflag.FlagSet, p *string) {
	bindEnvString(f, p, "redis-url", "REDIS_URL", "redis://127.0.0.1:6379/0", "Redis of the queues")
}

// bindNamespace binds --namespace, the pod's namespace unless given; what says what it is the
// namespace of.
func bindNamespace(f *pflag.FlagSet, p *string, what string) {
	bindEnvString(f, p, workercmd.FlagNamespace, "POD_NAMESPACE", "default", "namespace of "+what)
}

// bindKubeRateLimits binds --kube-api-qps and --kube-api-burst, the client-side rate limits
// towards the kube-apiserver.
func bindKubeRateLimits(f *pflag.FlagSet, qps *float32, burst *int, defaultQPS float32, defaultBurst int, qpsUsage string) {
	f.Float32Var(qps, "kube-api-qps", defaultQPS, qpsUsage)
	f.IntVar(burst, "kube-api-burst", defaultBurst, "kube-apiserver request burst")
}

// envOr is the environment variable name, else fallback.
func envOr(name, fallback string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return fallback
}
