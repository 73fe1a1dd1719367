package competitor

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func priced(currency string, rates ...float64) []Hotel {
	hotels := make([]Hotel, len(rates))
	for i, r := range rates {
		hotels[i] = Hotel{ID: string(rune('a' + i)), NightlyRate: ptr(r), Currency: currency}
	}
	return hotels
}

func TestSummarize(t *testing.T) {
	// 100, 120, 140, 160, 200 plus an unpriced hotel and one in USD.
	known := append(priced("EUR", 160, 100, 200, 140, 120), Hotel{ID: "unpriced", Currency: "EUR"},
		Hotel{ID: "usd", NightlyRate: ptr(50.0), Currency: "USD"})
	tests := []struct {
		name     string
		hotels   []Hotel
		property *float64
		want     Summary
	}{
		{
			name: "known set, property above the median", hotels: known, property: ptr(150.0),
			want: Summary{Source: "s", Pages: 1, Hotels: 7, Priced: 5, OtherCurrency: 1, Currency: "EUR",
				Min: ptr(100.0), P25: ptr(120.0), Median: ptr(140.0), Mean: ptr(144.0), P75: ptr(160.0), Max: ptr(200.0),
				Property: &Position{Price: 150, PercentileRank: 60, DiffToMedian: 10}},
		},
		{
			name: "property tied with a competitor counts half", hotels: known, property: ptr(140.0),
			want: Summary{Source: "s", Pages: 1, Hotels: 7, Priced: 5, OtherCurrency: 1, Currency: "EUR",
				Min: ptr(100.0), P25: ptr(120.0), Median: ptr(140.0), Mean: ptr(144.0), P75: ptr(160.0), Max: ptr(200.0),
				Property: &Position{Price: 140, PercentileRank: 50, DiffToMedian: 0}},
		},
		{
			name: "interpolated quartiles, cheapest property", hotels: priced("EUR", 10, 20, 30, 40), property: ptr(5.0),
			want: Summary{Source: "s", Pages: 1, Hotels: 4, Priced: 4, Currency: "EUR",
				Min: ptr(10.0), P25: ptr(17.5), Median: ptr(25.0), Mean: ptr(25.0), P75: ptr(32.5), Max: ptr(40.0),
				Property: &Position{Price: 5, PercentileRank: 0, DiffToMedian: -20}},
		},
		{
			name: "cents", hotels: priced("EUR", 99.99, 100.01, 100.02),
			want: Summary{Source: "s", Pages: 1, Hotels: 3, Priced: 3, Currency: "EUR",
				Min: ptr(99.99), P25: ptr(100.0), Median: ptr(100.01), Mean: ptr(100.01), P75: ptr(100.02), Max: ptr(100.02)},
		},
		{
			name: "no hotel priced in the currency: no statistics, no position", hotels: priced("USD", 100), property: ptr(150.0),
			want: Summary{Source: "s", Pages: 1, Hotels: 1, OtherCurrency: 1, Currency: "EUR"},
		},
		{
			name: "no results", property: ptr(150.0),
			want: Summary{Source: "s", Pages: 1, Currency: "EUR"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := summarize("s", 1, tt.hotels, "EUR", tt.property)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("summarize (-want +got):\n%s", diff)
			}
		})
	}
}

func TestSummaryString(t *testing.T) {
	s := summarize(SourceSerpAPI, 2, append(priced("EUR", 100, 200), Hotel{ID: "x", NightlyRate: ptr(9.0), Currency: "GBP"}), "EUR", ptr(180.0))
	want := "3 hotels from serpapi-google-hotels, EUR nightly min 100.00 p25 125.00 median 150.00 mean 150.00 " +
		"p75 175.00 max 200.00 (1 in other currencies left out); property 180.00: percentile 50.0, +30.00 vs median"
	if got := s.String(); got != want {
		t.Errorf("String() =\n%q, want\n%q", got, want)
	}
	if got, want := summarize(SourceSerpAPI, 1, nil, "EUR", nil).String(), "0 hotels from serpapi-google-hotels, none priced in EUR"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}
