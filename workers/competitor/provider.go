// Package competitor is the competitor queue's processor: it asks a hotel-price provider
// (SerpApi's Google Hotels API) for the hotels near a location for a stay, replaces the job's
// rows in competitor_prices, and returns the statistics a revenue manager reads first: the
// spread of competitors' nightly rates and where the property's own price sits among them.
package competitor

import (
	"context"
	"time"
)

// Search is one job's question to a provider.
type Search struct {
	// Location is the place to search, as the provider takes it (a city, an address).
	Location string
	CheckIn  time.Time
	CheckOut time.Time
	Adults   int
	// Currency is the ISO 4217 code prices are asked in.
	Currency string
	// APIKey is the provider's key for this job. Providers keep it out of every error.
	APIKey string
}

// Hotel is one competitor as the provider listed it. The optional figures are nil when the
// provider gave none.
type Hotel struct {
	// ID is the provider's id of the hotel (SerpApi's property_token).
	ID   string
	Name string
	// NightlyRate and TotalRate are the lowest rate per night and for the whole stay.
	NightlyRate *float64
	TotalRate   *float64
	// Currency is the ISO 4217 code of the rates; a hotel may come in another currency than
	// the one asked for.
	Currency      string
	OverallRating *float64
	Reviews       *int
	HotelClass    *int
	Latitude      *float64
	Longitude     *float64
}

// Provider lists the hotels near a location for a stay.
type Provider interface {
	// Name names the provider in messages and results.
	Name() string
	// Search returns the hotels of up to the provider's page cap, each hotel once, in the
	// provider's order, and calls onPage after each page read. Errors are outside.APIErrors
	// (or the context's), classified by outcome.
	Search(ctx context.Context, search Search, onPage func(page int)) ([]Hotel, error)
	// MaxPages is the page cap, for progress.
	MaxPages() int
}
