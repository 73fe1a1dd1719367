package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// AnalysisType is one of the seed's analyses.
type AnalysisType string

const (
	AnalysisSummary           AnalysisType = "summary"
	AnalysisWeatherImpact     AnalysisType = "weather-impact"
	AnalysisDemandForecast    AnalysisType = "demand-forecast"
	AnalysisFeatureImportance AnalysisType = "feature-importance"
)

// AnalyticsInput is the data of an analytics request, kept here because it is too large for a CR;
// the AnalyticsJob names it by ID (its inputRef).
type AnalyticsInput struct {
	ID         string
	PropertyID string
	UserID     string
	// Rows is a JSON array. Read back, it is PostgreSQL's jsonb rendering of it: the same
	// document, with keys sorted and whitespace normalised.
	Rows      json.RawMessage
	CreatedAt time.Time // set by the store
}

// SaveAnalyticsInput stores the input under its ID. Saving the same input again (the same
// property, user and rows, as a repeated request does) succeeds and changes nothing; other data
// under a taken ID gives ErrConflict, since a job may already be reading the first.
func (s *Store) SaveAnalyticsInput(ctx context.Context, in AnalyticsInput) error {
	// The no-op update makes the conflict case return the row when it matches. It locks the
	// row, so a concurrent save of the same ID is seen too, which DO NOTHING plus a SELECT
	// would miss.
	var id string
	err := s.pool.QueryRow(ctx, `
		INSERT INTO analytics_inputs AS a (id, property_id, user_id, rows, created_at)
		VALUES ($1, $2, $3, $4::jsonb, $5)
		ON CONFLICT (id) DO UPDATE SET id = EXCLUDED.id
		WHERE a.property_id = EXCLUDED.property_id AND a.user_id = EXCLUDED.user_id AND a.rows = EXCLUDED.rows
		RETURNING id`,
		in.ID, in.PropertyID, in.UserID, in.Rows, s.now()).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("save analytics input %s: %w: saved before with other data", in.ID, ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("save analytics input %s: %w", in.ID, classify(err))
	}
	return nil
}

// GetAnalyticsInput returns the input, or ErrNotFound.
func (s *Store) GetAnalyticsInput(ctx context.Context, id string) (AnalyticsInput, error) {
	var in AnalyticsInput
	err := s.pool.QueryRow(ctx, `
		SELECT id, property_id, user_id, rows, created_at FROM analytics_inputs WHERE id = $1`, id).
		Scan(&in.ID, &in.PropertyID, &in.UserID, &in.Rows, &in.CreatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return AnalyticsInput{}, fmt.Errorf("get analytics input %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return AnalyticsInput{}, fmt.Errorf("get analytics input %s: %w", id, err)
	}
	in.CreatedAt = in.CreatedAt.UTC()
	return in, nil
}

// AnalyticsResult is the outcome of an analytics job, keyed by the job's namespace and id.
type AnalyticsResult struct {
	Namespace    string
	JobID        string
	PropertyID   string
	AnalysisType AnalysisType
	// Result is a JSON document; read back, in PostgreSQL's jsonb rendering.
	Result    json.RawMessage
	CreatedAt time.Time // set by the store at the first write
}

// UpsertAnalyticsResult stores the job's result; a re-run job replaces it.
func (s *Store) UpsertAnalyticsResult(ctx context.Context, r AnalyticsResult) error {
	_, err := s.pool.Exec(ctx, `
		INSERT INTO analytics_results AS r (namespace, job_id, property_id, analysis_type, result, created_at)
		VALUES ($1, $2, $3, $4, $5::jsonb, $6)
		ON CONFLICT (namespace, job_id) DO UPDATE SET
			property_id = EXCLUDED.property_id,
			analysis_type = EXCLUDED.analysis_type,
			result = EXCLUDED.result`,
		r.Namespace, r.JobID, r.PropertyID, string(r.AnalysisType), r.Result, s.now())
	if err != nil {
		return fmt.Errorf("upsert analytics result of job %s: %w", r.JobID, classify(err))
	}
	return nil
}

// GetAnalyticsResult returns the result of the namespace's job, or ErrNotFound. It does not check
// who asks: the caller has found the job the caller's (its CR, or its history row).
func (s *Store) GetAnalyticsResult(ctx context.Context, namespace, jobID string) (AnalyticsResult, error) {
	var r AnalyticsResult
	err := s.pool.QueryRow(ctx, `
		SELECT namespace, job_id, property_id, analysis_type, result, created_at FROM analytics_results
		WHERE namespace = $1 AND job_id = $2`,
		namespace, jobID).Scan(&r.Namespace, &r.JobID, &r.PropertyID, &r.AnalysisType, &r.Result, &r.CreatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return AnalyticsResult{}, fmt.Errorf("get analytics result of job %s: %w", jobID, ErrNotFound)
	}
	if err != nil {
		return AnalyticsResult{}, fmt.Errorf("get analytics result of job %s: %w", jobID, err)
	}
	r.CreatedAt = r.CreatedAt.UTC()
	return r, nil
}
