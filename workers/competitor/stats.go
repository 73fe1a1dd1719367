package competitor

import (
	"fmt"
	"math"
	"slices"
	"strings"
)

// Summary is a finished job's return value: what the provider listed and the spread of the
// competitors' nightly rates in the job's currency.
type Summary struct {
	Source string `json:"source"`
	Pages  int    `json:"pages"`
	// Hotels counts every hotel stored; Priced those with a nightly rate in Currency, which the
	// statistics cover. OtherCurrency counts hotels priced in another currency (stored with
	// their own, left out of the statistics).
	Hotels        int    `json:"hotels"`
	Priced        int    `json:"priced"`
	OtherCurrency int    `json:"otherCurrency"`
	Currency      string `json:"currency"`
	// The nightly rates' statistics; absent when no hotel is priced in Currency.
	Min    *float64 `json:"min,omitempty"`
	P25    *float64 `json:"p25,omitempty"`
	Median *float64 `json:"median,omitempty"`
	Mean   *float64 `json:"mean,omitempty"`
	P75    *float64 `json:"p75,omitempty"`
	Max    *float64 `json:"max,omitempty"`
	// Property is where the property's own price for the check-in night sits; absent when its
	// pricing rows have no price that day, or no competitor is priced.
	Property *Position `json:"property,omitempty"`
}

// Position compares the property's price with the competitors'.
type Position struct {
	Price float64 `json:"price"`
	// PercentileRank is the share of competitors priced below the property, counting ties as
	// half, in percent: 0 is the cheapest, 100 the dearest.
	PercentileRank float64 `json:"percentileRank"`
	// DiffToMedian is the property's price minus the competitors' median.
	DiffToMedian float64 `json:"diffToMedian"`
}

// summarize computes the job's Summary. propertyPrice is nil when the property has no price
// for the check-in night.
func summarize(source string, pages int, hotels []Hotel, currency string, propertyPrice *float64) Summary {
	s := Summary{Source: source, Pages: pages, Hotels: len(hotels), Currency: currency}
	var rates []float64
	for _, h := range hotels {
		switch {
		case h.NightlyRate == nil:
		case h.Currency != currency:
			s.OtherCurrency++
		default:
			rates = append(rates, *h.NightlyRate)
		}
	}
	s.Priced = len(rates)
	if len(rates) == 0 {
		return s
	}
	slices.Sort(rates)
	s.Min, s.Max = money(rates[0]), money(rates[len(rates)-1])
	s.P25, s.Median, s.P75 = money(quantile(rates, 0.25)), money(quantile(rates, 0.5)), money(quantile(rates, 0.75))
	s.Mean = money(mean(rates))
	if propertyPrice != nil {
		s.Property = &Position{Price: *propertyPrice, PercentileRank: round(percentileRank(rates, *propertyPrice), 1),
			DiffToMedian: *money(*propertyPrice - quantile(rates, 0.5))}
	}
	return s
}

// quantile interpolates linearly between the closest ranks of sorted (R's type 7, NumPy's
// default).
func quantile(sorted []float64, q float64) float64 {
	pos := q * float64(len(sorted)-1)
	lo := int(math.Floor(pos))
	hi := min(lo+1, len(sorted)-1)
	return sorted[lo] + (pos-float64(lo))*(sorted[hi]-sorted[lo])
}

func mean(xs []float64) float64 {
	sum := 0.0
	for _, x := range xs {
		sum += x
	}
	return sum / float64(len(xs))
}

// percentileRank is the share of sorted below x, ties counted as half, in percent.
func percentileRank(sorted []float64, x float64) float64 {
	below, equal := 0, 0
	for _, v := range sorted {
		switch {
		case v < x:
			below++
		case v == x:
			equal++
		}
	}
	return 100 * (float64(below) + float64(equal)/2) / float64(len(sorted))
}

func round(x float64, decimals int) float64 {
	p := math.Pow(10, float64(decimals))
	return math.Round(x*p) / p
}

// money rounds to the cent, as the rates are stored.
func money(x float64) *float64 {
	r := round(x, 2)
	return &r
}

// String is the one-line message of a finished job, e.g. "42 hotels from serpapi-google-hotels,
// EUR nightly min 80.00 p25 110.00 median 135.50 mean 140.12 p75 165.00 max 420.00; property
// 150.00: percentile 62.5, +14.50 vs median".
func (s Summary) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d hotels from %s", s.Hotels, s.Source)
	if s.Median == nil {
		fmt.Fprintf(&b, ", none priced in %s", s.Currency)
	} else {
		fmt.Fprintf(&b, ", %s nightly min %.2f p25 %.2f median %.2f mean %.2f p75 %.2f max %.2f",
			s.Currency, *s.Min, *s.P25, *s.Median, *s.Mean, *s.P75, *s.Max)
	}
	if s.OtherCurrency > 0 {
		fmt.Fprintf(&b, " (%d in other currencies left out)", s.OtherCurrency)
	}
	if s.Property != nil {
		fmt.Fprintf(&b, "; property %.2f: percentile %.1f, %+.2f vs median",
			s.Property.Price, s.Property.PercentileRank, s.Property.DiffToMedian)
	}
	return b.String()
}
