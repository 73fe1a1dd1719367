package node

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// Name is the node's name.
const Name = "qo-node"

// Binaries the node runs from Options.Bin ("hack/build-tools.sh node" builds them all there).
var Binaries = []string{"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubelet",
	"containerd", "containerd-shim-runc-v2", "ctr", "kubectl"}

// Options of Start.
type Options struct {
	// Bin is the directory holding Binaries.
	Bin string
	// SandboxImage is the pause image's reference; its tarball must be among Images.
	SandboxImage string
	// Images are image tarballs imported into containerd before the kubelet starts.
	Images []string
	// Log receives the node's progress; the components log to files under Dir/logs.
	Log logr.Logger
}

// Cluster is a running node.
type Cluster struct {
	Place
	opts Options
	// Kubeconfig is an admin (system:masters) kubeconfig, against https://NodeIP:443.
	Kubeconfig string
	Config     *rest.Config
	Client     kubernetes.Interface
	procs      []*process
}

type process struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
}

// Start starts a node in place (from Inside) and waits until it is Ready. On error, what it
// started is stopped again.
func Start(ctx context.Context, place Place, opts Options) (c *Cluster, err error) {
	for _, b := range Binaries {
		if _, err := os.Stat(filepath.Join(opts.Bin, b)); err != nil {
			return nil, fmt.Errorf("node binary %s: %w (build them with hack/build-tools.sh node)", b, err)
		}
	}
	c = &Cluster{Place: place, opts: opts}
	defer func() {
		if err != nil {
			c.Stop()
		}
	}()
	for _, d := range []string{"logs", "etcd", "containerd", "cni/net.d", "cni/ipam", "kubelet", "pod-logs", "flex"} {
		if err := os.MkdirAll(c.path(d), 0o755); err != nil {
			return nil, err
		}
	}
	p, err := newPKI(c.path("pki"))
	if err != nil {
		return nil, fmt.Errorf("certificates: %w", err)
	}
	if err := c.writeConfigs(p); err != nil {
		return nil, err
	}
	if err := c.startControlPlane(ctx, p); err != nil {
		return nil, err
	}
	if err := c.startNode(ctx, p); err != nil {
		return nil, err
	}
	return c, nil
}

func (c *Cluster) path(elem ...string) string {
	return filepath.Join(append([]string{c.Dir}, elem...)...)
}
func (c *Cluster) bin(name string) string { return filepath.Join(c.opts.Bin, name) }

var (
	admin      = clientIdentity{file: "admin", user: "admin", groups: []string{"system:masters"}}
	kubeletID  = clientIdentity{file: "kubelet", user: "system:node:" + Name, groups: []string{"system:nodes"}}
	kcmID      = clientIdentity{file: "controller-manager", user: "system:kube-controller-manager", groups: []string{"system:masters"}}
	schedID    = clientIdentity{file: "scheduler", user: "system:kube-scheduler"}
	apiToNode  = clientIdentity{file: "apiserver-kubelet-client", user: "kube-apiserver-kubelet-client", groups: []string{"system:masters"}}
	serverURL  = "https://" + net.JoinHostPort(NodeIP, strconv.Itoa(APIServerPort))
	localNames = []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"}
)

func (c *Cluster) writeConfigs(p *pki) error {
	ips := []net.IP{net.ParseIP(NodeIP), net.ParseIP(APIServiceIP), net.ParseIP("127.0.0.1")}
	if err := p.serving("apiserver", ips, localNames); err != nil {
		return err
	}
	if err := p.client(apiToNode); err != nil {
		return err
	}
	c.Kubeconfig = c.path("admin.kubeconfig")
	for file, id := range map[string]clientIdentity{c.Kubeconfig: admin, c.path("kubelet.kubeconfig"): kubeletID,
		c.path("controller-manager.kubeconfig"): kcmID, c.path("scheduler.kubeconfig"): schedID} {
		if err := p.kubeconfig(file, serverURL, id); err != nil {
			return err
		}
	}
	runc, err := exec.LookPath("runc")
	if err != nil {
		return err
	}
	files := map[string]string{
		c.path("containerd", "config.toml"):        containerdConfig(c.Dir, runc, c.opts.SandboxImage),
		c.path("cni", "net.d", "10-node.conflist"): cniConfig(c.Dir),
		c.path("kubelet", "config.yaml"):           kubeletConfig(c.Dir, c.Cgroup, p.path("ca.crt")),
	}
	for f, text := range files {
		if err := os.WriteFile(f, []byte(text), 0o644); err != nil {
			return err
		}
	}
	return nil
}

func (c *Cluster) startControlPlane(ctx context.Context, p *pki) error {
	if err := c.start("etcd", c.bin("etcd"), "--data-dir", c.path("etcd"), "--unsafe-no-fsync",
		"--listen-client-urls", "http://127.0.0.1:2379", "--advertise-client-urls", "http://127.0.0.1:2379",
		"--listen-peer-urls", "http://127.0.0.1:2380", "--log-level", "warn"); err != nil {
		return err
	}
	if err := waitFor(ctx, "etcd", 30*time.Second, func() error { return httpOK("http://127.0.0.1:2379/health") }); err != nil {
		return c.withLog("etcd", err)
	}
	if err := c.start("kube-apiserver", c.bin("kube-apiserver"),
		"--etcd-servers", "http://127.0.0.1:2379",
		"--bind-address", "0.0.0.0", "--secure-port", strconv.Itoa(APIServerPort), "--advertise-address", NodeIP,
		"--tls-cert-file", p.path("apiserver.crt"), "--tls-private-key-file", p.path("apiserver.key"),
		"--client-ca-file", p.path("ca.crt"),
		"--service-cluster-ip-range", ServiceCIDR,
		"--service-account-issuer", "https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file", p.path("sa.pub"), "--service-account-signing-key-file", p.path("sa.key"),
		"--authorization-mode", "Node,RBAC",
		"--kubelet-client-certificate", p.path(apiToNode.file+".crt"), "--kubelet-client-key", p.path(apiToNode.file+".key"),
		"--kubelet-preferred-address-types=InternalIP", "--allow-privileged=true", "--profiling=false"); err != nil {
		return err
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", c.Kubeconfig)
	if err != nil {
		return err
	}
	cfg.QPS, cfg.Burst = 50, 100
	c.Config = cfg
	if c.Client, err = kubernetes.NewForConfig(cfg); err != nil {
		return err
	}
	if err := waitFor(ctx, "kube-apiserver", 90*time.Second, func() error {
		return c.Client.Discovery().RESTClient().Get().AbsPath("/readyz").Do(ctx).Error()
	}); err != nil {
		return c.withLog("kube-apiserver", err)
	}
	if err := c.start("kube-controller-manager", c.bin("kube-controller-manager"),
		"--kubeconfig", c.path("controller-manager.kubeconfig"),
		"--authentication-kubeconfig", c.path("controller-manager.kubeconfig"),
		"--authorization-kubeconfig", c.path("controller-manager.kubeconfig"),
		"--bind-address", "127.0.0.1", "--secure-port", "10257", "--leader-elect=false",
		"--service-account-private-key-file", p.path("sa.key"), "--root-ca-file", p.path("ca.crt"),
		"--flex-volume-plugin-dir", c.path("flex")); err != nil {
		return err
	}
	return c.start("kube-scheduler", c.bin("kube-scheduler"),
		"--kubeconfig", c.path("scheduler.kubeconfig"),
		"--authentication-kubeconfig", c.path("scheduler.kubeconfig"),
		"--authorization-kubeconfig", c.path("scheduler.kubeconfig"),
		"--bind-address", "127.0.0.1", "--secure-port", "10259", "--leader-elect=false")
}

func (c *Cluster) startNode(ctx context.Context, p *pki) error {
	if err := c.start("containerd", c.bin("containerd"), "--config", c.path("containerd", "config.toml")); err != nil {
		return err
	}
	if err := waitFor(ctx, "containerd", 30*time.Second, func() error { return c.ctr("version") }); err != nil {
		return c.withLog("containerd", err)
	}
	for _, img := range c.opts.Images {
		if err := c.ImportImage(img); err != nil {
			return err
		}
	}
	if err := makeCgroup(c.Cgroup); err != nil {
		return err
	}
	if err := c.start("kubelet", c.bin("kubelet"), "--config", c.path("kubelet", "config.yaml"),
		"--kubeconfig", c.path("kubelet.kubeconfig"), "--root-dir", c.path("kubelet"),
		"--cert-dir", c.path("kubelet", "pki"), "--node-ip", NodeIP, "--hostname-override", Name); err != nil {
		return err
	}
	return c.withLog("kubelet", waitFor(ctx, "node Ready", 90*time.Second, func() error {
		n, err := c.Client.CoreV1().Nodes().Get(ctx, Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		for _, cond := range n.Status.Conditions {
			if cond.Type == corev1.NodeReady && cond.Status == corev1.ConditionTrue {
				return nil
			}
		}
		return fmt.Errorf("node %s is not Ready", Name)
	}))
}

// ImportImage imports an image tarball into containerd's Kubernetes namespace.
func (c *Cluster) ImportImage(tarball string) error {
	if err := c.ctr("-n", "k8s.io", "images", "import", "--snapshotter", "overlayfs", tarball); err != nil {
		return fmt.Errorf("import image %s: %w", tarball, err)
	}
	return nil
}

func (c *Cluster) ctr(args ...string) error {
	return run(c.bin("ctr"), append([]string{"--address", c.path("containerd", "containerd.sock")}, args...)...)
}

// start runs a component in the background, its output in Dir/logs/NAME.log.
func (c *Cluster) start(name, bin string, args ...string) error {
	logFile, err := os.Create(c.path("logs", name+".log"))
	if err != nil {
		return err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.Env = append(os.Environ(), "PATH="+c.opts.Bin+":/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		_ = logFile.Close()
		return fmt.Errorf("start %s: %w", name, err)
	}
	p := &process{name: name, cmd: cmd, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); _ = logFile.Close(); close(p.done) }()
	c.procs = append(c.procs, p)
	c.opts.Log.Info("started", "component", name, "pid", cmd.Process.Pid)
	return nil
}

// Stop stops the components in reverse order, each with SIGTERM and then, after 10 s, SIGKILL.
// The pods' processes and the host's state are Supervise's to clean up.
func (c *Cluster) Stop() {
	for i := len(c.procs) - 1; i >= 0; i-- {
		p := c.procs[i]
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
			<-p.done
		}
	}
	c.procs = nil
}

// Log returns the end of a component's log.
func (c *Cluster) Log(name string) string {
	b, _ := os.ReadFile(c.path("logs", name+".log"))
	if len(b) > 8000 {
		b = b[len(b)-8000:]
	}
	return string(b)
}

func (c *Cluster) withLog(name string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%w\n--- end of %s's log ---\n%s", err, name, c.Log(name))
}

func waitFor(ctx context.Context, what string, timeout time.Duration, check func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := check()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("%s: not up after %s: %w", what, timeout, errors.Join(err, ctx.Err()))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func httpOK(url string) error {
	resp, err := http.Get(url)
	if err != nil {
		return err
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", url, resp.Status)
	}
	return nil
}
