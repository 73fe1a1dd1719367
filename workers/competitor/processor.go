package competitor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	jobsv1alpha1 "github.com/jengu/queue-operator/api/v1alpha1"
	"github.com/jengu/queue-operator/store"
	"github.com/jengu/queue-operator/workers"
	"github.com/jengu/queue-operator/workers/outside"
)

// CredentialKey is the key of a job's credential Secret that holds the SerpApi API key.
const CredentialKey = "serpApiKey"

// DefaultCurrency is the provider's own default, used when neither the job nor the worker
// names one.
const DefaultCurrency = "USD"

// Processor is the competitor queue's processor.
type Processor struct {
	store    *store.Store
	provider Provider
	// apiKey is the worker's key (SERPAPI_API_KEY); a job's credential Secret wins over it.
	apiKey   string
	secrets  workers.SecretReader
	currency string
}

var _ workers.Processor = &Processor{}

// ProcessorOption configures a Processor.
type ProcessorOption func(*Processor)

// WithAPIKey sets the worker's provider key.
func WithAPIKey(key string) ProcessorOption { return func(p *Processor) { p.apiKey = key } }

// WithSecrets lets jobs name a credential Secret of their namespace.
func WithSecrets(r workers.SecretReader) ProcessorOption { return func(p *Processor) { p.secrets = r } }

// WithCurrency sets the currency of jobs that name none; empty keeps DefaultCurrency.
func WithCurrency(code string) ProcessorOption {
	return func(p *Processor) {
		if code != "" {
			p.currency = code
		}
	}
}

// NewProcessor searches through provider and writes to db.
func NewProcessor(db *store.Store, provider Provider, opts ...ProcessorOption) *Processor {
	p := &Processor{store: db, provider: provider, currency: DefaultCurrency}
	for _, o := range opts {
		o(p)
	}
	return p
}

// Process runs one competitor job: 5 searching, up to 85 as pages arrive, 90 stored, 100 done.
func (p *Processor) Process(ctx context.Context, task workers.Task, progress workers.Progress) ([]byte, error) {
	search, spec, err := p.searchOf(ctx, task)
	if err != nil {
		return nil, err
	}
	property, err := workers.OwnedProperty(ctx, p.store, spec.PropertyID, spec.UserID)
	if err != nil {
		return nil, err
	}
	if spec.Currency == "" && property.Currency != "" {
		search.Currency = property.Currency // the property's prices are in it
	}
	progress(5, "searching "+p.provider.Name())
	pages := 0
	hotels, err := p.provider.Search(ctx, search, func(page int) {
		pages = page
		progress(5+80*page/p.provider.MaxPages(), fmt.Sprintf("read page %d of at most %d", page, p.provider.MaxPages()))
	})
	if err != nil {
		return nil, outside.AsJobError(redactKey(err, search.APIKey))
	}
	if err := p.store.ReplaceCompetitorPrices(ctx, storeSearch(task, spec, search), storePrices(hotels)); err != nil {
		if errors.Is(err, store.ErrInvalid) {
			return nil, workers.Permanent(err)
		}
		return nil, err
	}
	progress(90, fmt.Sprintf("stored %d hotels", len(hotels)))
	var own *float64
	if property.Currency == "" || property.Currency == search.Currency {
		// Without an uploaded currency the property's price is taken to be in the job's.
		if own, err = p.ownPrice(ctx, spec.PropertyID, search.CheckIn); err != nil {
			return nil, err
		}
	}
	summary := summarize(p.provider.Name(), pages, hotels, search.Currency, own)
	progress(100, summary.String())
	return json.Marshal(summary)
}

// searchOf reads the job's spec into the provider's question, with its API key.
func (p *Processor) searchOf(ctx context.Context, task workers.Task) (Search, jobsv1alpha1.CompetitorJobSpec, error) {
	var spec jobsv1alpha1.CompetitorJobSpec
	if err := json.Unmarshal(task.Payload, &spec); err != nil {
		return Search{}, spec, workers.Permanent(fmt.Errorf("decode the job's spec: %w", err))
	}
	checkIn, err := time.Parse(time.DateOnly, spec.CheckIn)
	if err != nil {
		return Search{}, spec, workers.Permanent(fmt.Errorf("checkIn %q is not a YYYY-MM-DD date", spec.CheckIn))
	}
	checkOut, err := time.Parse(time.DateOnly, spec.CheckOut)
	if err != nil || !checkOut.After(checkIn) {
		return Search{}, spec, workers.Permanent(fmt.Errorf("checkOut %q is not a YYYY-MM-DD date after checkIn", spec.CheckOut))
	}
	key, err := p.apiKeyFor(ctx, task, spec)
	if err != nil {
		return Search{}, spec, err
	}
	currency := spec.Currency
	if currency == "" {
		currency = p.currency
	}
	return Search{Location: spec.Location, CheckIn: checkIn, CheckOut: checkOut, Adults: int(spec.Adults),
		Currency: currency, APIKey: key}, spec, nil
}

// ErrNoAPIKey: neither the job nor the worker has a provider key.
var ErrNoAPIKey = errors.New("no SerpApi API key: set SERPAPI_API_KEY on the competitor worker, " +
	"or name a credential Secret with key " + CredentialKey + " in the job's credentialSecretName")

// apiKeyFor picks the job's own credential when it names one, else the worker's key.
func (p *Processor) apiKeyFor(ctx context.Context, task workers.Task, spec jobsv1alpha1.CompetitorJobSpec) (string, error) {
	if spec.CredentialSecretName == "" {
		if p.apiKey == "" {
			return "", workers.Permanent(ErrNoAPIKey)
		}
		return p.apiKey, nil
	}
	if p.secrets == nil {
		return "", workers.Permanent(fmt.Errorf("job names credential Secret %s: %w", spec.CredentialSecretName, workers.ErrNoSecrets))
	}
	return p.secrets.SecretValue(ctx, workers.CredentialRef{Namespace: task.Namespace, Name: spec.CredentialSecretName, Key: CredentialKey, UserID: spec.UserID})
}

// ownPrice is the property's price for the check-in night, nil when it has none.
func (p *Processor) ownPrice(ctx context.Context, propertyID string, checkIn time.Time) (*float64, error) {
	price, err := p.store.PropertyPriceOn(ctx, propertyID, checkIn)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil, nil
	case err != nil:
		return nil, err
	}
	return &price, nil
}

func storeSearch(task workers.Task, spec jobsv1alpha1.CompetitorJobSpec, search Search) store.CompetitorSearch {
	return store.CompetitorSearch{Namespace: task.Namespace, JobID: task.ID, PropertyID: spec.PropertyID,
		CheckIn: search.CheckIn, CheckOut: search.CheckOut, Adults: search.Adults}
}

func storePrices(hotels []Hotel) []store.CompetitorPrice {
	prices := make([]store.CompetitorPrice, len(hotels))
	for i, h := range hotels {
		prices[i] = store.CompetitorPrice{HotelID: h.ID, HotelName: h.Name, Price: h.NightlyRate,
			TotalPrice: h.TotalRate, Currency: h.Currency, OverallRating: h.OverallRating, Reviews: h.Reviews,
			HotelClass: h.HotelClass, Latitude: h.Latitude, Longitude: h.Longitude}
	}
	return prices
}

// keyRedactedError is an error whose message had the API key cut out; it unwraps to the
// original so that its outcome still classifies it.
type keyRedactedError struct {
	msg string
	err error
}

func (e *keyRedactedError) Error() string { return e.msg }
func (e *keyRedactedError) Unwrap() error { return e.err }

// redactKey keeps the key out of err's message, wherever the provider or a proxy echoed it.
func redactKey(err error, key string) error {
	if key == "" || !strings.Contains(err.Error(), key) {
		return err
	}
	return &keyRedactedError{msg: strings.ReplaceAll(err.Error(), key, "REDACTED"), err: err}
}
