package analyticsparams_test

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/jengu/queue-operator/api/analyticsparams"
	jobsv1alpha1 "github.com/jengu/queue-operator/api/v1alpha1"
)

func TestParse(t *testing.T) {
	with := func(change func(*analyticsparams.Params)) analyticsparams.Params {
		p := analyticsparams.Defaults()
		change(&p)
		return p
	}
	cases := []struct {
		name    string
		typ     jobsv1alpha1.AnalysisType
		raw     map[string]string
		want    analyticsparams.Params
		wantKey string
		reason  string
	}{
		{name: "none: the defaults", typ: jobsv1alpha1.AnalysisDemandForecast, want: analyticsparams.Defaults()},
		{name: "forecast settings", typ: jobsv1alpha1.AnalysisDemandForecast,
			raw: map[string]string{"horizonDays": "14", "model": "regression", "target": "occupancy", "holdoutDays": "21"},
			want: with(func(p *analyticsparams.Params) {
				p.HorizonDays, p.Model, p.Target, p.HoldoutDays = 14, "regression", "occupancy", 21
			})},
		{name: "importance settings", typ: jobsv1alpha1.AnalysisFeatureImportance,
			raw:  map[string]string{"shuffles": "3", "folds": "4", "seed": "42", "target": "occupancy"},
			want: with(func(p *analyticsparams.Params) { p.Shuffles, p.Folds, p.Seed, p.Target = 3, 4, 42, "occupancy" })},
		{name: "rain threshold", typ: jobsv1alpha1.AnalysisWeatherImpact, raw: map[string]string{"rainThresholdMm": "2.5"},
			want: with(func(p *analyticsparams.Params) { p.RainThresholdMM = 2.5 })},
		{name: "horizon over a year", typ: jobsv1alpha1.AnalysisDemandForecast, raw: map[string]string{"horizonDays": "366"},
			wantKey: "horizonDays", reason: "must be a whole number from 1 to 365, not \"366\""},
		{name: "horizon not a number", typ: jobsv1alpha1.AnalysisDemandForecast, raw: map[string]string{"horizonDays": "soon"},
			wantKey: "horizonDays", reason: "must be a whole number from 1 to 365, not \"soon\""},
		{name: "fractional horizon", typ: jobsv1alpha1.AnalysisDemandForecast, raw: map[string]string{"horizonDays": "1.5"},
			wantKey: "horizonDays", reason: "must be a whole number from 1 to 365, not \"1.5\""},
		{name: "unknown model lists the supported ones", typ: jobsv1alpha1.AnalysisDemandForecast, raw: map[string]string{"model": "prophet"},
			wantKey: "model", reason: "must be one of holt-winters, regression, not \"prophet\""},
		{name: "unknown target", typ: jobsv1alpha1.AnalysisFeatureImportance, raw: map[string]string{"target": "revenue"},
			wantKey: "target", reason: "must be one of price, occupancy, not \"revenue\""},
		{name: "NaN threshold", typ: jobsv1alpha1.AnalysisWeatherImpact, raw: map[string]string{"rainThresholdMm": "NaN"},
			wantKey: "rainThresholdMm", reason: "must be a number from 0.1 to 100, not \"NaN\""},
		{name: "summary takes none", typ: jobsv1alpha1.AnalysisSummary, raw: map[string]string{"horizonDays": "3"},
			wantKey: "horizonDays", reason: "unknown parameter: summary takes no params"},
		{name: "a key of another type", typ: jobsv1alpha1.AnalysisWeatherImpact, raw: map[string]string{"model": "regression"},
			wantKey: "model", reason: "unknown parameter: weather-impact takes rainThresholdMm"},
		{name: "the first bad key in sorted order", typ: jobsv1alpha1.AnalysisDemandForecast,
			raw: map[string]string{"zeta": "1", "alpha": "1"}, wantKey: "alpha",
			reason: "unknown parameter: demand-forecast takes holdoutDays, horizonDays, model, target"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := analyticsparams.Parse(tc.typ, tc.raw)
			if tc.wantKey == "" {
				if err != nil {
					t.Fatalf("Parse: %v", err)
				}
				if diff := cmp.Diff(tc.want, got); diff != "" {
					t.Errorf("Parse (-want +got):\n%s", diff)
				}
				return
			}
			var perr *analyticsparams.Error
			if !errors.As(err, &perr) {
				t.Fatalf("Parse = %v, want an *Error", err)
			}
			if perr.Key != tc.wantKey || perr.Reason != tc.reason {
				t.Errorf("Parse error = {%q, %q}, want {%q, %q}", perr.Key, perr.Reason, tc.wantKey, tc.reason)
			}
		})
	}
}
