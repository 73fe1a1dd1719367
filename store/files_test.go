package store_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/jengu/queue-operator/store"
)

func uploadRows(prices map[string]float64) []store.PricingBase {
	var rows []store.PricingBase
	for d, p := range prices {
		rows = append(rows, store.PricingBase{Date: day(d), Price: ptr(p), Occupancy: ptr(50.0)})
	}
	return rows
}

func TestCreateReplaceAndDeleteFile(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, conn := newStore(t)
	p := store.Property{ID: "f1", UserID: "user-1", Name: "prices.csv", Currency: "EUR",
		Location: &store.Location{Latitude: 41.39, Longitude: 2.17}, CountryCode: "ES"}

	created, err := s.CreateFile(ctx, p, uploadRows(map[string]float64{"2026-01-01": 100, "2026-01-03": 120}))
	if err != nil {
		t.Fatalf("CreateFile: %v", err)
	}
	want := store.File{Property: store.Property{ID: "f1", UserID: "user-1", Name: "prices.csv", Currency: "EUR",
		Location: p.Location, CountryCode: "ES", EnrichmentStatus: store.EnrichmentPending,
		CreatedAt: testNow, UpdatedAt: testNow, UploadedAt: testNow},
		Rows: 2, FirstDate: day("2026-01-01"), LastDate: day("2026-01-03")}
	if diff := cmp.Diff(want, created); diff != "" {
		t.Errorf("created file (-want +got):\n%s", diff)
	}

	if _, err := s.CreateFile(ctx, store.Property{ID: "f1", UserID: "user-2"}, nil); !errors.Is(err, store.ErrConflict) {
		t.Errorf("CreateFile on a taken id = %v, want ErrConflict", err)
	}

	// An enriched file replaced: rows swapped, enrichment stale, what the upload left out kept.
	if err := s.UpsertPricingFeatures(ctx, "f1", []store.PricingFeatures{featuresOf(day("2026-01-01"), "")}); err != nil {
		t.Fatal(err)
	}
	if err := s.SetEnrichmentStatus(ctx, "f1", store.EnrichmentCompleted); err != nil {
		t.Fatal(err)
	}
	replaced, err := s.ReplaceFile(ctx, store.Property{ID: "f1", UserID: "user-1", Currency: "USD"},
		uploadRows(map[string]float64{"2026-02-01": 90}))
	if err != nil {
		t.Fatalf("ReplaceFile: %v", err)
	}
	if replaced.EnrichmentStatus != store.EnrichmentStale || replaced.Currency != "USD" || replaced.Name != "prices.csv" ||
		replaced.Location == nil || replaced.Rows != 1 || !replaced.FirstDate.Equal(day("2026-02-01")) {
		t.Errorf("replaced file = %+v", replaced)
	}
	if n := count(t, conn, "pricing_rows"); n != 1 {
		t.Errorf("%d pricing rows after the replace, want 1", n)
	}
	if _, err := s.ReplaceFile(ctx, store.Property{ID: "f1", UserID: "user-2"}, nil); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("ReplaceFile of another user's file = %v, want ErrNotFound", err)
	}

	if err := s.DeleteFile(ctx, "f1", "user-2"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("DeleteFile of another user's file = %v, want ErrNotFound", err)
	}
	if err := s.DeleteFile(ctx, "f1", "user-1"); err != nil {
		t.Fatalf("DeleteFile: %v", err)
	}
	if n := count(t, conn, "pricing_rows") + count(t, conn, "properties"); n != 0 {
		t.Errorf("%d rows left after the delete", n)
	}
}

func TestReplaceFileIsAllOrNothing(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, conn := newStore(t)
	if _, err := s.CreateFile(ctx, store.Property{ID: "f1", UserID: "u"}, uploadRows(map[string]float64{"2026-01-01": 1})); err != nil {
		t.Fatal(err)
	}
	bad := []store.PricingBase{{Date: day("2026-03-01"), Price: ptr(1.0)}, {Date: day("2026-03-02"), Price: ptr(-1.0)}}
	if _, err := s.ReplaceFile(ctx, store.Property{ID: "f1", UserID: "u"}, bad); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("ReplaceFile with a negative price = %v, want ErrInvalid", err)
	}
	rows, err := s.ListPricingRows(ctx, "f1")
	if err != nil || len(rows) != 1 || !rows[0].Date.Equal(day("2026-01-01")) {
		t.Errorf("rows after a refused replace = %+v, %v; want the old day", rows, err)
	}
	if n := count(t, conn, "properties WHERE enrichment_status = 'pending'"); n != 1 {
		t.Errorf("the refused replace changed the property")
	}
}

func TestListFilesAndRowsPages(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dbURL := newDatabase(t)
	migrate(t, dbURL)
	s := openStore(t, dbURL)
	for i, id := range []string{"a", "b", "c"} {
		s := openStore(t, dbURL, store.WithClock(fixedClock{testNow.Add(time.Duration(i) * time.Minute)}))
		if _, err := s.CreateFile(ctx, store.Property{ID: id, UserID: "u"}, uploadRows(map[string]float64{
			"2026-01-01": 1, "2026-01-02": 2, "2026-01-03": 3})); err != nil {
			t.Fatal(err)
		}
	}
	mustProperty(t, s, "other", "someone-else")

	files, total, err := s.ListFiles(ctx, "u", store.Page{Limit: 2, Offset: 1})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, f := range files {
		ids = append(ids, f.ID)
	}
	if total != 3 || !cmp.Equal(ids, []string{"b", "a"}) || files[0].Rows != 3 {
		t.Errorf("ListFiles = %v (total %d), want [b a] of 3", ids, total)
	}

	rows, total, err := s.PricingRowsPage(ctx, "a", store.Page{Limit: 2, Offset: 1})
	if err != nil {
		t.Fatal(err)
	}
	if total != 3 || len(rows) != 2 || !rows[0].Date.Equal(day("2026-01-02")) || *rows[1].Price != 3 {
		t.Errorf("PricingRowsPage = %+v (total %d), want days 2 and 3 of 3", rows, total)
	}
}
