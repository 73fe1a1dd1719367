package workers_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"github.com/redis/go-redis/v9"

	jobsv1alpha1 "github.com/jengu/queue-operator/api/v1alpha1"
	"github.com/jengu/queue-operator/internal/testpg"
	"github.com/jengu/queue-operator/internal/testredis"
	"github.com/jengu/queue-operator/queue"
	"github.com/jengu/queue-operator/store"
	"github.com/jengu/queue-operator/workers"
)

// scriptFault is a go-redis hook that makes the first n calls of one queue script fail, as a
// flaky network would: with runFirst the script runs in Redis and its reply is lost on the way
// back; without, the request never arrives.
type scriptFault struct {
	script   string // "lease", "complete", "fail": which script, told by its keys
	runFirst bool
	left     atomic.Int32
	injected atomic.Int32
}

func newScriptFault(script string, runFirst bool, n int32) *scriptFault {
	h := &scriptFault{script: script, runFirst: runFirst}
	h.left.Store(n)
	return h
}

// scriptKeys returns the KEYS of an EVAL or EVALSHA command, or nil for another command.
func scriptKeys(cmd redis.Cmder) []string {
	args := cmd.Args()
	if name := strings.ToLower(cmd.Name()); (name != "evalsha" && name != "eval") || len(args) < 3 {
		return nil
	}
	n, err := strconv.Atoi(toStr(args[2]))
	if err != nil || len(args) < 3+n {
		return nil
	}
	keys := make([]string, n)
	for i := range n {
		keys[i] = toStr(args[3+i])
	}
	return keys
}

func toStr(v any) string {
	switch s := v.(type) {
	case string:
		return s
	case int:
		return strconv.Itoa(s)
	case int64:
		return strconv.FormatInt(s, 10)
	}
	return ""
}

func (h *scriptFault) matches(cmd redis.Cmder) bool {
	k := scriptKeys(cmd)
	switch h.script {
	case "lease": // wait, delayed, active, meta, limiter, events, marker, stats
		return len(k) == 8 && strings.HasSuffix(k[4], ":limiter")
	case "complete": // active, completed, events, meta, stats, jobs...
		return len(k) > 5 && strings.HasSuffix(k[0], ":active") && strings.HasSuffix(k[1], ":completed")
	case "fail": // job, active, delayed, failed, meta, events, marker, stats
		return len(k) == 8 && strings.HasSuffix(k[1], ":active") && strings.HasSuffix(k[3], ":failed")
	}
	return false
}

func (h *scriptFault) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *scriptFault) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if !h.matches(cmd) || h.left.Load() <= 0 {
			return next(ctx, cmd)
		}
		if !h.runFirst {
			if h.left.Add(-1) >= 0 {
				h.injected.Add(1)
				cmd.SetErr(errors.New("connection reset by peer (injected before sending)"))
				return cmd.Err()
			}
			return next(ctx, cmd)
		}
		if err := next(ctx, cmd); err != nil {
			return err // NOSCRIPT and the like: the script did not run; not the fault we want
		}
		if h.script == "lease" {
			if c, ok := cmd.(*redis.Cmd); ok {
				if v, _ := c.Slice(); len(v) <= 2 {
					return nil // no job leased: losing this reply proves nothing
				}
			}
		}
		if h.left.Add(-1) >= 0 {
			h.injected.Add(1)
			cmd.SetErr(errors.New("i/o timeout (injected: the reply was lost)"))
			return cmd.Err()
		}
		return nil
	}
}

func (h *scriptFault) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// withFault points the fixture's queue at a client of its own that carries h.
func (f *fixture) withFault(h *scriptFault) {
	rdb := testredis.Shared(f.t)
	rdb.AddHook(h)
	f.queue = queue.New(rdb, queue.WithMaxIdleWait(time.Second)).Queue(f.ns, string(jobsv1alpha1.QueueEnrichment))
}

// reclaimStalled runs the controller's stall sweep until the test ends.
func (f *fixture) reclaimStalled() {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	f.t.Cleanup(func() { cancel(); <-done })
	q := queue.New(testredis.Shared(f.t)).Queue(f.ns, f.queue.Name)
	go func() {
		defer close(done)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			_, _ = q.ReclaimStalled(ctx, 5)
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
}

// A Lease whose reply was lost leased the job in Redis to this worker, which does not run it:
// the worker hands such leases back at once, uncounted, and runs the job once, instead of leaving
// it to the stall sweep (which would count an attempt and a stall).
func TestLostLeaseReplyDoesNotStrandTheJob(t *testing.T) {
	g := NewWithT(t)
	f := newFixture(t)
	fault := newScriptFault("lease", true, 1)
	f.withFault(fault)
	f.reclaimStalled()
	job := f.job("enrich-lost-lease-1")
	var calls atomic.Int32
	f.run(workers.ProcessorFunc(func(context.Context, workers.Task, workers.Progress) ([]byte, error) {
		calls.Add(1)
		return []byte(`{"rows":1}`), nil
	}))
	g.Eventually(f.record(job.Name)).WithTimeout(timeout).Should(HaveField("State", queue.StateCompleted))
	g.Expect(fault.injected.Load()).To(BeEquivalentTo(1), "a lease reply was lost")
	record := f.record(job.Name)()
	g.Expect(record.Stalls).To(BeZero(), "not counted as stalled")
	g.Expect(record.AttemptsMade).To(Equal(1), "one attempt: the completed one")
	g.Expect(calls.Load()).To(BeEquivalentTo(1), "processed once")
}

// Complete and Fail are retried while Redis errors. When an earlier try went through and only
// its reply was lost, the retry is refused (the lease ended), and the worker reads the record:
// the job ended as this worker said, so the outcome counts (its history is recorded) instead of
// being logged as a failure.
func TestCompleteAndFailSurviveLostReplies(t *testing.T) {
	for _, tc := range []struct {
		name     string
		script   string
		runFirst bool
		fail     bool
	}{
		{"complete: request lost", "complete", false, false},
		{"complete: reply lost", "complete", true, false},
		{"fail: request lost", "fail", false, true},
		{"fail: reply lost", "fail", true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			ctx := context.Background()
			db := testpg.OpenShared(t)
			f := newFixture(t)
			fault := newScriptFault(tc.script, tc.runFirst, 2)
			f.withFault(fault)
			payload := func(r *queue.EnqueueRequest) { r.Payload = []byte(`{"propertyId":"prop-l","userId":"user-l"}`) }
			job := f.job("enrich-lost-"+strings.ReplaceAll(strings.ReplaceAll(tc.name, ":", ""), " ", "-")+"-"+f.ns, payload)
			var calls atomic.Int32
			f.run(workers.ProcessorFunc(func(context.Context, workers.Task, workers.Progress) ([]byte, error) {
				calls.Add(1)
				if tc.fail {
					return nil, workers.Permanent(errors.New("property prop-l has no location"))
				}
				return []byte(`{"rows":2}`), nil
			}), workers.WithResults(db))

			want, wantStatus := queue.StateCompleted, store.JobCompleted
			if tc.fail {
				want, wantStatus = queue.StateFailed, store.JobFailed
			}
			g.Eventually(f.record(job.Name)).WithTimeout(timeout).Should(HaveField("State", want))
			g.Eventually(func() (store.JobResult, error) { return db.GetJobResult(ctx, f.ns, job.Name) }).
				WithTimeout(timeout).Should(And(HaveField("Status", wantStatus), HaveField("Attempts", 1)),
				"the outcome counted: its history is recorded")
			g.Expect(fault.injected.Load()).To(BeNumerically(">=", 1))
			g.Expect(calls.Load()).To(BeEquivalentTo(1))
			g.Expect(f.record(job.Name)().AttemptsMade).To(Equal(1))
		})
	}
}
