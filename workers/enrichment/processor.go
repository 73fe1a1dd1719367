package enrichment

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	jobsv1alpha1 "github.com/jengu/queue-operator/api/v1alpha1"
	"github.com/jengu/queue-operator/store"
	"github.com/jengu/queue-operator/workers"
	"github.com/jengu/queue-operator/workers/outside"
)

// Processor is the enrichment queue's processor: it enriches every pricing row of the job's
// property and writes the features back, idempotently.
type Processor struct {
	store    *store.Store
	enricher *Enricher
	// calendarificKey is the worker's Calendarific API key; empty computes holidays offline.
	calendarificKey string
	// secrets reads a job's own credential Secret (its calendarificApiKey wins over the
	// worker's key).
	secrets workers.SecretReader
}

var _ workers.Processor = &Processor{}

// CredentialKey is the key of a job's credential Secret that holds the Calendarific API key.
const CredentialKey = "calendarificApiKey"

// ProcessorOption configures a Processor.
type ProcessorOption func(*Processor)

// WithCalendarificKey sets the worker's Calendarific API key.
func WithCalendarificKey(key string) ProcessorOption {
	return func(p *Processor) { p.calendarificKey = key }
}

// WithSecrets lets jobs name a credential Secret of their namespace.
func WithSecrets(r workers.SecretReader) ProcessorOption { return func(p *Processor) { p.secrets = r } }

// NewProcessor enriches through enricher and writes to db.
func NewProcessor(db *store.Store, enricher *Enricher, opts ...ProcessorOption) *Processor {
	p := &Processor{store: db, enricher: enricher}
	for _, o := range opts {
		o(p)
	}
	return p
}

// Process runs one enrichment job: 25 weather, 50 holidays, 75 features, 100 written.
func (p *Processor) Process(ctx context.Context, job workers.Task, progress workers.Progress) ([]byte, error) {
	var spec jobsv1alpha1.EnrichmentJobSpec
	if err := json.Unmarshal(job.Payload, &spec); err != nil {
		return nil, workers.Permanent(fmt.Errorf("decode the job's spec: %w", err))
	}
	apiKey, err := p.calendarificKeyFor(ctx, job, spec)
	if err != nil {
		return nil, err
	}
	property, err := workers.OwnedProperty(ctx, p.store, spec.PropertyID, spec.UserID)
	if err != nil {
		return nil, err
	}
	rows, err := p.store.ListPricingRows(ctx, spec.PropertyID)
	if err != nil {
		return nil, err
	}
	if err := p.store.SetEnrichmentStatus(ctx, spec.PropertyID, store.EnrichmentRunning); err != nil {
		return nil, err
	}
	dates := make([]time.Time, len(rows))
	for i, r := range rows {
		dates[i] = r.Date
	}
	country := spec.CountryCode
	if country == "" {
		country = property.CountryCode
	}
	result, err := p.enricher.Enrich(ctx, Property{Latitude: spec.Location.Latitude, Longitude: spec.Location.Longitude,
		CountryCode: country, CalendarificAPIKey: apiKey}, dates, func(s Stage) { progress(s.Percent(), s.String()) })
	if err != nil {
		return nil, p.failure(ctx, spec.PropertyID, job, err)
	}
	features := make([]store.PricingFeatures, len(result.Rows))
	for i, r := range result.Rows {
		features[i] = toStore(r)
	}
	if err := p.store.UpsertPricingFeatures(ctx, spec.PropertyID, features); err != nil {
		if errors.Is(err, store.ErrInvalid) {
			return nil, workers.Permanent(err)
		}
		return nil, err
	}
	if err := p.store.SetEnrichmentStatus(ctx, spec.PropertyID, store.EnrichmentCompleted); err != nil {
		return nil, err
	}
	progress(100, result.Summary.String())
	return json.Marshal(result.Summary)
}

// calendarificKeyFor picks the job's own credential when it names one, else the worker's key.
func (p *Processor) calendarificKeyFor(ctx context.Context, job workers.Task, spec jobsv1alpha1.EnrichmentJobSpec) (string, error) {
	if spec.CredentialSecretName == "" {
		return p.calendarificKey, nil
	}
	if p.secrets == nil {
		return "", workers.Permanent(fmt.Errorf("job names credential Secret %s: %w", spec.CredentialSecretName, workers.ErrNoSecrets))
	}
	return p.secrets.SecretValue(ctx, workers.CredentialRef{Namespace: job.Namespace, Name: spec.CredentialSecretName, Key: CredentialKey, UserID: spec.UserID})
}

// failure turns an enrichment error into the worker's outcome, and marks the property failed
// when no attempt is left.
func (p *Processor) failure(ctx context.Context, propertyID string, job workers.Task, err error) error {
	out := outside.AsJobError(err)
	var limited *workers.RateLimitedError
	if errors.As(out, &limited) {
		return out
	}
	var permanent *workers.PermanentError
	if errors.As(out, &permanent) || job.Attempt >= job.MaxAttempts {
		if serr := p.store.SetEnrichmentStatus(ctx, propertyID, store.EnrichmentFailed); serr != nil {
			return fmt.Errorf("%w (and marking the property failed: %v)", out, serr)
		}
	}
	return out
}

func toStore(r FeatureRow) store.PricingFeatures {
	return store.PricingFeatures{
		Date: r.Date, TempMaxC: r.TempMaxC, TempMinC: r.TempMinC, PrecipitationMM: r.PrecipitationMM,
		WeatherCode: r.WeatherCode, IsHoliday: r.IsHoliday, HolidayName: r.HolidayName,
		DayOfWeek: r.DayOfWeek, IsWeekend: r.IsWeekend, Month: r.Month, Quarter: r.Quarter,
		ISOWeek: r.ISOWeek, ISOYear: r.ISOYear, Season: store.Season(r.Season), DaysToNextHoliday: r.DaysToNextHoliday,
	}
}
