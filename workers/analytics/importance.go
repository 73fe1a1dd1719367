package analytics

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"time"

	"gonum.org/v1/gonum/mat"
	"gonum.org/v1/gonum/stat"

	"github.com/jengu/queue-operator/api/analyticsparams"
)

// A feature is left out when more of the target's days miss it than this share.
const maxMissingShare = 0.2

// ridgeLambdas is the grid cross-validation chooses the ridge penalty from (on standardised
// features, so one grid fits every input).
var ridgeLambdas = []float64{0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1, 3, 10, 30, 100, 300, 1000}

// FeatureImportance ranks what explains the target: a ridge-regularised linear model on
// standardised features (target standardised too, so coefficients are in standard deviations of
// the target per standard deviation of the feature), and each feature's permutation importance:
// the drop in R² when its values are shuffled across days, over K shuffles.
type FeatureImportance struct {
	Target string `json:"target"`
	// N counts the days used: those with the target and every kept feature.
	N int `json:"n"`
	// Lambda is the ridge penalty chosen by FoldCount-fold cross-validation (contiguous blocks).
	Lambda    Float `json:"lambda"`
	FoldCount int   `json:"folds"`
	CVMSE     Float `json:"cvMse"`
	R2        Float `json:"r2"`
	Shuffles  int   `json:"shuffles"`
	// Features are ranked by importance, highest first.
	Features []FeatureRank `json:"features"`
	// LeftOut are the features not used, with why.
	LeftOut []LeftOut `json:"leftOut,omitempty"`
}

// FeatureRank is one feature: its importance (mean R² drop) with the standard deviation over the
// shuffles, and its standardised coefficients (a calendar feature has one per dummy).
type FeatureRank struct {
	Feature      string           `json:"feature"`
	Importance   Float            `json:"importance"`
	Spread       Float            `json:"spread"`
	Coefficients map[string]Float `json:"coefficients"`
}

// LeftOut is a feature the model does not use.
type LeftOut struct {
	Feature string `json:"feature"`
	Reason  string `json:"reason"`
}

// feature is a group of design columns shuffled together.
type feature struct {
	name    string
	columns []string
	values  func(Row, int) []float64 // the row's columns; day is days since the first row
	known   func(Row) bool
}

func enrichmentFeatures() []feature {
	var out []feature
	for _, c := range append(slices.Clone(weatherColumns), holidayColumns...) {
		out = append(out, feature{name: c.name, columns: []string{c.name},
			values: func(r Row, _ int) []float64 { return []float64{c.get(r)} },
			known:  func(r Row) bool { return !math.IsNaN(c.get(r)) }})
	}
	return out
}

func calendarFeatures() []feature {
	always := func(Row) bool { return true }
	weekdays := make([]string, 6)
	for i := range weekdays {
		weekdays[i] = "day_of_week=" + time.Weekday((i+2)%7).String()
	}
	months := make([]string, 11)
	for i := range months {
		months[i] = "month=" + time.Month(i+2).String()
	}
	return []feature{
		{name: "day_of_week", columns: weekdays, known: always, values: func(r Row, _ int) []float64 {
			out := make([]float64, 6)
			if wd := (int(r.Date.Weekday()) + 6) % 7; wd > 0 { // Monday is the reference
				out[wd-1] = 1
			}
			return out
		}},
		{name: "month", columns: months, known: always, values: func(r Row, _ int) []float64 {
			out := make([]float64, 11)
			if m := int(r.Date.Month()); m > 1 { // January is the reference
				out[m-2] = 1
			}
			return out
		}},
		{name: "trend", columns: []string{"trend"}, known: always, values: func(_ Row, day int) []float64 {
			return []float64{float64(day)}
		}},
	}
}

// design is the standardised data: x is n × columns, y the standardised target.
type design struct {
	features []feature
	// span[i] is feature i's columns in x.
	span    [][2]int
	columns []string
	x       *mat.Dense
	y       []float64
}

func featureImportance(ctx context.Context, rows []Row, p analyticsparams.Params) (FeatureImportance, error) {
	target := targetColumn(string(p.Target))
	var days []Row
	for _, r := range rows {
		if !math.IsNaN(target.get(r)) {
			days = append(days, r)
		}
	}
	if len(days) == 0 {
		return FeatureImportance{}, inputErrorf("no row has a %s: feature-importance explains it", target.name)
	}
	fi := FeatureImportance{Target: target.name, FoldCount: p.Folds, Shuffles: p.Shuffles}
	kept, leftOut := keptFeatures(days)
	fi.LeftOut = leftOut
	if !slices.ContainsFunc(kept, func(f feature) bool { return f.name != "day_of_week" && f.name != "month" && f.name != "trend" }) {
		return FeatureImportance{}, inputErrorf("no enrichment feature (%s) is known on enough days with a %s: %s",
			"temp_max_c, temp_min_c, precipitation_mm, is_holiday, days_to_next_holiday", target.name, enrichHint)
	}
	d, err := buildDesign(days, kept, target)
	if err != nil {
		return FeatureImportance{}, err
	}
	fi.N = len(d.y)
	if fi.N < p.Folds*2 || fi.N <= len(d.columns) {
		return FeatureImportance{}, inputErrorf("feature-importance needs more days than its %d columns and at least 2 per fold; it has %d",
			len(d.columns), fi.N)
	}
	lambda, cvMSE, err := chooseLambda(ctx, d, p.Folds)
	if err != nil {
		return FeatureImportance{}, err
	}
	fi.Lambda, fi.CVMSE = Float(lambda), Float(cvMSE)
	beta, err := ridge(d.x, d.y, lambda)
	if err != nil {
		return FeatureImportance{}, err
	}
	fitted := make([]float64, len(d.y))
	mulVec(d.x, beta, fitted)
	r2 := rSquared(d.y, fitted)
	fi.R2 = Float(r2)
	fi.Features, err = permutationImportance(ctx, d, beta, fitted, r2, p)
	return fi, err
}

// keptFeatures are those known on all but maxMissingShare of the days; trend, weekday and month
// always are. Features that never vary are left out too.
func keptFeatures(days []Row) (kept []feature, leftOut []LeftOut) {
	for _, f := range append(enrichmentFeatures(), calendarFeatures()...) {
		known, distinct := 0, map[float64]bool{}
		for i, r := range days {
			if f.known(r) {
				known++
				distinct[f.values(r, i)[0]] = true
			}
		}
		missing := 1 - float64(known)/float64(len(days))
		switch {
		case known == 0:
			leftOut = append(leftOut, LeftOut{f.name, "no row has it"})
		case missing > maxMissingShare:
			leftOut = append(leftOut, LeftOut{f.name, fmt.Sprintf("missing on %.0f%% of the days", 100*missing)})
		case len(f.columns) == 1 && len(distinct) < 2:
			leftOut = append(leftOut, LeftOut{f.name, "the same on every day"})
		default:
			kept = append(kept, f)
		}
	}
	return kept, leftOut
}

// buildDesign standardises the kept features on the days that have them all; dummy columns
// that never vary (a month absent from the data) are dropped.
func buildDesign(days []Row, kept []feature, target column) (*design, error) {
	var raw [][]float64
	var y []float64
	start := days[0].Date
	for _, r := range days {
		if !slices.ContainsFunc(kept, func(f feature) bool { return !f.known(r) }) {
			var row []float64
			for _, f := range kept {
				row = append(row, f.values(r, daysBetween(start, r.Date))...)
			}
			raw, y = append(raw, row), append(y, target.get(r))
		}
	}
	if len(raw) == 0 {
		return nil, inputErrorf("no day has every kept feature")
	}
	d := &design{}
	var cols [][]float64
	at := 0
	for _, f := range kept {
		first := len(d.columns)
		for j, name := range f.columns {
			col := make([]float64, len(raw))
			for i := range raw {
				col[i] = raw[i][at+j]
			}
			if standardise(col) {
				d.columns, cols = append(d.columns, name), append(cols, col)
			}
		}
		at += len(f.columns)
		if len(d.columns) > first {
			d.features, d.span = append(d.features, f), append(d.span, [2]int{first, len(d.columns)})
		}
	}
	if !standardise(y) {
		return nil, inputErrorf("the %s is the same on every day: nothing to explain", target.name)
	}
	d.y = y
	d.x = mat.NewDense(len(y), len(cols), nil)
	for j, col := range cols {
		d.x.SetCol(j, col)
	}
	return d, nil
}

// standardise turns v into z-scores in place; false when v does not vary.
func standardise(v []float64) bool {
	mean, sd := stat.MeanStdDev(v, nil)
	if !(sd > 0) {
		return false
	}
	for i := range v {
		v[i] = (v[i] - mean) / sd
	}
	return true
}

// ridge solves (XᵀX + λI) β = Xᵀy.
func ridge(x *mat.Dense, y []float64, lambda float64) ([]float64, error) {
	var xtx mat.SymDense
	xtx.SymOuterK(1, x.T())
	var xty mat.VecDense
	xty.MulVec(x.T(), mat.NewVecDense(len(y), y))
	return solveRidge(&xtx, &xty, lambda)
}

func solveRidge(xtx *mat.SymDense, xty *mat.VecDense, lambda float64) ([]float64, error) {
	p := xtx.SymmetricDim()
	a := mat.NewSymDense(p, nil)
	a.CopySym(xtx)
	for i := range p {
		a.SetSym(i, i, a.At(i, i)+lambda)
	}
	var chol mat.Cholesky
	if !chol.Factorize(a) {
		return nil, fmt.Errorf("ridge system not positive definite (lambda %g)", lambda)
	}
	beta := mat.NewVecDense(p, nil)
	if err := chol.SolveVecTo(beta, xty); err != nil {
		return nil, fmt.Errorf("solve ridge system: %w", err)
	}
	return beta.RawVector().Data, nil
}

// chooseLambda picks the grid's lambda with the lowest mean squared error over folds contiguous
// blocks of days (blocks rather than random folds: neighbouring days are alike).
func chooseLambda(ctx context.Context, d *design, folds int) (best, bestMSE float64, err error) {
	n, p := d.x.Dims()
	sums := make([]float64, len(ridgeLambdas))
	for k := range folds {
		if err := ctx.Err(); err != nil {
			return 0, 0, err
		}
		lo, hi := k*n/folds, (k+1)*n/folds
		train := mat.NewDense(n-(hi-lo), p, nil)
		trainY := make([]float64, 0, n-(hi-lo))
		for i, r := 0, 0; i < n; i++ {
			if i < lo || i >= hi {
				train.SetRow(r, d.x.RawRowView(i))
				trainY = append(trainY, d.y[i])
				r++
			}
		}
		var xtx mat.SymDense
		xtx.SymOuterK(1, train.T())
		var xty mat.VecDense
		xty.MulVec(train.T(), mat.NewVecDense(len(trainY), trainY))
		for li, lambda := range ridgeLambdas {
			beta, err := solveRidge(&xtx, &xty, lambda)
			if err != nil {
				return 0, 0, err
			}
			for i := lo; i < hi; i++ {
				e := d.y[i] - mat.Dot(mat.NewVecDense(p, d.x.RawRowView(i)), mat.NewVecDense(p, beta))
				sums[li] += e * e
			}
		}
	}
	bi := 0
	for i := range sums {
		if sums[i] < sums[bi] {
			bi = i
		}
	}
	return ridgeLambdas[bi], sums[bi] / float64(n), nil
}

// permutationImportance shuffles each feature's columns together across days, K times with a
// generator seeded from the params, and ranks the features by the mean drop in R².
func permutationImportance(ctx context.Context, d *design, beta, fitted []float64, r2 float64, p analyticsparams.Params) ([]FeatureRank, error) {
	rng := rand.New(rand.NewPCG(p.Seed, 0x616e616c79746963)) // "analytic"
	n := len(d.y)
	shuffled := make([]float64, n)
	drops := make([]float64, p.Shuffles)
	var out []FeatureRank
	for fi, f := range d.features {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		lo, hi := d.span[fi][0], d.span[fi][1]
		own := func(i int) float64 { // the feature's part of row i's prediction
			var s float64
			for j := lo; j < hi; j++ {
				s += d.x.At(i, j) * beta[j]
			}
			return s
		}
		for k := range drops {
			perm := rng.Perm(n)
			for i := range n {
				shuffled[i] = fitted[i] - own(i) + own(perm[i])
			}
			drops[k] = r2 - rSquared(d.y, shuffled)
		}
		mean, sd := stat.MeanStdDev(drops, nil)
		if len(drops) == 1 {
			sd = 0
		}
		coef := map[string]Float{}
		for j := lo; j < hi; j++ {
			coef[d.columns[j]] = Float(beta[j])
		}
		out = append(out, FeatureRank{Feature: f.name, Importance: Float(mean), Spread: Float(sd), Coefficients: coef})
	}
	slices.SortStableFunc(out, func(a, b FeatureRank) int { return cmpFloat(float64(b.Importance), float64(a.Importance)) })
	return out, nil
}

func mulVec(x *mat.Dense, beta, out []float64) {
	var v mat.VecDense
	v.MulVec(x, mat.NewVecDense(len(beta), beta))
	copy(out, v.RawVector().Data)
}

// rSquared of predictions against standardised (mean 0) y.
func rSquared(y, pred []float64) float64 {
	var ssr, sst float64
	for i, v := range y {
		ssr += (v - pred[i]) * (v - pred[i])
		sst += v * v
	}
	return 1 - ssr/sst
}

func (f FeatureImportance) headline() string {
	if len(f.Features) == 0 {
		return fmt.Sprintf("feature importance of %s: no feature", f.Target)
	}
	top := f.Features[0]
	return fmt.Sprintf("feature importance of %s: %s first (R² drop %.2f ± %.2f), model R² %.2f on %d days",
		f.Target, top.Feature, float64(top.Importance), float64(top.Spread), float64(f.R2), f.N)
}
