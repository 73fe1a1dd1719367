package analytics

import (
	"fmt"
	"math"

	"gonum.org/v1/gonum/stat"
)

// Below these counts a test says it cannot conclude rather than report a number nobody should
// act on.
const (
	minCorrelationDays = 10
	minRainGroupDays   = 5
	// significance is the p-value under which a conclusion says there is a relation.
	significance = 0.05
)

// WeatherImpact relates price and occupancy to the day's weather.
type WeatherImpact struct {
	Relations []Relation `json:"relations"`
	// RainThresholdMM: a day with at least this much precipitation is rainy.
	RainThresholdMM Float        `json:"rainThresholdMm"`
	Rain            []RainEffect `json:"rain"`
}

// Relation is one target against one weather feature, on the days with both.
type Relation struct {
	Target  string `json:"target"`
	Feature string `json:"feature"`
	N       int    `json:"n"`
	// PearsonR with its two-sided p-value (t-test of r = 0); SpearmanRho on ranks.
	PearsonR    Float `json:"pearsonR"`
	PValue      Float `json:"pValue"`
	SpearmanRho Float `json:"spearmanRho"`
	// Slope of the OLS line target = a + slope × feature, with its 95% confidence interval.
	Slope      Float  `json:"slope"`
	SlopeLow   Float  `json:"slopeLow95"`
	SlopeHigh  Float  `json:"slopeHigh95"`
	Conclusion string `json:"conclusion"`
}

// RainEffect compares rainy with dry days (Welch's t-test, unequal variances).
type RainEffect struct {
	Target    string `json:"target"`
	RainyDays int    `json:"rainyDays"`
	DryDays   int    `json:"dryDays"`
	RainyMean Float  `json:"rainyMean"`
	DryMean   Float  `json:"dryMean"`
	// Difference is rainy minus dry.
	Difference Float  `json:"difference"`
	T          Float  `json:"t"`
	DF         Float  `json:"df"`
	PValue     Float  `json:"pValue"`
	Conclusion string `json:"conclusion"`
}

// weatherImpact needs at least one day with a target and a weather feature.
func weatherImpact(rows []Row, rainThreshold float64) (WeatherImpact, error) {
	targets := []column{priceColumn, occupancyColumn}
	if priceColumn.count(rows)+occupancyColumn.count(rows) == 0 {
		return WeatherImpact{}, inputErrorf("no row has a price or an occupancy: weather-impact relates them to the weather")
	}
	w := WeatherImpact{RainThresholdMM: Float(rainThreshold)}
	for _, target := range targets {
		for _, feature := range weatherColumns {
			xs, ys := pairs(rows, feature, target)
			if len(xs) > 0 {
				w.Relations = append(w.Relations, relate(target.name, feature.name, xs, ys))
			}
		}
		if r, ok := rainEffect(rows, target, rainThreshold); ok {
			w.Rain = append(w.Rain, r)
		}
	}
	if len(w.Relations) == 0 {
		return WeatherImpact{}, inputErrorf("no row with a price or an occupancy has weather (temp_max_c, temp_min_c, precipitation_mm): %s", enrichHint)
	}
	return w, nil
}

// relate tests the relation of ys to xs.
func relate(target, feature string, xs, ys []float64) Relation {
	n := len(xs)
	r := Relation{Target: target, Feature: feature, N: n, PearsonR: Float(math.NaN()), PValue: Float(math.NaN()),
		SpearmanRho: Float(math.NaN()), Slope: Float(math.NaN()), SlopeLow: Float(math.NaN()), SlopeHigh: Float(math.NaN())}
	if n < minCorrelationDays {
		r.Conclusion = fmt.Sprintf("too few days (n=%d) to conclude anything: at least %d are needed", n, minCorrelationDays)
		return r
	}
	if stat.Variance(xs, nil) == 0 || stat.Variance(ys, nil) == 0 {
		r.Conclusion = fmt.Sprintf("%s or %s never changes on these days: nothing to relate", target, feature)
		return r
	}
	pearson := stat.Correlation(xs, ys, nil)
	df := float64(n - 2)
	r.PearsonR, r.PValue = Float(pearson), Float(twoSidedP(pearson*math.Sqrt(df/(1-pearson*pearson)), df))
	r.SpearmanRho = Float(stat.Correlation(ranks(xs), ranks(ys), nil))
	slope, halfWidth := olsSlope(xs, ys)
	r.Slope, r.SlopeLow, r.SlopeHigh = Float(slope), Float(slope-halfWidth), Float(slope+halfWidth)
	r.Conclusion = relationConclusion(r)
	return r
}

// olsSlope fits ys = a + b xs and returns b with the half-width of its 95% confidence interval.
func olsSlope(xs, ys []float64) (slope, halfWidth float64) {
	intercept, slope := stat.LinearRegression(xs, ys, nil, false)
	meanX := stat.Mean(xs, nil)
	var ssr, sxx float64
	for i, x := range xs {
		e := ys[i] - intercept - slope*x
		ssr += e * e
		sxx += (x - meanX) * (x - meanX)
	}
	df := float64(len(xs) - 2)
	se := math.Sqrt(ssr / df / sxx)
	return slope, tQuantile(0.975, df) * se
}

func relationConclusion(r Relation) string {
	if !(float64(r.PValue) < significance) {
		return fmt.Sprintf("no evidence that %s moves with %s (r=%.2f, p=%s, n=%d)", r.Target, r.Feature,
			float64(r.PearsonR), pText(float64(r.PValue)), r.N)
	}
	way := "rises"
	if r.Slope < 0 {
		way = "falls"
	}
	return fmt.Sprintf("%s %s with %s: %+.3g per unit (95%% CI %.3g to %.3g), r=%.2f, p=%s, n=%d", r.Target, way,
		r.Feature, float64(r.Slope), float64(r.SlopeLow), float64(r.SlopeHigh), float64(r.PearsonR),
		pText(float64(r.PValue)), r.N)
}

// rainEffect compares the target on rainy and dry days; false when no day has both.
func rainEffect(rows []Row, target column, threshold float64) (RainEffect, bool) {
	var rainy, dry []float64
	for _, r := range rows {
		y := target.get(r)
		if math.IsNaN(y) || math.IsNaN(r.PrecipitationMM) {
			continue
		}
		if r.PrecipitationMM >= threshold {
			rainy = append(rainy, y)
		} else {
			dry = append(dry, y)
		}
	}
	if len(rainy)+len(dry) == 0 {
		return RainEffect{}, false
	}
	e := RainEffect{Target: target.name, RainyDays: len(rainy), DryDays: len(dry), RainyMean: Float(math.NaN()),
		DryMean: Float(math.NaN()), Difference: Float(math.NaN()), T: Float(math.NaN()), DF: Float(math.NaN()),
		PValue: Float(math.NaN())}
	if len(rainy) < minRainGroupDays || len(dry) < minRainGroupDays {
		e.Conclusion = fmt.Sprintf("too few days (%d rainy, %d dry) to conclude anything: at least %d of each are needed",
			len(rainy), len(dry), minRainGroupDays)
		return e, true
	}
	t, df, diff := welch(rainy, dry)
	e.RainyMean, e.DryMean = Float(stat.Mean(rainy, nil)), Float(stat.Mean(dry, nil))
	e.Difference, e.T, e.DF, e.PValue = Float(diff), Float(t), Float(df), Float(twoSidedP(t, df))
	if float64(e.PValue) < significance {
		e.Conclusion = fmt.Sprintf("%s is %.3g %s on rainy days (p=%s)", target.name, math.Abs(diff),
			map[bool]string{true: "higher", false: "lower"}[diff > 0], pText(float64(e.PValue)))
	} else {
		e.Conclusion = fmt.Sprintf("no evidence that rain changes %s (difference %.3g, p=%s)", target.name, diff,
			pText(float64(e.PValue)))
	}
	return e, true
}

// welch is Welch's t statistic of mean(a) - mean(b), its Welch–Satterthwaite degrees of freedom
// and the difference.
func welch(a, b []float64) (t, df, diff float64) {
	ma, va := stat.MeanVariance(a, nil)
	mb, vb := stat.MeanVariance(b, nil)
	qa, qb := va/float64(len(a)), vb/float64(len(b))
	diff = ma - mb
	se2 := qa + qb
	if se2 == 0 {
		return math.NaN(), math.NaN(), diff
	}
	df = se2 * se2 / (qa*qa/float64(len(a)-1) + qb*qb/float64(len(b)-1))
	return diff / math.Sqrt(se2), df, diff
}

func pText(p float64) string {
	switch {
	case math.IsNaN(p):
		return "n/a"
	case p < 0.001:
		return "<0.001"
	}
	return fmt.Sprintf("%.3f", p)
}

func (w WeatherImpact) headline() string {
	var strongest *Relation
	for i, r := range w.Relations {
		if float64(r.PValue) < significance && (strongest == nil || math.Abs(float64(r.PearsonR)) > math.Abs(float64(strongest.PearsonR))) {
			strongest = &w.Relations[i]
		}
	}
	if strongest == nil {
		return fmt.Sprintf("weather impact: no significant relation in %d tests", len(w.Relations))
	}
	return fmt.Sprintf("weather impact: strongest %s vs %s, r=%.2f (p=%s, n=%d)", strongest.Target, strongest.Feature,
		float64(strongest.PearsonR), pText(float64(strongest.PValue)), strongest.N)
}
