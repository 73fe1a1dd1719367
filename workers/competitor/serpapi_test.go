package competitor

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/jengu/queue-operator/workers/competitor/fakeserpapi"
	"github.com/jengu/queue-operator/workers/outside"
)

const testKey = "sk-test-0123456789abcdef"

func ptr[T any](v T) *T { return &v }

func day(s string) time.Time {
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		panic(err)
	}
	return t
}

func testSearch() Search {
	return Search{Location: "Barcelona", CheckIn: day("2026-07-01"), CheckOut: day("2026-07-03"), Adults: 2,
		Currency: "EUR", APIKey: testKey}
}

// threeHotels are two pages of two and one: a hotel with no price, one in another currency.
var threeHotels = []fakeserpapi.Hotel{
	{Token: "tok-a", Name: "Hotel A", Nightly: ptr(120.0), Total: ptr(240.0), OverallRating: ptr(4.5),
		Reviews: ptr(1200), Class: ptr(4), Latitude: 41.38, Longitude: 2.17},
	{Token: "tok-b", Name: "Hostal B (no price)", Latitude: 41.39, Longitude: 2.16},
	{Token: "tok-c", Name: "Hotel C", Nightly: ptr(2300.0), Total: ptr(4600.0), Currency: "MXN",
		Latitude: 41.40, Longitude: 2.18},
}

func TestSerpAPIReadsEveryPage(t *testing.T) {
	api := fakeserpapi.New(fakeserpapi.WithAPIKey(testKey), fakeserpapi.WithHotels(threeHotels...),
		fakeserpapi.WithPageSize(2))
	defer api.Close()
	var pages []int
	hotels, err := NewSerpAPI(WithBaseURL(api.Endpoint()), WithCountry("es")).Search(context.Background(), testSearch(),
		func(p int) { pages = append(pages, p) })
	if err != nil {
		t.Fatal(err)
	}
	want := []Hotel{
		{ID: "tok-a", Name: "Hotel A", NightlyRate: ptr(120.0), TotalRate: ptr(240.0), Currency: "EUR",
			OverallRating: ptr(4.5), Reviews: ptr(1200), HotelClass: ptr(4), Latitude: ptr(41.38), Longitude: ptr(2.17)},
		{ID: "tok-b", Name: "Hostal B (no price)", Currency: "EUR", Latitude: ptr(41.39), Longitude: ptr(2.16)},
		{ID: "tok-c", Name: "Hotel C", NightlyRate: ptr(2300.0), TotalRate: ptr(4600.0), Currency: "MXN",
			Latitude: ptr(41.40), Longitude: ptr(2.18)},
	}
	if diff := cmp.Diff(want, hotels); diff != "" {
		t.Errorf("hotels (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]int{1, 2}, pages); diff != "" {
		t.Errorf("pages reported (-want +got):\n%s", diff)
	}
	reqs := api.Requests()
	if len(reqs) != 2 {
		t.Fatalf("%d requests, want 2", len(reqs))
	}
	first := reqs[0]
	for k, v := range map[string]string{"engine": "google_hotels", "q": "Barcelona", "check_in_date": "2026-07-01",
		"check_out_date": "2026-07-03", "adults": "2", "currency": "EUR", "gl": "es", "hl": "en", "api_key": testKey} {
		if got := first.Get(k); got != v {
			t.Errorf("request parameter %s = %q, want %q", k, got, v)
		}
	}
	if first.Has("next_page_token") || reqs[1].Get("next_page_token") == "" {
		t.Errorf("next_page_token: first %q, second %q; want none, then the first page's", first.Get("next_page_token"),
			reqs[1].Get("next_page_token"))
	}
}

func TestSerpAPIStopsAtThePageCap(t *testing.T) {
	api := fakeserpapi.New(fakeserpapi.WithAPIKey(testKey),
		fakeserpapi.WithHotels(fakeserpapi.DemoHotels(100, 2, 1)...))
	defer api.Close()
	hotels, err := NewSerpAPI(WithBaseURL(api.Endpoint()), WithMaxPages(2)).Search(context.Background(), testSearch(), func(int) {})
	if err != nil {
		t.Fatal(err)
	}
	if len(hotels) != 40 || len(api.Requests()) != 2 {
		t.Errorf("%d hotels in %d requests, want 40 in 2 (the cap)", len(hotels), len(api.Requests()))
	}
	if NewSerpAPI().MaxPages() != 3 {
		t.Errorf("default page cap %d, want 3", NewSerpAPI().MaxPages())
	}
}

func TestSerpAPIOutcomes(t *testing.T) {
	tests := []struct {
		name           string
		answers        []fakeserpapi.Answer
		key            string
		opts           []SerpAPIOption
		wantOutcome    outside.Outcome
		wantRetryAfter time.Duration
		wantMsg        string
		wantErr        error
	}{
		{name: "429 with Retry-After", answers: []fakeserpapi.Answer{{Status: 429, Error: "Too many requests", RetryAfter: "30"}},
			wantOutcome: outside.OutcomeRateLimited, wantRetryAfter: 30 * time.Second, wantMsg: "Too many requests"},
		// A month's searches spent: waiting minutes does not help, and a rate-limited job would
		// hold the whole queue back until the plan renews.
		{name: "out of searches", answers: []fakeserpapi.Answer{{Status: 429, Error: fakeserpapi.ErrOutOfSearch, RetryAfter: "30"}},
			wantOutcome: outside.OutcomePermanent, wantMsg: "run out of searches"},
		{name: "429 without Retry-After", answers: []fakeserpapi.Answer{{Status: 429, Error: "Too many requests"}},
			wantOutcome: outside.OutcomeRateLimited, wantRetryAfter: DefaultRetryAfter},
		{name: "rate limit answered with 200", answers: []fakeserpapi.Answer{{Status: 200, Error: "You have exceeded the hourly throughput limit."}},
			wantOutcome: outside.OutcomeRateLimited, wantRetryAfter: DefaultRetryAfter},
		{name: "invalid key", key: "wrong-key", wantOutcome: outside.OutcomePermanent, wantMsg: "HTTP 401 (permanent): Invalid API key"},
		{name: "403", answers: []fakeserpapi.Answer{{Status: 403, Error: "This account is suspended."}}, wantOutcome: outside.OutcomePermanent},
		{name: "bad parameters", answers: []fakeserpapi.Answer{{Status: 400, Error: "Unsupported `xx` gl parameter."}},
			wantOutcome: outside.OutcomePermanent, wantMsg: "Unsupported `xx` gl parameter."},
		{name: "5xx", answers: []fakeserpapi.Answer{{Status: 503, Body: "<html>Service Unavailable</html>"}},
			wantOutcome: outside.OutcomeRetryable, wantMsg: "HTTP 503 (retryable): Service Unavailable"},
		{name: "truncated JSON", answers: []fakeserpapi.Answer{{Status: 200, Body: `{"search_metadata": {"status": "Succ`}},
			wantOutcome: outside.OutcomeRetryable, wantErr: outside.ErrMalformedResponse},
		{name: "search failed", answers: []fakeserpapi.Answer{{Status: 200, Body: `{"search_metadata": {"status": "Error"}, "error": "Google hasn't responded in time."}`}},
			wantOutcome: outside.OutcomeRetryable, wantMsg: "Google hasn't responded in time."},
		{name: "over the size cap", answers: []fakeserpapi.Answer{{Status: 200, Body: `{"properties": [` + strings.Repeat(`{"name": "x"},`, 100) + `{}]}`}},
			opts: []SerpAPIOption{WithMaxResponseBytes(512)}, wantOutcome: outside.OutcomeRetryable, wantErr: outside.ErrResponseTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			api := fakeserpapi.New(fakeserpapi.WithAPIKey(testKey), fakeserpapi.WithHotels(threeHotels...))
			defer api.Close()
			api.Enqueue(tt.answers...)
			search := testSearch()
			if tt.key != "" {
				search.APIKey = tt.key
			}
			_, err := NewSerpAPI(append([]SerpAPIOption{WithBaseURL(api.Endpoint())}, tt.opts...)...).Search(context.Background(), search, func(int) {})
			if got := outside.OutcomeOf(err); got != tt.wantOutcome {
				t.Fatalf("outcome of %v = %v, want %v", err, got, tt.wantOutcome)
			}
			var apiErr *outside.APIError
			if errors.As(err, &apiErr) && apiErr.RetryAfter != tt.wantRetryAfter {
				t.Errorf("RetryAfter = %v, want %v", apiErr.RetryAfter, tt.wantRetryAfter)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("error %q, want it to contain %q", err, tt.wantMsg)
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Errorf("error %v, want it to wrap %v", err, tt.wantErr)
			}
			if strings.Contains(err.Error(), search.APIKey) {
				t.Errorf("error %q shows the API key", err)
			}
		})
	}
}

func TestSerpAPINoResultsIsAnEmptyList(t *testing.T) {
	api := fakeserpapi.New(fakeserpapi.WithAPIKey(testKey))
	defer api.Close()
	hotels, err := NewSerpAPI(WithBaseURL(api.Endpoint())).Search(context.Background(), testSearch(), func(int) {})
	if err != nil || len(hotels) != 0 {
		t.Errorf("Search = %v, %v; want no hotels and no error", hotels, err)
	}
}

func TestSerpAPIKeepsTheKeyOutOfTransportErrors(t *testing.T) {
	api := fakeserpapi.New(fakeserpapi.WithAPIKey(testKey))
	endpoint := api.Endpoint()
	api.Close() // connection refused: net/http's error names the URL, api_key included
	_, err := NewSerpAPI(WithBaseURL(endpoint)).Search(context.Background(), testSearch(), func(int) {})
	if outside.OutcomeOf(err) != outside.OutcomeRetryable {
		t.Errorf("outcome of %v = %v, want retryable", err, outside.OutcomeOf(err))
	}
	if strings.Contains(err.Error(), testKey) || !strings.Contains(err.Error(), "REDACTED") {
		t.Errorf("error %q: want the key redacted", err)
	}
}

func TestSerpAPITimeoutIsRetryable(t *testing.T) {
	slow := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
	srv := httptest.NewServer(slow)
	defer srv.Close()
	_, err := NewSerpAPI(WithBaseURL(srv.URL), WithTimeout(50*time.Millisecond)).Search(context.Background(), testSearch(), func(int) {})
	if outside.OutcomeOf(err) != outside.OutcomeRetryable || !errors.Is(err, outside.ErrTimeout) {
		t.Errorf("error %v: want a retryable timeout", err)
	}
	if strings.Contains(err.Error(), testKey) {
		t.Errorf("error %q shows the API key", err)
	}
}

func TestCurrencyOf(t *testing.T) {
	tests := []struct{ formatted, answer, want string }{
		{"€120", "USD", "EUR"},
		{"MXN 2,300", "EUR", "MXN"},
		{"$120", "USD", "USD"},
		{"$120", "CAD", "CAD"}, // a dollar is the answer's dollar
		{"", "EUR", "EUR"},
		{"£99", "EUR", "GBP"},
	}
	for _, tt := range tests {
		if got := currencyOf(tt.formatted, tt.answer); got != tt.want {
			t.Errorf("currencyOf(%q, %q) = %q, want %q", tt.formatted, tt.answer, got, tt.want)
		}
	}
}

func TestSerpAPIKeepsAHotelListedOnTwoPagesOnce(t *testing.T) {
	again := threeHotels[0]
	again.Nightly = ptr(999.0)
	api := fakeserpapi.New(fakeserpapi.WithAPIKey(testKey), fakeserpapi.WithPageSize(2),
		fakeserpapi.WithHotels(threeHotels[0], threeHotels[1], again))
	defer api.Close()
	hotels, err := NewSerpAPI(WithBaseURL(api.Endpoint())).Search(context.Background(), testSearch(), func(int) {})
	if err != nil {
		t.Fatal(err)
	}
	if len(hotels) != 2 || *hotels[0].NightlyRate != 120 {
		t.Errorf("hotels %+v: want tok-a once, as first listed, and tok-b", hotels)
	}
}
