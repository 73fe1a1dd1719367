package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// File is an uploaded pricing file: its property and what its uploaded days span.
type File struct {
	Property
	// Rows counts the days with a price (enrichment may add days without one).
	Rows int
	// FirstDate and LastDate bound those days; zero when there are none.
	FirstDate, LastDate time.Time
}

// Page bounds a list: at most Limit items after skipping Offset.
type Page struct{ Limit, Offset int }

const fileColumns = propertyColumns + `,
	(SELECT count(*) FROM pricing_rows r WHERE r.property_id = p.id AND r.price IS NOT NULL),
	(SELECT min(date) FROM pricing_rows r WHERE r.property_id = p.id AND r.price IS NOT NULL),
	(SELECT max(date) FROM pricing_rows r WHERE r.property_id = p.id AND r.price IS NOT NULL)`

// CreateFile stores a new property and its days in one transaction. An id already taken (by
// anyone) gives ErrConflict.
func (s *Store) CreateFile(ctx context.Context, p Property, rows []PricingBase) (File, error) {
	dates, err := pgDates(len(rows), func(i int) time.Time { return rows[i].Date })
	if err != nil {
		return File{}, fmt.Errorf("create file %s: %w", p.ID, err)
	}
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		lat, lon := p.latLon()
		if _, err := tx.Exec(ctx, `
			INSERT INTO properties (id, user_id, latitude, longitude, country_code, name, currency,
				created_at, updated_at, uploaded_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8, $8)`,
			p.ID, p.UserID, lat, lon, nullIfEmpty(p.CountryCode), nullIfEmpty(p.Name), nullIfEmpty(p.Currency), s.now()); err != nil {
			return err
		}
		return upsertPricingBase(ctx, tx, p.ID, dates, rows)
	})
	var pg *pgconn.PgError
	if errors.As(err, &pg) && pg.Code == "23505" && pg.ConstraintName == "properties_pkey" {
		return File{}, fmt.Errorf("create file %s: %w: the id is taken", p.ID, ErrConflict)
	}
	if err != nil {
		return File{}, fmt.Errorf("create file %s: %w", p.ID, classify(err))
	}
	return s.GetFile(ctx, p.ID)
}

// ReplaceFile replaces the days of the user's file in one transaction, updates what p gives of
// its location, country, name and currency (keeping what it leaves empty), and marks an enriched
// file stale. A file that is not the user's, or none, gives ErrNotFound.
func (s *Store) ReplaceFile(ctx context.Context, p Property, rows []PricingBase) (File, error) {
	dates, err := pgDates(len(rows), func(i int) time.Time { return rows[i].Date })
	if err != nil {
		return File{}, fmt.Errorf("replace file %s: %w", p.ID, err)
	}
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		lat, lon := p.latLon()
		tag, err := tx.Exec(ctx, `
			UPDATE properties SET
				latitude = COALESCE($3, latitude),
				longitude = COALESCE($4, longitude),
				country_code = COALESCE($5, country_code),
				name = COALESCE($6, name),
				currency = COALESCE($7, currency),
				enrichment_status = CASE WHEN enrichment_status = 'pending' THEN 'pending' ELSE 'stale' END,
				updated_at = $8,
				uploaded_at = $8
			WHERE id = $1 AND user_id = $2`,
			p.ID, p.UserID, lat, lon, nullIfEmpty(p.CountryCode), nullIfEmpty(p.Name), nullIfEmpty(p.Currency), s.now())
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return ErrNotFound
		}
		if _, err := tx.Exec(ctx, `DELETE FROM pricing_rows WHERE property_id = $1`, p.ID); err != nil {
			return err
		}
		return upsertPricingBase(ctx, tx, p.ID, dates, rows)
	})
	if err != nil {
		return File{}, fmt.Errorf("replace file %s: %w", p.ID, classify(err))
	}
	return s.GetFile(ctx, p.ID)
}

// GetFile returns the file, or ErrNotFound.
func (s *Store) GetFile(ctx context.Context, id string) (File, error) {
	f, err := scanFile(s.pool.QueryRow(ctx, `SELECT `+fileColumns+` FROM properties p WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return File{}, fmt.Errorf("get file %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return File{}, fmt.Errorf("get file %s: %w", id, err)
	}
	return f, nil
}

// ListFiles returns a page of the user's files, newest first, and how many the user has.
func (s *Store) ListFiles(ctx context.Context, userID string, page Page) ([]File, int, error) {
	var total int
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM properties WHERE user_id = $1`, userID).Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("count files of %s: %w", userID, err)
	}
	rows, err := s.pool.Query(ctx, `SELECT `+fileColumns+` FROM properties p WHERE user_id = $1
		ORDER BY created_at DESC, id DESC LIMIT $2 OFFSET $3`, userID, page.Limit, page.Offset)
	if err != nil {
		return nil, 0, fmt.Errorf("list files of %s: %w", userID, err)
	}
	files, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (File, error) { return scanFile(row) })
	if err != nil {
		return nil, 0, fmt.Errorf("list files of %s: %w", userID, err)
	}
	return files, total, nil
}

// PricingRowsPage returns a page of the property's days in date order, and how many it has.
func (s *Store) PricingRowsPage(ctx context.Context, propertyID string, page Page) ([]PricingRow, int, error) {
	var total int
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM pricing_rows WHERE property_id = $1`, propertyID).Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("count pricing rows of %s: %w", propertyID, err)
	}
	rows, err := s.pool.Query(ctx, `SELECT `+pricingRowColumns+` FROM pricing_rows WHERE property_id = $1
		ORDER BY date LIMIT $2 OFFSET $3`, propertyID, page.Limit, page.Offset)
	if err != nil {
		return nil, 0, fmt.Errorf("list pricing rows of %s: %w", propertyID, err)
	}
	out, err := pgx.CollectRows(rows, scanPricingRow)
	if err != nil {
		return nil, 0, fmt.Errorf("list pricing rows of %s: %w", propertyID, err)
	}
	return out, total, nil
}

// DeleteFile deletes the user's file with its rows and every result about it (competitor prices,
// analytics inputs and results, by cascade); the job history stays. A file that is not the
// user's, or none, gives ErrNotFound.
func (s *Store) DeleteFile(ctx context.Context, id, userID string) error {
	tag, err := s.pool.Exec(ctx, `DELETE FROM properties WHERE id = $1 AND user_id = $2`, id, userID)
	if err != nil {
		return fmt.Errorf("delete file %s: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("delete file %s: %w", id, ErrNotFound)
	}
	return nil
}

func (p Property) latLon() (lat, lon *float64) {
	if p.Location == nil {
		return nil, nil
	}
	return &p.Location.Latitude, &p.Location.Longitude
}

func scanFile(row pgx.Row) (File, error) {
	var (
		f           File
		first, last *time.Time
	)
	p, err := scanProperty(rowWithTail{row: row, tail: []any{&f.Rows, &first, &last}})
	if err != nil {
		return File{}, err
	}
	f.Property, f.FirstDate, f.LastDate = p, derefTime(first), derefTime(last)
	return f, nil
}

// rowWithTail scans a row whose first columns scanProperty reads and whose last ones go to tail.
type rowWithTail struct {
	row  pgx.Row
	tail []any
}

func (r rowWithTail) Scan(dest ...any) error { return r.row.Scan(append(dest, r.tail...)...) }
