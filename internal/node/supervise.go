// Package node runs a single-node Kubernetes cluster for tests and `make dev NODE=1`: etcd,
// kube-apiserver, kube-controller-manager, kube-scheduler, containerd (with Debian's runc) and a
// kubelet, built from the Go module proxy by `hack/build-tools.sh node`.
//
// The whole node lives in a network namespace of its own, so every address it uses belongs to
// it: its loopback, an interface holding the node's address and the kubernetes Service's
// address (there is no kube-proxy: the API server listens on that address itself), and one veth
// pair per pod (CNI's ptp plugin; this kernel has no bridge). A program enters it in two steps:
// Supervise runs the program again inside the namespace and, when that run ends however it ends,
// kills what is left there and puts the host back as it found it (sysctls, cgroups, mounts, paths
// outside the node's directory); the run inside calls Start.
package node

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

// Addresses inside the node's network namespace.
const (
	// NodeIP is the node's address (on node0): the kubelet, the API server's
	// advertised address, and where services the test starts listen for pods to reach them.
	NodeIP = "10.97.0.1"
	// APIServiceIP is the kubernetes Service's cluster IP (the first of ServiceCIDR), held by the
	// node0 too, so pods reach the API server without kube-proxy.
	APIServiceIP = "10.96.0.1"
	ServiceCIDR  = "10.96.0.0/24"
	// PodCIDR is the range the pods' addresses come from.
	PodCIDR = "10.88.0.0/16"
	// APIServerPort is the API server's port, on every address of the namespace.
	APIServerPort = 443
)

// Environment variables that Supervise passes to the run inside the namespace.
const (
	envNetns  = "QO_NODE_NETNS"
	envDir    = "QO_NODE_DIR"
	envCgroup = "QO_NODE_CGROUP"
)

// Place is where a node runs: its network namespace, its directory and its cgroup.
type Place struct {
	Netns  string
	Dir    string
	Cgroup string
}

// Inside reports the place Supervise made, when this program is the run inside it.
func Inside() (Place, bool) {
	p := Place{Netns: os.Getenv(envNetns), Dir: os.Getenv(envDir), Cgroup: os.Getenv(envCgroup)}
	return p, p.Netns != "" && p.Dir != "" && p.Cgroup != ""
}

// Supervise runs this program again, with the same arguments, inside a new network namespace
// (named prefix-PID) with a new directory and cgroup name, and returns its exit code once the
// host is back as it was. The namespace, directory and cgroup are removed at the end, and every
// process still in the namespace is killed first.
//
// Files in pass (listening sockets of the host's, say) are handed to the run inside, which gets
// them back with Passed.
func Supervise(prefix string, pass ...*os.File) (int, error) {
	if os.Geteuid() != 0 {
		return 1, errors.New("a node needs root: network namespaces, cgroups, mounts")
	}
	for _, tool := range []string{"ip", "nsenter", "runc"} {
		if _, err := exec.LookPath(tool); err != nil {
			return 1, fmt.Errorf("%s is missing (Debian: iproute2, util-linux, runc): %w", tool, err)
		}
	}
	place := Place{Netns: fmt.Sprintf("%s-%d", prefix, os.Getpid()), Cgroup: fmt.Sprintf("%s-%d", prefix, os.Getpid())}
	dir, err := os.MkdirTemp("", prefix+"-")
	if err != nil {
		return 1, err
	}
	place.Dir = dir
	host, err := snapshotHost(dir, place.Cgroup)
	if err != nil {
		return 1, err
	}
	code, runErr := runInside(place, pass)
	cleanupErr := errors.Join(killNetns(place.Netns), host.restore(), run("ip", "netns", "delete", place.Netns), os.RemoveAll(dir))
	if runErr != nil {
		return 1, errors.Join(runErr, cleanupErr)
	}
	if cleanupErr != nil {
		return 1, fmt.Errorf("the node ran, but the host was not put back: %w", cleanupErr)
	}
	return code, nil
}

func runInside(place Place, pass []*os.File) (int, error) {
	ns := place.Netns
	for _, args := range [][]string{
		{"netns", "add", ns},
		{"-n", ns, "link", "set", "lo", "up"},
		// This kernel has no dummy (nor bridge) driver: the node's addresses sit on one end of a
		// veth pair whose other end stays in the namespace, unused.
		{"-n", ns, "link", "add", "node0", "type", "veth", "peer", "name", "node1"},
		{"-n", ns, "link", "set", "node1", "up"},
		{"-n", ns, "link", "set", "node0", "up"},
		{"-n", ns, "addr", "add", NodeIP + "/32", "dev", "node0"},
		{"-n", ns, "addr", "add", APIServiceIP + "/32", "dev", "node0"},
		// Components that look for "the" host address find it by the default route.
		{"-n", ns, "route", "add", "default", "dev", "node0", "src", NodeIP},
	} {
		if err := run("ip", args...); err != nil {
			return 1, err
		}
	}
	exe, err := os.Executable()
	if err != nil {
		return 1, err
	}
	cmd := exec.Command("nsenter", append([]string{"--net=/run/netns/" + ns, "--", exe}, os.Args[1:]...)...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.ExtraFiles = pass
	cmd.Env = append(os.Environ(), envNetns+"="+ns, envDir+"="+place.Dir, envCgroup+"="+place.Cgroup)
	if err := cmd.Start(); err != nil {
		return 1, err
	}
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(signals)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	for {
		select {
		case s := <-signals:
			_ = cmd.Process.Signal(s)
		case err := <-done:
			var exit *exec.ExitError
			if errors.As(err, &exit) {
				return exit.ExitCode(), nil
			}
			if err != nil {
				return 1, err
			}
			return 0, nil
		}
	}
}

// Passed returns the i-th file Supervise was given to pass (0 is the first).
func Passed(i int) *os.File { return os.NewFile(uintptr(3+i), fmt.Sprintf("passed-%d", i)) }

// killNetns kills every process left in the namespace (a component the run inside did not stop).
func killNetns(ns string) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		out, err := exec.Command("ip", "netns", "pids", ns).Output()
		if err != nil {
			return nil // the namespace is gone or was never made
		}
		pids := strings.Fields(string(out))
		if len(pids) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("processes %v outlive SIGKILL in network namespace %s", pids, ns)
		}
		for _, p := range pids {
			var pid int
			if _, err := fmt.Sscan(p, &pid); err == nil {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func run(name string, args ...string) error {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}
