package analytics

import (
	"context"
	"fmt"
	"math"
	"time"

	"gonum.org/v1/gonum/mat"
)

// regression is a linear model of the daily series on calendar terms: an intercept, a linear
// trend (per year), weekday dummies (Monday the reference), month dummies (January the
// reference) and a holiday dummy when the rows say which days are holidays. Terms that never vary
// in the fitted days are left out, so a month unseen in the history forecasts as the reference
// month. Prediction intervals are the classical ones, with Student's t.
type regression struct {
	series  series
	terms   []term
	coef    *mat.VecDense
	chol    mat.Cholesky // of XᵀX
	df      float64
	sigma   float64
	r2      float64
	holiday bool
}

// term is one column of the design.
type term struct {
	name  string
	value func(day int, date time.Time, s series) float64
}

func calendarTerms(withHoliday bool) []term {
	terms := []term{
		{"intercept", func(int, time.Time, series) float64 { return 1 }},
		{"trend", func(day int, _ time.Time, _ series) float64 { return float64(day) / 365 }},
	}
	for wd := time.Tuesday; wd <= time.Saturday+1; wd++ {
		want := wd % 7
		terms = append(terms, term{want.String(), func(_ int, d time.Time, _ series) float64 { return indicator(d.Weekday() == want) }})
	}
	for m := time.February; m <= time.December; m++ {
		terms = append(terms, term{m.String(), func(_ int, d time.Time, _ series) float64 { return indicator(d.Month() == m) }})
	}
	if withHoliday {
		terms = append(terms, term{"holiday", func(_ int, d time.Time, s series) float64 { return s.holiday[d] }})
	}
	return terms
}

func indicator(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// fitRegression fits the terms on the series by least squares.
func fitRegression(ctx context.Context, s series) (*regression, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	all := calendarTerms(len(s.holiday) > 0)
	var terms []term
	for i, t := range all {
		if i == 0 || varies(t, s) {
			terms = append(terms, t)
		}
	}
	n, p := len(s.values), len(terms)
	if n <= p+1 {
		return nil, inputErrorf("the regression has %d terms and only %d days to fit them", p, n)
	}
	x := mat.NewDense(n, p, nil)
	for i := range n {
		for j, t := range terms {
			x.Set(i, j, t.value(i, s.date(i), s))
		}
	}
	y := mat.NewVecDense(n, s.values)
	m := &regression{series: s, terms: terms, df: float64(n - p), holiday: len(s.holiday) > 0}
	var xtx mat.SymDense
	xtx.SymOuterK(1, x.T())
	if ok := m.chol.Factorize(&xtx); !ok {
		return nil, inputErrorf("the regression's terms are collinear on these days")
	}
	var xty, coef mat.VecDense
	xty.MulVec(x.T(), y)
	if err := m.chol.SolveVecTo(&coef, &xty); err != nil {
		return nil, fmt.Errorf("solve the regression: %w", err)
	}
	m.coef = &coef
	var fitted mat.VecDense
	fitted.MulVec(x, &coef)
	var ssr, sst float64
	mean := mat.Sum(y) / float64(n)
	for i := range n {
		e := y.AtVec(i) - fitted.AtVec(i)
		ssr += e * e
		sst += (y.AtVec(i) - mean) * (y.AtVec(i) - mean)
	}
	m.sigma, m.r2 = math.Sqrt(ssr/m.df), 1-ssr/sst
	return m, nil
}

func varies(t term, s series) bool {
	first := t.value(0, s.date(0), s)
	for i := 1; i < len(s.values); i++ {
		if t.value(i, s.date(i), s) != first {
			return true
		}
	}
	return false
}

// forecast returns the next h values with each prediction's standard error,
// σ √(1 + x₀ᵀ(XᵀX)⁻¹x₀).
func (m *regression) forecast(h int) (point, sd []float64) {
	point, sd = make([]float64, h), make([]float64, h)
	x0 := mat.NewVecDense(len(m.terms), nil)
	var solved mat.VecDense
	n := len(m.series.values)
	for i := range h {
		day := n + i
		for j, t := range m.terms {
			x0.SetVec(j, t.value(day, m.series.date(day), m.series))
		}
		point[i] = mat.Dot(x0, m.coef)
		if err := m.chol.SolveVecTo(&solved, x0); err != nil {
			sd[i] = math.NaN()
			continue
		}
		sd[i] = m.sigma * math.Sqrt(1+mat.Dot(x0, &solved))
	}
	return point, sd
}

func (m *regression) critical(p float64) float64 { return tQuantile(p, m.df) }
