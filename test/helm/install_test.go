package helm_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	jobsv1alpha1 "github.com/jengu/queue-operator/api/v1alpha1"
	"github.com/jengu/queue-operator/internal/testenv"
)

func TestLint(t *testing.T) {
	if out, err := helm(t, append([]string{"lint", "--strict", chartDir()}, requiredValues...)...); err != nil {
		t.Fatal(err)
	} else {
		t.Log(out)
	}
	// With the default values alone: lint renders, so the required values must be asked for.
	out, err := helm(t, "lint", chartDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Log(out)
}

func TestRequiredValuesAreAskedFor(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--set", "apiserver.jwtSecret=x", "--set", "auth.issuer=i"}, "database.url is required"},
		{[]string{"--set", "database.url=postgres://x", "--set", "auth.issuer=i"}, "apiserver.jwtSecret is required"},
		{[]string{"--set", "database.url=postgres://x", "--set", "apiserver.jwtSecret=x", "--set", "auth.issuer=i", "--set", "redis.url="}, "redis.url is required"},
		{[]string{"--set", "database.url=postgres://x", "--set", "apiserver.jwtSecret=x"}, "auth.issuer is required"},
	} {
		_, err := helm(t, append([]string{"template", "qo", chartDir()}, c.args...)...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("helm template %v: want an error %q, got %v", c.args, c.want, err)
		}
	}
}

// container is the Deployment's one container.
func container(g Gomega, ctx context.Context, namespace, name string) (*appsv1.Deployment, corev1.Container) {
	d := &appsv1.Deployment{}
	g.Expect(env.Client.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, d)).To(Succeed(), "Deployment %s", name)
	g.Expect(d.Spec.Template.Spec.Containers).To(HaveLen(1))
	return d, d.Spec.Template.Spec.Containers[0]
}

func envVar(c corev1.Container, name string) *corev1.EnvVar {
	for i := range c.Env {
		if c.Env[i].Name == name {
			return &c.Env[i]
		}
	}
	return nil
}

func secretRef(g Gomega, c corev1.Container, name, secret, key string) {
	e := envVar(c, name)
	g.Expect(e).NotTo(BeNil(), "env %s of %s", name, c.Name)
	g.Expect(e.ValueFrom).NotTo(BeNil(), "env %s of %s comes from a Secret", name, c.Name)
	g.Expect(e.ValueFrom.SecretKeyRef).NotTo(BeNil(), "env %s of %s comes from a Secret", name, c.Name)
	g.Expect(e.ValueFrom.SecretKeyRef.Name).To(Equal(secret), "env %s of %s", name, c.Name)
	g.Expect(e.ValueFrom.SecretKeyRef.Key).To(Equal(key), "env %s of %s", name, c.Name)
}

func TestDefaultValuesInstall(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	ns := newNamespace(t, "helm-default")
	objs := install(t, "qo", ns, requiredValues...)
	g.Expect(kinds(objs)).To(Equal(map[string]int{
		"Secret": 2, "ServiceAccount": 4, "ClusterRole": 3, "ClusterRoleBinding": 1, "Role": 1, "RoleBinding": 3,
		"Deployment": 2, "Service": 2, "JobQueue": 3, "Job": 1,
	}), "the uninstall hook's ServiceAccount, Role, RoleBinding and Job included")

	d, c := container(g, ctx, ns, "qo-queue-operator-controller")
	g.Expect(*d.Spec.Replicas).To(Equal(int32(1)))
	g.Expect(d.Spec.Template.Spec.ServiceAccountName).To(Equal("qo-queue-operator-controller"))
	g.Expect(c.Image).To(Equal("ghcr.io/jengu/queue-operator:0.1.0"))
	g.Expect(c.Args).To(Equal([]string{"controller", "--leader-elect=false",
		"--worker-image=ghcr.io/jengu/queue-operator:0.1.0", "--metrics-bind-address=:8080", "--health-probe-bind-address=:8081",
		"--worker-service-account=qo-queue-operator-worker", "--worker-plain-redis-url=false"}))
	secretRef(g, c, "REDIS_URL", "qo-queue-operator", "REDIS_URL")
	g.Expect(c.LivenessProbe.HTTPGet.Path).To(Equal("/healthz"))
	g.Expect(c.LivenessProbe.HTTPGet.Port.String()).To(Equal("health"))
	g.Expect(c.ReadinessProbe.HTTPGet.Path).To(Equal("/readyz"))
	g.Expect(c.Ports).To(ContainElements(
		HaveField("ContainerPort", int32(8080)), HaveField("ContainerPort", int32(8081))))

	d, c = container(g, ctx, ns, "qo-queue-operator-apiserver")
	g.Expect(d.Spec.Template.Spec.ServiceAccountName).To(Equal("qo-queue-operator-apiserver"))
	g.Expect(c.Args).To(Equal([]string{"apiserver", "--bind-address=:3001", "--ops-bind-address=:3002",
		"--user-rate=20", "--user-burst=40", "--max-live-jobs-per-user=100", "--max-large-bodies=4",
		"--max-streams=1000", "--max-streams-per-user=10", "--max-stream-lifetime=10m", "--idle-timeout=60s"}))
	// 0.9 of the 512Mi limit.
	g.Expect(envVar(c, "GOMEMLIMIT").Value).To(Equal("483183820"))
	secretRef(g, c, "REDIS_URL", "qo-queue-operator", "REDIS_URL")
	secretRef(g, c, "DATABASE_URL", "qo-queue-operator", "DATABASE_URL")
	g.Expect(envVar(c, "DATABASE_SCHEMA").Value).To(Equal("queue_operator"))
	secretRef(g, c, "SUPABASE_JWT_SECRET", "qo-queue-operator-jwt", "SUPABASE_JWT_SECRET")
	g.Expect(envVar(c, "POD_NAMESPACE").ValueFrom.FieldRef.FieldPath).To(Equal("metadata.namespace"))
	g.Expect(c.Ports).To(ConsistOf(corev1.ContainerPort{Name: "http", ContainerPort: 3001, Protocol: corev1.ProtocolTCP},
		corev1.ContainerPort{Name: "ops", ContainerPort: 3002, Protocol: corev1.ProtocolTCP}))
	g.Expect(c.LivenessProbe.HTTPGet.Path).To(Equal("/healthz"))
	g.Expect(c.LivenessProbe.HTTPGet.Port.String()).To(Equal("ops"))
	g.Expect(c.ReadinessProbe.HTTPGet.Path).To(Equal("/readyz"))
	g.Expect(c.ReadinessProbe.HTTPGet.Port.String()).To(Equal("ops"))

	secret := &corev1.Secret{}
	g.Expect(env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "qo-queue-operator"}, secret)).To(Succeed())
	g.Expect(secret.Data).To(Equal(map[string][]byte{
		"DATABASE_URL": []byte("postgres://app:pw@postgres.example:5432/app"),
		"REDIS_URL":    []byte("redis://redis.example:6379/0"),
	}))
	g.Expect(env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "qo-queue-operator-jwt"}, secret)).To(Succeed())
	g.Expect(secret.Data).To(Equal(map[string][]byte{"SUPABASE_JWT_SECRET": []byte("test-jwt-secret")}),
		"the JWT key has a Secret of its own, which no worker may read")

	svc := &corev1.Service{}
	g.Expect(env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "qo-queue-operator-apiserver"}, svc)).To(Succeed())
	g.Expect(svc.Spec.Ports).To(HaveLen(1))
	g.Expect(svc.Spec.Ports[0].Name).To(Equal("http"))
	g.Expect(svc.Spec.Ports[0].Port).To(Equal(int32(3001)))
	g.Expect(svc.Spec.Ports[0].TargetPort.String()).To(Equal("http"))
	g.Expect(svc.Spec.Selector).To(Equal(d.Spec.Template.Labels))
	g.Expect(svc.Annotations).To(BeEmpty())
	// Probes and metrics on the ops Service only.
	ops := &corev1.Service{}
	g.Expect(env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "qo-queue-operator-apiserver-ops"}, ops)).To(Succeed())
	g.Expect(ops.Labels).To(HaveKeyWithValue("app.kubernetes.io/component", "apiserver-ops"))
	g.Expect(ops.Spec.Type).To(Equal(corev1.ServiceTypeClusterIP))
	g.Expect(ops.Spec.Ports).To(HaveLen(1))
	g.Expect(ops.Spec.Ports[0].Name).To(Equal("ops"))
	g.Expect(ops.Spec.Ports[0].Port).To(Equal(int32(3002)))
	g.Expect(ops.Spec.Ports[0].TargetPort.String()).To(Equal("ops"))
	g.Expect(ops.Spec.Selector).To(Equal(d.Spec.Template.Labels))
	g.Expect(ops.Annotations).To(HaveKeyWithValue("prometheus.io/scrape", "true"))
	g.Expect(ops.Annotations).To(HaveKeyWithValue("prometheus.io/path", "/metrics"))
	g.Expect(ops.Annotations).To(HaveKeyWithValue("prometheus.io/port", "3002"))

	rb := &rbacv1.RoleBinding{}
	g.Expect(env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "qo-queue-operator-apiserver"}, rb)).To(Succeed())
	g.Expect(rb.RoleRef).To(Equal(rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "qo-queue-operator-apiserver"}))
	g.Expect(rb.Subjects).To(Equal([]rbacv1.Subject{{Kind: "ServiceAccount", Name: "qo-queue-operator-apiserver", Namespace: ns}}))
	g.Expect(env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "qo-queue-operator-worker"}, rb)).To(Succeed())
	g.Expect(rb.Subjects).To(Equal([]rbacv1.Subject{{Kind: "ServiceAccount", Name: "qo-queue-operator-worker", Namespace: ns}}))
	crb := &rbacv1.ClusterRoleBinding{}
	g.Expect(env.Client.Get(ctx, client.ObjectKey{Name: "qo-queue-operator-controller"}, crb)).To(Succeed())
	g.Expect(crb.Subjects).To(Equal([]rbacv1.Subject{{Kind: "ServiceAccount", Name: "qo-queue-operator-controller", Namespace: ns}}))

	queues := &jobsv1alpha1.JobQueueList{}
	g.Expect(env.Client.List(ctx, queues, client.InNamespace(ns))).To(Succeed())
	g.Expect(queues.Items).To(HaveLen(3))
	for _, q := range queues.Items {
		t.Run(q.Name, func(t *testing.T) { checkJobQueue(t, objs, q) })
	}
}

// checkJobQueue: the chart's JobQueue is the sample's spec plus the worker template that gives
// the workers their database, and the Secret of their REDIS_URL.
func checkJobQueue(t *testing.T, objs []*unstructured.Unstructured, q jobsv1alpha1.JobQueue) {
	g := NewWithT(t)
	data, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "config", "samples", "jobqueue-"+q.Name+".yaml"))
	g.Expect(err).NotTo(HaveOccurred())
	sample := map[string]any{}
	g.Expect(yaml.Unmarshal(data, &sample)).To(Succeed())
	rendered := find(objs, "JobQueue", q.Name)
	g.Expect(rendered).NotTo(BeNil())
	spec, _, _ := unstructured.NestedMap(rendered.Object, "spec")
	worker := spec["worker"]
	delete(spec, "worker")
	// Both through JSON, so that numbers compare alike.
	want, _ := yaml.Marshal(sample["spec"])
	got, _ := yaml.Marshal(spec)
	g.Expect(string(got)).To(MatchYAML(string(want)), "JobQueue %s spec beside worker", q.Name)
	g.Expect(worker).NotTo(BeNil())

	tpl := q.Spec.Worker.Template
	g.Expect(tpl).NotTo(BeNil())
	g.Expect(tpl.Spec.ServiceAccountName).To(BeEmpty(), "the controller sets the worker ServiceAccount")
	g.Expect(q.Spec.Worker.RedisURLSecretRef).To(Equal(&jobsv1alpha1.SecretKeyRef{Name: "qo-queue-operator", Key: "REDIS_URL"}))
	g.Expect(tpl.Spec.Containers).To(HaveLen(1))
	c := tpl.Spec.Containers[0]
	g.Expect(c.Name).To(Equal("worker"))
	secretRef(g, c, "DATABASE_URL", "qo-queue-operator", "DATABASE_URL")
	g.Expect(envVar(c, "DATABASE_MIGRATION_URL")).To(BeNil(), "no migration URL was given")
}

func TestOtherValuesInstall(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	ns := newNamespace(t, "helm-variant")
	values := filepath.Join(t.TempDir(), "values.yaml")
	g.Expect(os.WriteFile(values, []byte(`
image: {repository: registry.example/qo, tag: v9}
redis: {existingSecret: queue-redis, urlKey: url}
database: {existingSecret: app-db, urlKey: pooler, migrationURLKey: direct}
apiserver:
  existingSecret: supabase
  replicas: 3
  service: {type: NodePort}
  resources: {limits: {memory: 1Gi}}
  goMemLimitRatio: 0.8
quota: {enabled: true, enrichmentJobs: 500}
controller: {replicas: 2, workerImage: registry.example/qo-worker:v9}
jobQueues: {create: false}
workerServiceAccount: {create: false, name: own-worker, rbac: {create: false}}
uninstall: {deleteJobs: false}
auth: {issuer: "https://variant.supabase.co/auth/v1"}
`), 0o600)).To(Succeed())
	objs := install(t, "variant", ns, "-f", values)
	g.Expect(kinds(objs)).To(Equal(map[string]int{
		"ServiceAccount": 2, "ClusterRole": 2, "ClusterRoleBinding": 1, "RoleBinding": 1, "Deployment": 2, "Service": 2,
		"ResourceQuota": 1,
	}), "no Secret, no JobQueue, no worker ServiceAccount or RBAC, no uninstall hook")

	d, c := container(g, ctx, ns, "variant-queue-operator-controller")
	g.Expect(*d.Spec.Replicas).To(Equal(int32(2)))
	g.Expect(c.Image).To(Equal("registry.example/qo:v9"))
	g.Expect(c.Args).To(Equal([]string{"controller", "--leader-elect=true", "--leader-election-namespace=" + ns,
		"--worker-image=registry.example/qo-worker:v9", "--metrics-bind-address=:8080", "--health-probe-bind-address=:8081",
		"--worker-service-account=own-worker", "--worker-plain-redis-url=false"}))
	secretRef(g, c, "REDIS_URL", "queue-redis", "url")

	d, c = container(g, ctx, ns, "variant-queue-operator-apiserver")
	g.Expect(*d.Spec.Replicas).To(Equal(int32(3)))
	secretRef(g, c, "DATABASE_URL", "app-db", "pooler")
	secretRef(g, c, "SUPABASE_JWT_SECRET", "supabase", "SUPABASE_JWT_SECRET")
	secretRef(g, c, "REDIS_URL", "queue-redis", "url")
	g.Expect(envVar(c, "GOMEMLIMIT").Value).To(Equal("858993459")) // 0.8 of 1Gi

	quota := &corev1.ResourceQuota{}
	g.Expect(env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "variant-queue-operator-jobs"}, quota)).To(Succeed())
	g.Expect(quota.Spec.Hard).To(HaveLen(3))
	g.Expect(quota.Spec.Hard.Name("count/enrichmentjobs.jobs.jengu.io", resource.DecimalSI).Value()).To(Equal(int64(500)))
	g.Expect(quota.Spec.Hard.Name("count/analyticsjobs.jobs.jengu.io", resource.DecimalSI).Value()).To(Equal(int64(20000)))
	g.Expect(envVar(c, "JWT_ISSUER").Value).To(Equal("https://variant.supabase.co/auth/v1"))

	svc := &corev1.Service{}
	g.Expect(env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "variant-queue-operator-apiserver"}, svc)).To(Succeed())
	g.Expect(svc.Spec.Type).To(Equal(corev1.ServiceTypeNodePort))
	g.Expect(svc.Spec.Ports[0].Port).To(Equal(int32(3001)))

	rb := &rbacv1.RoleBinding{}
	g.Expect(env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "variant-queue-operator-apiserver"}, rb)).To(Succeed())
	g.Expect(rb.RoleRef.Name).To(Equal("variant-queue-operator-apiserver"))

	queues := &jobsv1alpha1.JobQueueList{}
	g.Expect(env.Client.List(ctx, queues, client.InNamespace(ns))).To(Succeed())
	g.Expect(queues.Items).To(BeEmpty())
}

// TestFacadeAuthValues: the facade's token, ticket and CORS values become its environment.
func TestFacadeAuthValues(t *testing.T) {
	g := NewWithT(t)
	_, objs := render(t, "qo", "jobs", append(requiredValues,
		"--set", "auth.hs256=false", "--set", "auth.jwksURL=https://ref.supabase.co/auth/v1/.well-known/jwks.json",
		"--set", "auth.streamTicketSecretRef.name=tickets", "--set", "auth.streamTicketSecretRef.key=key",
		"--set", "cors.allowedOrigins={https://app.example.com,http://localhost:5173}")...)
	d := &appsv1.Deployment{}
	g.Expect(fromUnstructured(find(objs, "Deployment", "qo-queue-operator-apiserver"), d)).To(Succeed())
	c := d.Spec.Template.Spec.Containers[0]
	g.Expect(envVar(c, "JWT_ISSUER").Value).To(Equal("https://project-ref.supabase.co/auth/v1"))
	g.Expect(envVar(c, "SUPABASE_JWKS_URL").Value).To(Equal("https://ref.supabase.co/auth/v1/.well-known/jwks.json"))
	g.Expect(envVar(c, "SUPABASE_JWT_SECRET")).To(BeNil(), "HS256 is off")
	secretRef(g, c, "STREAM_TICKET_SECRET", "tickets", "key")
	g.Expect(envVar(c, "CORS_ALLOWED_ORIGINS").Value).To(Equal("https://app.example.com,http://localhost:5173"))
}

func TestWorkersGetTheMigrationURL(t *testing.T) {
	g := NewWithT(t)
	for _, c := range []struct {
		args        []string
		secret, key string
	}{
		{append([]string{"--set", "database.migrationURL=postgres://direct"}, requiredValues...), "qo-queue-operator", "DATABASE_MIGRATION_URL"},
		{append([]string{"--set", "database.existingSecret=db", "--set", "database.migrationURLKey=direct"}, requiredValues...), "db", "direct"},
	} {
		_, objs := render(t, "qo", "jobs", c.args...)
		q := &jobsv1alpha1.JobQueue{}
		g.Expect(fromUnstructured(find(objs, "JobQueue", "enrichment"), q)).To(Succeed())
		worker := q.Spec.Worker.Template.Spec.Containers[0]
		secretRef(g, worker, "DATABASE_MIGRATION_URL", c.secret, c.key)
		g.Expect(*envVar(worker, "DATABASE_MIGRATION_URL").ValueFrom.SecretKeyRef.Optional).To(BeTrue())
		if c.secret == "qo-queue-operator" {
			s := find(objs, "Secret", "qo-queue-operator")
			g.Expect(s).NotTo(BeNil())
			v, _, _ := unstructured.NestedString(s.Object, "stringData", "DATABASE_MIGRATION_URL")
			g.Expect(v).To(Equal("postgres://direct"))
		}
	}
}
