// Command devnode runs the whole system on a real single-node cluster, as `make dev NODE=1`: the
// chart installed from the product's own image, the controller, the facade and the worker pods
// running in containers, Redis and PostgreSQL beside them, and loopback stand-ins of the outside
// APIs (the node has no way out). The REST API and the kube-apiserver are forwarded to the
// host's loopback, so curl and kubectl work as with `make dev`.
//
//	make dev NODE=1     # = KUBEBUILDER_ASSETS=... HELM=... go run ./hack/devnode
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/jengu/queue-operator/internal/devenv"
	"github.com/jengu/queue-operator/internal/fakeapis"
	"github.com/jengu/queue-operator/internal/image"
	"github.com/jengu/queue-operator/internal/node"
	"github.com/jengu/queue-operator/workers/enrichment"
)

const (
	namespace = "jobs"
	release   = "qo"
	apiAddr   = "127.0.0.1:3001"
	kubeAddr  = "127.0.0.1:6443"
)

func main() {
	log := zap.New(zap.UseDevMode(true))
	ctrl.SetLogger(log)
	if err := run(log); err != nil {
		log.Error(err, "devnode")
		os.Exit(1)
	}
}

func run(log logr.Logger) error {
	place, inside := node.Inside()
	if !inside {
		return supervise()
	}
	if os.Getenv("REDIS_URL") == "" { // first Redis and PostgreSQL, on the node's address
		cmd := exec.Command("hack/with-services.sh", os.Args...)
		tmp := filepath.Join(place.Dir, "tmp") // removed with the node's directory, whatever happens
		if err := os.MkdirAll(tmp, 0o1777); err != nil {
			return err
		}
		// PostgreSQL runs as the postgres user, which must reach its data directory in there
		// (the node's keys stay in its 0700 pki directory).
		if err := errors.Join(os.Chmod(place.Dir, 0o711), os.Chmod(tmp, 0o1777)); err != nil {
			return err
		}
		cmd.Env = append(os.Environ(), "SERVICES_ADDR="+node.NodeIP, "TMPDIR="+tmp)
		cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
		cmd.ExtraFiles = []*os.File{node.Passed(0), node.Passed(1)}
		// Ctrl-C reaches every process of the terminal's group: this one waits for
		// with-services.sh to stop its services and the node's run inside it to stop the node.
		signal.Ignore(os.Interrupt, syscall.SIGTERM)
		var exit *exec.ExitError
		if err := cmd.Run(); err != nil && !(errors.As(err, &exit) && exit.ExitCode() == 130) {
			return err // 130: with-services.sh stopped on Ctrl-C, as asked
		}
		return nil
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return serve(ctx, log, place)
}

// supervise opens the host's ports, then runs this program again inside the node's namespace.
func supervise() error {
	if out, err := exec.Command("hack/install-node-deps.sh", "services").CombinedOutput(); err != nil {
		return fmt.Errorf("hack/install-node-deps.sh: %w: %s", err, out)
	}
	var files []*os.File
	for _, addr := range []string{apiAddr, kubeAddr} {
		l, err := net.Listen("tcp", addr)
		if err != nil {
			return fmt.Errorf("listen on %s: %w", addr, err)
		}
		f, err := l.(*net.TCPListener).File()
		if err != nil {
			return err
		}
		files = append(files, f)
	}
	code, err := node.Supervise("qo-dev-node", files...)
	if err != nil {
		return err
	}
	os.Exit(code)
	return nil
}

func serve(ctx context.Context, log logr.Logger, place node.Place) error {
	bin, helm := os.Getenv("KUBEBUILDER_ASSETS"), os.Getenv("HELM")
	if bin == "" || helm == "" {
		return errors.New("KUBEBUILDER_ASSETS and HELM must be set: run `make dev NODE=1`")
	}
	work := filepath.Join(place.Dir, "images")
	if err := os.MkdirAll(work, 0o755); err != nil {
		return err
	}
	log.Info("Building the product's image and the pause image")
	product, pause, binary := filepath.Join(work, "product.tar"), filepath.Join(work, "pause.tar"), filepath.Join(work, "queue-operator")
	if err := image.BuildBinary(ctx, image.BuildOptions{Out: binary}); err != nil {
		return err
	}
	if err := image.Product(image.ProductOptions{Out: product, Binary: binary}); err != nil {
		return err
	}
	if err := image.Pause(ctx, image.PauseOptions{Out: pause}); err != nil {
		return err
	}
	weather := fakeapis.NewOpenMeteo(nil)
	weather.Synthetic = true
	defer weather.Close()
	weatherOnNode, err := exposeOnNode(ctx, weather.Server.Listener.Addr().String())
	if err != nil {
		return err
	}

	log.Info("Starting the node")
	cluster, err := node.Start(ctx, place, node.Options{Bin: bin, SandboxImage: image.PauseTag, Images: []string{pause, product}, Log: log})
	if err != nil {
		return err
	}
	defer cluster.Stop()
	repo, tag, _ := strings.Cut(image.DefaultTag, ":")
	values := map[string]any{
		"image":     map[string]any{"repository": repo, "tag": tag, "pullPolicy": "Never"},
		"redis":     map[string]any{"url": os.Getenv("REDIS_URL")},
		"database":  map[string]any{"url": os.Getenv("DATABASE_URL")},
		"apiserver": map[string]any{"jwtSecret": devenv.JWTSecret()},
		"auth":      map[string]any{"issuer": devenv.Issuer},
		"jobQueues": map[string]any{"workerEnv": []map[string]string{
			{"name": enrichment.EnvArchiveURL, "value": "http://" + weatherOnNode + "/v1/archive"},
			{"name": enrichment.EnvForecastURL, "value": "http://" + weatherOnNode + "/v1/forecast"},
		}},
	}
	raw, _ := json.Marshal(values)
	valuesFile := filepath.Join(place.Dir, "values.yaml")
	if err := os.WriteFile(valuesFile, raw, 0o600); err != nil {
		return err
	}
	log.Info("Installing the chart (helm install --wait)")
	if out, err := exec.CommandContext(ctx, helm, "install", release, "charts/queue-operator", "-n", namespace, "--create-namespace",
		"-f", valuesFile, "--wait", "--timeout", "5m", "--kubeconfig", cluster.Kubeconfig).CombinedOutput(); err != nil {
		return fmt.Errorf("helm install: %w: %s", err, out)
	}
	facade, err := facadePod(ctx, cluster)
	if err != nil {
		return err
	}
	go forward(ctx, log, listenerOf(node.Passed(0)), func() string { return facade })
	go forward(ctx, log, listenerOf(node.Passed(1)), func() string { return net.JoinHostPort(node.NodeIP, fmt.Sprint(node.APIServerPort)) })
	kubeconfig, err := hostKubeconfig(cluster)
	if err != nil {
		return err
	}
	token, err := devenv.SignToken(devenv.DemoUser)
	if err != nil {
		return err
	}
	fmt.Printf(`
The system runs on a real node (kubelet, containerd, runc) in network namespace %s.
  export KUBECONFIG=%s
  kubectl get pods -n %s -o wide          # controller, facade; worker pods come with jobs
  kubectl get jobqueues,enrichmentjobs -n %s
REST API on http://%s (the facade's pod), e.g.
  export TOKEN=%s
  curl -s -H "Authorization: Bearer $TOKEN" -H 'Content-Type: text/csv' --data-binary @config/samples/pricing-barcelona.csv \
    'http://%s/api/files?latitude=41.39&longitude=2.17&countryCode=ES'
Components' logs: %s/logs. Ctrl-C stops the node and puts the machine back as it was.
`, place.Netns, kubeconfig, namespace, namespace, apiAddr, token, apiAddr, place.Dir)
	<-ctx.Done()
	return nil
}

func facadePod(ctx context.Context, cluster *node.Cluster) (string, error) {
	pods, err := cluster.Client.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/component=apiserver"})
	if err != nil {
		return "", err
	}
	for _, p := range pods.Items {
		if p.Status.Phase == corev1.PodRunning && p.Status.PodIP != "" {
			return net.JoinHostPort(p.Status.PodIP, "3001"), nil
		}
	}
	return "", errors.New("no running facade pod")
}

// hostKubeconfig writes the admin kubeconfig with the forwarded address, for kubectl on the host.
func hostKubeconfig(cluster *node.Cluster) (string, error) {
	raw, err := os.ReadFile(cluster.Kubeconfig)
	if err != nil {
		return "", err
	}
	text := strings.Replace(string(raw), fmt.Sprintf("https://%s:%d", node.NodeIP, node.APIServerPort), "https://"+kubeAddr, 1)
	path := filepath.Join(filepath.Dir(cluster.Kubeconfig), "host.kubeconfig")
	return path, os.WriteFile(path, []byte(text), 0o600)
}

// exposeOnNode forwards a port of the namespace's node address to a loopback address, so pods
// reach a server listening on loopback.
func exposeOnNode(ctx context.Context, loopback string) (string, error) {
	l, err := net.Listen("tcp", net.JoinHostPort(node.NodeIP, "0"))
	if err != nil {
		return "", err
	}
	go forward(ctx, logr.Discard(), l, func() string { return loopback })
	return l.Addr().String(), nil
}

func listenerOf(f *os.File) net.Listener {
	l, err := net.FileListener(f)
	if err != nil {
		panic(fmt.Sprintf("passed listener: %v", err))
	}
	return l
}

// forward copies each connection accepted on l to and from target() until ctx ends.
func forward(ctx context.Context, log logr.Logger, l net.Listener, target func() string) {
	go func() { <-ctx.Done(); _ = l.Close() }()
	for {
		in, err := l.Accept()
		if err != nil {
			return
		}
		go func() {
			defer in.Close()
			out, err := net.DialTimeout("tcp", target(), 5*time.Second)
			if err != nil {
				log.Error(err, "forward", "to", target())
				return
			}
			defer out.Close()
			go func() { _, _ = io.Copy(out, in) }()
			_, _ = io.Copy(in, out)
		}()
	}
}
