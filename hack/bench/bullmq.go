package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// bullmqSys runs bullmq/bench.js under Node, one process per scenario run.
type bullmqSys struct {
	node    string
	dir     string // hack/bench/bullmq
	timeout time.Duration
}

func (b bullmqSys) run(ctx context.Context, e *env, scenario string, p params) (result, error) {
	if err := e.admin.FlushAll(ctx).Err(); err != nil {
		return result{}, err
	}
	cfg, err := json.Marshal(map[string]any{
		"scenario": scenario, "port": e.port, "params": p, "payload": string(e.payload),
		"timeout_ms": b.timeout.Milliseconds(),
	})
	if err != nil {
		return result{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, b.timeout+10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, b.node, filepath.Join(b.dir, "bench.js"), string(cfg))
	cmd.Dir = b.dir
	var stdout bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		return result{}, fmt.Errorf("node bench.js %s: %w", scenario, err)
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	var r result
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &r); err != nil {
		return result{}, fmt.Errorf("node bench.js %s printed %q: %w", scenario, stdout.String(), err)
	}
	return r, nil
}
