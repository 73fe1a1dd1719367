package store_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/jengu/queue-operator/store"
)

func TestSaveAnalyticsInputIsIdempotent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, conn := newStore(t)
	mustProperty(t, s, "p1", "u1")
	in := store.AnalyticsInput{ID: "input-1", PropertyID: "p1", UserID: "u1",
		Rows: json.RawMessage(`[{"date":"2026-01-01","price":100,"occupancy":80},{"date":"2026-01-02","price":110}]`)}

	if err := s.SaveAnalyticsInput(ctx, in); err != nil {
		t.Fatal(err)
	}
	// A repeated request: the same document, spelled differently.
	again := in
	again.Rows = json.RawMessage(`[ {"price": 100, "occupancy": 80, "date": "2026-01-01"},
		{"price": 110, "date": "2026-01-02"} ]`)
	if err := s.SaveAnalyticsInput(ctx, again); err != nil {
		t.Fatalf("saving the same input again: %v", err)
	}
	if n := count(t, conn, "analytics_inputs"); n != 1 {
		t.Errorf("%d inputs, want 1", n)
	}
	got, err := s.GetAnalyticsInput(ctx, "input-1")
	if err != nil {
		t.Fatal(err)
	}
	want := in
	want.CreatedAt = testNow
	if diff := cmp.Diff(want, got, jsonEqual); diff != "" {
		t.Errorf("GetAnalyticsInput (-want +got):\n%s", diff)
	}

	mustProperty(t, s, "p2", "u1")
	conflicts := map[string]store.AnalyticsInput{
		"other rows":     {ID: "input-1", PropertyID: "p1", UserID: "u1", Rows: json.RawMessage(`[]`)},
		"other user":     {ID: "input-1", PropertyID: "p1", UserID: "u2", Rows: in.Rows},
		"other property": {ID: "input-1", PropertyID: "p2", UserID: "u1", Rows: in.Rows},
	}
	for name, c := range conflicts {
		err := s.SaveAnalyticsInput(ctx, c)
		if !errors.Is(err, store.ErrConflict) {
			t.Errorf("%s: SaveAnalyticsInput = %v, want ErrConflict", name, err)
		}
	}
	got, err = s.GetAnalyticsInput(ctx, "input-1")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got, jsonEqual); diff != "" {
		t.Errorf("a refused save changed the input (-want +got):\n%s", diff)
	}

	if _, err := s.GetAnalyticsInput(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetAnalyticsInput of an unknown id = %v, want ErrNotFound", err)
	}
}

func TestUpsertAnalyticsResultTwiceLeavesOneRow(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, conn := newStore(t)
	mustProperty(t, s, "p1", "u1")
	r := store.AnalyticsResult{Namespace: "team-a", JobID: "analytics-1", PropertyID: "p1", AnalysisType: store.AnalysisDemandForecast,
		Result: json.RawMessage(`{"forecast":[{"date":"2026-04-01","demand":0.82}],"model":"ets"}`)}

	for run := range 2 {
		if err := s.UpsertAnalyticsResult(ctx, r); err != nil {
			t.Fatalf("run %d: UpsertAnalyticsResult: %v", run, err)
		}
	}
	if n := count(t, conn, "analytics_results"); n != 1 {
		t.Errorf("%d results, want 1", n)
	}
	got, err := s.GetAnalyticsResult(ctx, "team-a", "analytics-1")
	if err != nil {
		t.Fatal(err)
	}
	want := r
	want.CreatedAt = testNow
	if diff := cmp.Diff(want, got, jsonEqual); diff != "" {
		t.Errorf("GetAnalyticsResult (-want +got):\n%s", diff)
	}

	// A re-run that computed something else replaces the result.
	r.Result = json.RawMessage(`{"forecast":[],"model":"naive"}`)
	if err := s.UpsertAnalyticsResult(ctx, r); err != nil {
		t.Fatal(err)
	}
	got, err = s.GetAnalyticsResult(ctx, "team-a", "analytics-1")
	if err != nil {
		t.Fatal(err)
	}
	want.Result = r.Result
	if diff := cmp.Diff(want, got, jsonEqual); diff != "" {
		t.Errorf("GetAnalyticsResult after re-run (-want +got):\n%s", diff)
	}

	if _, err := s.GetAnalyticsResult(ctx, "team-a", "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetAnalyticsResult of an unknown job = %v, want ErrNotFound", err)
	}
}

func TestAnalyticsResultsOfTwoNamespacesAreTwoRows(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, conn := newStore(t)
	mustProperty(t, s, "p1", "u1")
	results := map[string]store.AnalyticsResult{}
	for _, ns := range []string{"team-a", "team-b"} {
		r := store.AnalyticsResult{Namespace: ns, JobID: "analytics-1", PropertyID: "p1", AnalysisType: store.AnalysisSummary,
			Result: json.RawMessage(`{"namespace":"` + ns + `"}`)}
		if err := s.UpsertAnalyticsResult(ctx, r); err != nil {
			t.Fatal(err)
		}
		r.CreatedAt = testNow
		results[ns] = r
	}
	if n := count(t, conn, "analytics_results"); n != 2 {
		t.Errorf("%d results, want 2", n)
	}
	for ns, want := range results {
		got, err := s.GetAnalyticsResult(ctx, ns, "analytics-1")
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, got, jsonEqual); diff != "" {
			t.Errorf("GetAnalyticsResult of %s (-want +got):\n%s", ns, diff)
		}
	}
	if _, err := s.GetAnalyticsResult(ctx, "team-c", "analytics-1"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetAnalyticsResult of another namespace = %v, want ErrNotFound", err)
	}
}

func TestRecordingAJobResultReleasesItsAnalyticsInput(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _ := newStore(t)
	mustProperty(t, s, "p1", "u1")
	mustProperty(t, s, "p2", "u2")
	for _, in := range []store.AnalyticsInput{
		{ID: "analytics-1", PropertyID: "p1", UserID: "u1"},
		{ID: "analytics-2", PropertyID: "p1", UserID: "u1"},
		{ID: "theirs", PropertyID: "p2", UserID: "u2"},
	} {
		in.Rows = json.RawMessage(`[{"date":"2026-01-01","price":100}]`)
		if err := s.SaveAnalyticsInput(ctx, in); err != nil {
			t.Fatal(err)
		}
	}
	record := func(jobID, inputRef string, ifLater bool) {
		t.Helper()
		r := store.JobResult{JobID: jobID, Queue: "analytics-heavy", Namespace: "ns", UserID: "u1", PropertyID: "p1",
			Status: store.JobCompleted, Attempts: 1, CreatedAt: testNow, FinishedAt: testNow, InputRef: inputRef}
		write := s.RecordJobResult
		if ifLater {
			write = s.RecordJobResultIfLater
		}
		if err := write(ctx, r); err != nil {
			t.Fatalf("record %s: %v", jobID, err)
		}
	}
	exists := func(id string) bool {
		_, err := s.GetAnalyticsInput(ctx, id)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			t.Fatal(err)
		}
		return err == nil
	}

	record("analytics-1", "analytics-1", false)
	if exists("analytics-1") {
		t.Error("the input of a recorded job is still stored")
	}
	if !exists("analytics-2") {
		t.Error("recording one job deleted another job's input")
	}
	// The controller's write at expiry finds the worker's row and keeps it, but still releases
	// the input.
	record("analytics-2", "", false)
	record("analytics-2", "analytics-2", true)
	if exists("analytics-2") {
		t.Error("the controller's write at expiry left the input")
	}
	// A kubectl-made job of user u1 naming u2's input does not delete it.
	record("analytics-3", "theirs", false)
	if !exists("theirs") {
		t.Error("a job released an input of another user")
	}
	// A cancelled job's input, released without a history row.
	if err := s.ReleaseAnalyticsInput(ctx, "theirs", "u1", "p1"); err != nil || !exists("theirs") {
		t.Errorf("ReleaseAnalyticsInput of another user's input = %v, and it is gone: %v", err, !exists("theirs"))
	}
	if err := s.ReleaseAnalyticsInput(ctx, "theirs", "u2", "p2"); err != nil || exists("theirs") {
		t.Errorf("ReleaseAnalyticsInput = %v, and the input is still stored: %v", err, exists("theirs"))
	}
	if err := s.ReleaseAnalyticsInput(ctx, "theirs", "u2", "p2"); err != nil {
		t.Errorf("ReleaseAnalyticsInput of an input already gone = %v", err)
	}
}
