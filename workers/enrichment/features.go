package enrichment

import (
	"time"
)

// Season is a meteorological season.
type Season string

const (
	Winter Season = "winter"
	Spring Season = "spring"
	Summer Season = "summer"
	Autumn Season = "autumn"
)

// SeasonOf is the meteorological season of date at latitude: whole months, December–February
// winter, March–May spring, June–August summer, September–November autumn in the northern
// hemisphere, and the opposite in the southern (December–February summer). Meteorological
// rather than astronomical seasons because they follow the temperature cycle and change on the
// first of a month, which is what pricing seasons do. Latitude 0 counts as northern: the
// equator has no real seasons, and a fixed choice keeps the feature stable.
func SeasonOf(date time.Time, latitude float64) Season {
	return seasonOf(date.Month(), latitude)
}

var northernSeasons = [13]Season{
	time.December: Winter, time.January: Winter, time.February: Winter,
	time.March: Spring, time.April: Spring, time.May: Spring,
	time.June: Summer, time.July: Summer, time.August: Summer,
	time.September: Autumn, time.October: Autumn, time.November: Autumn,
}

var opposite = map[Season]Season{Winter: Summer, Summer: Winter, Spring: Autumn, Autumn: Spring}

func seasonOf(m time.Month, latitude float64) Season {
	s := northernSeasons[m]
	if latitude < 0 {
		return opposite[s]
	}
	return s
}

// Temporal are the calendar features of one date.
type Temporal struct {
	// DayOfWeek is the ISO 8601 day of the week: 1 Monday … 7 Sunday.
	DayOfWeek int `json:"day_of_week"`
	// IsWeekend is Saturday or Sunday. Countries with a Friday–Saturday weekend are not
	// modelled: none of the offline holiday countries has one.
	IsWeekend bool   `json:"is_weekend"`
	Month     int    `json:"month"`
	Quarter   int    `json:"quarter"`
	ISOWeek   int    `json:"iso_week"`
	ISOYear   int    `json:"iso_year"` // differs from the calendar year around New Year
	Season    Season `json:"season"`
}

// TemporalOf computes the calendar features of date (its calendar day in its own Location)
// for a property at latitude.
func TemporalOf(date time.Time, latitude float64) Temporal {
	return temporalOf(dayOf(date), latitude)
}

func temporalOf(d day, latitude float64) Temporal {
	t := d.Time()
	isoYear, isoWeek := t.ISOWeek()
	wd := int(t.Weekday())
	if wd == 0 {
		wd = 7
	}
	m := t.Month()
	return Temporal{
		DayOfWeek: wd,
		IsWeekend: wd >= 6,
		Month:     int(m),
		Quarter:   (int(m)-1)/3 + 1,
		ISOWeek:   isoWeek,
		ISOYear:   isoYear,
		Season:    seasonOf(m, latitude),
	}
}
