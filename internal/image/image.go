// Package image writes the product's container image, and the pod sandbox ("pause") image of the
// test cluster, as image tarballs without Docker or a registry (go-containerregistry).
//
// A tarball is a docker-archive (`docker save` format): `ctr -n k8s.io images import`,
// `nerdctl load` and `docker load` all take it and keep its tag. Images are deterministic: every
// file and the config carry the Unix epoch as their time, entries are sorted and owned by
// numeric ids, so the same binary gives the same image digest.
package image

import (
	"archive/tar"
	"bytes"
	"context"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

const (
	// DefaultTag is the product image's reference when none is given (`make image`).
	DefaultTag = "ghcr.io/jengu/queue-operator:dev"
	// PauseTag is the sandbox image's reference; the test cluster's containerd config names it.
	PauseTag = "localhost/queue-operator/pause:1"

	// BinaryPath is where the product binary sits in its image, as in the Dockerfile.
	BinaryPath = "/queue-operator"
	// PausePath is the sandbox image's one program.
	PausePath = "/pause"

	// NonrootUID is distroless' nonroot user and group, the chart's runAsUser.
	NonrootUID = 65532
	// PauseUID is the user the upstream pause image runs as.
	PauseUID = 65535

	// HostCACertificates is Debian's bundle (package ca-certificates), copied into the image.
	HostCACertificates = "/etc/ssl/certs/ca-certificates.crt"
	// DefaultArch is the architecture images and binaries are built for when none is given.
	DefaultArch = "amd64"
)

// epoch is the one time written into images, so that builds are reproducible.
var epoch = time.Unix(0, 0).UTC()

// ProductOptions say which product image to write and from what.
type ProductOptions struct {
	// Tag is the image's reference; DefaultTag when empty.
	Tag string
	// Out is the tarball to write.
	Out string
	// Binary is a static Linux build of the product (BuildBinary makes one).
	Binary string
	// CACertificates is the CA bundle to copy in; HostCACertificates when empty.
	CACertificates string
	// Arch is the image's architecture, which must be the binary's; DefaultArch when empty.
	Arch string
}

// PauseOptions say which sandbox image to write.
type PauseOptions struct {
	// Tag is the image's reference; PauseTag when empty.
	Tag string
	// Out is the tarball to write.
	Out string
	// ModuleRoot is the queue-operator checkout holding hack/image/pause; found with `go list -m`
	// from the working directory when empty.
	ModuleRoot string
	// Arch is the image's and its program's architecture; DefaultArch when empty.
	Arch string
}

// Product writes the product image, the equivalent of the Dockerfile's (distroless
// static-debian12:nonroot plus the binary): a base layer with root and nonroot (65532) users,
// their home directories, /tmp and the CA bundle, then a layer with the binary at BinaryPath.
func Product(opts ProductOptions) error {
	tag, err := parseTag(opts.Tag, DefaultTag)
	if err != nil {
		return err
	}
	if opts.Out == "" {
		return errors.New("product image: no output path")
	}
	arch := orDefault(opts.Arch, DefaultArch)
	certsPath := orDefault(opts.CACertificates, HostCACertificates)
	certs, err := os.ReadFile(certsPath)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("product image: no CA certificates at %s (on Debian: apt-get install ca-certificates)", certsPath)
	}
	if err != nil {
		return fmt.Errorf("product image: read CA certificates: %w", err)
	}
	if len(bytes.TrimSpace(certs)) == 0 {
		return fmt.Errorf("product image: CA certificates %s are empty", certsPath)
	}
	binary, err := readStaticBinary(opts.Binary, arch)
	if err != nil {
		return fmt.Errorf("product image: %w", err)
	}

	base := []file{
		{path: "etc/", mode: 0o755, dir: true},
		{path: "etc/group", mode: 0o644, data: []byte(groupFile)},
		{path: "etc/nsswitch.conf", mode: 0o644, data: []byte(nsswitchFile)},
		{path: "etc/passwd", mode: 0o644, data: []byte(passwdFile)},
		{path: "etc/ssl/", mode: 0o755, dir: true},
		{path: "etc/ssl/certs/", mode: 0o755, dir: true},
		{path: "etc/ssl/certs/ca-certificates.crt", mode: 0o644, data: certs},
		{path: "home/", mode: 0o755, dir: true},
		{path: "home/nonroot/", mode: 0o700, dir: true, uid: NonrootUID, gid: NonrootUID},
		{path: "root/", mode: 0o700, dir: true},
		{path: "tmp/", mode: 0o1777, dir: true},
	}
	app := []file{{path: strings.TrimPrefix(BinaryPath, "/"), mode: 0o755, data: binary}}

	img, err := build(arch, productConfig(), []layerSpec{
		{files: base, createdBy: "internal/image: distroless static nonroot base (passwd, group, CA certificates)"},
		{files: app, createdBy: "internal/image: COPY queue-operator " + BinaryPath},
	})
	if err != nil {
		return fmt.Errorf("product image: %w", err)
	}
	return write(opts.Out, tag, img)
}

// productConfig is what the Dockerfile's final stage amounts to: distroless nonroot's
// environment and working directory, the Dockerfile's USER and ENTRYPOINT.
func productConfig() v1.Config {
	return v1.Config{
		User:       fmt.Sprintf("%d:%d", NonrootUID, NonrootUID),
		Entrypoint: []string{BinaryPath},
		Env: []string{
			"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
			"SSL_CERT_FILE=" + HostCACertificates,
		},
		// distroless' nonroot variants work in the user's home; the Dockerfile keeps it.
		WorkingDir: "/home/nonroot",
	}
}

// Pause builds hack/image/pause statically and writes the sandbox image around it.
func Pause(ctx context.Context, opts PauseOptions) error {
	tag, err := parseTag(opts.Tag, PauseTag)
	if err != nil {
		return err
	}
	if opts.Out == "" {
		return errors.New("pause image: no output path")
	}
	arch := orDefault(opts.Arch, DefaultArch)
	root := opts.ModuleRoot
	if root == "" {
		if root, err = ModuleRoot(ctx); err != nil {
			return fmt.Errorf("pause image: %w", err)
		}
	}
	dir, err := os.MkdirTemp("", "pause-build-")
	if err != nil {
		return fmt.Errorf("pause image: %w", err)
	}
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, "pause")
	if err := goBuild(ctx, root, "./hack/image/pause", bin, arch); err != nil {
		return fmt.Errorf("pause image: %w", err)
	}
	binary, err := readStaticBinary(bin, arch)
	if err != nil {
		return fmt.Errorf("pause image: %w", err)
	}
	img, err := build(arch, v1.Config{
		User:       fmt.Sprintf("%d:%d", PauseUID, PauseUID),
		Entrypoint: []string{PausePath},
		WorkingDir: "/",
	}, []layerSpec{{
		files:     []file{{path: strings.TrimPrefix(PausePath, "/"), mode: 0o755, data: binary}},
		createdBy: "internal/image: COPY hack/image/pause " + PausePath,
	}})
	if err != nil {
		return fmt.Errorf("pause image: %w", err)
	}
	return write(opts.Out, tag, img)
}

// The users and groups of distroless' base (root, nobody, nonroot), which the chart's
// runAsUser 65532 relies on for a name and a home.
const (
	passwdFile = "root:x:0:0:root:/root:/sbin/nologin\n" +
		"nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n" +
		"nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n"
	groupFile = "root:x:0:\n" +
		"nobody:x:65534:\n" +
		"nonroot:x:65532:\n"
	// Go's resolver reads it to order /etc/hosts before DNS, as distroless ships it.
	nsswitchFile = "hosts: files dns\n"
)

// file is one entry of a layer; path is relative to / and ends in "/" for a directory.
type file struct {
	path     string
	mode     int64
	dir      bool
	uid, gid int
	data     []byte
}

type layerSpec struct {
	files     []file
	createdBy string
}

// build assembles an image from layers over nothing (FROM scratch) with the given config.
func build(arch string, cfg v1.Config, specs []layerSpec) (v1.Image, error) {
	img := empty.Image
	for _, spec := range specs {
		content, err := layerTar(spec.files)
		if err != nil {
			return nil, err
		}
		layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
			return io.NopCloser(bytes.NewReader(content)), nil
		})
		if err != nil {
			return nil, fmt.Errorf("layer: %w", err)
		}
		img, err = mutate.Append(img, mutate.Addendum{
			Layer:   layer,
			History: v1.History{Created: v1.Time{Time: epoch}, CreatedBy: spec.createdBy},
		})
		if err != nil {
			return nil, fmt.Errorf("append layer: %w", err)
		}
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	cf = cf.DeepCopy()
	cf.Created = v1.Time{Time: epoch}
	cf.OS = "linux"
	cf.Architecture = arch
	cf.Config = cfg
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return img, nil
}

// layerTar writes files as an uncompressed tar, sorted by path (parents before children).
func layerTar(files []file) ([]byte, error) {
	sorted := append([]file(nil), files...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].path < sorted[j].path })
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range sorted {
		hdr := &tar.Header{
			Name:    f.path,
			Mode:    f.mode,
			Uid:     f.uid,
			Gid:     f.gid,
			ModTime: epoch,
			Format:  tar.FormatPAX,
		}
		if f.dir {
			hdr.Typeflag = tar.TypeDir
		} else {
			hdr.Typeflag = tar.TypeReg
			hdr.Size = int64(len(f.data))
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, fmt.Errorf("tar %s: %w", f.path, err)
		}
		if _, err := tw.Write(f.data); err != nil {
			return nil, fmt.Errorf("tar %s: %w", f.path, err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("tar: %w", err)
	}
	return buf.Bytes(), nil
}

// readStaticBinary reads a program meant for a FROM-scratch image, refusing one that would not
// start there: dynamically linked (no loader in the image) or for another architecture.
func readStaticBinary(path, arch string) ([]byte, error) {
	if path == "" {
		return nil, errors.New("no binary given (BuildBinary builds one)")
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read binary: %w", err)
	}
	f, err := elf.NewFile(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("binary %s is not a Linux (ELF) program: %w", path, err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return nil, fmt.Errorf("binary %s is dynamically linked; build it with CGO_ENABLED=0 (BuildBinary)", path)
		}
	}
	want, ok := elfMachines[arch]
	if !ok {
		return nil, fmt.Errorf("architecture %q is not supported (amd64, arm64)", arch)
	}
	if f.Machine != want {
		return nil, fmt.Errorf("binary %s is for %s, the image for %s", path, f.Machine, arch)
	}
	return data, nil
}

var elfMachines = map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}

// write writes img as a docker-archive tarball tagged ref, replacing out only once it is whole.
func write(out string, ref name.Tag, img v1.Image) error {
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return fmt.Errorf("write image: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(out), filepath.Base(out)+".*.tmp")
	if err != nil {
		return fmt.Errorf("write image: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := tarball.Write(ref, img, tmp); err != nil {
		tmp.Close()
		return fmt.Errorf("write image %s: %w", out, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write image %s: %w", out, err)
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return fmt.Errorf("write image %s: %w", out, err)
	}
	if err := os.Rename(tmp.Name(), out); err != nil {
		return fmt.Errorf("write image %s: %w", out, err)
	}
	return nil
}

func parseTag(s, def string) (name.Tag, error) {
	s = orDefault(s, def)
	tag, err := name.NewTag(s)
	if err != nil {
		return name.Tag{}, fmt.Errorf("image tag %q: %w", s, err)
	}
	return tag, nil
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
