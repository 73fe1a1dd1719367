package store_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/jengu/queue-operator/store"
)

// featuresOf returns correct features of day d (northern hemisphere), with some weather, and a
// holiday when holiday is not empty.
func featuresOf(d time.Time, holiday string) store.PricingFeatures {
	isoYear, isoWeek := d.ISOWeek()
	dow := int(d.Weekday())
	if dow == 0 { // time.Weekday counts from Sunday = 0; ISO from Monday = 1 to Sunday = 7
		dow = 7
	}
	f := store.PricingFeatures{
		Date:              d,
		TempMaxC:          ptr(20 + float64(d.YearDay()%10)/10),
		TempMinC:          ptr(-3.5),
		PrecipitationMM:   ptr(float64(d.YearDay()%7) * 0.3),
		WeatherCode:       ptr(d.YearDay() % 4),
		DayOfWeek:         dow,
		IsWeekend:         dow >= 6,
		Month:             int(d.Month()),
		Quarter:           (int(d.Month())-1)/3 + 1,
		ISOWeek:           isoWeek,
		ISOYear:           isoYear,
		Season:            northernSeason(d.Month()),
		DaysToNextHoliday: ptr(d.YearDay() % 30),
	}
	if holiday != "" {
		f.IsHoliday, f.HolidayName, f.DaysToNextHoliday = true, holiday, ptr(0)
	}
	return f
}

func northernSeason(m time.Month) store.Season {
	switch m {
	case time.December, time.January, time.February:
		return store.SeasonWinter
	case time.March, time.April, time.May:
		return store.SeasonSpring
	case time.June, time.July, time.August:
		return store.SeasonSummer
	default:
		return store.SeasonAutumn
	}
}

// days returns n consecutive days from start.
func days(start string, n int) []time.Time {
	out := make([]time.Time, n)
	for i := range out {
		out[i] = day(start).AddDate(0, 0, i)
	}
	return out
}

func TestUpsertPricingRowsTwiceLeavesEachDayOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, conn := newStore(t)
	mustProperty(t, s, "p1", "u1")

	// More rows than one statement carries, so batches meet.
	var base []store.PricingBase
	var want []store.PricingRow
	for i, d := range days("2024-01-01", 2500) {
		price, occupancy := ptr(100+float64(i%50)+0.25), ptr(float64(i%101))
		if i%10 == 0 {
			occupancy = nil
		}
		base = append(base, store.PricingBase{Date: d, Price: price, Occupancy: occupancy})
		want = append(want, store.PricingRow{Date: d, Price: price, Occupancy: occupancy})
	}
	for run := range 2 {
		if err := s.UpsertPricingRows(ctx, "p1", base); err != nil {
			t.Fatalf("run %d: UpsertPricingRows: %v", run, err)
		}
	}

	if n := count(t, conn, "pricing_rows"); n != len(base) {
		t.Errorf("%d rows, want %d", n, len(base))
	}
	got, err := s.ListPricingRows(ctx, "p1")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ListPricingRows (-want +got):\n%s", diff)
	}
}

func TestUpsertPricingFeaturesTwiceLeavesEachDayOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, conn := newStore(t)
	mustProperty(t, s, "p1", "u1")
	mustProperty(t, s, "p2", "u1") // a neighbour whose rows must not move

	// Prices for the first 100 days; features for 4000 days, most of them (future) without price.
	all := days("2025-01-01", 4000)
	var base []store.PricingBase
	for i, d := range all[:100] {
		base = append(base, store.PricingBase{Date: d, Price: ptr(80 + float64(i)), Occupancy: ptr(50.5)})
	}
	if err := s.UpsertPricingRows(ctx, "p1", base); err != nil {
		t.Fatal(err)
	}
	if err := s.UpsertPricingRows(ctx, "p2", base[:10]); err != nil {
		t.Fatal(err)
	}
	var features []store.PricingFeatures
	for _, d := range all {
		holiday := ""
		if d.Month() == time.December && d.Day() == 25 {
			holiday = "Christmas Day"
		}
		features = append(features, featuresOf(d, holiday))
	}
	for run := range 2 {
		if err := s.UpsertPricingFeatures(ctx, "p1", features); err != nil {
			t.Fatalf("run %d: UpsertPricingFeatures: %v", run, err)
		}
	}

	want := make([]store.PricingRow, len(all))
	for i, d := range all {
		want[i] = store.PricingRow{Date: d, Features: &features[i], EnrichedAt: testNow}
		if i < len(base) {
			want[i].Price, want[i].Occupancy = base[i].Price, base[i].Occupancy
		}
	}
	if n := count(t, conn, "pricing_rows"); n != len(all)+10 {
		t.Errorf("%d rows, want %d", n, len(all)+10)
	}
	got, err := s.ListPricingRows(ctx, "p1")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ListPricingRows after features (-want +got):\n%s", diff)
	}

	// A new upload of prices keeps the features.
	base[0].Price = ptr(999.99)
	want[0].Price = base[0].Price
	if err := s.UpsertPricingRows(ctx, "p1", base); err != nil {
		t.Fatal(err)
	}
	got, err = s.ListPricingRows(ctx, "p1")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ListPricingRows after new prices (-want +got):\n%s", diff)
	}
	neighbour, err := s.ListPricingRows(ctx, "p2")
	if err != nil {
		t.Fatal(err)
	}
	if len(neighbour) != 10 || neighbour[0].Features != nil {
		t.Errorf("p2 rows changed: %d rows, first features %+v", len(neighbour), neighbour[0].Features)
	}
}

func TestUpsertPricingFeaturesIsAllOrNothing(t *testing.T) {
	t.Parallel()
	s, conn := newStore(t)
	mustProperty(t, s, "p1", "u1")

	var features []store.PricingFeatures
	for _, d := range days("2025-01-01", 2500) {
		features = append(features, featuresOf(d, ""))
	}
	// In the second batch: the first batch must be rolled back with it.
	features[1800].DayOfWeek = features[1800].DayOfWeek%7 + 1

	err := s.UpsertPricingFeatures(context.Background(), "p1", features)
	if !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("UpsertPricingFeatures = %v, want ErrInvalid", err)
	}
	if n := count(t, conn, "pricing_rows"); n != 0 {
		t.Errorf("%d rows written by a failed upsert, want 0", n)
	}
}

func TestUpsertPricingRefusesBadDates(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, conn := newStore(t)
	mustProperty(t, s, "p1", "u1")
	// The same day twice, once written in another location.
	sameDay := time.Date(2025, 6, 1, 23, 0, 0, 0, time.FixedZone("CEST", 2*3600))

	tests := []struct {
		name    string
		write   func() error
		wantMsg string
	}{
		{
			name: "rows: a day twice",
			write: func() error {
				return s.UpsertPricingRows(ctx, "p1", []store.PricingBase{{Date: day("2025-06-01")}, {Date: sameDay}})
			},
			wantMsg: "date 2025-06-01 given twice",
		},
		{
			name:    "rows: no date",
			write:   func() error { return s.UpsertPricingRows(ctx, "p1", []store.PricingBase{{Price: ptr(1.0)}}) },
			wantMsg: "row 0 has no date",
		},
		{
			name: "features: a day twice",
			write: func() error {
				return s.UpsertPricingFeatures(ctx, "p1", []store.PricingFeatures{featuresOf(day("2025-06-01"), ""),
					featuresOf(day("2025-06-02"), ""), featuresOf(day("2025-06-01"), "")})
			},
			wantMsg: "date 2025-06-01 given twice",
		},
		{
			name:    "features: no date",
			write:   func() error { return s.UpsertPricingFeatures(ctx, "p1", []store.PricingFeatures{{}}) },
			wantMsg: "row 0 has no date",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.write()
			if !errors.Is(err, store.ErrInvalid) {
				t.Fatalf("error = %v, want ErrInvalid", err)
			}
			var pg *pgconn.PgError
			if errors.As(err, &pg) {
				t.Errorf("refused by the database (%v), want before sending", pg)
			}
			if !containsAll(err.Error(), "of p1", tt.wantMsg) {
				t.Errorf("error %q does not name the property and say %q", err, tt.wantMsg)
			}
		})
	}
	if n := count(t, conn, "pricing_rows"); n != 0 {
		t.Errorf("%d rows written, want 0", n)
	}
}
