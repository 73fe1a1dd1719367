package image

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// ModulePath is the product's Go module; ModuleRoot looks for its checkout.
const ModulePath = "github.com/jengu/queue-operator"

// BuildFlags are the `go build` flags of the product binary, the same as the Dockerfile's build
// stage (a test holds the two together).
var BuildFlags = []string{"-trimpath", "-ldflags", "-s -w"}

// BuildOptions say where to build the product binary.
type BuildOptions struct {
	// ModuleRoot is the checkout to build; found with `go list -m` when empty.
	ModuleRoot string
	// Out is the binary to write.
	Out string
	// Arch is GOARCH; DefaultArch when empty. GOOS is always linux.
	Arch string
}

// BuildBinary builds the product binary as the Dockerfile does: static (CGO_ENABLED=0),
// `go build -trimpath -ldflags "-s -w"` of the module root, for linux.
func BuildBinary(ctx context.Context, opts BuildOptions) error {
	if opts.Out == "" {
		return errors.New("build queue-operator: no output path")
	}
	root := opts.ModuleRoot
	if root == "" {
		var err error
		if root, err = ModuleRoot(ctx); err != nil {
			return fmt.Errorf("build queue-operator: %w", err)
		}
	}
	if err := goBuild(ctx, root, ".", opts.Out, orDefault(opts.Arch, DefaultArch)); err != nil {
		return fmt.Errorf("build queue-operator: %w", err)
	}
	return nil
}

// ModuleRoot returns the directory of the queue-operator checkout the working directory is in.
func ModuleRoot(ctx context.Context) (string, error) {
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "go", "list", "-m", "-f", "{{.Path}} {{.Dir}}")
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("go list -m: %w: %s", err, strings.TrimSpace(stderr.String()))
	}
	path, dir, ok := strings.Cut(strings.TrimSpace(stdout.String()), " ")
	if !ok || path != ModulePath {
		return "", fmt.Errorf("the working directory is not in a %s checkout (go list -m: %q)", ModulePath, stdout.String())
	}
	return dir, nil
}

// goBuild builds pkg of the module at root into out, statically, for linux/arch.
func goBuild(ctx context.Context, root, pkg, out, arch string) error {
	abs, err := filepath.Abs(out)
	if err != nil {
		return err
	}
	args := append([]string{"build"}, BuildFlags...)
	args = append(args, "-o", abs, pkg)
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+arch)
	var output bytes.Buffer
	cmd.Stdout, cmd.Stderr = &output, &output
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("CGO_ENABLED=0 GOOS=linux GOARCH=%s go %s (in %s): %w\n%s",
			arch, strings.Join(args, " "), root, err, output.String())
	}
	return nil
}
