package apiserver_test

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/testr"
	"github.com/golang-jwt/jwt/v5"
	. "github.com/onsi/gomega"
	"github.com/redis/go-redis/v9"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/yaml"

	jobsv1alpha1 "github.com/jengu/queue-operator/api/v1alpha1"
	"github.com/jengu/queue-operator/apiserver"
	"github.com/jengu/queue-operator/controllers"
	"github.com/jengu/queue-operator/internal/testenv"
	"github.com/jengu/queue-operator/internal/testredis"
	"github.com/jengu/queue-operator/queue"
	"github.com/jengu/queue-operator/store"
)

var (
	env *testenv.Env
	db  *store.Store
)

const timeout = 20 * time.Second

var jwtSecret = []byte("super-secret-jwt-token-with-at-least-32-characters-long")

func TestMain(m *testing.M) {
	flag.Parse()
	if fuzzing() {
		os.Exit(m.Run()) // the fuzz targets need no control plane, Redis or PostgreSQL
	}
	url := os.Getenv("DATABASE_URL")
	if url == "" {
		fmt.Fprintln(os.Stderr, "DATABASE_URL is not set: run the tests with `make test`")
		os.Exit(1)
	}
	if err := store.Migrate(context.Background(), url, logr.Discard()); err != nil {
		fmt.Fprintln(os.Stderr, "migrate:", err)
		os.Exit(1)
	}
	var err error
	if db, err = store.Open(context.Background(), url); err != nil {
		fmt.Fprintln(os.Stderr, "open store:", err)
		os.Exit(1)
	}
	testenv.Main(m, &env)
}

// fuzzing says whether the binary runs a fuzz target (go test -fuzz, its coordinator or a
// worker). Run one alone (-run '^FuzzX$' -fuzz '^FuzzX$'): the other tests need the control plane.
func fuzzing() bool {
	for _, name := range []string{"test.fuzz", "test.fuzzworker"} {
		if f := flag.Lookup(name); f != nil && f.Value.String() != "" && f.Value.String() != "false" {
			return true
		}
	}
	return false
}

var nsSeq atomic.Int32

// fixture is one test's namespace with its JobQueues, the real controller, and the facade
// serving over a real socket, running as a user bound to the generated facade role only.
type fixture struct {
	t   testing.TB
	ns  string
	url string
	// ops serves the probes and metrics.
	ops string
	// kubeLists counts the facade's List requests of EnrichmentJobs that reach the kube-apiserver.
	kubeLists *atomic.Int64
	rdb       redis.UniversalClient
	engine    *queue.Engine
	// facade is the client with the facade's own permissions.
	facade client.Client
	server *apiserver.Server
}

type fixtureOption func(*fixtureConfig)

type fixtureConfig struct {
	jobQueue     func(*jobsv1alpha1.JobQueue)
	noController bool
	limits       apiserver.Limits
}

// withLimits changes the facade's limits (from apiserver.DefaultLimits).
func withLimits(f func(*apiserver.Limits)) fixtureOption {
	return func(c *fixtureConfig) { f(&c.limits) }
}

// withoutController leaves jobs as the facade created them, as while the controller lags.
func withoutController() fixtureOption {
	return func(c *fixtureConfig) { c.noController = true }
}

// withJobQueue changes each JobQueue before it is created.
func withJobQueue(f func(*jobsv1alpha1.JobQueue)) fixtureOption {
	return func(c *fixtureConfig) { c.jobQueue = f }
}

func newFixture(t testing.TB, opts ...fixtureOption) *fixture {
	t.Helper()
	cfg := fixtureConfig{jobQueue: func(*jobsv1alpha1.JobQueue) {}, limits: apiserver.DefaultLimits()}
	for _, o := range opts {
		o(&cfg)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	ns := fmt.Sprintf("api-%d-%d", time.Now().Unix()%100000, nsSeq.Add(1))
	if err := env.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		t.Fatalf("create namespace: %v", err)
	}
	rdb := testredis.Shared(t)
	f := &fixture{t: t, ns: ns, rdb: rdb, engine: queue.New(rdb), kubeLists: &atomic.Int64{}}

	for _, kind := range jobsv1alpha1.JobKinds {
		q := kind.Queue
		attempts := int32(2)
		jq := &jobsv1alpha1.JobQueue{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: string(q)},
			Spec: jobsv1alpha1.JobQueueSpec{Queue: q, Retry: jobsv1alpha1.RetryPolicy{Attempts: &attempts,
				Backoff: jobsv1alpha1.Backoff{Type: jobsv1alpha1.BackoffFixed, Delay: metav1.Duration{Duration: 200 * time.Millisecond}, Multiplier: 1}}}}
		autoscaling := false
		jq.Spec.Autoscaling.Enabled = &autoscaling
		cfg.jobQueue(jq)
		if err := env.Client.Create(ctx, jq); err != nil {
			t.Fatalf("create JobQueue: %v", err)
		}
	}
	if !cfg.noController {
		f.startController(ctx)
	}

	facadeConfig := f.facadeIdentity(ctx)
	var err error
	if f.facade, err = client.New(facadeConfig, client.Options{Scheme: env.Scheme}); err != nil {
		t.Fatalf("facade client: %v", err)
	}
	facadeConfig.Wrap(func(rt http.RoundTripper) http.RoundTripper {
		return roundTripFunc(func(r *http.Request) (*http.Response, error) {
			if r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/enrichmentjobs") && r.URL.Query().Get("watch") == "" {
				f.kubeLists.Add(1)
			}
			return rt.RoundTrip(r)
		})
	})
	server, err := apiserver.Connect(ctx, facadeConfig, apiserver.Config{Namespace: ns, Redis: rdb, Store: db, JWTSecret: jwtSecret},
		apiserver.WithLogger(testr.NewWithInterface(t, testr.Options{})), apiserver.WithSSEKeepAlive(time.Second),
		apiserver.WithLimits(cfg.limits))
	if err != nil {
		t.Fatalf("connect the facade: %v", err)
	}
	go func() { _ = server.Run(ctx) }()
	f.server = server
	ts := httptest.NewServer(server.Handler())
	t.Cleanup(ts.Close)
	f.url = ts.URL
	ops := httptest.NewServer(server.OpsHandler())
	t.Cleanup(ops.Close)
	f.ops = ops.URL
	return f
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func (f *fixture) startController(ctx context.Context) {
	mgr, err := controllers.NewManager(env.Config, controllers.ManagerConfig{
		Redis: f.rdb, MetricsAddr: "0", ProbeAddr: "0", Namespaces: []string{f.ns}, SkipNameValidation: true,
		Options: controllers.Options{ResyncPeriod: 2 * time.Second, RedisDownGrace: 3 * time.Second,
			HousekeepingInterval: 500 * time.Millisecond, OrphanAge: time.Second, MaxStalls: 1, Clock: clock.RealClock{}},
	})
	if err != nil {
		f.t.Fatalf("new manager: %v", err)
	}
	done := make(chan struct{})
	ctx, cancel := context.WithCancel(ctx)
	go func() {
		defer close(done)
		if err := mgr.Start(ctx); err != nil {
			f.t.Errorf("controller: %v", err)
		}
	}()
	f.t.Cleanup(func() { cancel(); <-done })
}

// facadeIdentity binds the generated facade ClusterRole (config/rbac/apiserver) to a service
// account of the namespace and returns a config that acts as it.
func (f *fixture) facadeIdentity(ctx context.Context) *rest.Config {
	data, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "config", "rbac", "apiserver", "role.yaml"))
	if err != nil {
		f.t.Fatalf("read facade role: %v", err)
	}
	role := &rbacv1.ClusterRole{}
	if err := yaml.Unmarshal(data, role); err != nil {
		f.t.Fatalf("decode facade role: %v", err)
	}
	if err := env.Client.Create(ctx, role); err != nil && !apierrors.IsAlreadyExists(err) {
		f.t.Fatalf("create facade role: %v", err)
	}
	user := "system:serviceaccount:" + f.ns + ":queue-operator-apiserver"
	binding := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: "queue-operator-apiserver"},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role.Name},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: user}}}
	if err := env.Client.Create(ctx, binding); err != nil {
		f.t.Fatalf("create role binding: %v", err)
	}
	authn, err := env.AddUser(envtest.User{Name: user}, nil)
	if err != nil {
		f.t.Fatalf("add facade user: %v", err)
	}
	return authn.Config()
}

// token signs a Supabase-style access token for user.
func token(user string, mutate ...func(jwt.MapClaims)) string {
	claims := jwt.MapClaims{"sub": user, "aud": "authenticated", "role": "authenticated",
		"iat": time.Now().Unix(), "exp": time.Now().Add(time.Hour).Unix()}
	for _, m := range mutate {
		m(claims)
	}
	signed, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(jwtSecret)
	if err != nil {
		panic(err)
	}
	return signed
}

// response is an answer of the facade: its code, headers and decoded JSON body.
type response struct {
	Code   int
	Header http.Header
	Body   map[string]any
	Raw    string
}

// do sends a request as user ("" sends none) with body (nil for none, else JSON-encoded
// unless it is a string or a reader).
func (f *fixture) do(method, path, user string, body any, headers ...string) response {
	f.t.Helper()
	var reader io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		reader = bytes.NewBufferString(b)
	case io.Reader:
		reader = b
	default:
		data, _ := json.Marshal(b)
		reader = bytes.NewBuffer(data)
	}
	url := f.url + path
	if strings.HasPrefix(path, "http://") {
		url = path // another of the facade's servers (f.ops)
	}
	req, err := http.NewRequest(method, url, reader)
	if err != nil {
		f.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if user != "" {
		req.Header.Set("Authorization", "Bearer "+token(user))
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		f.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	out := response{Code: resp.StatusCode, Header: resp.Header, Raw: string(raw)}
	_ = json.Unmarshal(raw, &out.Body)
	return out
}

// property stores a property of user, located in Barcelona, and returns its id.
func (f *fixture) property(user string, withLocation bool) string {
	f.t.Helper()
	id := fmt.Sprintf("prop-%s-%d", f.ns, nsSeq.Add(1))
	p := store.Property{ID: id, UserID: user}
	if withLocation {
		p.Location, p.CountryCode = &store.Location{Latitude: 41.39, Longitude: 2.17}, "ES"
	}
	if _, err := db.UpsertProperty(context.Background(), p); err != nil {
		f.t.Fatalf("upsert property: %v", err)
	}
	return id
}

// enqueue creates an enrichment job of user through the API and returns its id.
func (f *fixture) enqueue(user string) string {
	f.t.Helper()
	r := f.do(http.MethodPost, "/api/files/"+f.property(user, true)+"/enrich", user, map[string]any{})
	if r.Code != http.StatusAccepted {
		f.t.Fatalf("enqueue: %d %s", r.Code, r.Raw)
	}
	return r.Body["jobId"].(string)
}

// job reads a job through GET /api/jobs/:jobId as user.
func (f *fixture) job(user, id string) func() map[string]any {
	return func() map[string]any {
		r := f.do(http.MethodGet, "/api/jobs/"+id, user, nil)
		job, _ := r.Body["job"].(map[string]any)
		return job
	}
}

func (f *fixture) queue(q jobsv1alpha1.QueueName) *queue.Queue {
	return f.engine.Queue(f.ns, string(q))
}

// completedJob enqueues an enrichment job of user through the API and completes it as a worker
// would.
func (f *fixture) completedJob(g Gomega, user string) string {
	id := f.enqueue(user)
	leased := f.lease(g, jobsv1alpha1.QueueEnrichment, id)
	_, err := f.queue(jobsv1alpha1.QueueEnrichment).Complete(context.Background(), id, leased.Token, nil)
	g.Expect(err).NotTo(HaveOccurred())
	return id
}

// lease takes the job from its queue as a worker would, once the controller has enqueued it.
func (f *fixture) lease(g Gomega, q jobsv1alpha1.QueueName, id string) *queue.Record {
	var job *queue.Record
	g.Eventually(func() string {
		res, err := f.queue(q).Lease(context.Background(), "test-worker", 1, 30*time.Second)
		g.Expect(err).NotTo(HaveOccurred())
		if len(res.Jobs) == 1 {
			job = res.Jobs[0]
			return job.ID
		}
		return ""
	}).WithTimeout(timeout).WithPolling(50 * time.Millisecond).Should(Equal(id))
	return job
}

func sprintf(format string, args ...any) string { return fmt.Sprintf(format, args...) }
