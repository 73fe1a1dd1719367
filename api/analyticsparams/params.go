// Package analyticsparams is the one definition of an AnalyticsJob's params: which keys each
// analysis type takes, their defaults and bounds. The REST facade checks a request with it (a 400
// naming the key) and the analytics processor reads the CR's params with it (a kubectl-made job
// is checked the same way), so the two never disagree. It imports nothing heavier than the API
// types.
package analyticsparams

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	jobsv1alpha1 "github.com/jengu/queue-operator/api/v1alpha1"
)

// Target is the column a forecast or a feature-importance model explains.
type Target string

const (
	TargetPrice     Target = "price"
	TargetOccupancy Target = "occupancy"
)

// Model is a demand-forecast model.
type Model string

const (
	// ModelHoltWinters is additive Holt-Winters with a weekly season.
	ModelHoltWinters Model = "holt-winters"
	// ModelRegression is a linear regression on trend, weekday, month and holiday terms.
	ModelRegression Model = "regression"
)

// AnalysisTypes are the analyses that have params defined here: every AnalysisType.
var AnalysisTypes = []jobsv1alpha1.AnalysisType{jobsv1alpha1.AnalysisSummary, jobsv1alpha1.AnalysisWeatherImpact,
	jobsv1alpha1.AnalysisDemandForecast, jobsv1alpha1.AnalysisFeatureImportance}

// Models lists the supported demand-forecast models.
var Models = []Model{ModelHoltWinters, ModelRegression}

// Params are an analysis' settings, defaults filled in. Each field is used by the types its
// key lists.
type Params struct {
	// RainThresholdMM (weather-impact, rainThresholdMm): a day with at least this much
	// precipitation is rainy.
	RainThresholdMM float64
	// HorizonDays (demand-forecast, horizonDays): days forecast after the last observed one.
	HorizonDays int
	// HoldoutDays (demand-forecast, holdoutDays): the tail held out for the backtest; 0 picks
	// min(horizonDays, a fifth of the series), at least 7.
	HoldoutDays int
	// Model (demand-forecast, model).
	Model Model
	// Target (demand-forecast, feature-importance, target).
	Target Target
	// Shuffles (feature-importance, shuffles): permutations per feature (K).
	Shuffles int
	// Folds (feature-importance, folds): cross-validation folds choosing the ridge lambda.
	Folds int
	// Seed (feature-importance, seed) seeds the permutations, so a job re-run gives the same result.
	Seed uint64
}

// Defaults of the params.
const (
	DefaultRainThresholdMM = 1.0
	DefaultHorizonDays     = 30
	DefaultModel           = ModelHoltWinters
	DefaultTarget          = TargetPrice
	DefaultShuffles        = 10
	DefaultFolds           = 5
	DefaultSeed            = 1
)

// Error is a param that is unknown to the analysis type or has a value out of bounds.
type Error struct {
	// Key is the param's key, as the request spelt it.
	Key    string
	Reason string
}

func (e *Error) Error() string { return "params." + e.Key + ": " + e.Reason }

// key is one param: the types that take it and how its value is read into Params.
type key struct {
	name  string
	types []jobsv1alpha1.AnalysisType
	set   func(p *Params, value string) error
}

var (
	forecast   = []jobsv1alpha1.AnalysisType{jobsv1alpha1.AnalysisDemandForecast}
	importance = []jobsv1alpha1.AnalysisType{jobsv1alpha1.AnalysisFeatureImportance}
	weather    = []jobsv1alpha1.AnalysisType{jobsv1alpha1.AnalysisWeatherImpact}
	targeted   = []jobsv1alpha1.AnalysisType{jobsv1alpha1.AnalysisDemandForecast, jobsv1alpha1.AnalysisFeatureImportance}
)

// keys are every param, in the order the error messages list them.
var keys = []key{
	{"folds", importance, intIn(2, 20, func(p *Params, v int) { p.Folds = v })},
	{"holdoutDays", forecast, intIn(7, 365, func(p *Params, v int) { p.HoldoutDays = v })},
	{"horizonDays", forecast, intIn(1, 365, func(p *Params, v int) { p.HorizonDays = v })},
	{"model", forecast, oneOf(Models, func(p *Params, v Model) { p.Model = v })},
	{"rainThresholdMm", weather, floatIn(0.1, 100, func(p *Params, v float64) { p.RainThresholdMM = v })},
	{"seed", importance, intIn(0, 1<<31-1, func(p *Params, v int) { p.Seed = uint64(v) })},
	{"shuffles", importance, intIn(1, 100, func(p *Params, v int) { p.Shuffles = v })},
	{"target", targeted, oneOf([]Target{TargetPrice, TargetOccupancy}, func(p *Params, v Target) { p.Target = v })},
}

// Defaults are the params of a request that sets none.
func Defaults() Params {
	return Params{RainThresholdMM: DefaultRainThresholdMM, HorizonDays: DefaultHorizonDays, Model: DefaultModel,
		Target: DefaultTarget, Shuffles: DefaultShuffles, Folds: DefaultFolds, Seed: DefaultSeed}
}

// Keys lists the params the analysis type takes.
func Keys(t jobsv1alpha1.AnalysisType) []string {
	var names []string
	for _, k := range keys {
		if slices.Contains(k.types, t) {
			names = append(names, k.name)
		}
	}
	return names
}

// Parse reads the CR's params (strings; the facade writes numbers in their JSON form) for the
// analysis type, over the defaults. The first bad key, in sorted order, is an *Error.
func Parse(t jobsv1alpha1.AnalysisType, raw map[string]string) (Params, error) {
	p := Defaults()
	names := make([]string, 0, len(raw))
	for name := range raw {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		i := slices.IndexFunc(keys, func(k key) bool { return k.name == name && slices.Contains(k.types, t) })
		if i < 0 {
			return Params{}, &Error{Key: name, Reason: unknown(t)}
		}
		if err := keys[i].set(&p, strings.TrimSpace(raw[name])); err != nil {
			return Params{}, &Error{Key: name, Reason: err.Error()}
		}
	}
	return p, nil
}

func unknown(t jobsv1alpha1.AnalysisType) string {
	taken := Keys(t)
	if len(taken) == 0 {
		return fmt.Sprintf("unknown parameter: %s takes no params", t)
	}
	return fmt.Sprintf("unknown parameter: %s takes %s", t, strings.Join(taken, ", "))
}

func intIn(lo, hi int, set func(*Params, int)) func(*Params, string) error {
	return func(p *Params, value string) error {
		v, err := strconv.Atoi(value)
		if err != nil || v < lo || v > hi {
			return fmt.Errorf("must be a whole number from %d to %d, not %q", lo, hi, value)
		}
		set(p, v)
		return nil
	}
}

func floatIn(lo, hi float64, set func(*Params, float64)) func(*Params, string) error {
	return func(p *Params, value string) error {
		v, err := strconv.ParseFloat(value, 64)
		if err != nil || !(v >= lo && v <= hi) {
			return fmt.Errorf("must be a number from %g to %g, not %q", lo, hi, value)
		}
		set(p, v)
		return nil
	}
}

func oneOf[T ~string](choices []T, set func(*Params, T)) func(*Params, string) error {
	return func(p *Params, value string) error {
		if !slices.Contains(choices, T(value)) {
			names := make([]string, len(choices))
			for i, c := range choices {
				names[i] = string(c)
			}
			return fmt.Errorf("must be one of %s, not %q", strings.Join(names, ", "), value)
		}
		set(p, T(value))
		return nil
	}
}
