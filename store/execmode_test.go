package store_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"

	"github.com/jengu/queue-operator/store"
)

func TestOpenChoosesQueryExecMode(t *testing.T) {
	t.Parallel()
	server := serverURL(t)
	cfg, err := pgx.ParseConfig(server)
	if err != nil {
		t.Fatal(err)
	}
	dsn := fmt.Sprintf("host=%s port=%d user=%s dbname=%s sslmode=disable", cfg.Host, cfg.Port, cfg.User, cfg.Database)

	tests := []struct {
		name string
		url  string
		opts []store.Option
		want pgx.QueryExecMode
	}{
		{name: "URL without a mode: simple protocol, for poolers", url: server, want: pgx.QueryExecModeSimpleProtocol},
		{name: "URL chooses", url: withQuery(t, server, "default_query_exec_mode", "cache_statement"),
			want: pgx.QueryExecModeCacheStatement},
		{name: "keyword/value string without a mode", url: dsn, want: pgx.QueryExecModeSimpleProtocol},
		{name: "keyword/value string chooses", url: dsn + " default_query_exec_mode=exec", want: pgx.QueryExecModeExec},
		{name: "option over URL", url: withQuery(t, server, "default_query_exec_mode", "cache_statement"),
			opts: []store.Option{store.WithQueryExecMode(pgx.QueryExecModeSimpleProtocol)},
			want: pgx.QueryExecModeSimpleProtocol},
		{name: "option without URL mode", url: server,
			opts: []store.Option{store.WithQueryExecMode(pgx.QueryExecModeCacheDescribe)},
			want: pgx.QueryExecModeCacheDescribe},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := openStore(t, tt.url, tt.opts...)
			if got := s.ExecMode(); got != tt.want {
				t.Errorf("exec mode = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestStoreWorksInEveryQueryExecMode runs every query of the store in each of pgx's modes: the
// simple protocol spells arguments out in the SQL text (arrays, dates, JSON, NULLs, quotes), the
// others send them typed, and both must store the same thing.
func TestStoreWorksInEveryQueryExecMode(t *testing.T) {
	t.Parallel()
	modes := []struct {
		name string
		// preparedStatements says whether the mode leaves named prepared statements on the session,
		// the thing a transaction pooler cannot carry from one transaction to the next.
		preparedStatements bool
	}{
		{name: "simple_protocol", preparedStatements: false},
		{name: "exec", preparedStatements: false},
		{name: "cache_describe", preparedStatements: false},
		{name: "describe_exec", preparedStatements: false},
		{name: "cache_statement", preparedStatements: true},
	}
	for _, mode := range modes {
		t.Run(mode.name, func(t *testing.T) {
			t.Parallel()
			dbURL := newDatabase(t)
			migrate(t, dbURL)
			// One connection, so that pg_prepared_statements below sees the session the store used.
			dbURL = withQuery(t, withQuery(t, dbURL, "default_query_exec_mode", mode.name), "pool_max_conns", "1")
			s := openStore(t, dbURL)

			exerciseStore(t, s)

			var prepared int
			if err := s.Pool().QueryRow(context.Background(), "SELECT count(*) FROM pg_prepared_statements").Scan(&prepared); err != nil {
				t.Fatal(err)
			}
			if (prepared > 0) != mode.preparedStatements {
				t.Errorf("%d prepared statements on the session; want some: %v", prepared, mode.preparedStatements)
			}
		})
	}
}

// exerciseStore calls every function of the store with awkward values and checks what comes back.
func exerciseStore(t *testing.T, s *store.Store) {
	t.Helper()
	ctx := context.Background()
	// A day written at midnight in UTC+14 must stay that day, not become the day before in UTC.
	kiritimati := time.FixedZone("LINT", 14*3600)
	const propertyID = "prop-1:O'Brien \"Inn\" \\ ü"
	const userID = "user-1"

	p, err := s.UpsertProperty(ctx, store.Property{ID: propertyID, UserID: userID,
		Location: &store.Location{Latitude: -33.8688, Longitude: 151.2093}, CountryCode: "AU"})
	if err != nil {
		t.Fatalf("UpsertProperty: %v", err)
	}
	if err := s.SetEnrichmentStatus(ctx, propertyID, store.EnrichmentCompleted); err != nil {
		t.Fatalf("SetEnrichmentStatus: %v", err)
	}
	got, err := s.GetProperty(ctx, propertyID)
	if err != nil {
		t.Fatalf("GetProperty: %v", err)
	}
	wantProperty := store.Property{ID: propertyID, UserID: userID,
		Location: &store.Location{Latitude: -33.8688, Longitude: 151.2093}, CountryCode: "AU",
		EnrichmentStatus: store.EnrichmentCompleted, EnrichedAt: testNow, CreatedAt: testNow, UpdatedAt: testNow}
	if diff := cmp.Diff(wantProperty, got); diff != "" {
		t.Errorf("GetProperty (-want +got):\n%s", diff)
	}
	if p.CreatedAt != testNow {
		t.Errorf("UpsertProperty returned CreatedAt %v, want %v", p.CreatedAt, testNow)
	}

	first := time.Date(2026, 1, 1, 0, 0, 0, 0, kiritimati)
	if err := s.UpsertPricingRows(ctx, propertyID, []store.PricingBase{
		{Date: first, Price: ptr(120.5), Occupancy: ptr(87.25)},
		{Date: first.AddDate(0, 0, 1)}, // no price, no occupancy
	}); err != nil {
		t.Fatalf("UpsertPricingRows: %v", err)
	}
	features := []store.PricingFeatures{
		featuresOf(day("2026-01-01"), "Sydney's \"New Year\" {day}, ü"),
		{ // all optional features absent
			Date: first.AddDate(0, 0, 1), DayOfWeek: 5, Month: 1, Quarter: 1, ISOWeek: 1, ISOYear: 2026,
			IsWeekend: false, Season: store.SeasonSummer,
		},
	}
	features[0].Date = first
	if err := s.UpsertPricingFeatures(ctx, propertyID, features); err != nil {
		t.Fatalf("UpsertPricingFeatures: %v", err)
	}
	rows, err := s.ListPricingRows(ctx, propertyID)
	if err != nil {
		t.Fatalf("ListPricingRows: %v", err)
	}
	wantFeatures := slices.Clone(features)
	wantFeatures[0].Date, wantFeatures[1].Date = day("2026-01-01"), day("2026-01-02") // read back in UTC
	wantRows := []store.PricingRow{
		{Date: day("2026-01-01"), Price: ptr(120.5), Occupancy: ptr(87.25), Features: &wantFeatures[0], EnrichedAt: testNow},
		{Date: day("2026-01-02"), Features: &wantFeatures[1], EnrichedAt: testNow},
	}
	if diff := cmp.Diff(wantRows, rows); diff != "" {
		t.Errorf("ListPricingRows (-want +got):\n%s", diff)
	}

	search := store.CompetitorSearch{Namespace: "jengu", JobID: "competitor-1", PropertyID: propertyID,
		CheckIn: first, CheckOut: first.AddDate(0, 0, 2), Adults: 2}
	fetched := time.Date(2026, 1, 1, 8, 0, 0, 999, kiritimati)
	if err := s.ReplaceCompetitorPrices(ctx, search, []store.CompetitorPrice{
		{HotelID: "h'1", HotelName: "L'Hôtel \"Royal\"", Price: ptr(199.99), Currency: "AUD", FetchedAt: fetched},
		{HotelID: "h2", HotelName: "", Price: ptr(0.0), Currency: "AUD"},
	}); err != nil {
		t.Fatalf("ReplaceCompetitorPrices: %v", err)
	}
	prices, err := s.ListCompetitorPrices(ctx, search.Namespace, search.JobID)
	if err != nil {
		t.Fatalf("ListCompetitorPrices: %v", err)
	}
	wantPrices := []store.CompetitorPrice{
		{HotelID: "h2", HotelName: "", Price: ptr(0.0), Currency: "AUD", FetchedAt: testNow},
		{HotelID: "h'1", HotelName: "L'Hôtel \"Royal\"", Price: ptr(199.99), Currency: "AUD",
			FetchedAt: fetched.UTC().Truncate(time.Microsecond)},
	}
	if diff := cmp.Diff(wantPrices, prices); diff != "" {
		t.Errorf("ListCompetitorPrices (-want +got):\n%s", diff)
	}

	input := store.AnalyticsInput{ID: "input-1", PropertyID: propertyID, UserID: userID,
		Rows: json.RawMessage(`[{"date":"2026-01-01","price":120.5,"note":"it's \"quoted\" \\ ü"},null,[]]`)}
	if err := s.SaveAnalyticsInput(ctx, input); err != nil {
		t.Fatalf("SaveAnalyticsInput: %v", err)
	}
	gotInput, err := s.GetAnalyticsInput(ctx, input.ID)
	if err != nil {
		t.Fatalf("GetAnalyticsInput: %v", err)
	}
	input.CreatedAt = testNow
	if diff := cmp.Diff(input, gotInput, jsonEqual); diff != "" {
		t.Errorf("GetAnalyticsInput (-want +got):\n%s", diff)
	}

	result := store.AnalyticsResult{Namespace: "ns", JobID: "analytics-1", PropertyID: propertyID,
		AnalysisType: store.AnalysisWeatherImpact, Result: json.RawMessage(`{"correlation":-0.25,"n":2}`)}
	if err := s.UpsertAnalyticsResult(ctx, result); err != nil {
		t.Fatalf("UpsertAnalyticsResult: %v", err)
	}
	gotResult, err := s.GetAnalyticsResult(ctx, "ns", result.JobID)
	if err != nil {
		t.Fatalf("GetAnalyticsResult: %v", err)
	}
	result.CreatedAt = testNow
	if diff := cmp.Diff(result, gotResult, jsonEqual); diff != "" {
		t.Errorf("GetAnalyticsResult (-want +got):\n%s", diff)
	}

	created := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	jobs := []store.JobResult{
		{JobID: "enrich-1", Queue: "enrichment", Namespace: "default", UserID: userID, PropertyID: propertyID,
			Status: store.JobCompleted, Attempts: 1, Result: json.RawMessage(`{"rows":2}`), CreatedAt: created},
		{JobID: "competitor-1", Queue: "competitor", Namespace: "default", UserID: userID, PropertyID: propertyID,
			Status: store.JobFailed, Attempts: 3, Error: "hotel API: 'timeout' \"again\"",
			CreatedAt: created.Add(time.Minute), FinishedAt: created.Add(2 * time.Minute)},
	}
	for _, j := range jobs {
		if err := s.RecordJobResult(ctx, j); err != nil {
			t.Fatalf("RecordJobResult %s: %v", j.JobID, err)
		}
	}
	gotJob, err := s.GetJobResult(ctx, "default", "enrich-1")
	if err != nil {
		t.Fatalf("GetJobResult: %v", err)
	}
	wantJob := jobs[0]
	wantJob.FinishedAt = testNow
	if diff := cmp.Diff(wantJob, gotJob, jsonEqual); diff != "" {
		t.Errorf("GetJobResult (-want +got):\n%s", diff)
	}
	list, err := s.ListJobResults(ctx, store.JobResultQuery{UserID: userID, Status: store.JobFailed})
	if err != nil {
		t.Fatalf("ListJobResults: %v", err)
	}
	if diff := cmp.Diff([]store.JobResult{jobs[1]}, list, jsonEqual); diff != "" {
		t.Errorf("ListJobResults (-want +got):\n%s", diff)
	}
}
