package analytics_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/jengu/queue-operator/api/analyticsparams"
	jobsv1alpha1 "github.com/jengu/queue-operator/api/v1alpha1"
	"github.com/jengu/queue-operator/workers/analytics"
)

// threeYears is the benchmark input: 1,096 daily rows with weather.
const threeYears = 1096

// BenchmarkAnalyse runs each analysis on three years of daily rows, default params (the result's
// JSON encoding included, as the processor stores it).
func BenchmarkAnalyse(b *testing.B) {
	in := analytics.Input{Rows: syntheticDays(threeYears, true), Source: "input"}
	for _, typ := range analyticsparams.AnalysisTypes {
		b.Run(string(typ), func(b *testing.B) {
			for b.Loop() {
				r, err := analytics.Analyse(context.Background(), typ, analyticsparams.Defaults(), in, nil)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := json.Marshal(r); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("demand-forecast-regression", func(b *testing.B) {
		p := analyticsparams.Defaults()
		p.Model = analyticsparams.ModelRegression
		for b.Loop() {
			if _, err := analytics.Analyse(context.Background(), jobsv1alpha1.AnalysisDemandForecast, p, in, nil); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkParseRows reads three years of stored rows (the JSON the facade saved).
func BenchmarkParseRows(b *testing.B) {
	type row struct {
		Date      string  `json:"date"`
		Price     float64 `json:"price"`
		Occupancy float64 `json:"occupancy"`
		TempMaxC  float64 `json:"temp_max_c"`
		TempMinC  float64 `json:"temp_min_c"`
		Precip    float64 `json:"precipitation_mm"`
		IsHoliday bool    `json:"is_holiday"`
	}
	var rows []row
	for _, r := range syntheticDays(threeYears, true) {
		rows = append(rows, row{r.Date.Format("2006-01-02"), r.Price, r.Occupancy, r.TempMaxC, r.TempMinC, r.PrecipitationMM, r.IsHoliday == 1})
	}
	doc, _ := json.Marshal(rows)
	b.SetBytes(int64(len(doc)))
	for b.Loop() {
		in, err := analytics.ParseRows(doc)
		if err != nil || len(in.Rows) != threeYears {
			b.Fatalf("%d rows, %v", len(in.Rows), err)
		}
	}
}
