package store_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"

	"github.com/jengu/queue-operator/store"
)

// competitorRow is a stored competitor price with its search columns, read directly.
type competitorRow struct {
	Namespace, JobID, HotelID, PropertyID, Name string
	CheckIn, CheckOut                           time.Time
	Adults                                      int
	Price                                       *float64
	Currency                                    string
}

func competitorRows(t *testing.T, conn *pgx.Conn) []competitorRow {
	t.Helper()
	rows, err := conn.Query(context.Background(), `
		SELECT namespace, job_id, competitor_hotel_id, property_id, competitor_name, check_in, check_out, adults,
			price::float8, currency
		FROM competitor_prices ORDER BY namespace, job_id, competitor_hotel_id`)
	if err != nil {
		t.Fatal(err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowToStructByPos[competitorRow])
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestReplaceCompetitorPricesKeepsOnlyTheLatestSetOfTheJob(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, conn := newStore(t)
	mustProperty(t, s, "p1", "u1")
	search := store.CompetitorSearch{Namespace: "jengu", JobID: "competitor-1", PropertyID: "p1",
		CheckIn: day("2026-07-01"), CheckOut: day("2026-07-03"), Adults: 2}
	fetched := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	prices := []store.CompetitorPrice{
		{HotelID: "h1", HotelName: "Hotel One", Price: ptr(210.5), TotalPrice: ptr(421.0), Currency: "EUR",
			OverallRating: ptr(4.4), Reviews: ptr(1520), HotelClass: ptr(4), Latitude: ptr(41.39),
			Longitude: ptr(2.17), FetchedAt: fetched},
		{HotelID: "h2", HotelName: "Hotel Two", Price: ptr(180.0), Currency: "EUR", FetchedAt: fetched},
		{HotelID: "h3", HotelName: "Hotel Three, no price", Currency: "EUR", FetchedAt: fetched},
	}
	// The same job id in another namespace, and another job, stay apart.
	other := search
	other.Namespace = "other"
	if err := s.ReplaceCompetitorPrices(ctx, other, prices[:1]); err != nil {
		t.Fatal(err)
	}
	otherJob := search
	otherJob.JobID = "competitor-2"
	if err := s.ReplaceCompetitorPrices(ctx, otherJob, prices[:1]); err != nil {
		t.Fatal(err)
	}

	for run := range 2 {
		if err := s.ReplaceCompetitorPrices(ctx, search, prices); err != nil {
			t.Fatalf("run %d: ReplaceCompetitorPrices: %v", run, err)
		}
	}
	got, err := s.ListCompetitorPrices(ctx, "jengu", "competitor-1")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]store.CompetitorPrice{prices[1], prices[0], prices[2]}, got); diff != "" {
		t.Errorf("ListCompetitorPrices, cheapest first, unpriced last (-want +got):\n%s", diff)
	}

	// A re-run that no longer lists h1 and h3 leaves only its own set.
	rerun := []store.CompetitorPrice{{HotelID: "h2", HotelName: "Hotel Two (renamed)", Price: ptr(175.25),
		Currency: "EUR"}}
	if err := s.ReplaceCompetitorPrices(ctx, search, rerun); err != nil {
		t.Fatal(err)
	}
	rerun[0].FetchedAt = testNow // zero FetchedAt means now
	got, err = s.ListCompetitorPrices(ctx, "jengu", "competitor-1")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(rerun, got); diff != "" {
		t.Errorf("ListCompetitorPrices after re-run (-want +got):\n%s", diff)
	}
	stay := func(ns, job, hotel, name string, price float64) competitorRow {
		return competitorRow{Namespace: ns, JobID: job, HotelID: hotel, PropertyID: "p1", Name: name,
			CheckIn: day("2026-07-01"), CheckOut: day("2026-07-03"), Adults: 2, Price: ptr(price), Currency: "EUR"}
	}
	wantRows := []competitorRow{
		stay("jengu", "competitor-1", "h2", "Hotel Two (renamed)", 175.25),
		stay("jengu", "competitor-2", "h1", "Hotel One", 210.5),
		stay("other", "competitor-1", "h1", "Hotel One", 210.5),
	}
	if diff := cmp.Diff(wantRows, competitorRows(t, conn)); diff != "" {
		t.Errorf("rows (-want +got):\n%s", diff)
	}

	// No hotels at all (a search without results) empties the job's set.
	if err := s.ReplaceCompetitorPrices(ctx, search, nil); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.ListCompetitorPrices(ctx, "jengu", "competitor-1"); len(got) != 0 {
		t.Errorf("after an empty set: %v, want none", got)
	}
}

func TestReplaceCompetitorPricesRefusesAHotelTwiceAndKeepsTheEarlierSet(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, conn := newStore(t)
	mustProperty(t, s, "p1", "u1")
	search := store.CompetitorSearch{Namespace: "jengu", JobID: "competitor-1", PropertyID: "p1",
		CheckIn: day("2026-07-01"), CheckOut: day("2026-07-03"), Adults: 2}
	if err := s.ReplaceCompetitorPrices(ctx, search, []store.CompetitorPrice{
		{HotelID: "h0", Price: ptr(1.0), Currency: "EUR"}}); err != nil {
		t.Fatal(err)
	}
	err := s.ReplaceCompetitorPrices(ctx, search, []store.CompetitorPrice{
		{HotelID: "h1", Price: ptr(1.0), Currency: "EUR"}, {HotelID: "h1", Price: ptr(2.0), Currency: "EUR"}})
	if !errors.Is(err, store.ErrInvalid) || !containsAll(err.Error(), "jengu/competitor-1", `hotel "h1" given twice`) {
		t.Errorf("error = %v, want ErrInvalid naming the job and the hotel", err)
	}
	// A row the schema refuses rolls the whole replacement back.
	err = s.ReplaceCompetitorPrices(ctx, search, []store.CompetitorPrice{
		{HotelID: "h1", Price: ptr(1.0), Currency: "EUR"}, {HotelID: "h2", Price: ptr(-1.0), Currency: "EUR"}})
	if !errors.Is(err, store.ErrInvalid) || !containsAll(err.Error(), "competitor_prices_price_nonnegative") {
		t.Errorf("error = %v, want ErrInvalid naming the constraint", err)
	}
	if rows := competitorRows(t, conn); len(rows) != 1 || rows[0].HotelID != "h0" {
		t.Errorf("rows = %v, want the earlier set (h0) untouched", rows)
	}
}

func TestPropertyPriceOn(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _ := newStore(t)
	mustProperty(t, s, "p1", "u1")
	if err := s.UpsertPricingRows(ctx, "p1", []store.PricingBase{
		{Date: day("2026-07-01"), Price: ptr(150.5)}, {Date: day("2026-07-02")}}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		day     string
		want    float64
		wantErr error
	}{
		{day: "2026-07-01", want: 150.5},
		{day: "2026-07-02", wantErr: store.ErrNotFound}, // a row without a price
		{day: "2026-07-03", wantErr: store.ErrNotFound}, // no row
	}
	for _, tt := range tests {
		got, err := s.PropertyPriceOn(ctx, "p1", day(tt.day))
		if !errors.Is(err, tt.wantErr) || got != tt.want {
			t.Errorf("PropertyPriceOn(%s) = %v, %v; want %v, %v", tt.day, got, err, tt.want, tt.wantErr)
		}
	}
}
