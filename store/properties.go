package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// EnrichmentStatus is where a property's enrichment is.
type EnrichmentStatus string

const (
	EnrichmentPending   EnrichmentStatus = "pending"
	EnrichmentRunning   EnrichmentStatus = "running"
	EnrichmentCompleted EnrichmentStatus = "completed"
	EnrichmentFailed    EnrichmentStatus = "failed"
	// EnrichmentStale: the file's rows were replaced after an enrichment ran; enrich it again.
	EnrichmentStale EnrichmentStatus = "stale"
)

// Location is a point on Earth in decimal degrees (WGS 84).
type Location struct {
	Latitude  float64
	Longitude float64
}

// Property is a user's property (an uploaded pricing file), the unit enrichment works on.
type Property struct {
	ID     string
	UserID string
	// Location is nil until known.
	Location *Location
	// CountryCode is ISO 3166-1 alpha-2, or empty when unknown.
	CountryCode string
	// Name and Currency (ISO 4217) come with an upload; empty when unknown. UpsertProperty
	// ignores them.
	Name     string
	Currency string

	// The store manages these; UpsertProperty ignores them.
	EnrichmentStatus EnrichmentStatus
	EnrichedAt       time.Time // zero until an enrichment completes
	CreatedAt        time.Time
	UpdatedAt        time.Time
	UploadedAt       time.Time // zero for a property no upload wrote
}

const propertyColumns = `id, user_id, latitude, longitude, country_code, enrichment_status, enriched_at,
	created_at, updated_at, name, currency, uploaded_at`

// UpsertProperty creates the property, or updates its location and country. A nil Location or an
// empty CountryCode keeps what is stored, so a writer that knows less never erases what another
// wrote. The owner never changes: a property of another user gives ErrConflict. It returns the
// stored row.
func (s *Store) UpsertProperty(ctx context.Context, p Property) (Property, error) {
	var lat, lon *float64
	if p.Location != nil {
		lat, lon = &p.Location.Latitude, &p.Location.Longitude
	}
	row := s.pool.QueryRow(ctx, `
		INSERT INTO properties AS p (id, user_id, latitude, longitude, country_code, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $6)
		ON CONFLICT (id) DO UPDATE SET
			latitude = COALESCE(EXCLUDED.latitude, p.latitude),
			longitude = COALESCE(EXCLUDED.longitude, p.longitude),
			country_code = COALESCE(EXCLUDED.country_code, p.country_code),
			updated_at = EXCLUDED.updated_at
		WHERE p.user_id = EXCLUDED.user_id
		RETURNING `+propertyColumns,
		p.ID, p.UserID, lat, lon, nullIfEmpty(p.CountryCode), s.now())
	stored, err := scanProperty(row)
	if errors.Is(err, pgx.ErrNoRows) { // the WHERE refused: someone else's property
		return Property{}, fmt.Errorf("upsert property %s: %w: it belongs to another user", p.ID, ErrConflict)
	}
	if err != nil {
		return Property{}, fmt.Errorf("upsert property %s: %w", p.ID, classify(err))
	}
	return stored, nil
}

// GetProperty returns the property, or ErrNotFound.
func (s *Store) GetProperty(ctx context.Context, id string) (Property, error) {
	p, err := scanProperty(s.pool.QueryRow(ctx, `SELECT `+propertyColumns+` FROM properties WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return Property{}, fmt.Errorf("get property %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return Property{}, fmt.Errorf("get property %s: %w", id, err)
	}
	return p, nil
}

// SetEnrichmentStatus sets the property's enrichment status; completed also stamps EnrichedAt. It
// returns ErrNotFound when there is no such property.
func (s *Store) SetEnrichmentStatus(ctx context.Context, id string, status EnrichmentStatus) error {
	tag, err := s.pool.Exec(ctx, `
		UPDATE properties SET
			enrichment_status = $2::text,
			enriched_at = CASE WHEN $2::text = 'completed' THEN $3::timestamptz ELSE enriched_at END,
			updated_at = $3::timestamptz
		WHERE id = $1`,
		id, string(status), s.now())
	if err != nil {
		return fmt.Errorf("set enrichment status of property %s to %q: %w", id, status, classify(err))
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("set enrichment status of property %s: %w", id, ErrNotFound)
	}
	return nil
}

func scanProperty(row pgx.Row) (Property, error) {
	var (
		p          Property
		lat, lon   *float64
		country    *string
		enrichedAt *time.Time
		name       *string
		currency   *string
		uploadedAt *time.Time
	)
	if err := row.Scan(&p.ID, &p.UserID, &lat, &lon, &country, &p.EnrichmentStatus, &enrichedAt,
		&p.CreatedAt, &p.UpdatedAt, &name, &currency, &uploadedAt); err != nil {
		return Property{}, err
	}
	p.Name, p.Currency, p.UploadedAt = derefString(name), derefString(currency), derefTime(uploadedAt)
	if lat != nil && lon != nil {
		p.Location = &Location{Latitude: *lat, Longitude: *lon}
	}
	p.CountryCode = derefString(country)
	p.EnrichedAt = derefTime(enrichedAt)
	p.CreatedAt, p.UpdatedAt = p.CreatedAt.UTC(), p.UpdatedAt.UTC()
	return p, nil
}

// nullIfEmpty stores an empty string as NULL: in these tables "" means "unknown".
func nullIfEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func derefString(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// derefTime returns the time in UTC, or the zero time for NULL.
func derefTime(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.UTC()
}
