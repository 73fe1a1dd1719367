package analytics

import (
	"math"
	"time"
)

// series is a target's daily values from its first to its last observed day, gaps filled by
// linear interpolation (the models need one value a day); observed says which were not filled.
type series struct {
	start    time.Time
	values   []float64
	observed []bool
	// holiday maps a day (observed, or ahead of the series) to 1 when a row says it is a holiday.
	holiday map[time.Time]float64
}

func newSeries(rows []Row, target column) series {
	s := series{holiday: map[time.Time]float64{}}
	for _, r := range rows {
		if !math.IsNaN(r.IsHoliday) {
			s.holiday[r.Date] = r.IsHoliday
		}
		y := target.get(r)
		if math.IsNaN(y) {
			continue
		}
		if s.values == nil {
			s.start = r.Date
		}
		i := daysBetween(s.start, r.Date)
		for len(s.values) < i {
			s.values, s.observed = append(s.values, math.NaN()), append(s.observed, false)
		}
		s.values, s.observed = append(s.values, y), append(s.observed, true)
	}
	s.interpolate()
	return s
}

// interpolate fills the gaps between observed values with straight lines.
func (s *series) interpolate() {
	last := -1
	for i, ok := range s.observed {
		if !ok {
			continue
		}
		if last >= 0 && i-last > 1 {
			step := (s.values[i] - s.values[last]) / float64(i-last)
			for j := last + 1; j < i; j++ {
				s.values[j] = s.values[last] + step*float64(j-last)
			}
		}
		last = i
	}
}

func (s series) filled() int {
	n := 0
	for _, ok := range s.observed {
		if !ok {
			n++
		}
	}
	return n
}

func (s series) date(i int) time.Time { return s.start.AddDate(0, 0, i) }

// head is the first n days of the series.
func (s series) head(n int) series {
	return series{start: s.start, values: s.values[:n], observed: s.observed[:n], holiday: s.holiday}
}

func daysBetween(a, b time.Time) int { return int(math.Round(b.Sub(a).Hours() / 24)) }
