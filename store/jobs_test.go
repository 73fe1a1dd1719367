package store_test

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	gocmp "github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/jengu/queue-operator/store"
)

func TestRecordJobResultTwiceLeavesOneRow(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, conn := newStore(t)
	created := time.Date(2026, 3, 1, 11, 0, 0, 0, time.UTC)
	failed := store.JobResult{JobID: "enrich-550e8400-1772362800000", Queue: "enrichment", Namespace: "jengu",
		UserID: "u1", PropertyID: "p1", Status: store.JobFailed, Attempts: 5, Error: "Weather API timeout",
		CreatedAt: created, FinishedAt: created.Add(14 * time.Minute)}

	for run := range 2 {
		if err := s.RecordJobResult(ctx, failed); err != nil {
			t.Fatalf("run %d: RecordJobResult: %v", run, err)
		}
	}
	if n := count(t, conn, "job_results"); n != 1 {
		t.Errorf("%d job results, want 1", n)
	}
	got, err := s.GetJobResult(ctx, failed.Namespace, failed.JobID)
	if err != nil {
		t.Fatal(err)
	}
	if diff := gocmp.Diff(failed, got, jsonEqual); diff != "" {
		t.Errorf("GetJobResult (-want +got):\n%s", diff)
	}

	// Retried from the dead letter queue, the job completes: its record is replaced.
	completed := failed
	completed.Status, completed.Attempts, completed.Error = store.JobCompleted, 6, ""
	completed.Result = json.RawMessage(`{"rowsEnriched":365}`)
	completed.FinishedAt = time.Time{} // now
	if err := s.RecordJobResult(ctx, completed); err != nil {
		t.Fatal(err)
	}
	got, err = s.GetJobResult(ctx, failed.Namespace, failed.JobID)
	if err != nil {
		t.Fatal(err)
	}
	completed.FinishedAt = testNow
	if diff := gocmp.Diff(completed, got, jsonEqual); diff != "" {
		t.Errorf("GetJobResult after retry (-want +got):\n%s", diff)
	}
	if n := count(t, conn, "job_results"); n != 1 {
		t.Errorf("%d job results, want 1", n)
	}

	if _, err := s.GetJobResult(ctx, "jengu", "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetJobResult of an unknown job = %v, want ErrNotFound", err)
	}

	// The same name in another namespace is another job: neither overwrites the other.
	other := failed
	other.Namespace, other.UserID = "staging", "u2"
	if err := s.RecordJobResult(ctx, other); err != nil {
		t.Fatal(err)
	}
	if n := count(t, conn, "job_results"); n != 2 {
		t.Errorf("%d job results, want 2", n)
	}
	for _, want := range []store.JobResult{completed, other} {
		got, err := s.GetJobResult(ctx, want.Namespace, want.JobID)
		if err != nil || got.UserID != want.UserID {
			t.Errorf("GetJobResult(%s, %s) = %+v, %v; want user %s", want.Namespace, want.JobID, got, err, want.UserID)
		}
	}
}

func TestListJobResults(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _ := newStore(t)

	// 130 jobs of u1 (more than the largest page) and a few of u2, across queues and statuses,
	// with some creation times shared so that the job id must break ties.
	queues := []string{"enrichment", "competitor", "analytics-heavy"}
	base := time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)
	var all []store.JobResult
	for i := range 136 {
		user := "u1"
		if i%23 == 0 {
			user = "u2"
		}
		r := store.JobResult{
			JobID:      fmt.Sprintf("job-%03d", i),
			Queue:      queues[i%3],
			Namespace:  "jengu",
			UserID:     user,
			PropertyID: "p1",
			Status:     store.JobCompleted,
			Attempts:   1,
			CreatedAt:  base.Add(time.Duration(i/2) * time.Minute),
			FinishedAt: base.Add(time.Duration(i/2)*time.Minute + 30*time.Second),
		}
		if i%4 == 0 {
			r.Status, r.Attempts, r.Error = store.JobFailed, 3, "boom"
		}
		all = append(all, r)
	}
	// Written in shuffled order, so that order of insertion cannot pass for order of creation.
	for _, i := range shuffled(len(all)) {
		if err := s.RecordJobResult(ctx, all[i]); err != nil {
			t.Fatal(err)
		}
	}

	// expect is the reference: filter, newest first (ties by job id, descending), limit.
	expect := func(q store.JobResultQuery, limit int) []store.JobResult {
		var out []store.JobResult
		for _, r := range all {
			if r.UserID == q.UserID && (q.Queue == "" || r.Queue == q.Queue) && (q.Status == "" || r.Status == q.Status) {
				out = append(out, r)
			}
		}
		slices.SortFunc(out, func(a, b store.JobResult) int {
			return cmp.Or(b.CreatedAt.Compare(a.CreatedAt), cmp.Compare(b.JobID, a.JobID))
		})
		return out[:min(limit, len(out))]
	}

	tests := []struct {
		name      string
		query     store.JobResultQuery
		wantLimit int
	}{
		{name: "user, default limit", query: store.JobResultQuery{UserID: "u1"}, wantLimit: 20},
		{name: "user, limit 5", query: store.JobResultQuery{UserID: "u1", Limit: 5}, wantLimit: 5},
		{name: "user, limit above the maximum", query: store.JobResultQuery{UserID: "u1", Limit: 1000}, wantLimit: 100},
		{name: "queue", query: store.JobResultQuery{UserID: "u1", Queue: "competitor", Limit: 100}, wantLimit: 100},
		{name: "status", query: store.JobResultQuery{UserID: "u1", Status: store.JobFailed, Limit: 100}, wantLimit: 100},
		{name: "queue and status", query: store.JobResultQuery{UserID: "u1", Queue: "analytics-heavy",
			Status: store.JobFailed, Limit: 100}, wantLimit: 100},
		{name: "another user", query: store.JobResultQuery{UserID: "u2", Limit: 100}, wantLimit: 100},
		{name: "unknown user", query: store.JobResultQuery{UserID: "u3"}, wantLimit: 20},
		{name: "unknown queue", query: store.JobResultQuery{UserID: "u1", Queue: "nope"}, wantLimit: 20},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.ListJobResults(ctx, tt.query)
			if err != nil {
				t.Fatal(err)
			}
			want := expect(tt.query, tt.wantLimit)
			if diff := gocmp.Diff(want, got, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("ListJobResults(%+v) (-want +got):\n%s", tt.query, diff)
			}
		})
	}

	if _, err := s.ListJobResults(ctx, store.JobResultQuery{}); !errors.Is(err, store.ErrInvalid) {
		t.Errorf("ListJobResults without a user = %v, want ErrInvalid", err)
	}
}

// shuffled is a fixed permutation of 0..n-1.
func shuffled(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = (i*37 + 11) % n
	}
	return out
}

func TestRecordJobResultIfLaterKeepsTheSameOrALaterOutcome(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _ := newStore(t)
	created := time.Date(2026, 3, 1, 11, 0, 0, 0, time.UTC)
	byWorker := store.JobResult{JobID: "enrich-00000001-1772362800000", Queue: "enrichment", Namespace: "jengu",
		UserID: "u1", PropertyID: "p1", Status: store.JobCompleted, Attempts: 1,
		Result: json.RawMessage(`{"rowsEnriched":365}`), CreatedAt: created, FinishedAt: created.Add(2 * time.Minute)}
	if err := s.RecordJobResult(ctx, byWorker); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		record  store.JobResult
		wantRow store.JobResult
	}{
		{"the same outcome seen by the controller, without its result",
			func() store.JobResult { r := byWorker; r.Result = nil; return r }(), byWorker},
		{"an earlier outcome",
			func() store.JobResult {
				r := byWorker
				r.Status, r.Error, r.Result, r.FinishedAt = store.JobFailed, "old", nil, created.Add(time.Minute)
				return r
			}(), byWorker},
		{"a later outcome (retried from the dead letter queue)",
			func() store.JobResult {
				r := byWorker
				r.Status, r.Error, r.Result, r.FinishedAt = store.JobFailed, "job stalled", nil, created.Add(time.Hour)
				return r
			}(),
			func() store.JobResult {
				r := byWorker
				r.Status, r.Error, r.Result, r.FinishedAt = store.JobFailed, "job stalled", nil, created.Add(time.Hour)
				return r
			}()},
	}
	for _, tt := range tests {
		if err := s.RecordJobResultIfLater(ctx, tt.record); err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		got, err := s.GetJobResult(ctx, byWorker.Namespace, byWorker.JobID)
		if err != nil {
			t.Fatal(err)
		}
		if diff := gocmp.Diff(tt.wantRow, got, jsonEqual); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tt.name, diff)
		}
	}
	// A job the workers never recorded gets its row.
	stalled := byWorker
	stalled.JobID, stalled.Status, stalled.Error, stalled.Result = "enrich-00000002-1772362800000", store.JobFailed, "job stalled", nil
	if err := s.RecordJobResultIfLater(ctx, stalled); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetJobResult(ctx, stalled.Namespace, stalled.JobID); err != nil {
		t.Errorf("the stalled job has no row: %v", err)
	}
}
