package analytics_test

import (
	"math"
	"math/rand/v2"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/jengu/queue-operator/workers/analytics"
)

var nan = math.NaN()

// approx compares result numbers to 4 significant digits, NaN equal to NaN.
var approx = cmp.Comparer(func(a, b analytics.Float) bool {
	x, y := float64(a), float64(b)
	if math.IsNaN(x) || math.IsNaN(y) {
		return math.IsNaN(x) && math.IsNaN(y)
	}
	return math.Abs(x-y) <= 1e-4*math.Max(1, math.Abs(y))
})

func date(s string) time.Time {
	d, err := time.Parse(time.DateOnly, s)
	if err != nil {
		panic(err)
	}
	return d
}

func empty(d time.Time) analytics.Row {
	return analytics.Row{Date: d, Price: nan, Occupancy: nan, TempMaxC: nan, TempMinC: nan, PrecipitationMM: nan,
		IsHoliday: nan, DaysToNextHoliday: nan}
}

// weeklyPattern is added to the level by weekday (Sunday first): weekends dear, midweek cheap.
var weeklyPattern = [7]float64{8, -12, -9, -6, -2, 10, 14}

// syntheticDays are n days from 2022-01-01 of a hotel whose price has a weekly pattern, a trend
// (+10 a year) and 3% noise, and whose price also rises 3 per °C of the day's maximum temperature
// when withWeather (a seasonal temperature, so the weather is known on every day). Occupancy
// follows the price. Seeded: the same days every time.
func syntheticDays(n int, withWeather bool) []analytics.Row {
	rng := rand.New(rand.NewPCG(7, 11))
	rows := make([]analytics.Row, n)
	for i := range rows {
		d := date("2022-01-01").AddDate(0, 0, i)
		r := empty(d)
		level := 150 + 10*float64(i)/365 + weeklyPattern[d.Weekday()]
		tmax := 18 + 9*math.Sin(2*math.Pi*(float64(d.YearDay())-110)/365) + 3*rng.NormFloat64()
		r.TempMaxC, r.TempMinC = round1(tmax), round1(tmax-8+2*rng.NormFloat64())
		r.PrecipitationMM = math.Max(0, round1(6*rng.NormFloat64()-3))
		r.IsHoliday = 0
		if rng.IntN(30) == 0 {
			r.IsHoliday = 1
		}
		r.DaysToNextHoliday = float64(rng.IntN(30))
		if withWeather {
			level += 3 * (tmax - 18)
		}
		r.Price = level * (1 + 0.03*rng.NormFloat64())
		r.Occupancy = math.Min(1, math.Max(0, 0.5+(r.Price-150)/200))
		rows[i] = r
	}
	return rows
}

func round1(x float64) float64 { return math.Round(10*x) / 10 }

// withoutEnrichment drops the enrichment features of rows, as on a property never enriched.
func withoutEnrichment(rows []analytics.Row) []analytics.Row {
	for i := range rows {
		rows[i].TempMaxC, rows[i].TempMinC, rows[i].PrecipitationMM = nan, nan, nan
		rows[i].IsHoliday, rows[i].DaysToNextHoliday = nan, nan
	}
	return rows
}
