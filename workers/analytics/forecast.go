package analytics

import (
	"context"
	"fmt"
	"math"

	"gonum.org/v1/gonum/stat/distuv"

	"github.com/jengu/queue-operator/api/analyticsparams"
)

// minFitDays is the shortest history a model is fitted on: Holt-Winters takes its initial states
// from two weeks and needs a third to fit anything.
const minFitDays = 3 * season

// Forecast is a demand forecast with its backtest.
type Forecast struct {
	Target      string `json:"target"`
	Model       string `json:"model"`
	HorizonDays int    `json:"horizonDays"`
	// History is the series the final model was fitted on.
	History ForecastHistory `json:"history"`
	// Points are the forecast days after the history, with 80% and 95% prediction intervals.
	Points   []ForecastPoint `json:"points"`
	Backtest Backtest        `json:"backtest"`
	// Fit describes the final model: alpha, beta, gamma and sigma for holt-winters; terms, r2 and
	// sigma for regression.
	Fit map[string]Float `json:"fit"`
}

// ForecastHistory is the span of observed values a model learnt from.
type ForecastHistory struct {
	From string `json:"from"`
	To   string `json:"to"`
	Days int    `json:"days"`
	// FilledDays were missing and filled by linear interpolation.
	FilledDays int `json:"filledDays"`
}

// ForecastPoint is one forecast day.
type ForecastPoint struct {
	Date   string `json:"date"`
	Value  Float  `json:"value"`
	Low80  Float  `json:"low80"`
	High80 Float  `json:"high80"`
	Low95  Float  `json:"low95"`
	High95 Float  `json:"high95"`
}

// Backtest is the model fitted without the last HoldoutDays and scored on them (observed days
// only), against a seasonal-naive forecast (each day the value of the same weekday in the last
// fitted week).
type Backtest struct {
	HoldoutDays int    `json:"holdoutDays"`
	From        string `json:"from"`
	To          string `json:"to"`
	MAPE        Float  `json:"mape"`
	MAE         Float  `json:"mae"`
	NaiveMAPE   Float  `json:"naiveMape"`
	NaiveMAE    Float  `json:"naiveMae"`
	// Skill is the naive forecast's MAE over the model's: above 1, the model is better.
	Skill Float `json:"skill"`
}

// forecaster is a fitted model.
type forecaster interface {
	// forecast returns the next h values and the standard deviation of each one's error.
	forecast(h int) (point, sd []float64)
	// critical is the p-quantile of the standardised prediction error.
	critical(p float64) float64
	fit() map[string]Float
}

func (m *holtWinters) critical(p float64) float64 { return distuv.UnitNormal.Quantile(p) }

func (m *holtWinters) fit() map[string]Float {
	return map[string]Float{"alpha": Float(m.alpha), "beta": Float(m.beta), "gamma": Float(m.gamma), "sigma": Float(m.sigma)}
}

func (m *regression) fit() map[string]Float {
	return map[string]Float{"terms": Float(len(m.terms)), "r2": Float(m.r2), "sigma": Float(m.sigma)}
}

// demandForecast backtests the model on the series' tail, then fits it on the whole series and
// forecasts the horizon.
func demandForecast(ctx context.Context, rows []Row, p analyticsparams.Params, progress func(int, string)) (Forecast, error) {
	target := targetColumn(string(p.Target))
	s := newSeries(rows, target)
	holdout := p.HoldoutDays
	if holdout == 0 {
		holdout = max(min(p.HorizonDays, len(s.values)/5), season)
	}
	if len(s.values) < minFitDays+holdout {
		return Forecast{}, inputErrorf("demand-forecast needs at least %d days of %s (%d to fit, %d held out for the backtest); the rows span %d",
			minFitDays+holdout, target.name, minFitDays, holdout, len(s.values))
	}
	f := Forecast{Target: target.name, Model: string(p.Model), HorizonDays: p.HorizonDays,
		History: ForecastHistory{From: day(s.start), To: day(s.date(len(s.values) - 1)), Days: len(s.values), FilledDays: s.filled()}}
	var err error
	if f.Backtest, err = backtest(ctx, s, p.Model, holdout); err != nil {
		return Forecast{}, err
	}
	progress(50, "backtest done")
	model, err := fitModel(ctx, s, p.Model)
	if err != nil {
		return Forecast{}, err
	}
	point, sd := model.forecast(p.HorizonDays)
	z80, z95 := model.critical(0.9), model.critical(0.975)
	for i := range point {
		f.Points = append(f.Points, ForecastPoint{Date: day(s.date(len(s.values) + i)), Value: Float(point[i]),
			Low80: Float(point[i] - z80*sd[i]), High80: Float(point[i] + z80*sd[i]),
			Low95: Float(point[i] - z95*sd[i]), High95: Float(point[i] + z95*sd[i])})
	}
	f.Fit = model.fit()
	return f, nil
}

func fitModel(ctx context.Context, s series, model analyticsparams.Model) (forecaster, error) {
	if model == analyticsparams.ModelRegression {
		return fitRegression(ctx, s)
	}
	return fitHoltWinters(ctx, s.values)
}

// backtest fits on all but the last holdout days and scores the forecast of them.
func backtest(ctx context.Context, s series, model analyticsparams.Model, holdout int) (Backtest, error) {
	cut := len(s.values) - holdout
	m, err := fitModel(ctx, s.head(cut), model)
	if err != nil {
		return Backtest{}, err
	}
	point, _ := m.forecast(holdout)
	naive := make([]float64, holdout)
	for h := range holdout {
		naive[h] = s.values[cut-season+h%season]
	}
	actual, observed := s.values[cut:], s.observed[cut:]
	b := Backtest{HoldoutDays: holdout, From: day(s.date(cut)), To: day(s.date(len(s.values) - 1))}
	b.MAPE, b.MAE = errorsOf(actual, point, observed)
	b.NaiveMAPE, b.NaiveMAE = errorsOf(actual, naive, observed)
	b.Skill = b.NaiveMAE / b.MAE
	return b, nil
}

// errorsOf is the mean absolute percentage error (over days with a non-zero actual) and the mean
// absolute error of a forecast, on the observed days.
func errorsOf(actual, forecast []float64, observed []bool) (mape, mae Float) {
	var sumAPE, sumAE float64
	var nAPE, nAE int
	for i, a := range actual {
		if !observed[i] {
			continue
		}
		e := math.Abs(a - forecast[i])
		sumAE += e
		nAE++
		if a != 0 {
			sumAPE += e / math.Abs(a)
			nAPE++
		}
	}
	return Float(100 * sumAPE / float64(nAPE)), Float(sumAE / float64(nAE))
}

func (f Forecast) headline() string {
	h := fmt.Sprintf("forecast %d d of %s (%s), backtest MAPE %.1f%%", f.HorizonDays, f.Target, f.Model, float64(f.Backtest.MAPE))
	switch skill := float64(f.Backtest.Skill); {
	case math.IsNaN(skill) || math.IsInf(skill, 0):
	case skill >= 1:
		h += fmt.Sprintf(", %.1fx better than seasonal naive", skill)
	default:
		h += fmt.Sprintf(", worse than seasonal naive (%.2fx)", skill)
	}
	return h
}
