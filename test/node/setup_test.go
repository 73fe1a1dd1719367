package node_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	"github.com/golang-jwt/jwt/v5"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	jobsv1alpha1 "github.com/jengu/queue-operator/api/v1alpha1"
	"github.com/jengu/queue-operator/internal/fakeapis"
	"github.com/jengu/queue-operator/internal/image"
	"github.com/jengu/queue-operator/internal/node"
	"github.com/jengu/queue-operator/internal/scheme"
	"github.com/jengu/queue-operator/internal/testpg"
	"github.com/jengu/queue-operator/internal/testredis"
)

const (
	namespace           = "jobs"
	release             = "qo"
	chartDir            = "../../charts/queue-operator"
	apiserverDeployment = release + "-queue-operator-apiserver"
	workerDeployment    = "enrichment-worker"
	user                = "node-test-user"
	jwtSecret           = "node-test-jwt-secret-node-test-jwt-secret"
	issuer              = "https://node-test.supabase.co/auth/v1"
	facadePort          = 3001
)

var madrid = jobsv1alpha1.GeoLocation{Latitude: 40.4168, Longitude: -3.7038}

type suite struct {
	ctx        context.Context
	cluster    *node.Cluster
	kube       client.Client
	helmBin    string
	valuesFile string
	weather    *gatedWeather
	facade     string
	token      string
}

// setUp builds the product's image and the pause image, starts Redis, PostgreSQL and a weather
// stand-in on the node's address, starts the node with both images imported, installs the chart
// and tunes the enrichment queue for a test that must not wait minutes (no rate limit, short
// cooldowns, a timeout and so a worker shutdown grace of 10 s: shorter than the enrichment
// processor's own 20 s per weather request, so a held request outlasts the grace).
func setUp(t *testing.T) *suite {
	g := NewWithT(t)
	ctrllog.SetLogger(testr.New(t))
	place, _ := node.Inside()
	s := &suite{ctx: context.Background(), helmBin: os.Getenv("HELM")}
	g.Expect(s.helmBin).NotTo(BeEmpty(), "HELM is not set: run the tests with `make test`")
	bin := os.Getenv("KUBEBUILDER_ASSETS")
	g.Expect(bin).NotTo(BeEmpty(), "KUBEBUILDER_ASSETS is not set: run the tests with `make test`")

	work := t.TempDir()
	product, pause := filepath.Join(work, "queue-operator.tar"), filepath.Join(work, "pause.tar")
	binary := filepath.Join(work, "queue-operator")
	g.Expect(image.BuildBinary(s.ctx, image.BuildOptions{Out: binary})).To(Succeed())
	g.Expect(image.Product(image.ProductOptions{Out: product, Binary: binary})).To(Succeed())
	g.Expect(image.Pause(s.ctx, image.PauseOptions{Out: pause})).To(Succeed())

	redis := testredis.Start(t, "--bind", "0.0.0.0", "--protected-mode", "no", "--appendonly", "yes",
		"--maxmemory-policy", "noeviction")
	pg := testpg.Start(t, testpg.ListenOn("0.0.0.0"))
	s.weather = startWeather(t)

	cluster, err := node.Start(s.ctx, place, node.Options{Bin: bin, SandboxImage: image.PauseTag,
		Images: []string{pause, product}, Log: testr.New(t)})
	g.Expect(err).NotTo(HaveOccurred())
	s.cluster = cluster
	t.Cleanup(func() {
		if t.Failed() {
			for _, c := range []string{"kubelet", "containerd", "kube-controller-manager"} {
				t.Logf("--- %s ---\n%s", c, cluster.Log(c))
			}
			s.dumpPods(t)
		}
		cluster.Stop()
	})
	s.kube, err = client.New(cluster.Config, client.Options{Scheme: scheme.New()})
	g.Expect(err).NotTo(HaveOccurred())

	repo, tag, _ := strings.Cut(image.DefaultTag, ":")
	values := map[string]any{
		"image":      map[string]any{"repository": repo, "tag": tag, "pullPolicy": "Never"},
		"redis":      map[string]any{"url": fmt.Sprintf("redis://%s:%d/0", node.NodeIP, redis.Port)},
		"database":   map[string]any{"url": fmt.Sprintf("postgres://postgres@%s:%d/postgres?sslmode=disable", node.NodeIP, pg.Port)},
		"apiserver":  map[string]any{"jwtSecret": jwtSecret, "resources": smallRequests},
		"controller": map[string]any{"resources": smallRequests},
		"auth":       map[string]any{"issuer": issuer},
		"jobQueues": map[string]any{"workerEnv": []map[string]string{
			{"name": "OPEN_METEO_ARCHIVE_URL", "value": s.weather.url + "/v1/archive"},
			{"name": "OPEN_METEO_FORECAST_URL", "value": s.weather.url + "/v1/forecast"},
		}},
	}
	raw, err := json.Marshal(values) // JSON is YAML
	g.Expect(err).NotTo(HaveOccurred())
	s.valuesFile = filepath.Join(work, "values.yaml")
	g.Expect(os.WriteFile(s.valuesFile, raw, 0o600)).To(Succeed())
	s.helm(g, "install", release, chartDir, "-n", namespace, "--create-namespace", "-f", s.valuesFile, "--wait", "--timeout", "3m")

	s.patchJobQueue(g, "enrichment", `{"spec":{"rateLimit":{"unlimited":true,"max":null,"duration":null},"timeout":"10s",
		"autoscaling":{"maxReplicas":3,"targetJobsPerReplica":3,"idleCooldown":"5s","scaleDownStabilizationWindow":"5s"}}}`)
	s.findFacade(g)
	s.token = token(g)
	return s
}

var smallRequests = map[string]any{"requests": map[string]any{"cpu": "10m", "memory": "64Mi"}}

func (s *suite) helm(g Gomega, args ...string) {
	cmd := exec.Command(s.helmBin, append(args, "--kubeconfig", s.cluster.Kubeconfig)...)
	out, err := cmd.CombinedOutput()
	g.Expect(err).NotTo(HaveOccurred(), "helm %v:\n%s", args, out)
}

// findFacade finds a ready facade pod; the test calls it on its pod address (the node has no
// kube-proxy, so Services have no virtual address).
func (s *suite) findFacade(g Gomega) {
	g.Eventually(func() error {
		pods := &corev1.PodList{}
		if err := s.kube.List(s.ctx, pods, client.InNamespace(namespace),
			client.MatchingLabels{"app.kubernetes.io/component": "apiserver"}); err != nil {
			return err
		}
		for _, p := range pods.Items {
			for _, c := range p.Status.Conditions {
				if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue && p.DeletionTimestamp == nil && p.Status.PodIP != "" {
					s.facade = fmt.Sprintf("http://%s", net.JoinHostPort(p.Status.PodIP, fmt.Sprint(facadePort)))
					return nil
				}
			}
		}
		return fmt.Errorf("no ready facade pod among %d", len(pods.Items))
	}).WithTimeout(2 * time.Minute).WithPolling(time.Second).Should(Succeed())
}

func token(g Gomega) string {
	signed, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"sub": user, "aud": "authenticated",
		"role": "authenticated", "iss": issuer, "exp": time.Now().Add(2 * time.Hour).Unix()}).SignedString([]byte(jwtSecret))
	g.Expect(err).NotTo(HaveOccurred())
	return signed
}

// call sends a request to the facade's pod and decodes its JSON answer, its HTTP status as
// "httpStatus".
func (s *suite) call(g Gomega, method, path, body string) map[string]any {
	return s.send(g, method, path, "application/json", body)
}

func (s *suite) send(g Gomega, method, path, contentType, body string) map[string]any {
	req, err := http.NewRequest(method, s.facade+path, strings.NewReader(body))
	g.Expect(err).NotTo(HaveOccurred())
	req.Header.Set("Authorization", "Bearer "+s.token)
	req.Header.Set("Content-Type", contentType)
	resp, err := http.DefaultClient.Do(req)
	g.Expect(err).NotTo(HaveOccurred())
	defer resp.Body.Close()
	decoded := map[string]any{}
	g.Expect(json.NewDecoder(resp.Body).Decode(&decoded)).To(Succeed())
	decoded["httpStatus"] = float64(resp.StatusCode)
	return decoded
}

// uploadFile uploads ten days of prices for a property in Madrid and returns the file's id.
func (s *suite) uploadFile(g Gomega) string {
	var csv strings.Builder
	csv.WriteString("date,price\n")
	for d := 1; d <= 10; d++ {
		fmt.Fprintf(&csv, "2024-10-%02d,%d.00\n", d, 120+d)
	}
	answer := s.send(g, http.MethodPost, "/api/files?latitude=40.4168&longitude=-3.7038&countryCode=ES", "text/csv", csv.String())
	g.Expect(answer).To(HaveKeyWithValue("httpStatus", 201.0), "%v", answer)
	return answer["fileId"].(string)
}

func (s *suite) dumpPods(t *testing.T) {
	pods := &corev1.PodList{}
	if err := s.kube.List(s.ctx, pods, client.InNamespace(namespace)); err != nil {
		t.Logf("list pods: %v", err)
		return
	}
	for _, p := range pods.Items {
		raw, _ := json.Marshal(p.Status)
		t.Logf("pod %s: %s", p.Name, raw)
		for _, c := range p.Status.ContainerStatuses {
			opts := &corev1.PodLogOptions{Container: c.Name, Previous: c.RestartCount > 0, TailLines: ptr.To(int64(40))}
			logs, err := s.cluster.Client.CoreV1().Pods(namespace).GetLogs(p.Name, opts).DoRaw(s.ctx)
			t.Logf("pod %s container %s log (err %v):\n%s", p.Name, c.Name, err, logs)
		}
	}
}

// gatedWeather is the Open-Meteo stand-in behind a gate, on the node's address: while the gate
// is held, requests wait (a job is then running in a worker pod, at a known point).
type gatedWeather struct {
	url      string
	mu       sync.Mutex
	gate     chan struct{}
	inFlight atomic.Int32
	requests atomic.Int32
}

func startWeather(t *testing.T) *gatedWeather {
	fake := fakeapis.NewOpenMeteo(nil)
	fake.Synthetic = true
	t.Cleanup(fake.Close)
	target, _ := url.Parse(fake.Server.URL)
	proxy := httputil.NewSingleHostReverseProxy(target)
	w := &gatedWeather{}
	l, err := net.Listen("tcp", net.JoinHostPort(node.NodeIP, "0"))
	if err != nil {
		t.Fatalf("weather stand-in: %v", err)
	}
	w.url = "http://" + l.Addr().String()
	srv := &http.Server{Handler: http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		w.requests.Add(1)
		w.mu.Lock()
		gate := w.gate
		w.mu.Unlock()
		if gate != nil {
			w.inFlight.Add(1)
			select {
			case <-gate:
			case <-r.Context().Done():
			}
			w.inFlight.Add(-1)
		}
		proxy.ServeHTTP(rw, r)
	})}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	return w
}

// hold makes requests wait until the returned release is called (more than once is fine).
func (w *gatedWeather) hold() (release func()) {
	gate := make(chan struct{})
	w.mu.Lock()
	w.gate = gate
	w.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			w.mu.Lock()
			w.gate = nil
			w.mu.Unlock()
			close(gate)
		})
	}
}

func (w *gatedWeather) waiting() int32 { return w.inFlight.Load() }
func (w *gatedWeather) seen() int32    { return w.requests.Load() }
