package store_test

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/jengu/queue-operator/store"
)

// TestConstraintViolationsAreClearErrors writes one bad value at a time and checks that the error
// matches ErrInvalid (so a processor fails the job without retrying), names the constraint that
// refused it, and says which write failed.
func TestConstraintViolationsAreClearErrors(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _ := newStore(t)
	mustProperty(t, s, "p1", "u1")
	search := store.CompetitorSearch{Namespace: "jengu", JobID: "competitor-1", PropertyID: "p1", CheckIn: day("2026-07-01"),
		CheckOut: day("2026-07-03"), Adults: 2}
	price := []store.CompetitorPrice{{HotelID: "h1", HotelName: "Hotel One", Price: ptr(100.0), Currency: "EUR"}}
	job := store.JobResult{JobID: "enrich-1", Queue: "enrichment", Namespace: "jengu", UserID: "u1",
		PropertyID: "p1", Status: store.JobCompleted, Attempts: 1, CreatedAt: testNow}
	features := func(mutate func(*store.PricingFeatures)) []store.PricingFeatures {
		f := featuresOf(day("2026-01-04"), "") // a Sunday
		mutate(&f)
		return []store.PricingFeatures{f}
	}

	tests := []struct {
		name  string
		write func() error
		// wantConstraint is the constraint named in the error; empty for a refusal without one.
		wantConstraint string
		// wantMsg is further text the error must carry.
		wantMsg []string
	}{
		{
			name:           "enrichment status not in the enum",
			write:          func() error { return s.SetEnrichmentStatus(ctx, "p1", "done") },
			wantConstraint: "properties_enrichment_status_valid",
			wantMsg:        []string{"property p1", `"done"`},
		},
		{
			name: "latitude above 90",
			write: func() error {
				_, err := s.UpsertProperty(ctx, store.Property{ID: "p2", UserID: "u1",
					Location: &store.Location{Latitude: 91, Longitude: 0}})
				return err
			},
			wantConstraint: "properties_latitude_range",
			wantMsg:        []string{"upsert property p2"},
		},
		{
			name: "latitude NaN",
			write: func() error {
				_, err := s.UpsertProperty(ctx, store.Property{ID: "p2", UserID: "u1",
					Location: &store.Location{Latitude: math.NaN(), Longitude: 0}})
				return err
			},
			wantConstraint: "properties_latitude_range",
		},
		{
			name: "longitude below -180",
			write: func() error {
				_, err := s.UpsertProperty(ctx, store.Property{ID: "p2", UserID: "u1",
					Location: &store.Location{Latitude: 0, Longitude: -180.5}})
				return err
			},
			wantConstraint: "properties_longitude_range",
		},
		{
			name: "country code not ISO 3166 alpha-2",
			write: func() error {
				_, err := s.UpsertProperty(ctx, store.Property{ID: "p2", UserID: "u1", CountryCode: "fra"})
				return err
			},
			wantConstraint: "properties_country_code_format",
		},
		{
			name: "empty property id",
			write: func() error {
				_, err := s.UpsertProperty(ctx, store.Property{UserID: "u1"})
				return err
			},
			wantConstraint: "properties_id_length",
		},
		{
			name: "pricing row of an unknown property",
			write: func() error {
				return s.UpsertPricingRows(ctx, "ghost", []store.PricingBase{{Date: day("2026-01-01"), Price: ptr(1.0)}})
			},
			wantConstraint: "pricing_rows_property_fk",
			wantMsg:        []string{"upsert pricing rows of ghost", `Key (property_id)=(ghost) is not present in table "properties"`},
		},
		{
			name: "pricing features of an unknown property",
			write: func() error {
				return s.UpsertPricingFeatures(ctx, "ghost", features(func(*store.PricingFeatures) {}))
			},
			wantConstraint: "pricing_rows_property_fk",
			wantMsg:        []string{"upsert pricing features of ghost"},
		},
		{
			name: "negative price",
			write: func() error {
				return s.UpsertPricingRows(ctx, "p1", []store.PricingBase{{Date: day("2026-01-01"), Price: ptr(-1.0)}})
			},
			wantConstraint: "pricing_rows_price_nonnegative",
		},
		{
			name: "occupancy above 100 percent",
			write: func() error {
				return s.UpsertPricingRows(ctx, "p1", []store.PricingBase{{Date: day("2026-01-01"), Occupancy: ptr(150.0)}})
			},
			wantConstraint: "pricing_rows_occupancy_range",
		},
		{
			name: "Sunday counted as 0, not ISO 7",
			write: func() error {
				return s.UpsertPricingFeatures(ctx, "p1", features(func(f *store.PricingFeatures) { f.DayOfWeek = 0 }))
			},
			wantConstraint: "pricing_rows_day_of_week_matches_date",
		},
		{
			name: "ISO week of another date",
			write: func() error {
				return s.UpsertPricingFeatures(ctx, "p1", features(func(f *store.PricingFeatures) { f.ISOWeek = 2 }))
			},
			wantConstraint: "pricing_rows_iso_week_matches_date",
		},
		{
			name: "season not in the enum",
			write: func() error {
				return s.UpsertPricingFeatures(ctx, "p1", features(func(f *store.PricingFeatures) { f.Season = "monsoon" }))
			},
			wantConstraint: "pricing_rows_season_valid",
		},
		{
			name: "minimum above maximum temperature",
			write: func() error {
				return s.UpsertPricingFeatures(ctx, "p1", features(func(f *store.PricingFeatures) { f.TempMinC = ptr(40.0) }))
			},
			wantConstraint: "pricing_rows_temp_order",
		},
		{
			name: "weather code beyond WMO's",
			write: func() error {
				return s.UpsertPricingFeatures(ctx, "p1", features(func(f *store.PricingFeatures) { f.WeatherCode = ptr(100) }))
			},
			wantConstraint: "pricing_rows_weather_code_range",
		},
		{
			name: "holiday name on a day that is no holiday",
			write: func() error {
				return s.UpsertPricingFeatures(ctx, "p1", features(func(f *store.PricingFeatures) { f.HolidayName = "Nope Day" }))
			},
			wantConstraint: "pricing_rows_holiday_name_on_holiday",
		},
		{
			name: "competitor check-out before check-in",
			write: func() error {
				bad := search
				bad.CheckOut = day("2026-06-30")
				return s.ReplaceCompetitorPrices(ctx, bad, price)
			},
			wantConstraint: "competitor_prices_stay_order",
			wantMsg:        []string{"replace competitor prices of job jengu/competitor-1"},
		},
		{
			name: "competitor search without adults",
			write: func() error {
				bad := search
				bad.Adults = 0
				return s.ReplaceCompetitorPrices(ctx, bad, price)
			},
			wantConstraint: "competitor_prices_adults_range",
		},
		{
			name: "currency not ISO 4217",
			write: func() error {
				return s.ReplaceCompetitorPrices(ctx, search, []store.CompetitorPrice{{HotelID: "h1", Price: ptr(1.0), Currency: "euro"}})
			},
			wantConstraint: "competitor_prices_currency_format",
		},
		{
			name: "competitor rating above 5",
			write: func() error {
				return s.ReplaceCompetitorPrices(ctx, search, []store.CompetitorPrice{{HotelID: "h1", Currency: "EUR", OverallRating: ptr(9.1)}})
			},
			wantConstraint: "competitor_prices_overall_rating_range",
		},
		{
			name: "competitor hotel class 7",
			write: func() error {
				return s.ReplaceCompetitorPrices(ctx, search, []store.CompetitorPrice{{HotelID: "h1", Currency: "EUR", HotelClass: ptr(7)}})
			},
			wantConstraint: "competitor_prices_hotel_class_range",
		},
		{
			name: "competitor prices of an unknown property",
			write: func() error {
				bad := search
				bad.PropertyID = "ghost"
				return s.ReplaceCompetitorPrices(ctx, bad, price)
			},
			wantConstraint: "competitor_prices_property_fk",
		},
		{
			name: "analytics input rows not an array",
			write: func() error {
				return s.SaveAnalyticsInput(ctx, store.AnalyticsInput{ID: "i1", PropertyID: "p1", UserID: "u1",
					Rows: json.RawMessage(`{"rows":[]}`)})
			},
			wantConstraint: "analytics_inputs_rows_array",
			wantMsg:        []string{"save analytics input i1"},
		},
		{
			name: "analytics input rows not JSON",
			write: func() error {
				return s.SaveAnalyticsInput(ctx, store.AnalyticsInput{ID: "i1", PropertyID: "p1", UserID: "u1",
					Rows: json.RawMessage(`[{"price":}]`)})
			},
			wantMsg: []string{"save analytics input i1", "invalid input syntax for type json"},
		},
		{
			name: "analytics input without rows",
			write: func() error {
				return s.SaveAnalyticsInput(ctx, store.AnalyticsInput{ID: "i1", PropertyID: "p1", UserID: "u1"})
			},
			wantMsg: []string{"save analytics input i1", `"rows"`, "not-null"},
		},
		{
			name: "analysis type not in the enum",
			write: func() error {
				return s.UpsertAnalyticsResult(ctx, store.AnalyticsResult{Namespace: "ns", JobID: "analytics-1", PropertyID: "p1",
					AnalysisType: "forecast", Result: json.RawMessage(`{}`)})
			},
			wantConstraint: "analytics_results_analysis_type_valid",
			wantMsg:        []string{"upsert analytics result of job analytics-1"},
		},
		{
			name: "job of an unknown queue",
			write: func() error {
				bad := job
				bad.Queue = "analytics"
				return s.RecordJobResult(ctx, bad)
			},
			wantConstraint: "job_results_queue_valid",
			wantMsg:        []string{"record result of job enrich-1"},
		},
		{
			name: "job status not in the enum",
			write: func() error {
				bad := job
				bad.Status = "active"
				return s.RecordJobResult(ctx, bad)
			},
			wantConstraint: "job_results_status_valid",
		},
		{
			name: "completed job with an error",
			write: func() error {
				bad := job
				bad.Error = "but it completed"
				return s.RecordJobResult(ctx, bad)
			},
			wantConstraint: "job_results_error_only_on_failure",
		},
		{
			name: "job without a creation time",
			write: func() error {
				bad := job
				bad.CreatedAt = time.Time{}
				return s.RecordJobResult(ctx, bad)
			},
			wantMsg: []string{"record result of job enrich-1", "no creation time"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.write()
			if !errors.Is(err, store.ErrInvalid) {
				t.Fatalf("error = %v, want one matching ErrInvalid", err)
			}
			var pg *pgconn.PgError
			if tt.wantConstraint != "" {
				if !errors.As(err, &pg) || pg.ConstraintName != tt.wantConstraint {
					t.Errorf("error = %v, want one from constraint %s", err, tt.wantConstraint)
				}
				if !containsAll(err.Error(), tt.wantConstraint) {
					t.Errorf("error %q does not name constraint %s", err, tt.wantConstraint)
				}
			}
			if !containsAll(err.Error(), tt.wantMsg...) {
				t.Errorf("error %q does not say all of %q", err, tt.wantMsg)
			}
		})
	}
}

// TestTransientErrorsAreNotInvalid: a write that failed for a reason a retry may cure must not
// look like bad data, or the job would fail for good.
func TestTransientErrorsAreNotInvalid(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()

	_, err := s.UpsertProperty(ctx, store.Property{ID: "p1", UserID: "u1"})
	if err == nil || errors.Is(err, store.ErrInvalid) {
		t.Errorf("UpsertProperty with a cancelled context = %v, want an error not matching ErrInvalid", err)
	}
	if !errors.Is(err, context.Canceled) {
		t.Errorf("UpsertProperty with a cancelled context = %v, want one matching context.Canceled", err)
	}
}
