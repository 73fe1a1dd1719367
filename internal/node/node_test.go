package node

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestChildArgsLeaveTimeToRestore(t *testing.T) {
	for _, tc := range []struct {
		name    string
		args    []string
		elapsed time.Duration
		want    []string
		wantErr string
	}{
		{name: "no timeout", args: []string{"-test.v=true", "-test.run=X"}, elapsed: time.Minute,
			want: []string{"-test.v=true", "-test.run=X"}},
		{name: "go test's form", args: []string{"-test.paniconexit0", "-test.timeout=40m0s", "-test.v=true"}, elapsed: 30 * time.Second,
			want: []string{"-test.paniconexit0", "-test.timeout=37m30s", "-test.v=true"}},
		{name: "two dashes", args: []string{"--test.timeout=10m"}, elapsed: time.Minute,
			want: []string{"-test.timeout=7m0s"}},
		{name: "value as the next argument", args: []string{"-test.timeout", "10m", "-test.v"}, elapsed: 0,
			want: []string{"-test.timeout=8m0s", "-test.v"}},
		{name: "zero is no timeout", args: []string{"-test.timeout=0s"}, elapsed: time.Hour,
			want: []string{"-test.timeout=0s"}},
		{name: "similar flag untouched", args: []string{"-test.timeoutx=1m"}, elapsed: 0,
			want: []string{"-test.timeoutx=1m"}},
		{name: "too short", args: []string{"-test.timeout=2m30s"}, elapsed: 31 * time.Second,
			wantErr: "leaves the node no time"},
		{name: "not a duration", args: []string{"-test.timeout=soon"}, wantErr: "-test.timeout=soon"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := childArgs(tc.args, tc.elapsed)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("childArgs(%q) error = %v, want one containing %q", tc.args, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("childArgs(%q) (-want +got):\n%s", tc.args, diff)
			}
		})
	}
}

const mountinfo = `26 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw
44 26 254:0 /run/netns /run/netns rw,relatime shared:1 - ext4 /dev/vda rw
45 44 0:4 net:[4026532177] /run/netns/qo-test-node-1 rw shared:2 - nsfs nsfs rw
60 26 0:50 / /tmp/qo-node-1/containerd/state/io.containerd.grpc.v1.cri/sandboxes/abc/shm rw - tmpfs shm rw
61 26 0:51 / /tmp/qo-node-1/kubelet/pods/p/volumes/kubernetes.io~empty\040dir/tmp rw - tmpfs tmpfs rw
62 26 0:52 / /tmp/qo-node-12/other rw - tmpfs tmpfs rw
63 26 0:53 / /tmp/qo-node-1 rw - tmpfs tmpfs rw
`

func TestMountsUnder(t *testing.T) {
	for _, tc := range []struct {
		dir  string
		want []string
	}{
		{dir: "/tmp/qo-node-1", want: []string{
			"/tmp/qo-node-1/containerd/state/io.containerd.grpc.v1.cri/sandboxes/abc/shm",
			"/tmp/qo-node-1/kubelet/pods/p/volumes/kubernetes.io~empty dir/tmp",
			"/tmp/qo-node-1",
		}},
		{dir: "/tmp/qo-node-1/", want: []string{
			"/tmp/qo-node-1/containerd/state/io.containerd.grpc.v1.cri/sandboxes/abc/shm",
			"/tmp/qo-node-1/kubelet/pods/p/volumes/kubernetes.io~empty dir/tmp",
			"/tmp/qo-node-1",
		}},
		{dir: "/run/netns", want: []string{"/run/netns/qo-test-node-1", "/run/netns"}},
		{dir: "/tmp/qo-node-2", want: nil},
	} {
		got, err := mountsUnder(strings.NewReader(mountinfo), tc.dir)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("mountsUnder(%s) (-want +got):\n%s", tc.dir, diff)
		}
	}
}

func TestNodeDirStaysWhileMountedOrUnmountFailed(t *testing.T) {
	newDir := func(t *testing.T) string {
		dir := filepath.Join(t.TempDir(), "node")
		if err := os.MkdirAll(filepath.Join(dir, "kubelet", "pods"), 0o755); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	exists := func(dir string) bool { _, err := os.Stat(dir); return err == nil }

	t.Run("still mounted", func(t *testing.T) {
		dir := newDir(t)
		info := "70 26 0:60 / " + dir + "/kubelet/pods rw - tmpfs tmpfs rw\n"
		err := removeUnmounted(dir, strings.NewReader(info))
		if err == nil || !strings.Contains(err.Error(), "left "+dir+" in place") || !strings.Contains(err.Error(), dir+"/kubelet/pods") {
			t.Errorf("error = %v, want one naming %s and the mount under it", err, dir)
		}
		if !exists(dir) {
			t.Errorf("%s was removed though something is mounted under it", dir)
		}
	})
	t.Run("unmount failed", func(t *testing.T) {
		dir := newDir(t)
		err := removeNodeDir(dir, errors.New("unmount x: device busy"))
		if err == nil || !strings.Contains(err.Error(), "left "+dir+" in place") {
			t.Errorf("error = %v, want one naming %s", err, dir)
		}
		if !exists(dir) {
			t.Errorf("%s was removed though unmounting under it failed", dir)
		}
	})
	t.Run("nothing mounted", func(t *testing.T) {
		dir := newDir(t)
		if err := removeNodeDir(dir, nil); err != nil {
			t.Fatal(err)
		}
		if exists(dir) {
			t.Errorf("%s is still there", dir)
		}
	})
}

func TestOneNodeHoldsTheHostLock(t *testing.T) {
	path := filepath.Join(t.TempDir(), "node.lock")
	unlock, err := lockHost(path)
	if err != nil {
		t.Fatal(err)
	}
	_, err = lockHost(path)
	if err == nil {
		t.Fatal("a second node took the lock the first one holds")
	}
	for _, want := range []string{path, "pid " + strconv.Itoa(os.Getpid()), "cannot run at once"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %q", err, want)
		}
	}
	unlock()
	unlock2, err := lockHost(path)
	if err != nil {
		t.Fatalf("the lock is not free once released: %v", err)
	}
	unlock2()
}

func TestCgroupV2IsRefused(t *testing.T) {
	const tmpfsMagic, cgroupMagic = 0x01021994, 0x27e0eb
	for _, tc := range []struct {
		fsType  int64
		wantErr bool
	}{{tmpfsMagic, false}, {cgroupMagic, false}, {0x63677270, true}} {
		err := cgroupVersionError("/sys/fs/cgroup", tc.fsType)
		if tc.wantErr != (err != nil) {
			t.Errorf("fs type %#x: error %v, want an error: %v", tc.fsType, err, tc.wantErr)
		}
		if err != nil && !strings.Contains(err.Error(), "needs cgroup v1") {
			t.Errorf("error %q does not say the node needs cgroup v1", err)
		}
	}
}

func TestRuncKeepsItsStateInTheNodesDirectory(t *testing.T) {
	cfg := containerdConfig("/tmp/qo-node-1", "/usr/sbin/runc", "pause:3")
	if !strings.Contains(cfg, "Root = '/tmp/qo-node-1/containerd/runc'") && !strings.Contains(cfg, `Root = "/tmp/qo-node-1/containerd/runc"`) {
		t.Errorf("runc's options have no Root under the node's directory:\n%s", cfg)
	}
}
