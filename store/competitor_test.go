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
	JobID, HotelID, PropertyID, Name string
	CheckIn, CheckOut                time.Time
	Adults                           int
	Price                            float64
	Currency                         string
}

func competitorRows(t *testing.T, conn *pgx.Conn) []competitorRow {
	t.Helper()
	rows, err := conn.Query(context.Background(), `
		SELECT job_id, competitor_hotel_id, property_id, competitor_name, check_in, check_out, adults, price, currency
		FROM competitor_prices ORDER BY job_id, competitor_hotel_id`)
	if err != nil {
		t.Fatal(err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowToStructByPos[competitorRow])
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestUpsertCompetitorPricesTwiceLeavesEachHotelOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, conn := newStore(t)
	mustProperty(t, s, "p1", "u1")
	search := store.CompetitorSearch{JobID: "competitor-1", PropertyID: "p1",
		CheckIn: day("2026-07-01"), CheckOut: day("2026-07-03"), Adults: 2}
	fetched := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	prices := []store.CompetitorPrice{
		{HotelID: "h1", HotelName: "Hotel One", Price: 210.5, Currency: "EUR", FetchedAt: fetched},
		{HotelID: "h2", HotelName: "Hotel Two", Price: 180, Currency: "EUR", FetchedAt: fetched},
		{HotelID: "h3", HotelName: "Hotel Three", Price: 305.99, Currency: "EUR", FetchedAt: fetched},
	}
	// Another job's rows for the same property stay apart.
	other := search
	other.JobID = "competitor-2"
	if err := s.UpsertCompetitorPrices(ctx, other, prices[:1]); err != nil {
		t.Fatal(err)
	}

	for run := range 2 {
		if err := s.UpsertCompetitorPrices(ctx, search, prices); err != nil {
			t.Fatalf("run %d: UpsertCompetitorPrices: %v", run, err)
		}
	}
	wantRows := []competitorRow{
		{JobID: "competitor-1", HotelID: "h1", PropertyID: "p1", Name: "Hotel One", CheckIn: day("2026-07-01"),
			CheckOut: day("2026-07-03"), Adults: 2, Price: 210.5, Currency: "EUR"},
		{JobID: "competitor-1", HotelID: "h2", PropertyID: "p1", Name: "Hotel Two", CheckIn: day("2026-07-01"),
			CheckOut: day("2026-07-03"), Adults: 2, Price: 180, Currency: "EUR"},
		{JobID: "competitor-1", HotelID: "h3", PropertyID: "p1", Name: "Hotel Three", CheckIn: day("2026-07-01"),
			CheckOut: day("2026-07-03"), Adults: 2, Price: 305.99, Currency: "EUR"},
		{JobID: "competitor-2", HotelID: "h1", PropertyID: "p1", Name: "Hotel One", CheckIn: day("2026-07-01"),
			CheckOut: day("2026-07-03"), Adults: 2, Price: 210.5, Currency: "EUR"},
	}
	if diff := cmp.Diff(wantRows, competitorRows(t, conn)); diff != "" {
		t.Errorf("rows (-want +got):\n%s", diff)
	}
	got, err := s.ListCompetitorPrices(ctx, "competitor-1")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]store.CompetitorPrice{prices[1], prices[0], prices[2]}, got); diff != "" {
		t.Errorf("ListCompetitorPrices, cheapest first (-want +got):\n%s", diff)
	}

	// A re-run that scraped a new price overwrites the hotel's row.
	rerun := []store.CompetitorPrice{{HotelID: "h2", HotelName: "Hotel Two (renamed)", Price: 175.25,
		Currency: "EUR"}}
	if err := s.UpsertCompetitorPrices(ctx, search, rerun); err != nil {
		t.Fatal(err)
	}
	got, err = s.ListCompetitorPrices(ctx, "competitor-1")
	if err != nil {
		t.Fatal(err)
	}
	rerun[0].FetchedAt = testNow // zero FetchedAt means now
	if diff := cmp.Diff([]store.CompetitorPrice{rerun[0], prices[0], prices[2]}, got); diff != "" {
		t.Errorf("ListCompetitorPrices after re-run (-want +got):\n%s", diff)
	}
	if n := count(t, conn, "competitor_prices"); n != 4 {
		t.Errorf("%d rows, want 4", n)
	}
}

func TestUpsertCompetitorPricesRefusesAHotelTwice(t *testing.T) {
	t.Parallel()
	s, conn := newStore(t)
	mustProperty(t, s, "p1", "u1")
	search := store.CompetitorSearch{JobID: "competitor-1", PropertyID: "p1",
		CheckIn: day("2026-07-01"), CheckOut: day("2026-07-03"), Adults: 2}
	err := s.UpsertCompetitorPrices(context.Background(), search, []store.CompetitorPrice{
		{HotelID: "h1", Price: 1, Currency: "EUR"}, {HotelID: "h1", Price: 2, Currency: "EUR"}})
	if !errors.Is(err, store.ErrInvalid) || !containsAll(err.Error(), "competitor-1", `hotel "h1" given twice`) {
		t.Errorf("error = %v, want ErrInvalid naming the job and the hotel", err)
	}
	if n := count(t, conn, "competitor_prices"); n != 0 {
		t.Errorf("%d rows written, want 0", n)
	}
}
