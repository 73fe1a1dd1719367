package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// CompetitorSearch is what a competitor job priced: one stay near a property.
type CompetitorSearch struct {
	// Namespace and JobID name the job (job ids are CR names, unique per namespace).
	Namespace  string
	JobID      string
	PropertyID string
	// CheckIn and CheckOut are calendar days as written in their own location.
	CheckIn  time.Time
	CheckOut time.Time
	Adults   int
}

// CompetitorPrice is one competitor hotel as the hotel-price API listed it for the stay. The
// optional figures are nil when the API gave none.
type CompetitorPrice struct {
	// HotelID is the hotel-price API's id of the competitor; one row per hotel and job.
	HotelID   string
	HotelName string
	// Price is the lowest nightly rate, TotalPrice the lowest for the whole stay, in Currency,
	// stored to the cent.
	Price      *float64
	TotalPrice *float64
	Currency   string // ISO 4217, e.g. EUR
	// OverallRating is out of 5; HotelClass is its stars, 1 to 5.
	OverallRating *float64
	Reviews       *int
	HotelClass    *int
	Latitude      *float64
	Longitude     *float64
	// FetchedAt is when the price was scraped; zero means now.
	FetchedAt time.Time
}

// competitorColumns are a batch of prices as the arrays one INSERT unnests.
type competitorColumns struct {
	hotelIDs, names, currencies []string
	prices, totals, ratings     []*float64
	latitudes, longitudes       []*float64
	reviews, classes            []*int
	fetchedAt                   []time.Time
}

func newCompetitorColumns(prices []CompetitorPrice, now time.Time) (*competitorColumns, error) {
	n := len(prices)
	c := &competitorColumns{hotelIDs: make([]string, n), names: make([]string, n), currencies: make([]string, n),
		prices: make([]*float64, n), totals: make([]*float64, n), ratings: make([]*float64, n),
		latitudes: make([]*float64, n), longitudes: make([]*float64, n), reviews: make([]*int, n),
		classes: make([]*int, n), fetchedAt: make([]time.Time, n)}
	seen := make(map[string]bool, n)
	for i, p := range prices {
		if seen[p.HotelID] {
			return nil, invalidf("hotel %q given twice", p.HotelID)
		}
		seen[p.HotelID] = true
		c.hotelIDs[i], c.names[i], c.currencies[i] = p.HotelID, p.HotelName, p.Currency
		c.prices[i], c.totals[i], c.ratings[i] = p.Price, p.TotalPrice, p.OverallRating
		c.latitudes[i], c.longitudes[i], c.reviews[i], c.classes[i] = p.Latitude, p.Longitude, p.Reviews, p.HotelClass
		c.fetchedAt[i] = now
		if !p.FetchedAt.IsZero() {
			c.fetchedAt[i] = pgTime(p.FetchedAt)
		}
	}
	return c, nil
}

// ReplaceCompetitorPrices makes prices the job's whole set, in one transaction: a re-run job
// replaces the rows of its earlier attempt, and hotels it no longer returned disappear. A hotel
// given twice is refused (ErrInvalid), as is a row the schema refuses; nothing is written then.
func (s *Store) ReplaceCompetitorPrices(ctx context.Context, search CompetitorSearch, prices []CompetitorPrice) error {
	cols, err := newCompetitorColumns(prices, s.now())
	if err != nil {
		return fmt.Errorf("replace competitor prices of job %s/%s: %w", search.Namespace, search.JobID, err)
	}
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM competitor_prices WHERE namespace = $1 AND job_id = $2`,
			search.Namespace, search.JobID); err != nil {
			return err
		}
		if len(prices) == 0 {
			return nil
		}
		_, err := tx.Exec(ctx, `
			INSERT INTO competitor_prices (namespace, job_id, competitor_hotel_id, property_id, competitor_name,
				check_in, check_out, adults, price, total_price, currency, overall_rating, reviews, hotel_class,
				latitude, longitude, fetched_at)
			SELECT $1, $2, h.hotel_id, $3, h.name, $4::date, $5::date, $6::int, h.price, h.total, h.currency,
				h.rating, h.reviews, h.class, h.latitude, h.longitude, h.fetched_at
			FROM unnest($7::text[], $8::text[], $9::numeric[], $10::numeric[], $11::text[], $12::float8[],
				$13::int[], $14::int[], $15::float8[], $16::float8[], $17::timestamptz[])
				AS h(hotel_id, name, price, total, currency, rating, reviews, class, latitude, longitude, fetched_at)`,
			search.Namespace, search.JobID, search.PropertyID, pgDate(search.CheckIn), pgDate(search.CheckOut),
			search.Adults, cols.hotelIDs, cols.names, cols.prices, cols.totals, cols.currencies, cols.ratings,
			cols.reviews, cols.classes, cols.latitudes, cols.longitudes, cols.fetchedAt)
		return err
	})
	if err != nil {
		return fmt.Errorf("replace competitor prices of job %s/%s: %w", search.Namespace, search.JobID, classify(err))
	}
	s.log.V(1).Info("Replaced competitor prices", "namespace", search.Namespace, "job", search.JobID,
		"property", search.PropertyID, "rows", len(prices))
	return nil
}

// ListCompetitorPrices returns the job's prices, cheapest first, hotels without a price last;
// none for an unknown job.
func (s *Store) ListCompetitorPrices(ctx context.Context, namespace, jobID string) ([]CompetitorPrice, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT competitor_hotel_id, competitor_name, price::float8, total_price::float8, currency,
			overall_rating, reviews, hotel_class, latitude, longitude, fetched_at
		FROM competitor_prices WHERE namespace = $1 AND job_id = $2
		ORDER BY price NULLS LAST, competitor_hotel_id`, namespace, jobID)
	if err != nil {
		return nil, fmt.Errorf("list competitor prices of job %s/%s: %w", namespace, jobID, err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (CompetitorPrice, error) {
		var p CompetitorPrice
		err := row.Scan(&p.HotelID, &p.HotelName, &p.Price, &p.TotalPrice, &p.Currency, &p.OverallRating,
			&p.Reviews, &p.HotelClass, &p.Latitude, &p.Longitude, &p.FetchedAt)
		p.FetchedAt = p.FetchedAt.UTC()
		return p, err
	})
	if err != nil {
		return nil, fmt.Errorf("list competitor prices of job %s/%s: %w", namespace, jobID, err)
	}
	return out, nil
}

// PropertyPriceOn returns the property's own price for the day from its pricing rows;
// ErrNotFound when it has no row for the day or the row has no price.
func (s *Store) PropertyPriceOn(ctx context.Context, propertyID string, day time.Time) (float64, error) {
	var price *float64
	err := s.pool.QueryRow(ctx, `SELECT price::float8 FROM pricing_rows WHERE property_id = $1 AND date = $2`,
		propertyID, pgDate(day)).Scan(&price)
	switch {
	case errors.Is(err, pgx.ErrNoRows) || (err == nil && price == nil):
		return 0, fmt.Errorf("price of property %s on %s: %w", propertyID, day.Format(time.DateOnly), ErrNotFound)
	case err != nil:
		return 0, fmt.Errorf("price of property %s on %s: %w", propertyID, day.Format(time.DateOnly), err)
	}
	return *price, nil
}
