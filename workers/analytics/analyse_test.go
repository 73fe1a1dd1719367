package analytics_test

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/jengu/queue-operator/api/analyticsparams"
	jobsv1alpha1 "github.com/jengu/queue-operator/api/v1alpha1"
	"github.com/jengu/queue-operator/workers/analytics"
)

func analyse(t *testing.T, typ jobsv1alpha1.AnalysisType, p analyticsparams.Params, rows []analytics.Row) analytics.Result {
	t.Helper()
	r, err := analytics.Analyse(context.Background(), typ, p, analytics.Input{Rows: rows, Source: "input"}, nil)
	if err != nil {
		t.Fatalf("Analyse %s: %v", typ, err)
	}
	return r
}

func TestSummaryMatchesHandComputedValues(t *testing.T) {
	in, err := analytics.ParseRows([]byte(`[
		{"date": "2024-01-01", "price": 100, "occupancy": 0.5},
		{"date": "2024-01-02", "price": 200, "occupancy": 1},
		{"date": "2024-01-04", "price": 300},
		{"date": "2024-01-05", "price": 400, "occupancy": 0.25}]`))
	if err != nil {
		t.Fatal(err)
	}
	r, err := analytics.Analyse(context.Background(), jobsv1alpha1.AnalysisSummary, analyticsparams.Defaults(), in, nil)
	if err != nil {
		t.Fatal(err)
	}
	s := r.Summary
	// By hand: prices 100 200 300 400: deviation √(50000/3); type-7 quantiles at h = p·3.
	price := &analytics.Stats{N: 4, Mean: 250, Median: 250, Min: 100, Max: 400, StdDev: 129.0994,
		P10: 130, P25: 175, P75: 325, P90: 370}
	// Occupancy .25 .5 1: mean 7/12, variance (1/9 + 1/144 + 25/144)/2; h = p·2.
	occupancy := &analytics.Stats{N: 3, Mean: 0.583333, Median: 0.5, Min: 0.25, Max: 1, StdDev: 0.381881,
		P10: 0.3, P25: 0.375, P75: 0.75, P90: 0.9}
	// RevPAR 50 200 100 (the Thursday has no occupancy).
	revpar := &analytics.Stats{N: 3, Mean: 116.6667, Median: 100, Min: 50, Max: 200, StdDev: 76.37626,
		P10: 60, P25: 75, P75: 150, P90: 180}
	want := analytics.Summary{N: 4, From: "2024-01-01", To: "2024-01-05", MissingDays: 1, MissingDates: []string{"2024-01-03"},
		Overall: analytics.Metrics{Price: price, Occupancy: occupancy, RevPAR: revpar},
		ByWeekday: []analytics.Group{
			{Key: "Monday", Metrics: analytics.Metrics{Price: one(100), Occupancy: one(0.5), RevPAR: one(50)}},
			{Key: "Tuesday", Metrics: analytics.Metrics{Price: one(200), Occupancy: one(1), RevPAR: one(200)}},
			{Key: "Thursday", Metrics: analytics.Metrics{Price: one(300)}},
			{Key: "Friday", Metrics: analytics.Metrics{Price: one(400), Occupancy: one(0.25), RevPAR: one(100)}},
		},
		ByMonth: []analytics.Group{{Key: "January", Metrics: analytics.Metrics{Price: price, Occupancy: occupancy, RevPAR: revpar}}},
	}
	if diff := cmp.Diff(want, *s, approx); diff != "" {
		t.Errorf("summary (-want +got):\n%s", diff)
	}
	if want := "summary of 4 days 2024-01-01..2024-01-05, mean price 250.00, mean occupancy 58.3%, 1 days missing"; r.Headline != want {
		t.Errorf("headline = %q, want %q", r.Headline, want)
	}
}

// one is the stats of a single value: no deviation.
func one(v float64) *analytics.Stats {
	f := analytics.Float(v)
	return &analytics.Stats{N: 1, Mean: f, Median: f, Min: f, Max: f, StdDev: analytics.Float(nan), P10: f, P25: f, P75: f, P90: f}
}

func TestWeatherImpactRecoversAPlantedRelation(t *testing.T) {
	rows := syntheticDays(365, true)
	w := analyse(t, jobsv1alpha1.AnalysisWeatherImpact, analyticsparams.Defaults(), rows).WeatherImpact
	rel := relation(t, w, "price", "temp_max_c")
	if !(rel.PearsonR > 0.5 && rel.SpearmanRho > 0.5 && rel.PValue < 0.01) {
		t.Errorf("price vs temp_max_c: r=%v rho=%v p=%v, want a strong positive relation with p < 0.01", rel.PearsonR, rel.SpearmanRho, rel.PValue)
	}
	// The price rises 3 per °C of the day's maximum (the noise in it attenuates the slope a little).
	if !(rel.SlopeLow < 3 && 2 < rel.SlopeHigh && rel.SlopeLow < rel.Slope && rel.Slope < rel.SlopeHigh) {
		t.Errorf("slope %v, 95%% CI [%v, %v], want one around 3 (2 to 3)", rel.Slope, rel.SlopeLow, rel.SlopeHigh)
	}
	if !strings.HasPrefix(rel.Conclusion, "price rises with temp_max_c") {
		t.Errorf("conclusion %q", rel.Conclusion)
	}
}

func TestWeatherImpactFindsNothingInNoise(t *testing.T) {
	rows := syntheticDays(365, false)
	// Prices that ignore the weather and the weekday: pure noise.
	rng := rand.New(rand.NewPCG(3, 5))
	for i := range rows {
		rows[i].Price = 150 + 5*rng.NormFloat64()
		rows[i].Occupancy = nan
	}
	w := analyse(t, jobsv1alpha1.AnalysisWeatherImpact, analyticsparams.Defaults(), rows).WeatherImpact
	for _, rel := range w.Relations {
		if rel.PValue < 0.01 {
			t.Errorf("%s vs %s: p=%v in noise", rel.Target, rel.Feature, rel.PValue)
		}
		if !strings.HasPrefix(rel.Conclusion, "no evidence") {
			t.Errorf("conclusion %q", rel.Conclusion)
		}
	}
	if len(w.Rain) != 1 || w.Rain[0].PValue < 0.01 {
		t.Errorf("rain effects %+v, want one for price with no evidence", w.Rain)
	}
}

func TestWeatherImpactComparesRainyAndDryDays(t *testing.T) {
	rows := syntheticDays(365, false)
	rng := rand.New(rand.NewPCG(1, 2))
	rainy := 0
	for i := range rows {
		rows[i].Price = 150 + 5*rng.NormFloat64()
		if rows[i].PrecipitationMM >= 1 {
			rows[i].Price -= 20
			rainy++
		}
	}
	w := analyse(t, jobsv1alpha1.AnalysisWeatherImpact, analyticsparams.Defaults(), rows).WeatherImpact
	rain := w.Rain[0]
	if rain.Target != "price" || rain.RainyDays != rainy || rain.DryDays != 365-rainy {
		t.Fatalf("rain effect %+v, want price on %d rainy days", rain, rainy)
	}
	if math.Abs(float64(rain.Difference)+20) > 2 || rain.PValue >= 0.01 {
		t.Errorf("difference %v (p=%v), want about -20 with p < 0.01", rain.Difference, rain.PValue)
	}
}

func TestWeatherImpactSaysWhenTooFewDays(t *testing.T) {
	rows := syntheticDays(6, true)
	w := analyse(t, jobsv1alpha1.AnalysisWeatherImpact, analyticsparams.Defaults(), rows).WeatherImpact
	for _, rel := range w.Relations {
		if rel.Conclusion != "too few days (n=6) to conclude anything: at least 10 are needed" || !math.IsNaN(float64(rel.PValue)) {
			t.Errorf("%s vs %s: %q, p=%v", rel.Target, rel.Feature, rel.Conclusion, rel.PValue)
		}
	}
	if !strings.HasPrefix(w.Rain[0].Conclusion, "too few days") {
		t.Errorf("rain: %q", w.Rain[0].Conclusion)
	}
}

// TestWelchMatchesAKnownAnswer checks the t statistic and degrees of freedom against values
// computed by hand for two small samples.
func TestWelchMatchesAKnownAnswer(t *testing.T) {
	rows := make([]analytics.Row, 0, 20)
	// Dry: 10 11 12 13 14 (mean 12, variance 2.5); rainy: 5 7 9 11 13 (mean 9, variance 10).
	dry, wet := []float64{10, 11, 12, 13, 14}, []float64{5, 7, 9, 11, 13}
	for i := range 5 {
		r := empty(date("2024-03-01").AddDate(0, 0, 2*i))
		r.Price, r.PrecipitationMM, r.TempMaxC = dry[i], 0, 20
		rows = append(rows, r)
		r = empty(date("2024-03-02").AddDate(0, 0, 2*i))
		r.Price, r.PrecipitationMM, r.TempMaxC = wet[i], 5, 20
		rows = append(rows, r)
	}
	rain := analyse(t, jobsv1alpha1.AnalysisWeatherImpact, analyticsparams.Defaults(), rows).WeatherImpact.Rain[0]
	// se² = 10/5 + 2.5/5 = 2.5, t = -3/√2.5; df = 2.5² / (2²/4 + 0.5²/4) = 6.25/1.0625.
	want := analytics.RainEffect{Target: "price", RainyDays: 5, DryDays: 5, RainyMean: 9, DryMean: 12, Difference: -3,
		T: analytics.Float(-3 / math.Sqrt(2.5)), DF: 5.882353, PValue: rain.PValue, Conclusion: rain.Conclusion}
	if diff := cmp.Diff(want, rain, approx); diff != "" {
		t.Errorf("rain effect (-want +got):\n%s", diff)
	}
	// t = -1.897 on 5.88 df: two-sided p between 0.10 (t=2.015 at 5 df) and 0.05 (t=1.943 at 6 df is 0.10).
	if !(rain.PValue > 0.1 && rain.PValue < 0.12) {
		t.Errorf("p = %v, want about 0.107", rain.PValue)
	}
}

func relation(t *testing.T, w *analytics.WeatherImpact, target, feature string) analytics.Relation {
	t.Helper()
	for _, r := range w.Relations {
		if r.Target == target && r.Feature == feature {
			return r
		}
	}
	t.Fatalf("no relation of %s to %s in %+v", target, feature, w.Relations)
	return analytics.Relation{}
}

func TestDemandForecastBeatsSeasonalNaive(t *testing.T) {
	rows := syntheticDays(730, false)
	for _, model := range analyticsparams.Models {
		t.Run(string(model), func(t *testing.T) {
			p := analyticsparams.Defaults()
			p.Model = model
			r := analyse(t, jobsv1alpha1.AnalysisDemandForecast, p, rows)
			f := r.Forecast
			b := f.Backtest
			t.Logf("%s: %s; fit %v", model, r.Headline, f.Fit)
			if b.HoldoutDays != 30 || b.MAPE > 5 || b.Skill <= 1 {
				t.Errorf("backtest %+v, want MAPE <= 5%% on 30 days and better than seasonal naive", b)
			}
			if len(f.Points) != 30 || f.Points[0].Date != "2024-01-01" {
				t.Fatalf("forecast of %d days from %s, want 30 from 2024-01-01", len(f.Points), f.Points[0].Date)
			}
			for _, pt := range f.Points {
				if !(pt.Low95 < pt.Low80 && pt.Low80 < pt.Value && pt.Value < pt.High80 && pt.High80 < pt.High95) {
					t.Errorf("%s: intervals out of order: %+v", pt.Date, pt)
				}
			}
			// 2024-01-06 is a Saturday: the weekly pattern (+14 over the week's mean of +1.86)
			// is forecast.
			sat, wed := f.Points[5], f.Points[2]
			if diff := float64(sat.Value - wed.Value); math.Abs(diff-20) > 4 {
				t.Errorf("Saturday %v - Wednesday %v = %v, want about 20", sat.Value, wed.Value, diff)
			}
		})
	}
}

// TestHoltWintersContinuesAnExactSeries: without noise, a trend plus a weekly pattern is
// forecast exactly.
func TestHoltWintersContinuesAnExactSeries(t *testing.T) {
	var rows []analytics.Row
	for i := range 10 * 7 {
		r := empty(date("2024-01-01").AddDate(0, 0, i))
		r.Price = 100 + 0.5*float64(i) + weeklyPattern[r.Date.Weekday()]
		rows = append(rows, r)
	}
	p := analyticsparams.Defaults()
	p.HorizonDays = 14
	f := analyse(t, jobsv1alpha1.AnalysisDemandForecast, p, rows).Forecast
	for h, pt := range f.Points {
		d := date(pt.Date)
		want := 100 + 0.5*float64(70+h) + weeklyPattern[d.Weekday()]
		if math.Abs(float64(pt.Value)-want) > 0.01 {
			t.Errorf("%s: forecast %v, want %v", pt.Date, pt.Value, want)
		}
	}
	if f.Backtest.MAPE > 0.01 {
		t.Errorf("backtest MAPE %v%%, want 0", f.Backtest.MAPE)
	}
}

func TestFeatureImportanceRanksAPlantedRelationFirst(t *testing.T) {
	rows := syntheticDays(730, true)
	r := analyse(t, jobsv1alpha1.AnalysisFeatureImportance, analyticsparams.Defaults(), rows)
	fi := r.FeatureImportance
	t.Log(r.Headline)
	for _, f := range fi.Features {
		t.Logf("%-22s %.4f ± %.4f", f.Feature, f.Importance, f.Spread)
	}
	if fi.Features[0].Feature != "temp_max_c" {
		t.Errorf("first feature %s, want temp_max_c", fi.Features[0].Feature)
	}
	if fi.Features[0].Coefficients["temp_max_c"] <= 0 {
		t.Errorf("temp_max_c's coefficient %v, want positive", fi.Features[0].Coefficients["temp_max_c"])
	}
	if fi.N != 730 || fi.R2 < 0.8 || fi.Features[0].Spread <= 0 {
		t.Errorf("n=%d R²=%v spread %v, want 730 days, R² >= 0.8 and a spread", fi.N, fi.R2, fi.Features[0].Spread)
	}
	// Deterministic: the same input gives the same ranking and numbers.
	again := analyse(t, jobsv1alpha1.AnalysisFeatureImportance, analyticsparams.Defaults(), rows).FeatureImportance
	if diff := cmp.Diff(fi, again); diff != "" {
		t.Errorf("a second run differs (-first +second):\n%s", diff)
	}
}

func TestBadInputsSayWhatIsMissing(t *testing.T) {
	noWeather := withoutEnrichment(syntheticDays(60, false))
	cases := []struct {
		name string
		typ  jobsv1alpha1.AnalysisType
		doc  string
		rows []analytics.Row
		want string
	}{
		{name: "no rows", typ: jobsv1alpha1.AnalysisSummary, doc: `[]`, want: "no usable row (0 rejected)"},
		{name: "wrong types", typ: jobsv1alpha1.AnalysisSummary, doc: `[{"date": "2024-01-01", "price": "cheap"}, {"date": 20240102}]`,
			want: "no usable row (2 rejected; the first, row 0: price: must be a number, not a JSON string)"},
		{name: "not objects", typ: jobsv1alpha1.AnalysisSummary, doc: `[1, "x"]`,
			want: "no usable row (2 rejected; the first, row 0: must be a JSON object, not a JSON number)"},
		{name: "dates only", typ: jobsv1alpha1.AnalysisSummary, doc: `[{"date": "2024-01-01"}]`,
			want: "no row has a price or an occupancy: summary needs at least one"},
		{name: "weather-impact without weather", typ: jobsv1alpha1.AnalysisWeatherImpact, rows: noWeather,
			want: "no row with a price or an occupancy has weather (temp_max_c, temp_min_c, precipitation_mm): enrich the property first"},
		{name: "feature-importance without enrichment", typ: jobsv1alpha1.AnalysisFeatureImportance, rows: noWeather,
			want: "no enrichment feature (temp_max_c, temp_min_c, precipitation_mm, is_holiday, days_to_next_holiday) is known on enough days with a price: enrich the property first"},
		{name: "forecast of too short a series", typ: jobsv1alpha1.AnalysisDemandForecast, rows: noWeather[:20],
			want: "demand-forecast needs at least 28 days of price (21 to fit, 7 held out for the backtest); the rows span 20"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in := analytics.Input{Rows: tc.rows}
			if tc.doc != "" {
				var err error
				if in, err = analytics.ParseRows([]byte(tc.doc)); err != nil {
					t.Fatal(err)
				}
			}
			_, err := analytics.Analyse(context.Background(), tc.typ, analyticsparams.Defaults(), in, nil)
			if !errors.Is(err, analytics.ErrInput) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Analyse = %v, want ErrInput saying %q", err, tc.want)
			}
		})
	}
}

func TestParseRowsCountsWhatItRejects(t *testing.T) {
	in, err := analytics.ParseRows([]byte(`[
		{"date": "2024-01-02", "price": 120, "occupancy": 0.8, "temp_max_c": 14.5, "is_holiday": false, "note": "kept"},
		{"date": "2024-01-01", "price": 100},
		{"date": "2024-01-01", "price": 101},
		{"date": "01/03/2024", "price": 1},
		{"price": 1},
		{"date": "2024-01-04", "occupancy": 85},
		{"date": "2024-01-05", "price": -3},
		{"date": "2024-01-06", "is_holiday": "yes"}]`))
	if err != nil {
		t.Fatal(err)
	}
	want := []analytics.Rejected{
		{Row: 2, Reason: "date 2024-01-01 repeats row 1"},
		{Row: 3, Reason: `date: "01/03/2024" is not a date (YYYY-MM-DD)`},
		{Row: 4, Reason: "date: required (YYYY-MM-DD)"},
		{Row: 5, Reason: "occupancy: 85 is not a ratio from 0 to 1 (send 0.85 for 85%)"},
		{Row: 6, Reason: "price: -3 is negative"},
		{Row: 7, Reason: "is_holiday: must be true or false, not a JSON string"},
	}
	if diff := cmp.Diff(want, in.Rejected); diff != "" || in.RejectedRows != 6 {
		t.Errorf("rejected %d (-want +got):\n%s", in.RejectedRows, diff)
	}
	if len(in.Rows) != 2 || !in.Rows[0].Date.Equal(date("2024-01-01")) || in.Rows[1].TempMaxC != 14.5 || in.Rows[1].IsHoliday != 0 {
		t.Errorf("rows %+v, want 2024-01-01 then 2024-01-02 with its features", in.Rows)
	}
}

func TestAnalysesStopWhenTheJobsContextEnds(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	rows := syntheticDays(730, true)
	for _, typ := range []jobsv1alpha1.AnalysisType{jobsv1alpha1.AnalysisDemandForecast, jobsv1alpha1.AnalysisFeatureImportance} {
		_, err := analytics.Analyse(ctx, typ, analyticsparams.Defaults(), analytics.Input{Rows: rows}, nil)
		if !errors.Is(err, context.Canceled) {
			t.Errorf("%s on a cancelled context = %v, want context.Canceled", typ, err)
		}
	}
}
