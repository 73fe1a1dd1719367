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
	"path/filepath"
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
// One node runs on a host at a time: Supervise holds HostLock for its whole run and fails at
// once when another node holds it (restore removes the host paths that were absent when it
// started, which a second node would be using). From its first line until the host is put back
// it catches SIGINT, SIGTERM, SIGHUP and SIGQUIT, forwarding them to the run inside while that
// runs, so that no signal ends it before the host is restored.
//
// Files in pass (listening sockets of the host's, say) are handed to the run inside, which gets
// them back with Passed.
func Supervise(prefix string, pass ...*os.File) (int, error) {
	signals := make(chan os.Signal, 4)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT)
	defer signal.Stop(signals)
	if os.Geteuid() != 0 {
		return 1, errors.New("a node needs root: network namespaces, cgroups, mounts")
	}
	if err := checkCgroupV1(cgroupMount); err != nil {
		return 1, err
	}
	for _, tool := range []string{"ip", "nsenter", "runc"} {
		if _, err := exec.LookPath(tool); err != nil {
			return 1, fmt.Errorf("%s is missing (Debian: iproute2, util-linux, runc): %w", tool, err)
		}
	}
	args, err := childArgs(os.Args[1:], time.Since(processStart))
	if err != nil {
		return 1, err
	}
	unlock, err := lockHost(HostLock)
	if err != nil {
		return 1, err
	}
	defer unlock()
	place := Place{Netns: fmt.Sprintf("%s-%d", prefix, os.Getpid()), Cgroup: fmt.Sprintf("%s-%d", prefix, os.Getpid())}
	dir, err := os.MkdirTemp("", prefix+"-")
	if err != nil {
		return 1, err
	}
	place.Dir = dir
	host, err := snapshotHost(dir, place.Cgroup)
	if err != nil {
		return 1, errors.Join(err, os.Remove(dir))
	}
	code, runErr := runInside(place, args, pass, signals)
	// In this order: nothing may run in the namespace or the cgroups while their mounts go, and
	// the directory goes only when nothing is mounted under it any more.
	cleanupErr := killNetns(place.Netns)
	cleanupErr = errors.Join(cleanupErr, host.restore())
	cleanupErr = errors.Join(cleanupErr, deleteNetns(place.Netns, host.netnsDirExisted))
	cleanupErr = errors.Join(cleanupErr, removeNodeDir(dir, host.unmountErr))
	if runErr != nil {
		return 1, errors.Join(runErr, cleanupErr)
	}
	if cleanupErr != nil {
		return 1, fmt.Errorf("the node ran, but the host was not put back: %w", cleanupErr)
	}
	return code, nil
}

// processStart is about when this program started: go test's -test.timeout counts from then.
var processStart = time.Now()

// restoreMargin is the time kept back from a go test timeout for putting the host back.
const restoreMargin = 2 * time.Minute

// childArgs returns the arguments of the run inside: this program's own, with -test.timeout=D
// shortened to what is left of D after elapsed and restoreMargin. go test kills the test binary
// (SIGQUIT, then SIGKILL) a minute after D; the run inside, timing out first, leaves this process
// the time to restore the host before that.
func childArgs(args []string, elapsed time.Duration) ([]string, error) {
	out := make([]string, 0, len(args))
	for i := 0; i < len(args); i++ {
		a := args[i]
		name, value, hasValue := strings.Cut(a, "=")
		if name != "-test.timeout" && name != "--test.timeout" {
			out = append(out, a)
			continue
		}
		if !hasValue {
			if i+1 == len(args) {
				out = append(out, a)
				continue
			}
			i++
			value = args[i]
		}
		d, err := time.ParseDuration(value)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", a, err)
		}
		if d > 0 {
			left := d - elapsed - restoreMargin
			if left <= 0 {
				return nil, fmt.Errorf("-test.timeout=%s leaves the node no time: %s spent already, %s kept for putting the host back", d, elapsed.Round(time.Second), restoreMargin)
			}
			d = left
		}
		out = append(out, "-test.timeout="+d.String())
	}
	return out, nil
}

// runInside makes the namespace and runs this program in it with args, forwarding what arrives
// on signals; a signal that arrives before the run starts stops the setup.
func runInside(place Place, args []string, pass []*os.File, signals <-chan os.Signal) (int, error) {
	interrupted := func() error {
		select {
		case s := <-signals:
			return fmt.Errorf("%s before the node started", s)
		default:
			return nil
		}
	}
	ns := place.Netns
	for _, ipArgs := range [][]string{
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
		if err := interrupted(); err != nil {
			return 1, err
		}
		if err := run("ip", ipArgs...); err != nil {
			return 1, err
		}
	}
	exe, err := os.Executable()
	if err != nil {
		return 1, err
	}
	cmd := exec.Command("nsenter", append([]string{"--net=/run/netns/" + ns, "--", exe}, args...)...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.ExtraFiles = pass
	cmd.Env = append(os.Environ(), envNetns+"="+ns, envDir+"="+place.Dir, envCgroup+"="+place.Cgroup)
	if err := interrupted(); err != nil {
		return 1, err
	}
	if err := cmd.Start(); err != nil {
		return 1, err
	}
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

// netnsDir is where `ip netns` keeps its namespaces.
const netnsDir = "/run/netns"

// deleteNetns deletes the namespace and, when netnsDir was not there before the node and holds
// nothing else now, what `ip netns add` made of it: a bind mount of itself (shared, so that the
// namespaces mounted in it show in every mount namespace), and the directory. With other
// namespaces in it, unmounting it would detach theirs too, so it stays.
func deleteNetns(ns string, dirExisted bool) error {
	if _, err := os.Lstat(filepath.Join(netnsDir, ns)); err == nil {
		if err := run("ip", "netns", "delete", ns); err != nil {
			return err
		}
	}
	if dirExisted {
		return nil
	}
	entries, err := os.ReadDir(netnsDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil || len(entries) > 0 {
		return err
	}
	if err := unmountUnder(netnsDir); err != nil {
		return err
	}
	if err := syscall.Rmdir(netnsDir); err != nil && !errors.Is(err, syscall.ENOENT) {
		return fmt.Errorf("remove %s: %w", netnsDir, err)
	}
	return nil
}

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
