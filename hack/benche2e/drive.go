package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"sync"
	"time"
)

// jobResult is one job's path, times as Unix nanoseconds (0: not reached).
type jobResult struct {
	postStart, postEnd int64
	code               int
	id                 string
	// started is the start of the job's last attempt as its worker recorded it, read once GET
	// /api/jobs/:id answered completed: ours from the Redis record's ProcessedAt (the facade's
	// processedOn is no use here: once the CR has caught up it comes from status.startedAt, which
	// has whole seconds), the seed's from BullMQ's processedOn.
	started int64
	// finished is the worker's end of the job, read with started.
	finished int64
	// completed is when GET /api/jobs/:id first answered completed.
	completed int64
	failed    bool
	err       string
	// polls counts the GET /api/jobs/:id requests for it.
	polls int
}

type user struct{ token, property string }

type apiClient struct {
	base string
	http *http.Client
}

func newAPIClient(base string) *apiClient {
	return &apiClient{base: base, http: &http.Client{Transport: &http.Transport{MaxIdleConns: 512, MaxIdleConnsPerHost: 512}}}
}

func (c *apiClient) do(ctx context.Context, method, path, token string) (int, map[string]any, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, bytes.NewReader([]byte("{}")))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return resp.StatusCode, nil, err
	}
	var body map[string]any
	if err := json.Unmarshal(data, &body); err != nil {
		return resp.StatusCode, nil, fmt.Errorf("%s %s answered %d, not JSON: %.200s", method, path, resp.StatusCode, data)
	}
	return resp.StatusCode, body, nil
}

// runRate posts n jobs open-loop at rate per second (each POST at its scheduled time, whatever
// the earlier ones are doing), spread over the users, and polls each accepted job with at most
// pollers GETs at once until it completes or fails, or until deadline.
func runRate(ctx context.Context, s *system, users []user, rate float64, n, pollers int, deadline time.Duration) []*jobResult {
	c := s.api
	ctx, cancel := context.WithTimeout(ctx, deadline)
	defer cancel()
	results := make([]*jobResult, n)
	accepted := make(chan int, n)

	// Pending jobs circulate through work; a poller re-queues a job that is not finished yet,
	// polling one job at most every minGap.
	const minGap = 20 * time.Millisecond
	type pending struct {
		i    int
		last time.Time
	}
	work := make(chan pending, n)
	var outstanding sync.WaitGroup
	fed := make(chan struct{})
	go func() {
		defer close(fed)
		for i := range accepted {
			outstanding.Add(1)
			work <- pending{i: i}
		}
	}()
	var pollWG sync.WaitGroup
	for p := 0; p < pollers; p++ {
		pollWG.Add(1)
		go func() {
			defer pollWG.Done()
			for {
				var job pending
				select {
				case job = <-work:
				case <-ctx.Done():
					return
				}
				if d := minGap - time.Since(job.last); d > 0 {
					select {
					case <-time.After(d):
					case <-ctx.Done():
						return
					}
				}
				r := results[job.i]
				u := users[job.i%len(users)]
				code, body, err := c.do(ctx, http.MethodGet, "/api/jobs/"+r.id, u.token)
				now := time.Now()
				r.polls++
				if err == nil && code == http.StatusOK {
					view, _ := body["job"].(map[string]any)
					status, _ := view["status"].(string)
					switch status {
					case "completed":
						r.completed = now.UnixNano()
						if started, finished, err := s.times(ctx, r.id, view); err == nil && !started.IsZero() {
							r.started = started.UnixNano()
							if !finished.IsZero() {
								r.finished = finished.UnixNano()
							}
						}
						outstanding.Done()
						continue
					case "failed", "cancelled":
						r.failed = true
						r.err = "job " + status
						outstanding.Done()
						continue
					}
				}
				job.last = now
				work <- job
			}
		}()
	}
	// The posts, at their scheduled times, while the pollers run.
	var posts sync.WaitGroup
	start := time.Now()
	for i := 0; i < n; i++ {
		at := start.Add(time.Duration(float64(i) / rate * float64(time.Second)))
		if d := time.Until(at); d > 0 {
			select {
			case <-time.After(d):
			case <-ctx.Done():
			}
		}
		if ctx.Err() != nil {
			break
		}
		r := &jobResult{}
		results[i] = r
		u := users[i%len(users)]
		posts.Add(1)
		go func(i int) {
			defer posts.Done()
			r.postStart = time.Now().UnixNano()
			code, body, err := c.do(ctx, http.MethodPost, "/api/files/"+u.property+"/enrich", u.token)
			r.postEnd = time.Now().UnixNano()
			r.code = code
			if err != nil {
				r.err = err.Error()
				return
			}
			id, _ := body["jobId"].(string)
			if code != http.StatusAccepted || id == "" {
				r.err = fmt.Sprintf("POST answered %d: %v", code, body)
				return
			}
			r.id = id
			accepted <- i
		}(i)
	}
	go func() { posts.Wait(); close(accepted) }()
	posts.Wait()
	done := make(chan struct{})
	go func() {
		<-fed // every accepted job is counted in outstanding
		outstanding.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
	}
	cancel()
	pollWG.Wait()
	var out []*jobResult
	for _, r := range results {
		if r != nil {
			out = append(out, r)
		}
	}
	return out
}

// summary is a rate's latencies and throughput.
type summary struct {
	jobs, accepted, completed, failed, noStart int
	acceptedPerSec, completedPerSec            float64
	enqueue, toStart, toFinished, toCompleted  []time.Duration
	polls                                      int
	firstErr                                   string
}

func summarize(results []*jobResult) summary {
	s := summary{jobs: len(results)}
	var firstPost, lastAccepted, lastCompleted int64
	for _, r := range results {
		if firstPost == 0 || r.postStart < firstPost {
			firstPost = r.postStart
		}
		if r.err != "" && s.firstErr == "" {
			s.firstErr = r.err
		}
		if r.id == "" {
			continue
		}
		s.accepted++
		s.polls += r.polls
		lastAccepted = max(lastAccepted, r.postEnd)
		s.enqueue = append(s.enqueue, time.Duration(r.postEnd-r.postStart))
		if r.failed {
			s.failed++
		}
		if r.completed == 0 {
			continue
		}
		s.completed++
		lastCompleted = max(lastCompleted, r.completed)
		s.toCompleted = append(s.toCompleted, time.Duration(r.completed-r.postStart))
		if r.started > 0 {
			s.toStart = append(s.toStart, time.Duration(r.started-r.postStart))
			if r.finished > 0 {
				s.toFinished = append(s.toFinished, time.Duration(r.finished-r.postStart))
			}
		} else {
			s.noStart++
		}
	}
	if lastAccepted > firstPost {
		s.acceptedPerSec = float64(s.accepted) / time.Duration(lastAccepted-firstPost).Seconds()
	}
	if lastCompleted > firstPost {
		s.completedPerSec = float64(s.completed) / time.Duration(lastCompleted-firstPost).Seconds()
	}
	return s
}

func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	sorted := append([]time.Duration(nil), ds...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i] < sorted[j] })
	i := int(p*float64(len(sorted))+0.5) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}
