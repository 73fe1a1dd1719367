package enrichment

import (
	"fmt"
	"slices"
	"time"
)

// day is a calendar date as a count of days since 1970-01-01. Pricing dates are calendar days,
// not instants: keeping them as integers makes "contiguous", "days until" and map keys exact,
// with no time zone or DST in the way.
type day int32

const dateLayout = "2006-01-02"

// dayOf takes the calendar date of t as seen in t's own Location. pgx gives DATE columns as UTC
// midnight, so a DATE read from PostgreSQL maps to itself.
func dayOf(t time.Time) day {
	y, m, d := t.Date()
	return civilDay(y, m, d)
}

func civilDay(y int, m time.Month, d int) day {
	// Midnight UTC is an exact multiple of 86400 seconds, so the division is exact even
	// before 1970.
	return day(time.Date(y, m, d, 0, 0, 0, 0, time.UTC).Unix() / 86400)
}

// Time is the day as midnight UTC, the form rows and summaries carry.
func (d day) Time() time.Time { return time.Unix(int64(d)*86400, 0).UTC() }

func (d day) String() string { return d.Time().Format(dateLayout) }

func parseDay(s string) (day, error) {
	t, err := time.Parse(dateLayout, s)
	if err != nil {
		return 0, fmt.Errorf("date %q: %w", s, err)
	}
	return dayOf(t), nil
}

// uniqueDays turns the caller's dates (any order, duplicates, gaps) into sorted unique days.
func uniqueDays(dates []time.Time) []day {
	days := make([]day, len(dates))
	for i, t := range dates {
		days[i] = dayOf(t)
	}
	slices.Sort(days)
	return slices.Compact(days)
}

// dayRange is an inclusive range of days.
type dayRange struct{ from, to day }

// contiguousRanges groups sorted unique days into runs. Days more than maxGap missing days
// apart start a new run; maxGap 0 means strictly consecutive days.
func contiguousRanges(days []day, maxGap int) []dayRange {
	var out []dayRange
	for _, d := range days {
		if n := len(out); n > 0 && int(d-out[n-1].to) <= maxGap+1 {
			out[n-1].to = d
			continue
		}
		out = append(out, dayRange{from: d, to: d})
	}
	return out
}
