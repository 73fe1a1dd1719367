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
	"github.com/jengu/queue-operator/store"
	"github.com/jengu/queue-operator/workers"
	"github.com/jengu/queue-operator/workers/competitor/fakeserpapi"
)

// BenchmarkProcess60Hotels runs one competitor job end to end per op: three pages of 20 hotels
// from the fake SerpApi over loopback HTTP, parsed, the job's 60 rows replaced in PostgreSQL,
// the property's own price read and the statistics computed.
func BenchmarkProcess60Hotels(b *testing.B) {
	ctx := context.Background()
	db := openStore(b)
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
		Location: "Barcelona", CheckIn: "2026-07-01", CheckOut: "2026-07-03", Adults: 2})
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

// BenchmarkParse3Pages parses three recorded pages of 20 hotels (the JSON the fake serves),
// without HTTP or PostgreSQL.
func BenchmarkParse3Pages(b *testing.B) {
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
	b.SetBytes(int64(len(pages[0]) + len(pages[1]) + len(pages[2])))
	b.ReportAllocs()
	for b.Loop() {
		n := 0
		for _, page := range pages {
			var r serpResponse
			if err := json.Unmarshal(page, &r); err != nil {
				b.Fatal(err)
			}
			n += len(r.hotels("EUR"))
		}
		if n != 60 {
			b.Fatalf("%d hotels, want 60", n)
		}
	}
}
