// Package analytics is the analytics-heavy queue's processor: summary, weather-impact,
// demand-forecast and feature-importance of a property's daily rows, on gonum. Every analysis
// is deterministic (randomness is seeded from the params), honours the job's context inside its
// loops, and writes its full result to analytics_results with an idempotent upsert; the job's
// return value and message carry a one-line headline.
package analytics

import (
	"context"
	"fmt"

	"github.com/jengu/queue-operator/api/analyticsparams"
	jobsv1alpha1 "github.com/jengu/queue-operator/api/v1alpha1"
)

// Result is the stored outcome of an analysis: what went in and the analysis' own section.
type Result struct {
	AnalysisType jobsv1alpha1.AnalysisType `json:"analysisType"`
	Headline     string                    `json:"headline"`
	Input        InputReport               `json:"input"`
	// One of these, by AnalysisType.
	Summary           *Summary           `json:"summary,omitempty"`
	WeatherImpact     *WeatherImpact     `json:"weatherImpact,omitempty"`
	Forecast          *Forecast          `json:"forecast,omitempty"`
	FeatureImportance *FeatureImportance `json:"featureImportance,omitempty"`
}

// InputReport says what the analysis read.
type InputReport struct {
	Source       string     `json:"source"`
	Rows         int        `json:"rows"`
	RejectedRows int        `json:"rejectedRows"`
	Rejected     []Rejected `json:"rejected,omitempty"`
}

// Analyse runs the analysis on the input. Errors matching ErrInput say the input cannot give
// it; others are the context's.
func Analyse(ctx context.Context, t jobsv1alpha1.AnalysisType, p analyticsparams.Params, in Input, progress func(int, string)) (Result, error) {
	if progress == nil {
		progress = func(int, string) {}
	}
	r := Result{AnalysisType: t, Input: InputReport{Source: in.Source, Rows: len(in.Rows),
		RejectedRows: in.RejectedRows, Rejected: in.Rejected}}
	if len(in.Rows) == 0 {
		return Result{}, inputErrorf("no usable row (%d rejected%s)", in.RejectedRows, firstReason(in))
	}
	switch t {
	case jobsv1alpha1.AnalysisSummary:
		s, err := summarize(in.Rows)
		r.Summary, r.Headline = &s, s.headline()
		return r, err
	case jobsv1alpha1.AnalysisWeatherImpact:
		w, err := weatherImpact(in.Rows, p.RainThresholdMM)
		r.WeatherImpact, r.Headline = &w, w.headline()
		return r, err
	case jobsv1alpha1.AnalysisDemandForecast:
		f, err := demandForecast(ctx, in.Rows, p, progress)
		r.Forecast, r.Headline = &f, f.headline()
		return r, err
	case jobsv1alpha1.AnalysisFeatureImportance:
		f, err := featureImportance(ctx, in.Rows, p)
		r.FeatureImportance, r.Headline = &f, f.headline()
		return r, err
	}
	return Result{}, inputErrorf("unknown analysis type %q", t)
}

func firstReason(in Input) string {
	if len(in.Rejected) == 0 {
		return ""
	}
	return fmt.Sprintf("; the first, row %d: %s", in.Rejected[0].Row, in.Rejected[0].Reason)
}
