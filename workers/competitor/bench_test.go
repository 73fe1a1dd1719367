package competitor

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	jobsv1alpha1 "github.com/jengu/queue-operator/api/v1alpha1"
	"github.com/jengu/queue-operator/internal/testpg"
	"github.com/jengu/queue-operator/store"
	"github.com/jengu/queue-operator/workers"
	"github.com/jengu/queue-operator/workers/competitor/fakeserpapi"
)

// BenchmarkProcess60Hotels runs one competitor job end to end per op: three pages of 20 hotels
// from the fake SerpApi over loopback HTTP, parsed, the job's 60 rows replaced in PostgreSQL,
// the property's own price read and the statistics computed.
func BenchmarkProcess60Hotels(b *testing.B) {
	ctx := context.Background()
	db := testpg.OpenShared(b)
	api := fakeserpapi.New(fakeserpapi.WithAPIKey(testKey), fakeserpapi.WithHotels(fakeserpapi.DemoHotels(60, 2, 1)...))
	defer api.Close()
	id := fmt.Sprintf("bench-%d", time.Now().UnixNano())
	if _, err := db.UpsertProperty(ctx, store.Property{ID: id, UserID: "user-1"}); err != nil {
		b.Fatal(err)
	}
	if err := db.UpsertPricingRows(ctx, id, []store.PricingBase{{Date: day("2026-07-01"), Price: ptr(150.0)}}); err != nil {
		b.Fatal(err)
	}
	spec, _ := json.Marshal(jobsv1alpha1.CompetitorJobSpec{JobCommonSpec: jobsv1alpha1.JobCommonSpec{PropertyID: id, UserID: "user-1"},
		CompetitorFields: jobsv1alpha1.CompetitorFields{Location: "Barcelona", CheckIn: "2026-07-01", CheckOut: "2026-07-03", Adults: 2}})
	p := NewProcessor(db, NewSerpAPI(WithBaseURL(api.Endpoint())), WithAPIKey(testKey), WithCurrency("EUR"))
	task := workers.Task{ID: id, Namespace: "bench", Payload: spec, Attempt: 1, MaxAttempts: 3}
	b.ReportAllocs()
	for b.Loop() {
		out, err := p.Process(ctx, task, func(int, string) {})
		if err != nil {
			b.Fatal(err)
		}
		var s Summary
		if err := json.Unmarshal(out, &s); err != nil || s.Priced != 60 || s.Pages != 3 {
			b.Fatalf("summary %s, %v: want 60 hotels priced in 3 pages", out, err)
		}
	}
	b.ReportMetric(60, "hotels/op")
}

// recordPages fetches the three pages of 20 hotels the fake SerpApi serves for a search of 60.
func recordPages(b *testing.B) [][]byte {
	api := fakeserpapi.New(fakeserpapi.WithAPIKey(testKey), fakeserpapi.WithHotels(fakeserpapi.DemoHotels(60, 2, 1)...))
	defer api.Close()
	var pages [][]byte
	token := ""
	for range 3 {
		u, _ := NewSerpAPI(WithBaseURL(api.Endpoint())).pageURL(testSearch(), token)
		resp, err := http.Get(u)
		if err != nil {
			b.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		pages = append(pages, body)
		var r serpResponse
		_ = json.Unmarshal(body, &r)
		token = r.Pagination.NextPageToken
	}
	return pages
}

// parsePages reads the recorded pages as Search does.
func parsePages(b *testing.B, pages [][]byte) []Hotel {
	var hotels []Hotel
	for _, page := range pages {
		var r serpResponse
		if err := json.Unmarshal(page, &r); err != nil {
			b.Fatal(err)
		}
		hotels = append(hotels, r.hotels("EUR")...)
	}
	if len(hotels) != 60 {
		b.Fatalf("%d hotels, want 60", len(hotels))
	}
	return hotels
}

// BenchmarkParse3Pages parses three recorded pages of 20 hotels, without HTTP or PostgreSQL.
func BenchmarkParse3Pages(b *testing.B) {
	pages := recordPages(b)
	b.SetBytes(int64(len(pages[0]) + len(pages[1]) + len(pages[2])))
	b.ReportAllocs()
	for b.Loop() {
		parsePages(b, pages)
	}
}

// BenchmarkParseAndStore3Pages is one job's own work without the provider's HTTP: three recorded
// pages parsed, the job's 60 rows replaced in PostgreSQL (one transaction), and the statistics.
func BenchmarkParseAndStore3Pages(b *testing.B) {
	ctx := context.Background()
	db := testpg.OpenShared(b)
	pages := recordPages(b)
	id := fmt.Sprintf("bench-%d", time.Now().UnixNano())
	if _, err := db.UpsertProperty(ctx, store.Property{ID: id, UserID: "user-1"}); err != nil {
		b.Fatal(err)
	}
	search := store.CompetitorSearch{Namespace: "bench", JobID: id, PropertyID: id, CheckIn: day("2026-07-01"),
		CheckOut: day("2026-07-03"), Adults: 2}
	b.ReportAllocs()
	for b.Loop() {
		hotels := parsePages(b, pages)
		if err := db.ReplaceCompetitorPrices(ctx, search, storePrices(hotels)); err != nil {
			b.Fatal(err)
		}
		if s := summarize(SourceSerpAPI, 3, hotels, "EUR", ptr(150.0)); s.Priced != 60 {
			b.Fatalf("%d priced, want 60", s.Priced)
		}
	}
	b.ReportMetric(60, "hotels/op")
}
