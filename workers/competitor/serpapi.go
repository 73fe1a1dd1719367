package competitor

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/jengu/queue-operator/workers/outside"
)

// SourceSerpAPI names SerpApi's Google Hotels API in messages and results.
const SourceSerpAPI = "serpapi-google-hotels"

// Defaults of the SerpApi client's options.
const (
	DefaultSerpAPIURL       = "https://serpapi.com/search.json"
	DefaultMaxPages         = 3
	DefaultTimeout          = 60 * time.Second // SerpApi runs the search live: tens of seconds happen
	DefaultMaxResponseBytes = 8 << 20          // a page of 20 hotels with prices and images is ~100 KiB
	DefaultRetryAfter       = 5 * time.Minute  // SerpApi's 429 carries no Retry-After; quotas are hourly
	DefaultLanguage         = "en"
	DefaultUserAgent        = "queue-operator-competitor/1"
)

// SerpAPI is the Provider of SerpApi's Google Hotels API (engine=google_hotels).
type SerpAPI struct {
	baseURL  string
	maxPages int
	country  string // gl
	language string // hl
	client   outside.Client
}

var _ Provider = &SerpAPI{}

// SerpAPIOption configures a SerpAPI.
type SerpAPIOption func(*SerpAPI)

// WithBaseURL points the client at another endpoint (a fake, a proxy); empty keeps the default.
func WithBaseURL(u string) SerpAPIOption {
	return func(s *SerpAPI) {
		if u != "" {
			s.baseURL = u
		}
	}
}

// WithMaxPages caps the pages one job reads (each page is one paid search); below 1 keeps the
// default.
func WithMaxPages(n int) SerpAPIOption {
	return func(s *SerpAPI) {
		if n > 0 {
			s.maxPages = n
		}
	}
}

// WithCountry sets Google's country (gl, two letters); empty sends none.
func WithCountry(gl string) SerpAPIOption { return func(s *SerpAPI) { s.country = gl } }

// WithLanguage sets Google's language (hl); empty keeps the default.
func WithLanguage(hl string) SerpAPIOption {
	return func(s *SerpAPI) {
		if hl != "" {
			s.language = hl
		}
	}
}

// WithHTTPClient sets the HTTP client; nil keeps http.DefaultClient.
func WithHTTPClient(c *http.Client) SerpAPIOption { return func(s *SerpAPI) { s.client.HTTP = c } }

// WithTimeout bounds each page's request, body included; non-positive keeps the default.
func WithTimeout(d time.Duration) SerpAPIOption {
	return func(s *SerpAPI) {
		if d > 0 {
			s.client.Timeout = d
		}
	}
}

// WithMaxResponseBytes bounds each page's body; a larger one is retried (the next search may
// be smaller) and fails the job after its last attempt. Non-positive keeps the default.
func WithMaxResponseBytes(n int64) SerpAPIOption {
	return func(s *SerpAPI) {
		if n > 0 {
			s.client.MaxResponseBytes = n
		}
	}
}

// WithDefaultRetryAfter is the wait of a rate-limit answer without a usable Retry-After.
func WithDefaultRetryAfter(d time.Duration) SerpAPIOption {
	return func(s *SerpAPI) {
		if d > 0 {
			s.client.DefaultRetryAfter = d
		}
	}
}

// NewSerpAPI returns the SerpApi Google Hotels provider.
func NewSerpAPI(opts ...SerpAPIOption) *SerpAPI {
	s := &SerpAPI{baseURL: DefaultSerpAPIURL, maxPages: DefaultMaxPages, language: DefaultLanguage,
		client: outside.Client{Timeout: DefaultTimeout, MaxResponseBytes: DefaultMaxResponseBytes,
			TooLargeOutcome: outside.OutcomeRetryable, DefaultRetryAfter: DefaultRetryAfter,
			UserAgent: DefaultUserAgent}}
	for _, o := range opts {
		o(s)
	}
	return s
}

// Name is SourceSerpAPI.
func (s *SerpAPI) Name() string { return SourceSerpAPI }

// MaxPages is the page cap.
func (s *SerpAPI) MaxPages() int { return s.maxPages }

// Search reads up to MaxPages pages, following serpapi_pagination.next_page_token. "No
// results" is an empty list, not an error.
func (s *SerpAPI) Search(ctx context.Context, search Search, onPage func(page int)) ([]Hotel, error) {
	if search.APIKey == "" {
		return nil, &outside.APIError{Outcome: outside.OutcomePermanent, Source: SourceSerpAPI,
			Reason: "no API key", Err: outside.ErrInvalidInput}
	}
	var hotels []Hotel
	seen := map[string]bool{}
	token := ""
	for page := 1; page <= s.maxPages; page++ {
		body, err := s.page(ctx, search, token)
		if err != nil {
			return nil, err
		}
		for _, h := range body.hotels(search.Currency) {
			if !seen[h.ID] {
				seen[h.ID] = true
				hotels = append(hotels, h)
			}
		}
		onPage(page)
		token = body.Pagination.NextPageToken
		if token == "" {
			break
		}
	}
	return hotels, nil
}

// page fetches and reads one page.
func (s *SerpAPI) page(ctx context.Context, search Search, token string) (*serpResponse, error) {
	u, err := s.pageURL(search, token)
	if err != nil {
		return nil, err
	}
	resp, err := s.client.Get(ctx, SourceSerpAPI, u)
	if err != nil {
		return nil, err
	}
	var body serpResponse
	jsonErr := json.Unmarshal(resp.Body, &body)
	if err := s.answerError(resp, &body, jsonErr); err != nil {
		return nil, err
	}
	return &body, nil
}

func (s *SerpAPI) pageURL(search Search, token string) (string, error) {
	u, err := url.Parse(s.baseURL)
	if err != nil {
		return "", &outside.APIError{Outcome: outside.OutcomePermanent, Source: SourceSerpAPI, Reason: "invalid base URL", Err: err}
	}
	q := u.Query()
	q.Set("engine", "google_hotels")
	q.Set("q", search.Location)
	q.Set("check_in_date", search.CheckIn.Format(time.DateOnly))
	q.Set("check_out_date", search.CheckOut.Format(time.DateOnly))
	q.Set("adults", strconv.Itoa(search.Adults))
	q.Set("currency", search.Currency)
	q.Set("hl", s.language)
	if s.country != "" {
		q.Set("gl", s.country)
	}
	if token != "" {
		q.Set("next_page_token", token)
	}
	q.Set("api_key", search.APIKey)
	u.RawQuery = q.Encode()
	return u.String(), nil
}

// SerpApi's error strings that say what happened (its answers carry {"error": "..."}).
var (
	noResultsAnswer = regexp.MustCompile(`(?i)hasn't returned any results`)
	rateLimitAnswer = regexp.MustCompile(`(?i)rate limit|throughput limit`)
	// The plan's searches are spent until it renews (SerpApi answers 429): permanent, since a
	// rate-limited job would hold back the whole queue for the rest of the month.
	outOfSearchesAnswer = regexp.MustCompile(`(?i)run out of searches|searches for the month`)
	invalidKeyAnswer    = regexp.MustCompile(`(?i)invalid api key|api key.*(missing|not valid)`)
	searchFailedState   = "Error"
)

// answerError classifies a page's answer: nil for a page to read (possibly "no results").
func (s *SerpAPI) answerError(resp *outside.Response, body *serpResponse, jsonErr error) error {
	apiErr := func(outcome outside.Outcome, reason string, err error) error {
		return &outside.APIError{Outcome: outcome, Source: SourceSerpAPI, StatusCode: resp.Status, Reason: reason, Err: err}
	}
	reason := body.Error
	if jsonErr != nil && reason == "" {
		reason = http.StatusText(resp.Status)
	}
	switch {
	case outOfSearchesAnswer.MatchString(body.Error):
		return apiErr(outside.OutcomePermanent, reason, nil)
	case resp.Status == http.StatusTooManyRequests || rateLimitAnswer.MatchString(body.Error):
		return &outside.APIError{Outcome: outside.OutcomeRateLimited, Source: SourceSerpAPI,
			StatusCode: http.StatusTooManyRequests, RetryAfter: s.client.RetryAfter(resp.Header), Reason: reason}
	case resp.Status == http.StatusUnauthorized || resp.Status == http.StatusForbidden || invalidKeyAnswer.MatchString(body.Error):
		return apiErr(outside.OutcomePermanent, reason, nil)
	case resp.Status >= 500:
		return apiErr(outside.OutcomeRetryable, reason, nil)
	case resp.Status >= 400:
		return apiErr(outside.OutcomePermanent, reason, nil) // SerpApi refused the parameters
	case jsonErr != nil:
		return apiErr(outside.OutcomeRetryable, "", fmt.Errorf("%w: %w", outside.ErrMalformedResponse, jsonErr))
	case noResultsAnswer.MatchString(body.Error):
		body.Properties, body.Pagination.NextPageToken = nil, ""
		return nil
	case body.Error != "" || body.SearchMetadata.Status == searchFailedState:
		return apiErr(outside.OutcomeRetryable, reason, nil)
	}
	return nil
}

// serpResponse is the part of a Google Hotels answer the processor reads.
type serpResponse struct {
	SearchMetadata struct {
		Status string `json:"status"`
	} `json:"search_metadata"`
	SearchParameters struct {
		Currency string `json:"currency"`
	} `json:"search_parameters"`
	Error      string         `json:"error"`
	Properties []serpProperty `json:"properties"`
	Pagination struct {
		NextPageToken string `json:"next_page_token"`
	} `json:"serpapi_pagination"`
}

type serpProperty struct {
	Type          string   `json:"type"`
	Name          string   `json:"name"`
	PropertyToken string   `json:"property_token"`
	RatePerNight  serpRate `json:"rate_per_night"`
	TotalRate     serpRate `json:"total_rate"`
	OverallRating *float64 `json:"overall_rating"`
	Reviews       *int     `json:"reviews"`
	HotelClass    *int     `json:"extracted_hotel_class"`
	GPS           *struct {
		Latitude  float64 `json:"latitude"`
		Longitude float64 `json:"longitude"`
	} `json:"gps_coordinates"`
}

type serpRate struct {
	Lowest          string   `json:"lowest"`
	ExtractedLowest *float64 `json:"extracted_lowest"`
}

// hotels are the page's properties that carry a token (the hotel's id), in their order.
func (r *serpResponse) hotels(asked string) []Hotel {
	currency := r.SearchParameters.Currency
	if currency == "" {
		currency = asked
	}
	out := make([]Hotel, 0, len(r.Properties))
	for _, p := range r.Properties {
		if p.PropertyToken == "" {
			continue
		}
		h := Hotel{ID: p.PropertyToken, Name: p.Name, NightlyRate: p.RatePerNight.ExtractedLowest,
			TotalRate: p.TotalRate.ExtractedLowest, Currency: currencyOf(p.RatePerNight.Lowest, currency),
			OverallRating: p.OverallRating, Reviews: p.Reviews, HotelClass: p.HotelClass}
		if p.GPS != nil {
			h.Latitude, h.Longitude = &p.GPS.Latitude, &p.GPS.Longitude
		}
		out = append(out, h)
	}
	return out
}

var isoCode = regexp.MustCompile(`\b[A-Z]{3}\b`)

// symbols are currency signs that name one currency; "$", "kr" and the like do not, and leave
// the answer's currency.
var symbols = map[string]string{"€": "EUR", "£": "GBP", "₹": "INR", "₩": "KRW", "₺": "TRY", "₪": "ILS", "฿": "THB", "₫": "VND", "₱": "PHP"}

// currencyOf reads the currency of a formatted rate ("€120", "MXN 2,300"), else the answer's.
func currencyOf(formatted, answer string) string {
	if code := isoCode.FindString(formatted); code != "" {
		return code
	}
	for sign, code := range symbols {
		if strings.Contains(formatted, sign) {
			return code
		}
	}
	return answer
}
