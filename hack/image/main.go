// Command image writes the product's image, or the test cluster's sandbox ("pause") image, as a
// tarball without Docker (internal/image); `make image` runs it.
//
//	go run ./hack/image [-tag REF] [-out FILE] [-bin BINARY] [-arch amd64]
//	go run ./hack/image -pause [-tag REF] [-out FILE]
//
// Import the tarball with `ctr -n k8s.io images import FILE`, `nerdctl load -i FILE` or
// `docker load -i FILE`; the tag is kept.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/jengu/queue-operator/internal/image"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "image:", err)
		os.Exit(1)
	}
}

func run() error {
	pause := flag.Bool("pause", false, "write the sandbox (pause) image instead of the product's")
	tag := flag.String("tag", "", fmt.Sprintf("image reference (default %s, or %s with -pause)", image.DefaultTag, image.PauseTag))
	out := flag.String("out", "", "tarball to write (default bin/queue-operator-image.tar, or bin/pause-image.tar with -pause)")
	bin := flag.String("bin", "", "a static Linux build of queue-operator to use (default: build one)")
	arch := flag.String("arch", image.DefaultArch, "architecture of the image and its binary (amd64, arm64)")
	certs := flag.String("ca-certificates", image.HostCACertificates, "CA bundle to copy into the product image")
	flag.Parse()
	if flag.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", flag.Args())
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	root, err := image.ModuleRoot(ctx)
	if err != nil {
		return err
	}
	if *pause {
		path := orDefault(*out, filepath.Join(root, "bin", "pause-image.tar"))
		if err := image.Pause(ctx, image.PauseOptions{Tag: *tag, Out: path, ModuleRoot: root, Arch: *arch}); err != nil {
			return err
		}
		fmt.Printf("wrote %s (%s)\n", path, orDefault(*tag, image.PauseTag))
		return nil
	}

	binary := *bin
	if binary == "" {
		dir, err := os.MkdirTemp("", "queue-operator-image-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		binary = filepath.Join(dir, "queue-operator")
		if err := image.BuildBinary(ctx, image.BuildOptions{ModuleRoot: root, Out: binary, Arch: *arch}); err != nil {
			return err
		}
	}
	path := orDefault(*out, filepath.Join(root, "bin", "queue-operator-image.tar"))
	if err := image.Product(image.ProductOptions{
		Tag: *tag, Out: path, Binary: binary, CACertificates: *certs, Arch: *arch,
	}); err != nil {
		return err
	}
	fmt.Printf("wrote %s (%s)\n", path, orDefault(*tag, image.DefaultTag))
	return nil
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
