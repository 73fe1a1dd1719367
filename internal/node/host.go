package node

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Host-wide sysctls the kubelet sets for itself (they are not per network namespace): the list
// in setupKernelTunables, k8s.io/kubernetes pkg/kubelet/cm/container_manager_linux.go.
var kubeletSysctls = []string{"vm/overcommit_memory", "vm/panic_on_oom", "kernel/panic", "kernel/panic_on_oops",
	"kernel/keys/root_maxkeys", "kernel/keys/root_maxbytes"}

// HostLock is the file a node holds an exclusive flock on for as long as it runs.
const HostLock = "/run/lock/queue-operator-node.lock"

// shimSockets is where containerd's runc shims put their sockets, whatever containerd's state
// directory: outside the node's directory. When it is there before the node, restore removes
// only the entries that are new.
const shimSockets = "/run/containerd/s"

// Host paths a node's components create outside its directory, though each is told where to keep
// its files: the kubelet's container log links and plugin directories, containerd's and CNI's
// defaults, the controller-manager's flex volume directory.
var hostPaths = []string{
	"/var/lib/kubelet", "/var/log/containers", "/var/log/pods", "/run/containerd", "/var/lib/containerd",
	"/usr/libexec/kubernetes", "/var/lib/cni", "/etc/cni", "/opt/cni",
	"/run/nri", "/opt/containerd", shimSockets,
}

const cgroupMount = "/sys/fs/cgroup"

// lockHost takes an exclusive flock on path, or fails at once when another process holds it.
// The lock goes with the process, however it ends.
func lockHost(path string) (unlock func(), err error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open the node lock %s: %w", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		holder, _ := os.ReadFile(path)
		_ = f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("another node runs on this host (pid %s holds %s): one node at a time, so test/node and make dev NODE=1 cannot run at once",
				strings.TrimSpace(string(holder)), path)
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	// Who holds it, for the message above; the lock itself is the flock.
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return func() { _ = f.Close() }, nil
}

// checkCgroupV1 refuses a host whose cgroups are v2 only (the unified hierarchy at path): the
// node's cgroup handling (makeCgroup, killCgroup) is written for v1 hierarchies.
func checkCgroupV1(path string) error {
	var st syscall.Statfs_t
	if err := syscall.Statfs(path, &st); err != nil {
		return fmt.Errorf("a node needs cgroup v1: %s: %w", path, err)
	}
	return cgroupVersionError(path, int64(st.Type))
}

// cgroup2Magic is CGROUP2_SUPER_MAGIC, the filesystem type of a cgroup v2 hierarchy.
const cgroup2Magic = 0x63677270

func cgroupVersionError(path string, fsType int64) error {
	if fsType == cgroup2Magic {
		return fmt.Errorf("a node needs cgroup v1, and %s is cgroup v2 (the unified hierarchy): boot with systemd.unified_cgroup_hierarchy=0", path)
	}
	return nil
}

// hostState is what a node changes on the machine, taken before it starts so that restore can
// put it back: the sysctls' values, which host paths were absent, the shim sockets there were,
// whether /run/netns was there, the cgroup the node's pods live under and the directory under
// which it mounts. restore notes in unmountErr whether the directory's mounts are gone.
type hostState struct {
	sysctls         map[string]string
	absent          []string
	shimSockets     map[string]bool // nil: shimSockets was absent
	netnsDirExisted bool
	cgroup          string
	dir             string
	unmountErr      error
}

func snapshotHost(dir, cgroup string) (*hostState, error) {
	h := &hostState{sysctls: map[string]string{}, cgroup: cgroup, dir: dir}
	if _, err := os.Lstat(netnsDir); err == nil {
		h.netnsDirExisted = true
	}
	if entries, err := os.ReadDir(shimSockets); err == nil {
		h.shimSockets = map[string]bool{}
		for _, e := range entries {
			h.shimSockets[e.Name()] = true
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("list %s: %w", shimSockets, err)
	}
	for _, name := range kubeletSysctls {
		v, err := os.ReadFile(filepath.Join("/proc/sys", name))
		if err != nil {
			return nil, fmt.Errorf("read sysctl %s: %w", name, err)
		}
		h.sysctls[name] = strings.TrimSpace(string(v))
	}
	for _, p := range hostPaths {
		if _, err := os.Lstat(p); errors.Is(err, os.ErrNotExist) {
			h.absent = append(h.absent, p)
		}
	}
	return h, nil
}

// restore kills every process left in the node's cgroups, unmounts what is mounted under its
// directory, removes its cgroups, the host paths that were absent and the shim sockets that are
// new, and puts the sysctls back. It goes on past errors and returns them all.
func (h *hostState) restore() error {
	var errs []error
	errs = append(errs, killCgroup(h.cgroup))
	h.unmountErr = unmountUnder(h.dir)
	errs = append(errs, h.unmountErr)
	errs = append(errs, removeCgroup(h.cgroup))
	for _, p := range h.absent {
		if err := os.RemoveAll(p); err != nil {
			errs = append(errs, err)
		}
	}
	if h.shimSockets != nil {
		entries, err := os.ReadDir(shimSockets)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
		for _, e := range entries {
			if !h.shimSockets[e.Name()] {
				errs = append(errs, os.RemoveAll(filepath.Join(shimSockets, e.Name())))
			}
		}
	}
	for name, v := range h.sysctls {
		if err := os.WriteFile(filepath.Join("/proc/sys", name), []byte(v), 0o644); err != nil {
			errs = append(errs, fmt.Errorf("restore sysctl %s: %w", name, err))
		}
	}
	return errors.Join(errs...)
}

// cgroupDirs lists the node's cgroup directories in every hierarchy, deepest first.
func cgroupDirs(cgroup string) []string {
	var dirs []string
	hierarchies, _ := os.ReadDir(cgroupMount)
	for _, hier := range hierarchies {
		root := filepath.Join(cgroupMount, hier.Name(), cgroup)
		_ = filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		})
	}
	sort.Slice(dirs, func(i, j int) bool { return strings.Count(dirs[i], "/") > strings.Count(dirs[j], "/") })
	return dirs
}

// killCgroup sends SIGKILL to every process in the node's cgroups until none is left. A frozen
// cgroup (a paused container) is thawed first: its processes would not die while frozen.
func killCgroup(cgroup string) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		left := 0
		for _, dir := range cgroupDirs(cgroup) {
			if _, err := os.Stat(filepath.Join(dir, "freezer.state")); err == nil {
				_ = os.WriteFile(filepath.Join(dir, "freezer.state"), []byte("THAWED"), 0o644)
			}
			procs, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
			if err != nil {
				continue
			}
			for _, f := range strings.Fields(string(procs)) {
				var pid int
				if _, err := fmt.Sscan(f, &pid); err == nil && pid > 0 {
					left++
					_ = syscall.Kill(pid, syscall.SIGKILL)
				}
			}
		}
		if left == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d processes still in cgroup %s", left, cgroup)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func removeCgroup(cgroup string) error {
	var errs []error
	for _, dir := range cgroupDirs(cgroup) {
		var err error
		for i := 0; i < 50; i++ { // a cgroup whose last process just died may stay busy briefly
			if err = syscall.Rmdir(dir); err == nil || errors.Is(err, syscall.ENOENT) {
				err = nil
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("remove cgroup %s: %w", dir, err))
		}
	}
	return errors.Join(errs...)
}

// removeNodeDir removes the node's directory, but only when unmounting under it went well and a
// fresh look at the mounts finds nothing under it: RemoveAll would otherwise delete through a
// mount (a bind mount of a host directory, say). Otherwise the directory stays, named in the error.
func removeNodeDir(dir string, unmountErr error) error {
	if unmountErr != nil {
		return fmt.Errorf("left %s in place: unmounting under it failed", dir)
	}
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return fmt.Errorf("left %s in place: %w", dir, err)
	}
	defer f.Close()
	return removeUnmounted(dir, f)
}

// removeUnmounted removes dir when mountinfo shows nothing mounted at it or under it.
func removeUnmounted(dir string, mountinfo io.Reader) error {
	points, err := mountsUnder(mountinfo, dir)
	if err != nil {
		return fmt.Errorf("left %s in place: %w", dir, err)
	}
	if len(points) > 0 {
		return fmt.Errorf("left %s in place: still mounted under it: %s", dir, strings.Join(points, ", "))
	}
	return os.RemoveAll(dir)
}

// mountsUnderNow lists this mount namespace's mount points at dir or under it.
func mountsUnderNow(dir string) ([]string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return mountsUnder(f, dir)
}

// mountsUnder lists the mount points at dir or under it in mountinfo (proc(5)), deepest first.
func mountsUnder(mountinfo io.Reader, dir string) ([]string, error) {
	dir = filepath.Clean(dir)
	var points []string
	sc := bufio.NewScanner(mountinfo)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		p := unescapeMountPoint(fields[4])
		if p == dir || strings.HasPrefix(p, dir+"/") {
			points = append(points, p)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read mountinfo: %w", err)
	}
	sort.SliceStable(points, func(i, j int) bool { return len(points[i]) > len(points[j]) })
	return points, nil
}

// unmountUnder detaches every mount whose mount point is at dir or under it, deepest first.
func unmountUnder(dir string) error {
	points, err := mountsUnderNow(dir)
	if err != nil {
		return err
	}
	var errs []error
	for _, p := range points {
		if err := syscall.Unmount(p, syscall.MNT_DETACH); err != nil && !errors.Is(err, syscall.EINVAL) && !errors.Is(err, syscall.ENOENT) {
			errs = append(errs, fmt.Errorf("unmount %s: %w", p, err))
		}
	}
	return errors.Join(errs...)
}

// unescapeMountPoint undoes mountinfo's octal escapes (\040 for a space).
func unescapeMountPoint(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			var c int
			if _, err := fmt.Sscanf(s[i+1:i+4], "%o", &c); err == nil {
				b.WriteByte(byte(c))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
