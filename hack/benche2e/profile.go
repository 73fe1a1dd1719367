package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"time"
)

// startProfiles starts CPU profiles of the kube-apiserver (over the rate's posting) and of this
// process (the driver, the controller and the facade; until stop) when -profile asks for them,
// each to -log-dir as <process>-<rate>.pprof. stop ends them and waits for the kube-apiserver's.
func startProfiles(ctx context.Context, f flags, s *system, rate float64) (stop func() error, err error) {
	if !f.profile || s.cr == nil {
		return func() error { return nil }, nil
	}
	own, err := os.Create(filepath.Join(f.logDir, fmt.Sprintf("harness-%g.pprof", rate)))
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(own); err != nil {
		_ = own.Close()
		return nil, err
	}
	posting := time.Duration(float64(f.jobs) / rate * float64(time.Second))
	path := filepath.Join(f.logDir, fmt.Sprintf("kube-apiserver-%g.pprof", rate))
	apiserver := make(chan error, 1)
	go func() { apiserver <- s.cr.profileAPIServer(ctx, max(posting, time.Second), path) }()
	return func() error {
		pprof.StopCPUProfile()
		closeErr := own.Close()
		if err := <-apiserver; err != nil {
			return err
		}
		return closeErr
	}, nil
}

// profileAPIServer writes a CPU profile of the kube-apiserver over the next d to path, for `go
// tool pprof`: where its share of a job's CPU goes.
func (m *measurer) profileAPIServer(ctx context.Context, d time.Duration, path string) error {
	ctx, cancel := context.WithTimeout(ctx, d+30*time.Second)
	defer cancel()
	url := fmt.Sprintf("%s/debug/pprof/profile?seconds=%d", strings.TrimSuffix(m.host, "/"), int(d.Seconds()))
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := m.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("kube-apiserver CPU profile: %s", resp.Status)
	}
	file, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(file, resp.Body); err != nil {
		_ = file.Close()
		return err
	}
	return file.Close()
}
