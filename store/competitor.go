package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// CompetitorSearch is what a competitor job priced: one stay near a property.
type CompetitorSearch struct {
	JobID      string
	PropertyID string
	// CheckIn and CheckOut are calendar days as written in their own location.
	CheckIn  time.Time
	CheckOut time.Time
	Adults   int
}

// CompetitorPrice is one competitor's price for the stay.
type CompetitorPrice struct {
	// HotelID is the hotel-price API's id of the competitor; one price per hotel and job.
	HotelID   string
	HotelName string
	Price     float64 // in Currency, stored to the cent
	Currency  string  // ISO 4217, e.g. EUR
	// FetchedAt is when the price was scraped; zero means now.
	FetchedAt time.Time
}

// UpsertCompetitorPrices writes the job's prices, one row per hotel: a re-run job overwrites the
// rows of its earlier attempt. Rows of hotels the re-run no longer returned stay, with their older
// FetchedAt. A hotel given twice is refused (ErrInvalid).
func (s *Store) UpsertCompetitorPrices(ctx context.Context, search CompetitorSearch, prices []CompetitorPrice) error {
	if len(prices) == 0 {
		return nil
	}
	n := len(prices)
	hotelIDs, names, amounts, currencies := make([]string, n), make([]string, n), make([]float64, n), make([]string, n)
	fetchedAt := make([]time.Time, n)
	seen := make(map[string]bool, n)
	now := s.now()
	for i, p := range prices {
		if seen[p.HotelID] {
			return fmt.Errorf("upsert competitor prices of job %s: %w",
				search.JobID, invalidf("hotel %q given twice", p.HotelID))
		}
		seen[p.HotelID] = true
		hotelIDs[i], names[i], amounts[i], currencies[i] = p.HotelID, p.HotelName, p.Price, p.Currency
		fetchedAt[i] = now
		if !p.FetchedAt.IsZero() {
			fetchedAt[i] = pgTime(p.FetchedAt)
		}
	}
	_, err := s.pool.Exec(ctx, `
		INSERT INTO competitor_prices AS c (job_id, competitor_hotel_id, property_id, competitor_name,
			check_in, check_out, adults, price, currency, fetched_at)
		SELECT $1, h.hotel_id, $2, h.name, $3::date, $4::date, $5::int, h.price, h.currency, h.fetched_at
		FROM unnest($6::text[], $7::text[], $8::numeric[], $9::text[], $10::timestamptz[])
			AS h(hotel_id, name, price, currency, fetched_at)
		ON CONFLICT (job_id, competitor_hotel_id) DO UPDATE SET
			property_id = EXCLUDED.property_id,
			competitor_name = EXCLUDED.competitor_name,
			check_in = EXCLUDED.check_in,
			check_out = EXCLUDED.check_out,
			adults = EXCLUDED.adults,
			price = EXCLUDED.price,
			currency = EXCLUDED.currency,
			fetched_at = EXCLUDED.fetched_at`,
		search.JobID, search.PropertyID, pgDate(search.CheckIn), pgDate(search.CheckOut), search.Adults,
		hotelIDs, names, amounts, currencies, fetchedAt)
	if err != nil {
		return fmt.Errorf("upsert competitor prices of job %s: %w", search.JobID, classify(err))
	}
	s.log.V(1).Info("Upserted competitor prices", "job", search.JobID, "property", search.PropertyID, "rows", n)
	return nil
}

// ListCompetitorPrices returns the job's prices, cheapest first; none for an unknown job.
func (s *Store) ListCompetitorPrices(ctx context.Context, jobID string) ([]CompetitorPrice, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT competitor_hotel_id, competitor_name, price, currency, fetched_at
		FROM competitor_prices WHERE job_id = $1 ORDER BY price, competitor_hotel_id`, jobID)
	if err != nil {
		return nil, fmt.Errorf("list competitor prices of job %s: %w", jobID, err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (CompetitorPrice, error) {
		var p CompetitorPrice
		err := row.Scan(&p.HotelID, &p.HotelName, &p.Price, &p.Currency, &p.FetchedAt)
		p.FetchedAt = p.FetchedAt.UTC()
		return p, err
	})
	if err != nil {
		return nil, fmt.Errorf("list competitor prices of job %s: %w", jobID, err)
	}
	return out, nil
}
