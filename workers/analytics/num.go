package analytics

import (
	"math"
	"slices"
	"strconv"

	"gonum.org/v1/gonum/stat"
	"gonum.org/v1/gonum/stat/distuv"
)

// Float is a number of a result. A statistic that does not exist (the deviation of one value, a
// p-value without variance) is NaN and written as null; others are written with 6 significant
// digits, which is more than any of them is worth and keeps results short.
type Float float64

// MarshalJSON writes null for NaN and infinities.
func (f Float) MarshalJSON() ([]byte, error) {
	x := float64(f)
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return []byte("null"), nil
	}
	return strconv.AppendFloat(nil, x, 'g', 6, 64), nil
}

// Stats describe one column.
type Stats struct {
	N      int   `json:"n"`
	Mean   Float `json:"mean"`
	Median Float `json:"median"`
	Min    Float `json:"min"`
	Max    Float `json:"max"`
	StdDev Float `json:"stdDev"`
	P10    Float `json:"p10"`
	P25    Float `json:"p25"`
	P75    Float `json:"p75"`
	P90    Float `json:"p90"`
}

// describe computes Stats of values (which it sorts). The deviation is the sample's (n-1);
// quantiles interpolate linearly between order statistics (R's type 7, NumPy's default), so the
// median of an even count is the mean of the middle two.
func describe(values []float64) Stats {
	if len(values) == 0 {
		return Stats{}
	}
	slices.Sort(values)
	mean, variance := stat.MeanVariance(values, nil)
	return Stats{N: len(values), Mean: Float(mean), Median: Float(quantile(values, 0.5)),
		Min: Float(values[0]), Max: Float(values[len(values)-1]), StdDev: Float(math.Sqrt(variance)),
		P10: Float(quantile(values, 0.1)), P25: Float(quantile(values, 0.25)),
		P75: Float(quantile(values, 0.75)), P90: Float(quantile(values, 0.9))}
}

// quantile of sorted values, R's type 7.
func quantile(sorted []float64, p float64) float64 {
	h := p * float64(len(sorted)-1)
	lo := int(math.Floor(h))
	if lo+1 >= len(sorted) {
		return sorted[len(sorted)-1]
	}
	return sorted[lo] + (h-float64(lo))*(sorted[lo+1]-sorted[lo])
}

// ranks are the 1-based ranks of values, ties sharing their average rank (for Spearman's rho).
func ranks(values []float64) []float64 {
	order := make([]int, len(values))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return cmpFloat(values[a], values[b]) })
	out := make([]float64, len(values))
	for i := 0; i < len(order); {
		j := i
		for j+1 < len(order) && values[order[j+1]] == values[order[i]] {
			j++
		}
		avg := float64(i+j)/2 + 1
		for k := i; k <= j; k++ {
			out[order[k]] = avg
		}
		i = j + 1
	}
	return out
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// twoSidedP is the two-sided p-value of a t statistic with df degrees of freedom.
func twoSidedP(t, df float64) float64 {
	if math.IsNaN(t) || df <= 0 {
		return math.NaN()
	}
	if math.IsInf(t, 0) {
		return 0
	}
	return 2 * distuv.StudentsT{Mu: 0, Sigma: 1, Nu: df}.Survival(math.Abs(t))
}

// tQuantile is the p-quantile of Student's t with df degrees of freedom.
func tQuantile(p, df float64) float64 {
	return distuv.StudentsT{Mu: 0, Sigma: 1, Nu: df}.Quantile(p)
}

// pairs returns the values of x and y on the rows that have both.
func pairs(rows []Row, x, y column) (xs, ys []float64) {
	for _, r := range rows {
		a, b := x.get(r), y.get(r)
		if !math.IsNaN(a) && !math.IsNaN(b) {
			xs, ys = append(xs, a), append(ys, b)
		}
	}
	return xs, ys
}

// values returns the column's values on the rows that have it.
func values(rows []Row, c column) []float64 {
	var out []float64
	for _, r := range rows {
		if v := c.get(r); !math.IsNaN(v) {
			out = append(out, v)
		}
	}
	return out
}
