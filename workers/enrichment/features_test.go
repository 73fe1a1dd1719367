package enrichment

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestTemporalOf(t *testing.T) {
	const sydney = -33.87
	tests := []struct {
		name     string
		date     time.Time
		latitude float64
		want     Temporal
	}{
		{
			name: "2024-12-30 is a Monday in ISO week 1 of 2025", date: date("2024-12-30"), latitude: madridLat,
			want: Temporal{DayOfWeek: 1, Month: 12, Quarter: 4, ISOWeek: 1, ISOYear: 2025, Season: Winter},
		},
		{
			name: "2021-01-03 is a Sunday in ISO week 53 of 2020", date: date("2021-01-03"), latitude: madridLat,
			want: Temporal{DayOfWeek: 7, IsWeekend: true, Month: 1, Quarter: 1, ISOWeek: 53, ISOYear: 2020, Season: Winter},
		},
		{
			name: "Sydney in January is summer", date: date("2024-01-26"), latitude: sydney,
			want: Temporal{DayOfWeek: 5, Month: 1, Quarter: 1, ISOWeek: 4, ISOYear: 2024, Season: Summer},
		},
		{
			name: "Sydney in July is winter", date: date("2024-07-15"), latitude: sydney,
			want: Temporal{DayOfWeek: 1, Month: 7, Quarter: 3, ISOWeek: 29, ISOYear: 2024, Season: Winter},
		},
		{
			name: "Sydney in April is autumn", date: date("2024-04-01"), latitude: sydney,
			want: Temporal{DayOfWeek: 1, Month: 4, Quarter: 2, ISOWeek: 14, ISOYear: 2024, Season: Autumn},
		},
		{
			name: "Madrid on 1 March is spring (meteorological)", date: date("2024-03-01"), latitude: madridLat,
			want: Temporal{DayOfWeek: 5, Month: 3, Quarter: 1, ISOWeek: 9, ISOYear: 2024, Season: Spring},
		},
		{
			name: "Madrid on 31 August is still summer", date: date("2024-08-31"), latitude: madridLat,
			want: Temporal{DayOfWeek: 6, IsWeekend: true, Month: 8, Quarter: 3, ISOWeek: 35, ISOYear: 2024, Season: Summer},
		},
		{
			name: "Madrid in October is autumn", date: date("2024-10-03"), latitude: madridLat,
			want: Temporal{DayOfWeek: 4, Month: 10, Quarter: 4, ISOWeek: 40, ISOYear: 2024, Season: Autumn},
		},
		{
			name: "the equator counts as northern", date: date("2024-01-10"), latitude: 0,
			want: Temporal{DayOfWeek: 3, Month: 1, Quarter: 1, ISOWeek: 2, ISOYear: 2024, Season: Winter},
		},
		{
			// 23:30 on 2024-06-01 in UTC-5 is already the 2nd in UTC; the calendar day of
			// the value as given is what counts.
			name: "the date's own calendar day", date: time.Date(2024, 6, 1, 23, 30, 0, 0, time.FixedZone("EST", -5*3600)), latitude: madridLat,
			want: Temporal{DayOfWeek: 6, IsWeekend: true, Month: 6, Quarter: 2, ISOWeek: 22, ISOYear: 2024, Season: Summer},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, TemporalOf(tt.date, tt.latitude)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestContiguousRanges(t *testing.T) {
	d := func(s string) day { return dayOf(date(s)) }
	tests := []struct {
		name   string
		days   []day
		maxGap int
		want   []dayRange
	}{
		{"none", nil, 0, nil},
		{"one", []day{d("2024-01-01")}, 0, []dayRange{{d("2024-01-01"), d("2024-01-01")}}},
		{"across a year and a leap day", []day{d("2023-12-31"), d("2024-01-01"), d("2024-02-28"), d("2024-02-29"), d("2024-03-01")}, 0,
			[]dayRange{{d("2023-12-31"), d("2024-01-01")}, {d("2024-02-28"), d("2024-03-01")}}},
		{"gap of one with allowance one", []day{d("2024-01-01"), d("2024-01-03"), d("2024-01-06")}, 1,
			[]dayRange{{d("2024-01-01"), d("2024-01-03")}, {d("2024-01-06"), d("2024-01-06")}}},
	}
	for _, tt := range tests {
		if diff := cmp.Diff(tt.want, contiguousRanges(tt.days, tt.maxGap), cmp.AllowUnexported(dayRange{})); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tt.name, diff)
		}
	}
}

func TestDayRoundTrip(t *testing.T) {
	for _, s := range []string{"1900-03-01", "1969-12-31", "1970-01-01", "2024-02-29", "2100-12-31"} {
		d, err := parseDay(s)
		if err != nil {
			t.Fatal(err)
		}
		if d.String() != s {
			t.Errorf("%s round-trips to %s", s, d)
		}
	}
}
