package analytics

import (
	"fmt"
	"math"
	"time"
)

// Summary describes price, occupancy and RevPAR (price × occupancy, on days with both): over all
// days, by weekday (Monday first) and by month of the year (January first, all years together).
type Summary struct {
	// N counts the days with a price or an occupancy.
	N    int    `json:"n"`
	From string `json:"from"`
	To   string `json:"to"`
	// MissingDays counts the days between From and To without a price or an occupancy.
	MissingDays int `json:"missingDays"`
	// MissingDates lists the first of them.
	MissingDates []string `json:"missingDates,omitempty"`
	Overall      Metrics  `json:"overall"`
	ByWeekday    []Group  `json:"byWeekday"`
	ByMonth      []Group  `json:"byMonth"`
}

// Metrics are the stats of the three columns; a column no day has is left out.
type Metrics struct {
	Price     *Stats `json:"price,omitempty"`
	Occupancy *Stats `json:"occupancy,omitempty"`
	RevPAR    *Stats `json:"revpar,omitempty"`
}

// Group is the metrics of the days of one weekday or one month.
type Group struct {
	Key string `json:"key"`
	Metrics
}

const maxMissingDates = 31

// summarize describes the rows that have a price or an occupancy.
func summarize(rows []Row) (Summary, error) {
	var days []Row
	for _, r := range rows {
		if !math.IsNaN(r.Price) || !math.IsNaN(r.Occupancy) {
			days = append(days, r)
		}
	}
	if len(days) == 0 {
		return Summary{}, inputErrorf("no row has a price or an occupancy: summary needs at least one")
	}
	s := Summary{N: len(days), From: day(days[0].Date), To: day(days[len(days)-1].Date), Overall: metricsOf(days)}
	for i := 1; i < len(days); i++ {
		for d := days[i-1].Date.AddDate(0, 0, 1); d.Before(days[i].Date); d = d.AddDate(0, 0, 1) {
			s.MissingDays++
			if len(s.MissingDates) < maxMissingDates {
				s.MissingDates = append(s.MissingDates, day(d))
			}
		}
	}
	s.ByWeekday = groups(days, 7, func(r Row) int { return (int(r.Date.Weekday()) + 6) % 7 },
		func(i int) string { return time.Weekday((i + 1) % 7).String() })
	s.ByMonth = groups(days, 12, func(r Row) int { return int(r.Date.Month()) - 1 },
		func(i int) string { return time.Month(i + 1).String() })
	return s, nil
}

// groups splits days into n groups by index and describes each non-empty one.
func groups(days []Row, n int, index func(Row) int, name func(int) string) []Group {
	parts := make([][]Row, n)
	for _, r := range days {
		parts[index(r)] = append(parts[index(r)], r)
	}
	var out []Group
	for i, part := range parts {
		if len(part) > 0 {
			out = append(out, Group{Key: name(i), Metrics: metricsOf(part)})
		}
	}
	return out
}

func metricsOf(days []Row) Metrics {
	return Metrics{Price: statsOf(days, priceColumn), Occupancy: statsOf(days, occupancyColumn),
		RevPAR: statsOf(days, revparColumn)}
}

func statsOf(days []Row, c column) *Stats {
	v := values(days, c)
	if len(v) == 0 {
		return nil
	}
	s := describe(v)
	return &s
}

func (s Summary) headline() string {
	h := fmt.Sprintf("summary of %d days %s..%s", s.N, s.From, s.To)
	if s.Overall.Price != nil {
		h += fmt.Sprintf(", mean price %.2f", float64(s.Overall.Price.Mean))
	}
	if s.Overall.Occupancy != nil {
		h += fmt.Sprintf(", mean occupancy %.1f%%", 100*float64(s.Overall.Occupancy.Mean))
	}
	if s.MissingDays > 0 {
		h += fmt.Sprintf(", %d days missing", s.MissingDays)
	}
	return h
}

func day(t time.Time) string { return t.Format(time.DateOnly) }
