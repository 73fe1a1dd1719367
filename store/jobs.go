package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// JobStatus is how a finished job ended; the values are the seed's.
type JobStatus string

const (
	JobCompleted JobStatus = "completed"
	JobFailed    JobStatus = "failed"
)

// JobResult is a finished job, kept past its CR's TTL so the facade can still answer for it.
type JobResult struct {
	JobID      string
	Queue      string // enrichment, competitor or analytics-heavy
	Namespace  string
	UserID     string
	PropertyID string
	Status     JobStatus
	Attempts   int
	// Error is why the job failed; empty when it completed.
	Error string
	// Result is the processor's JSON summary, or nil. ListJobResults leaves it out.
	Result     json.RawMessage
	CreatedAt  time.Time // when the job was created (the CR's creationTimestamp)
	FinishedAt time.Time // zero means now
	// InputRef names an analytics input (analytics_inputs) this record releases: it is deleted in
	// the same transaction as the record is written, when it belongs to the job's user and
	// property (a kubectl-made job may name anyone's input). Empty releases nothing.
	InputRef string
}

// Limits of ListJobResults, the seed's for GET /api/jobs.
const (
	DefaultJobResultsLimit = 20
	MaxJobResultsLimit     = 100
)

// JobResultQuery selects a user's finished jobs.
type JobResultQuery struct {
	UserID string // required
	Queue  string // empty for every queue
	Status JobStatus
	// Limit is the most to return: DefaultJobResultsLimit when 0, at most MaxJobResultsLimit.
	Limit int
}

// RecordJobResult stores how the job ended. A job retried from the dead letter queue and finished
// again replaces its earlier record.
func (s *Store) RecordJobResult(ctx context.Context, r JobResult) error {
	return s.recordJobResult(ctx, r, "")
}

// RecordJobResultIfLater stores how the job ended unless the stored record ended as late or
// later: the controller's write before a CR expires never overwrites the record of the same
// outcome a worker wrote (with its result), but does replace one of an earlier outcome.
func (s *Store) RecordJobResultIfLater(ctx context.Context, r JobResult) error {
	return s.recordJobResult(ctx, r, "WHERE j.finished_at < EXCLUDED.finished_at")
}

func (s *Store) recordJobResult(ctx context.Context, r JobResult, onlyIf string) error {
	if r.CreatedAt.IsZero() {
		return fmt.Errorf("record result of job %s: %w", r.JobID, invalidf("no creation time"))
	}
	finishedAt := s.now()
	if !r.FinishedAt.IsZero() {
		finishedAt = pgTime(r.FinishedAt)
	}
	var err error
	if r.InputRef == "" {
		// One statement: no transaction's extra round trips on the path every job takes.
		err = upsertJobResult(ctx, s.pool, r, finishedAt, onlyIf)
	} else {
		err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
			if err := upsertJobResult(ctx, tx, r, finishedAt, onlyIf); err != nil {
				return err
			}
			return releaseInput(ctx, tx, r)
		})
	}
	if err != nil {
		return fmt.Errorf("record result of job %s: %w", r.JobID, classify(err))
	}
	return nil
}

func upsertJobResult(ctx context.Context, db execer, r JobResult, finishedAt time.Time, onlyIf string) error {
	_, err := db.Exec(ctx, `
		INSERT INTO job_results AS j (job_id, queue, namespace, user_id, property_id, status, attempts, error,
			result, created_at, finished_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::jsonb, $10, $11)
		ON CONFLICT (namespace, job_id) DO UPDATE SET
			queue = EXCLUDED.queue,
			user_id = EXCLUDED.user_id,
			property_id = EXCLUDED.property_id,
			status = EXCLUDED.status,
			attempts = EXCLUDED.attempts,
			error = EXCLUDED.error,
			result = EXCLUDED.result,
			created_at = EXCLUDED.created_at,
			finished_at = EXCLUDED.finished_at `+onlyIf,
		r.JobID, r.Queue, r.Namespace, r.UserID, r.PropertyID, string(r.Status), r.Attempts,
		nullIfEmpty(escapeNUL(r.Error)), nullIfEmptyJSON(r.Result), pgTime(r.CreatedAt), finishedAt)
	return err
}

// releaseInput deletes the analytics input the record releases, so that analytics_inputs holds
// only the inputs of jobs that may still run.
func releaseInput(ctx context.Context, tx pgx.Tx, r JobResult) error {
	return deleteInput(ctx, tx, r.InputRef, r.UserID, r.PropertyID)
}

// ReleaseAnalyticsInput deletes the analytics input id when it belongs to the user and property:
// the job that named it is gone without finishing (cancelled), so nothing will read it. An input
// already gone, or another user's, is left as it is without error.
func (s *Store) ReleaseAnalyticsInput(ctx context.Context, id, userID, propertyID string) error {
	if err := deleteInput(ctx, s.pool, id, userID, propertyID); err != nil {
		return fmt.Errorf("release analytics input %s: %w", id, err)
	}
	return nil
}

type execer interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

func deleteInput(ctx context.Context, db execer, id, userID, propertyID string) error {
	if id == "" {
		return nil
	}
	_, err := db.Exec(ctx, `DELETE FROM analytics_inputs WHERE id = $1 AND user_id = $2 AND property_id = $3`,
		id, userID, propertyID)
	return err
}

// escapeNUL spells NUL bytes out as \x00: PostgreSQL text cannot hold them, and an error message
// (ours, though it may quote an outside API) is still worth keeping.
func escapeNUL(s string) string { return strings.ReplaceAll(s, "\x00", `\x00`) }

const jobResultColumns = `job_id, queue, namespace, user_id, property_id, status, attempts, error, created_at,
	finished_at`

// GetJobResult returns the record of the namespace's job, or ErrNotFound.
func (s *Store) GetJobResult(ctx context.Context, namespace, jobID string) (JobResult, error) {
	r, err := scanJobResult(s.pool.QueryRow(ctx,
		`SELECT `+jobResultColumns+`, result FROM job_results WHERE namespace = $1 AND job_id = $2`, namespace, jobID), true)
	if errors.Is(err, pgx.ErrNoRows) {
		return JobResult{}, fmt.Errorf("get result of job %s: %w", jobID, ErrNotFound)
	}
	if err != nil {
		return JobResult{}, fmt.Errorf("get result of job %s: %w", jobID, err)
	}
	return r, nil
}

// ListJobResults returns the user's finished jobs, newest first (by creation, then job id, so
// that pages are stable), without their Result.
func (s *Store) ListJobResults(ctx context.Context, q JobResultQuery) ([]JobResult, error) {
	if q.UserID == "" {
		// Never every user's jobs by accident.
		return nil, fmt.Errorf("list job results: %w", invalidf("no user id"))
	}
	limit := q.Limit
	if limit <= 0 {
		limit = DefaultJobResultsLimit
	}
	limit = min(limit, MaxJobResultsLimit)
	rows, err := s.pool.Query(ctx, `
		SELECT `+jobResultColumns+` FROM job_results
		WHERE user_id = $1 AND ($2::text = '' OR queue = $2::text) AND ($3::text = '' OR status = $3::text)
		ORDER BY created_at DESC, job_id DESC
		LIMIT $4`,
		q.UserID, q.Queue, string(q.Status), limit)
	if err != nil {
		return nil, fmt.Errorf("list job results of user %s: %w", q.UserID, err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (JobResult, error) {
		return scanJobResult(row, false)
	})
	if err != nil {
		return nil, fmt.Errorf("list job results of user %s: %w", q.UserID, err)
	}
	return out, nil
}

// scanJobResult scans jobResultColumns, followed by result when withResult.
func scanJobResult(row pgx.Row, withResult bool) (JobResult, error) {
	var (
		r        JobResult
		errorMsg *string
	)
	dest := []any{&r.JobID, &r.Queue, &r.Namespace, &r.UserID, &r.PropertyID, &r.Status, &r.Attempts,
		&errorMsg, &r.CreatedAt, &r.FinishedAt}
	if withResult {
		dest = append(dest, &r.Result)
	}
	if err := row.Scan(dest...); err != nil {
		return JobResult{}, err
	}
	r.Error = derefString(errorMsg)
	r.CreatedAt, r.FinishedAt = r.CreatedAt.UTC(), r.FinishedAt.UTC()
	return r, nil
}

// nullIfEmptyJSON stores an absent document as NULL rather than failing to parse "".
func nullIfEmptyJSON(doc json.RawMessage) any {
	if len(doc) == 0 {
		return nil
	}
	return doc
}
