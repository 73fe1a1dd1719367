package analytics

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/jengu/queue-operator/api/analyticsparams"
	jobsv1alpha1 "github.com/jengu/queue-operator/api/v1alpha1"
	"github.com/jengu/queue-operator/store"
	"github.com/jengu/queue-operator/workers"
)

// Processor is the analytics-heavy queue's processor: it reads the job's rows, runs the
// analysis and upserts the full result under the job's namespace and id.
type Processor struct {
	store *store.Store
}

var _ workers.Processor = &Processor{}

// NewProcessor reads inputs from and writes results to db.
func NewProcessor(db *store.Store) *Processor { return &Processor{store: db} }

// ReturnValue is the job's return value: the headline (also the CR's message) and what was read.
type ReturnValue struct {
	AnalysisType jobsv1alpha1.AnalysisType `json:"analysisType"`
	Headline     string                    `json:"headline"`
	Rows         int                       `json:"rows"`
	RejectedRows int                       `json:"rejectedRows"`
}

// Process runs one analytics job: 10 rows read, the analysis' own steps, 90 analysed, 100 stored.
func (p *Processor) Process(ctx context.Context, job workers.Task, progress workers.Progress) ([]byte, error) {
	var spec jobsv1alpha1.AnalyticsJobSpec
	if err := json.Unmarshal(job.Payload, &spec); err != nil {
		return nil, workers.Permanent(fmt.Errorf("decode the job's spec: %w", err))
	}
	params, err := analyticsparams.Parse(spec.AnalysisType, spec.Params)
	if err != nil {
		return nil, workers.Permanent(err)
	}
	in, err := p.input(ctx, spec)
	if err != nil {
		return nil, err
	}
	progress(10, fmt.Sprintf("read %d rows (%d rejected)", len(in.Rows), in.RejectedRows))
	result, err := Analyse(ctx, spec.AnalysisType, params, in, progress)
	if errors.Is(err, ErrInput) {
		return nil, workers.Permanent(err)
	}
	if err != nil {
		return nil, err
	}
	progress(90, "analysed")
	doc, err := json.Marshal(result)
	if err != nil {
		return nil, fmt.Errorf("encode the result: %w", err)
	}
	err = p.store.UpsertAnalyticsResult(ctx, store.AnalyticsResult{Namespace: job.Namespace, JobID: job.ID,
		PropertyID: spec.PropertyID, AnalysisType: store.AnalysisType(spec.AnalysisType), Result: doc})
	if errors.Is(err, store.ErrInvalid) {
		return nil, workers.Permanent(err)
	}
	if err != nil {
		return nil, err
	}
	progress(100, result.Headline)
	return json.Marshal(ReturnValue{AnalysisType: spec.AnalysisType, Headline: result.Headline,
		Rows: result.Input.Rows, RejectedRows: result.Input.RejectedRows})
}

// input reads the job's stored input, checking it is the job's user's and property's, or
// without an inputRef the property's pricing rows.
func (p *Processor) input(ctx context.Context, spec jobsv1alpha1.AnalyticsJobSpec) (Input, error) {
	if spec.InputRef == "" {
		return p.pricingRows(ctx, spec)
	}
	stored, err := p.store.GetAnalyticsInput(ctx, spec.InputRef)
	if errors.Is(err, store.ErrNotFound) {
		return Input{}, workers.Permanent(fmt.Errorf("stored input %s does not exist (an input is deleted once its job finished): send the data again", spec.InputRef))
	}
	if err != nil {
		return Input{}, err
	}
	if stored.UserID != spec.UserID || stored.PropertyID != spec.PropertyID {
		return Input{}, workers.Permanent(fmt.Errorf("stored input %s belongs to another user or property than the job's", spec.InputRef))
	}
	in, err := ParseRows(stored.Rows)
	if err != nil {
		return Input{}, workers.Permanent(err)
	}
	return in, nil
}

func (p *Processor) pricingRows(ctx context.Context, spec jobsv1alpha1.AnalyticsJobSpec) (Input, error) {
	property, err := p.store.GetProperty(ctx, spec.PropertyID)
	if errors.Is(err, store.ErrNotFound) {
		return Input{}, workers.Permanent(fmt.Errorf("property %s no longer exists", spec.PropertyID))
	}
	if err != nil {
		return Input{}, err
	}
	if property.UserID != spec.UserID {
		return Input{}, workers.Permanent(fmt.Errorf("property %s does not belong to user %s", spec.PropertyID, spec.UserID))
	}
	rows, err := p.store.ListPricingRows(ctx, spec.PropertyID)
	if err != nil {
		return Input{}, err
	}
	return FromPricingRows(rows), nil
}
