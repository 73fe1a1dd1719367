package image_test

import (
	"archive/tar"
	"bufio"
	"context"
	"crypto/x509"
	"debug/elf"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	. "github.com/onsi/gomega"

	"github.com/jengu/queue-operator/internal/image"
)

var (
	workDir string

	productOnce   sync.Once
	productBinary string // a static build of the product, shared by the tests
	productTar    string // the product image built from it with image.DefaultTag
	productErr    error
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "image-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	workDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// builtProduct builds the product binary (a real static build of the module) and its image once.
func builtProduct(t *testing.T) (binary, tarPath string) {
	t.Helper()
	productOnce.Do(func() {
		productBinary = filepath.Join(workDir, "queue-operator")
		productTar = filepath.Join(workDir, "product.tar")
		ctx, cancel := buildContext(t)
		defer cancel()
		if productErr = image.BuildBinary(ctx, image.BuildOptions{Out: productBinary}); productErr != nil {
			return
		}
		productErr = image.Product(image.ProductOptions{Out: productTar, Binary: productBinary})
	})
	if productErr != nil {
		t.Fatalf("build the product image: %v", productErr)
	}
	return productBinary, productTar
}

// buildContext ends a build shortly before the test binary's -timeout would, so that a cold
// build on a busy machine fails with go build's own words rather than a goroutine dump.
func buildContext(t *testing.T) (context.Context, context.CancelFunc) {
	if deadline, ok := t.Deadline(); ok {
		return context.WithDeadline(context.Background(), deadline.Add(-30*time.Second))
	}
	return context.WithCancel(context.Background())
}

// readImage reads a tarball back by its tag, as `ctr images import` finds it by RepoTags.
func readImage(t *testing.T, path, ref string) v1.Image {
	t.Helper()
	tag, err := name.NewTag(ref)
	if err != nil {
		t.Fatal(err)
	}
	manifest, err := tarball.LoadManifest(func() (io.ReadCloser, error) { return os.Open(path) })
	if err != nil {
		t.Fatalf("read manifest.json of %s: %v", path, err)
	}
	if len(manifest) != 1 || !slices.Equal(manifest[0].RepoTags, []string{ref}) {
		t.Fatalf("manifest.json of %s: want one image tagged %s, got %+v", path, ref, manifest)
	}
	img, err := tarball.ImageFromPath(path, &tag)
	if err != nil {
		t.Fatalf("read image %s: %v", path, err)
	}
	return img
}

type entry struct {
	hdr  *tar.Header
	data []byte
}

// files flattens the image's layers into its root filesystem.
func files(t *testing.T, img v1.Image) map[string]entry {
	t.Helper()
	rc := mutate.Extract(img)
	defer rc.Close()
	out := map[string]entry{}
	tr := tar.NewReader(rc)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("read the image's files: %v", err)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		out[strings.TrimSuffix(strings.TrimPrefix(hdr.Name, "/"), "/")] = entry{hdr: hdr, data: data}
	}
}

func TestProductImage(t *testing.T) {
	binary, tarPath := builtProduct(t)
	img := readImage(t, tarPath, image.DefaultTag)
	fsys := files(t, img)
	wantBinary, err := os.ReadFile(binary)
	if err != nil {
		t.Fatal(err)
	}
	hostCerts, err := os.ReadFile(image.HostCACertificates)
	if err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		path     string
		typ      byte
		mode     int64
		uid, gid int
		check    func(data []byte) error
	}{
		{path: "queue-operator", typ: tar.TypeReg, mode: 0o755, check: func(data []byte) error {
			if string(data) != string(wantBinary) {
				return errors.New("is not the binary that was built")
			}
			return nil
		}},
		{path: "etc/passwd", typ: tar.TypeReg, mode: 0o644, check: lines(
			"root:x:0:0:root:/root:/sbin/nologin",
			"nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin")},
		{path: "etc/group", typ: tar.TypeReg, mode: 0o644, check: lines("root:x:0:", "nonroot:x:65532:")},
		{path: "etc/ssl/certs/ca-certificates.crt", typ: tar.TypeReg, mode: 0o644, check: func(data []byte) error {
			if string(data) != string(hostCerts) {
				return errors.New("is not the build machine's bundle")
			}
			if !x509.NewCertPool().AppendCertsFromPEM(data) {
				return errors.New("holds no PEM certificate")
			}
			return nil
		}},
		{path: "home/nonroot", typ: tar.TypeDir, mode: 0o700, uid: image.NonrootUID, gid: image.NonrootUID},
		{path: "root", typ: tar.TypeDir, mode: 0o700},
		{path: "tmp", typ: tar.TypeDir, mode: 0o1777},
	} {
		t.Run(tc.path, func(t *testing.T) {
			e, ok := fsys[tc.path]
			if !ok {
				t.Fatalf("/%s is missing", tc.path)
			}
			got := [4]int64{int64(e.hdr.Typeflag), e.hdr.Mode, int64(e.hdr.Uid), int64(e.hdr.Gid)}
			want := [4]int64{int64(tc.typ), tc.mode, int64(tc.uid), int64(tc.gid)}
			if got != want {
				t.Errorf("/%s: type, mode, uid, gid = %o, want %o", tc.path, got, want)
			}
			if tc.check != nil {
				if err := tc.check(e.data); err != nil {
					t.Errorf("/%s %v", tc.path, err)
				}
			}
		})
	}
	for path, e := range fsys {
		if !e.hdr.ModTime.Equal(time.Unix(0, 0)) {
			t.Errorf("/%s has time %s, want the epoch (reproducible builds)", path, e.hdr.ModTime)
		}
	}

	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	want := v1.Config{
		User:       "65532:65532",
		Entrypoint: []string{"/queue-operator"},
		Env: []string{
			"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
			"SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt",
		},
		WorkingDir: "/home/nonroot",
	}
	if diff := cmp.Diff(want, cf.Config, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("config (-want +got):\n%s", diff)
	}
	if cf.OS != "linux" || cf.Architecture != "amd64" || !cf.Created.Equal(time.Unix(0, 0)) {
		t.Errorf("os/arch %s/%s created %s, want linux/amd64 at the epoch", cf.OS, cf.Architecture, cf.Created)
	}

	// The binary as it sits in the image is static and starts.
	extracted := filepath.Join(t.TempDir(), "queue-operator")
	if err := os.WriteFile(extracted, fsys["queue-operator"].data, 0o755); err != nil {
		t.Fatal(err)
	}
	if interp := elfInterpreter(t, extracted); interp {
		t.Error("the image's binary is dynamically linked: distroless static has no loader")
	}
	if out, err := exec.Command(extracted, "--help").CombinedOutput(); err != nil {
		t.Errorf("the image's binary does not start: %v\n%s", err, out)
	}
}

func lines(want ...string) func([]byte) error {
	return func(data []byte) error {
		have := strings.Split(string(data), "\n")
		for _, l := range want {
			if !slices.Contains(have, l) {
				return fmt.Errorf("has no line %q", l)
			}
		}
		return nil
	}
}

func elfInterpreter(t *testing.T, path string) bool {
	t.Helper()
	f, err := elf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	return slices.ContainsFunc(f.Progs, func(p *elf.Prog) bool { return p.Type == elf.PT_INTERP })
}

// TestProductImageIsReproducibleAndKeepsItsTag: a second build from the same binary, under
// another tag, is the same image (the tag lives in manifest.json, not in the image's digest).
func TestProductImageIsReproducibleAndKeepsItsTag(t *testing.T) {
	binary, first := builtProduct(t)
	second := filepath.Join(t.TempDir(), "again.tar")
	const ref = "localhost/queue-operator:test"
	if err := image.Product(image.ProductOptions{Tag: ref, Out: second, Binary: binary}); err != nil {
		t.Fatal(err)
	}
	da, err := readImage(t, first, image.DefaultTag).Digest()
	if err != nil {
		t.Fatal(err)
	}
	db, err := readImage(t, second, ref).Digest()
	if err != nil {
		t.Fatal(err)
	}
	if da != db {
		t.Errorf("two builds from one binary differ: %s and %s", da, db)
	}
}

func TestProductRefusesWhatWouldNotRun(t *testing.T) {
	binary, _ := builtProduct(t)
	dynamic, err := exec.LookPath("true") // Debian's coreutils: dynamically linked
	if err != nil {
		t.Fatal(err)
	}
	if !elfInterpreter(t, dynamic) {
		t.Fatalf("%s was expected to be dynamically linked", dynamic)
	}
	dir := t.TempDir()
	for _, tc := range []struct {
		name string
		opts image.ProductOptions
		want string
	}{
		{"no CA bundle", image.ProductOptions{Binary: binary, CACertificates: filepath.Join(dir, "none.crt")}, "apt-get install ca-certificates"},
		{"no binary", image.ProductOptions{}, "no binary given"},
		{"dynamic binary", image.ProductOptions{Binary: dynamic}, "dynamically linked"},
		{"other architecture", image.ProductOptions{Binary: binary, Arch: "arm64"}, "the image for arm64"},
		{"bad tag", image.ProductOptions{Binary: binary, Tag: "Not A Tag"}, "image tag"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.opts.Out = filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "-")+".tar")
			err := image.Product(tc.opts)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one saying %q", err, tc.want)
			}
			if _, err := os.Stat(tc.opts.Out); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("a failed build left %s behind (%v)", tc.opts.Out, err)
			}
		})
	}
}

// dockerBases is what the test knows of the Dockerfile's possible final-stage bases: the config
// each image brings (`crane config gcr.io/distroless/static-debian12:nonroot`).
var dockerBases = map[string]v1.Config{
	"gcr.io/distroless/static-debian12:nonroot": {
		User:       "65532",
		WorkingDir: "/home/nonroot",
		Env: []string{
			"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
			"SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt",
		},
	},
}

// TestDockerfileAndMakeImageAgree holds ./Dockerfile and internal/image together: a change to
// either one's user, entrypoint, ports, working directory or environment alone fails here.
func TestDockerfileAndMakeImageAgree(t *testing.T) {
	_, tarPath := builtProduct(t)
	df := parseDockerfile(t, "../../Dockerfile")
	final := df[len(df)-1]

	base, ok := dockerBases[final.base]
	if !ok {
		t.Fatalf("the Dockerfile's final stage is FROM %s, which this test does not know: add its config to dockerBases", final.base)
	}
	fromDockerfile := final.config(t, base)
	if len(final.copies) != 1 || final.copies[0] != image.BinaryPath {
		t.Errorf("the Dockerfile's final stage copies to %q; internal/image adds exactly %s", final.copies, image.BinaryPath)
	}

	cf, err := readImage(t, tarPath, image.DefaultTag).ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	fromImage := v1.Config{
		User: cf.Config.User, Entrypoint: cf.Config.Entrypoint, Cmd: cf.Config.Cmd,
		ExposedPorts: cf.Config.ExposedPorts, WorkingDir: cf.Config.WorkingDir, Env: cf.Config.Env,
		StopSignal: cf.Config.StopSignal, Volumes: cf.Config.Volumes,
	}
	if diff := cmp.Diff(fromDockerfile, fromImage, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("the Dockerfile's image and `make image`'s differ (-Dockerfile +make image):\n%s", diff)
	}
}

// TestDockerfileBuildsTheSameBinary: the build stage's `go build` is image.BuildBinary's.
func TestDockerfileBuildsTheSameBinary(t *testing.T) {
	df := parseDockerfile(t, "../../Dockerfile")
	var builds [][]string
	for _, st := range df {
		for _, run := range st.runs {
			words := shellWords(run)
			if i := slices.Index(words, "go"); i >= 0 && i+1 < len(words) && words[i+1] == "build" {
				builds = append(builds, words)
			}
		}
	}
	if len(builds) != 1 {
		t.Fatalf("want one `go build` in the Dockerfile, found %q", builds)
	}
	words := builds[0]
	goAt := slices.Index(words, "go")
	env, args := words[:goAt], words[goAt+2:]
	if !slices.Contains(env, "CGO_ENABLED=0") {
		t.Errorf("the Dockerfile's build is not static (CGO_ENABLED=0): %q", words)
	}
	// The flags before -o and the package must be BuildFlags; the package the module root.
	o := slices.Index(args, "-o")
	if o < 0 || o+2 != len(args)-1 {
		t.Fatalf("cannot read the Dockerfile's go build %q", args)
	}
	if diff := cmp.Diff(image.BuildFlags, args[:o]); diff != "" {
		t.Errorf("go build flags (-image.BuildFlags +Dockerfile):\n%s", diff)
	}
	if pkg := args[len(args)-1]; pkg != "." {
		t.Errorf("the Dockerfile builds %q, image.BuildBinary the module root", pkg)
	}
}

type stage struct {
	base                                  string
	user, workdir, stopSignal             *string
	entrypoint, cmd                       []string
	env                                   []string
	expose                                []string
	volumes, copies, runs, unknownInFinal []string
}

// config is the image config the stage gives over its base's, as docker build computes it.
func (s stage) config(t *testing.T, base v1.Config) v1.Config {
	t.Helper()
	if len(s.unknownInFinal) > 0 {
		t.Fatalf("the Dockerfile's final stage has instructions this test does not compare: %q; teach it", s.unknownInFinal)
	}
	c := base
	c.Env = slices.Clone(base.Env)
	if s.user != nil {
		c.User = *s.user
	}
	if s.workdir != nil {
		c.WorkingDir = *s.workdir
	}
	if s.stopSignal != nil {
		c.StopSignal = *s.stopSignal
	}
	if s.entrypoint != nil {
		c.Entrypoint = s.entrypoint
		c.Cmd = nil // docker resets the base's CMD when ENTRYPOINT is set
	}
	if s.cmd != nil {
		c.Cmd = s.cmd
	}
	for _, kv := range s.env {
		key, _, _ := strings.Cut(kv, "=")
		c.Env = slices.DeleteFunc(c.Env, func(e string) bool { return strings.HasPrefix(e, key+"=") })
		c.Env = append(c.Env, kv)
	}
	for _, p := range s.expose {
		if !strings.Contains(p, "/") {
			p += "/tcp"
		}
		if c.ExposedPorts == nil {
			c.ExposedPorts = map[string]struct{}{}
		}
		c.ExposedPorts[p] = struct{}{}
	}
	for _, v := range s.volumes {
		if c.Volumes == nil {
			c.Volumes = map[string]struct{}{}
		}
		c.Volumes[v] = struct{}{}
	}
	return c
}

// parseDockerfile reads the instructions this test compares; it is not a full Dockerfile parser
// and fails on a final-stage instruction it does not understand rather than ignore it.
func parseDockerfile(t *testing.T, path string) []stage {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var logical []string
	var cur strings.Builder
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if cur.Len() == 0 && (line == "" || strings.HasPrefix(line, "#")) {
			continue
		}
		if strings.HasSuffix(line, `\`) {
			cur.WriteString(strings.TrimSuffix(line, `\`) + " ")
			continue
		}
		cur.WriteString(line)
		logical = append(logical, cur.String())
		cur.Reset()
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}

	var stages []stage
	for _, l := range logical {
		word, rest, _ := strings.Cut(l, " ")
		rest = strings.TrimSpace(rest)
		word = strings.ToUpper(word)
		if word == "FROM" {
			fields := slices.DeleteFunc(strings.Fields(rest), func(s string) bool { return strings.HasPrefix(s, "--") })
			base, _, _ := strings.Cut(fields[0], "@") // a pinned digest names the same config
			stages = append(stages, stage{base: base})
			continue
		}
		if len(stages) == 0 {
			if word == "ARG" {
				continue
			}
			t.Fatalf("Dockerfile: %s before FROM", word)
		}
		s := &stages[len(stages)-1]
		switch word {
		case "USER":
			s.user = &rest
		case "WORKDIR":
			s.workdir = &rest
		case "STOPSIGNAL":
			s.stopSignal = &rest
		case "ENTRYPOINT":
			s.entrypoint = execForm(t, rest)
		case "CMD":
			s.cmd = execForm(t, rest)
		case "EXPOSE":
			s.expose = append(s.expose, strings.Fields(rest)...)
		case "VOLUME":
			s.volumes = append(s.volumes, jsonOrFields(rest)...)
		case "ENV":
			s.env = append(s.env, envPairs(rest)...)
		case "COPY", "ADD":
			words := slices.DeleteFunc(jsonOrFields(rest), func(s string) bool { return strings.HasPrefix(s, "--") })
			s.copies = append(s.copies, words[len(words)-1])
		case "RUN":
			s.runs = append(s.runs, rest)
		case "ARG", "LABEL":
		default:
			s.unknownInFinal = append(s.unknownInFinal, word)
		}
	}
	if len(stages) == 0 {
		t.Fatal("Dockerfile: no FROM")
	}
	// Instructions other stages hold do not reach the image; only the final stage's count.
	for i := range stages[:len(stages)-1] {
		stages[i].unknownInFinal = nil
	}
	return stages
}

func execForm(t *testing.T, s string) []string {
	var words []string
	if err := json.Unmarshal([]byte(s), &words); err != nil {
		return []string{"/bin/sh", "-c", s} // shell form, as docker stores it
	}
	return words
}

func jsonOrFields(s string) []string {
	var words []string
	if json.Unmarshal([]byte(s), &words) == nil {
		return words
	}
	return strings.Fields(s)
}

func envPairs(s string) []string {
	if key, value, ok := strings.Cut(s, " "); ok && !strings.Contains(key, "=") {
		return []string{key + "=" + strings.TrimSpace(value)} // ENV KEY value
	}
	return shellWords(s) // ENV KEY1=value KEY2="value"
}

// shellWords splits a RUN line into words, honouring double and single quotes.
func shellWords(s string) []string {
	var words []string
	var w strings.Builder
	inWord := false
	var quote rune
	for _, r := range s {
		switch {
		case quote != 0 && r == quote:
			quote = 0
		case quote != 0:
			w.WriteRune(r)
		case r == '"' || r == '\'':
			quote, inWord = r, true
		case r == ' ' || r == '\t':
			if inWord {
				words = append(words, w.String())
				w.Reset()
				inWord = false
			}
		default:
			w.WriteRune(r)
			inWord = true
		}
	}
	if inWord {
		words = append(words, w.String())
	}
	return words
}

func TestPauseImage(t *testing.T) {
	g := NewWithT(t)
	out := filepath.Join(t.TempDir(), "pause.tar")
	ctx, cancel := buildContext(t)
	defer cancel()
	// Built for this machine, so that its program can run here.
	if err := image.Pause(ctx, image.PauseOptions{Out: out, Arch: runtime.GOARCH}); err != nil {
		t.Fatal(err)
	}
	img := readImage(t, out, image.PauseTag)
	cf, err := img.ConfigFile()
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(cf.Config.User).To(Equal("65535:65535"))
	g.Expect(cf.Config.Entrypoint).To(Equal([]string{"/pause"}))
	g.Expect(cf.Config.WorkingDir).To(Equal("/"))
	g.Expect(cf.OS + "/" + cf.Architecture).To(Equal("linux/" + runtime.GOARCH))
	fsys := files(t, img)
	g.Expect(fsys).To(HaveLen(1), "the pause image holds its program only")
	pause := filepath.Join(t.TempDir(), "pause")
	g.Expect(os.WriteFile(pause, fsys["pause"].data, 0o755)).To(Succeed())
	g.Expect(fsys["pause"].hdr.Mode).To(Equal(int64(0o755)))
	g.Expect(elfInterpreter(t, pause)).To(BeFalse(), "the pause program must be static")

	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		t.Run(sig.String(), func(t *testing.T) {
			g := NewWithT(t)
			cmd := exec.Command(pause)
			// Our own pipe, not StderrPipe: Wait may then run while the reader still reads.
			stderr, w, err := os.Pipe()
			g.Expect(err).NotTo(HaveOccurred())
			defer stderr.Close()
			cmd.Stderr = w
			g.Expect(cmd.Start()).To(Succeed())
			w.Close()
			ready := make(chan struct{})
			go func() {
				sc := bufio.NewScanner(stderr)
				for sc.Scan() {
					if strings.Contains(sc.Text(), "waiting for SIGTERM") {
						close(ready)
					}
				}
			}()
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			t.Cleanup(func() { _ = cmd.Process.Kill() })

			// A signal sent before the program asks for it would kill it by the default action
			// (Go's runtime handles every signal from the start, so SigCgt tells nothing): wait
			// for the line it prints once it listens.
			g.Eventually(ready).WithTimeout(10*time.Second).Should(BeClosed(), "pause never said it listens")
			g.Consistently(done).WithTimeout(200*time.Millisecond).ShouldNot(Receive(), "pause exited on its own")

			g.Expect(cmd.Process.Signal(sig)).To(Succeed())
			g.Eventually(done).WithTimeout(2*time.Second).Should(Receive(&err), "pause did not exit on %s", sig)
			g.Expect(err).NotTo(HaveOccurred(), "pause must exit 0 on %s", sig)
		})
	}
}
