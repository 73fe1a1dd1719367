package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// countedResources are the kube-apiserver resources whose requests are counted: the job CRs,
// their status subresource, and events (core and events.k8s.io).
var countedResources = map[string]bool{"enrichmentjobs": true, "events": true}

var labelRE = regexp.MustCompile(`(\w+)="([^"]*)"`)

// requestCounts is apiserver_request_total summed over codes, keyed "resource[/subresource] VERB".
type requestCounts map[string]float64

// scrapeAPIServer reads the kube-apiserver's /metrics through the admin's HTTP client.
func scrapeAPIServer(ctx context.Context, hc *http.Client, host string) (requestCounts, error) {
	body, err := get(ctx, hc, strings.TrimSuffix(host, "/")+"/metrics")
	if err != nil {
		return nil, fmt.Errorf("kube-apiserver /metrics: %w", err)
	}
	counts := requestCounts{}
	sc := bufio.NewScanner(strings.NewReader(body))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "apiserver_request_total{") {
			continue
		}
		end := strings.LastIndex(line, "}")
		if end < 0 {
			continue
		}
		labels := map[string]string{}
		for _, m := range labelRE.FindAllStringSubmatch(line[:end], -1) {
			labels[m[1]] = m[2]
		}
		if !countedResources[labels["resource"]] {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(line[end+1:]), 64)
		if err != nil {
			continue
		}
		res := labels["resource"]
		if labels["subresource"] != "" {
			res += "/" + labels["subresource"]
		}
		counts[res+" "+labels["verb"]] += v
	}
	return counts, sc.Err()
}

// scrapeEtcdSize is etcd's in-use db size (etcd_mvcc_db_total_size_in_use_in_bytes) and total
// db size, from its /metrics on the client URL.
func scrapeEtcdSize(ctx context.Context, etcdURL string) (inUse, total float64, err error) {
	body, err := get(ctx, http.DefaultClient, strings.TrimSuffix(etcdURL, "/")+"/metrics")
	if err != nil {
		return 0, 0, fmt.Errorf("etcd /metrics: %w", err)
	}
	for _, line := range strings.Split(body, "\n") {
		f := strings.Fields(line)
		if len(f) != 2 {
			continue
		}
		v, _ := strconv.ParseFloat(f[1], 64)
		switch f[0] {
		case "etcd_mvcc_db_total_size_in_use_in_bytes":
			inUse = v
		case "etcd_mvcc_db_total_size_in_bytes", "etcd_debugging_mvcc_db_total_size_in_bytes":
			if total == 0 {
				total = v
			}
		}
	}
	return inUse, total, nil
}

func get(ctx context.Context, hc *http.Client, url string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET %s: %d %.200s", url, resp.StatusCode, data)
	}
	return string(data), nil
}

// clockTicks is USER_HZ, 100 on every Linux the harness runs on.
const clockTicks = 100

// procStat is a process's ppid and utime+stime in seconds, from /proc/<pid>/stat.
func procStat(pid int) (ppid int, cpu float64, err error) {
	data, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return 0, 0, err
	}
	s := string(data)
	i := strings.LastIndex(s, ")")
	if i < 0 {
		return 0, 0, fmt.Errorf("/proc/%d/stat: no comm", pid)
	}
	// After "pid (comm) ": state ppid ... utime is field 14, stime 15 (1-based, of the whole line).
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0, 0, fmt.Errorf("/proc/%d/stat: short", pid)
	}
	ppid, _ = strconv.Atoi(f[1])
	utime, _ := strconv.ParseFloat(f[11], 64)
	stime, _ := strconv.ParseFloat(f[12], 64)
	return ppid, (utime + stime) / clockTicks, nil
}

// childByName finds this process's child whose executable's base name is name (the etcd and
// kube-apiserver envtest started).
func childByName(name string) (int, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0, err
	}
	self := os.Getpid()
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || len(cmdline) == 0 {
			continue
		}
		argv0 := strings.SplitN(string(cmdline), "\x00", 2)[0]
		if filepath.Base(argv0) != name {
			continue
		}
		if ppid, _, err := procStat(pid); err == nil && ppid == self {
			return pid, nil
		}
	}
	return 0, fmt.Errorf("no child process %s of pid %d", name, self)
}

// proc is a process whose CPU time is measured.
type proc struct {
	name string
	pid  int
}

func cpuOf(procs []proc) map[string]float64 {
	out := map[string]float64{}
	for _, p := range procs {
		if _, cpu, err := procStat(p.pid); err == nil {
			out[p.name] = cpu
		}
	}
	return out
}
