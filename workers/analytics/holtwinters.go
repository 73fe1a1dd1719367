package analytics

import (
	"context"
	"fmt"
	"math"

	"gonum.org/v1/gonum/optimize"
	"gonum.org/v1/gonum/stat"
)

// season is the period of the seasonal models: a week of days.
const season = 7

// holtWinters is additive Holt-Winters with a weekly season, in its error-correction form:
//
//	ŷ(t) = l + b + s[t mod 7];  e = y(t) - ŷ(t);  l += b + α e;  b += β e;  s[t mod 7] += γ e
//
// with 0 < α < 1, 0 < β < α and 0 < γ < 1 - α (the usual admissible region). The smoothing
// parameters minimise the sum of squared one-step errors (Nelder–Mead on unconstrained
// logits); the initial states come from the first two weeks.
type holtWinters struct {
	alpha, beta, gamma float64
	// state after the last observation
	level, trend float64
	seasonal     [season]float64
	n            int     // observations fitted
	sigma        float64 // standard deviation of the one-step errors
}

// fitHoltWinters needs at least three weeks.
func fitHoltWinters(ctx context.Context, y []float64) (*holtWinters, error) {
	objective := func(x []float64) float64 {
		m := holtWintersAt(x)
		return m.run(y)
	}
	result, err := optimize.Minimize(optimize.Problem{Func: objective}, []float64{-0.85, -2, -2},
		&optimize.Settings{FuncEvaluations: 2000, Recorder: contextRecorder{ctx}}, &optimize.NelderMead{})
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err != nil && result == nil {
		return nil, fmt.Errorf("fit holt-winters: %w", err)
	}
	m := holtWintersAt(result.X)
	sse := m.run(y)
	m.sigma = math.Sqrt(sse / float64(len(y)-3))
	return m, nil
}

func holtWintersAt(x []float64) *holtWinters {
	alpha := logistic(x[0])
	return &holtWinters{alpha: alpha, beta: alpha * logistic(x[1]), gamma: (1 - alpha) * logistic(x[2])}
}

func logistic(x float64) float64 { return 1 / (1 + math.Exp(-x)) }

// run initialises the states from y's first two weeks, runs the recursion over y and returns the
// sum of squared one-step errors.
func (m *holtWinters) run(y []float64) float64 {
	first, second := stat.Mean(y[:season], nil), stat.Mean(y[season:2*season], nil)
	m.trend = (second - first) / season
	// The level just before day 0: the first week's mean sits at its middle day.
	m.level = first - (season/2+1)*m.trend
	for j := range season {
		m.seasonal[j] = y[j] - (first + float64(j-season/2)*m.trend)
	}
	var sse float64
	for t, v := range y {
		e := v - (m.level + m.trend + m.seasonal[t%season])
		sse += e * e
		m.level += m.trend + m.alpha*e
		m.trend += m.beta * e
		m.seasonal[t%season] += m.gamma * e
	}
	m.n = len(y)
	return sse
}

// forecast returns the next h values with the standard deviation of each one's error:
// σ² (1 + Σ_{j<h} c_j²) with c_j = α + jβ + γ [j mod 7 = 0].
func (m *holtWinters) forecast(h int) (point, sd []float64) {
	point, sd = make([]float64, h), make([]float64, h)
	var sum float64
	for i := 1; i <= h; i++ {
		point[i-1] = m.level + float64(i)*m.trend + m.seasonal[(m.n+i-1)%season]
		sd[i-1] = m.sigma * math.Sqrt(1+sum)
		c := m.alpha + float64(i)*m.beta
		if i%season == 0 {
			c += m.gamma
		}
		sum += c * c
	}
	return point, sd
}

// contextRecorder stops an optimisation when the job's context ends (timeout, cancel).
type contextRecorder struct{ ctx context.Context }

func (contextRecorder) Init() error { return nil }

func (r contextRecorder) Record(*optimize.Location, optimize.Operation, *optimize.Stats) error {
	return r.ctx.Err()
}
