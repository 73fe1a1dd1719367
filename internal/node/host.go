package node

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"
)

// Host-wide sysctls the kubelet sets for itself (they are not per network namespace).
var kubeletSysctls = []string{"vm/overcommit_memory", "kernel/panic", "kernel/panic_on_oops"}

// Host paths a node's components create outside its directory, though each is told where to keep
// its files: the kubelet's container log links and plugin directories, containerd's and CNI's
// defaults, the controller-manager's flex volume directory.
var hostPaths = []string{
	"/var/lib/kubelet", "/var/log/containers", "/var/log/pods", "/run/containerd", "/var/lib/containerd",
	"/usr/libexec/kubernetes", "/var/lib/cni", "/etc/cni", "/opt/cni",
	"/run/nri", "/opt/containerd",
}

const cgroupMount = "/sys/fs/cgroup"

// hostState is what a node changes on the machine, taken before it starts so that restore can
// put it back: the sysctls' values, which host paths were absent, the cgroup the node's pods live
// under and the directory under which it mounts.
type hostState struct {
	sysctls map[string]string
	absent  []string
	cgroup  string
	dir     string
}

func snapshotHost(dir, cgroup string) (*hostState, error) {
	h := &hostState{sysctls: map[string]string{}, cgroup: cgroup, dir: dir}
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
// directory, removes its cgroups and the host paths that were absent, and puts the sysctls back.
// It goes on past errors and returns them all.
func (h *hostState) restore() error {
	var errs []error
	errs = append(errs, killCgroup(h.cgroup))
	errs = append(errs, unmountUnder(h.dir))
	errs = append(errs, removeCgroup(h.cgroup))
	for _, p := range h.absent {
		if err := os.RemoveAll(p); err != nil {
			errs = append(errs, err)
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

// killCgroup sends SIGKILL to every process in the node's cgroups until none is left.
func killCgroup(cgroup string) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		left := 0
		for _, dir := range cgroupDirs(cgroup) {
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

// unmountUnder detaches every mount whose mount point is under dir, deepest first.
func unmountUnder(dir string) error {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return err
	}
	defer f.Close()
	var points []string
	sc := bufio.NewScanner(f)
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
	sort.Slice(points, func(i, j int) bool { return len(points[i]) > len(points[j]) })
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
