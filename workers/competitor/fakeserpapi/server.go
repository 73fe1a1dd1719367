// Package fakeserpapi is a stand-in for SerpApi's Google Hotels API (engine=google_hotels) on a
// loopback httptest server: the real JSON format (search_metadata, search_parameters,
// properties, serpapi_pagination.next_page_token, {"error": ...} answers), API-key checks, and
// queued error answers for tests. Tests and `make dev` point SERPAPI_URL at it.
package fakeserpapi

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"sync"
)

// SerpApi's own error strings.
const (
	ErrInvalidKey  = "Invalid API key. Your API key should be here: https://serpapi.com/manage-api-key"
	ErrNoResults   = "Google Hotels hasn't returned any results for this query."
	ErrOutOfSearch = "Your account has run out of searches."
)

// Hotel is one listed property. Currency empty is the search's currency.
type Hotel struct {
	Token         string
	Name          string
	Nightly       *float64
	Total         *float64
	Currency      string
	OverallRating *float64
	Reviews       *int
	Class         *int
	Latitude      float64
	Longitude     float64
}

// Answer is one queued answer, served instead of the next page.
type Answer struct {
	Status int
	// Error is SerpApi's {"error": ...} message; Body, when set, is sent as it is instead.
	Error      string
	Body       string
	RetryAfter string
}

// Server is the fake API. Its URL (plus /search.json) is SerpApi's endpoint.
type Server struct {
	*httptest.Server
	mu       sync.Mutex
	apiKey   string
	hotels   []Hotel
	pageSize int
	answers  []Answer
	requests []url.Values
}

// Option configures New.
type Option func(*Server)

// WithAPIKey sets the only key accepted (default "test-key").
func WithAPIKey(key string) Option { return func(s *Server) { s.apiKey = key } }

// WithHotels sets the hotels listed for every search, in order.
func WithHotels(hotels ...Hotel) Option { return func(s *Server) { s.hotels = hotels } }

// WithPageSize sets the properties per page (default 20, as Google Hotels).
func WithPageSize(n int) Option { return func(s *Server) { s.pageSize = n } }

// New starts the server; Close stops it.
func New(opts ...Option) *Server {
	s := &Server{apiKey: "test-key", pageSize: 20}
	for _, o := range opts {
		o(s)
	}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	return s
}

// Endpoint is the URL to set as SERPAPI_URL.
func (s *Server) Endpoint() string { return s.URL + "/search.json" }

// Enqueue queues answers served, one per request, before pages are served again.
func (s *Server) Enqueue(answers ...Answer) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.answers = append(s.answers, answers...)
}

// SetHotels replaces the hotels listed.
func (s *Server) SetHotels(hotels ...Hotel) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hotels = hotels
}

// Requests are the query parameters of every request so far.
func (s *Server) Requests() []url.Values {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]url.Values(nil), s.requests...)
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	s.mu.Lock()
	s.requests = append(s.requests, q)
	var queued *Answer
	if len(s.answers) > 0 {
		queued = &s.answers[0]
		s.answers = s.answers[1:]
	}
	hotels, pageSize, apiKey := s.hotels, s.pageSize, s.apiKey
	s.mu.Unlock()
	switch {
	case queued != nil:
		writeAnswer(w, *queued)
	case q.Get("api_key") != apiKey:
		writeAnswer(w, Answer{Status: http.StatusUnauthorized, Error: ErrInvalidKey})
	case r.URL.Path != "/search.json" || q.Get("engine") != "google_hotels":
		writeAnswer(w, Answer{Status: http.StatusBadRequest, Error: "Unsupported `" + q.Get("engine") + "` search engine."})
	case q.Get("q") == "" || q.Get("check_in_date") == "" || q.Get("check_out_date") == "":
		writeAnswer(w, Answer{Status: http.StatusBadRequest, Error: "Missing query `q`, `check_in_date` or `check_out_date` parameter."})
	case len(hotels) == 0:
		writeJSON(w, http.StatusOK, map[string]any{"search_metadata": metadata(r), "search_parameters": parameters(q),
			"error": ErrNoResults})
	default:
		from, err := offsetOf(q.Get("next_page_token"))
		if err != nil || from >= len(hotels) {
			writeAnswer(w, Answer{Status: http.StatusBadRequest, Error: "Invalid `next_page_token` parameter."})
			return
		}
		writeJSON(w, http.StatusOK, page(r, hotels, from, pageSize))
	}
}

func page(r *http.Request, hotels []Hotel, from, pageSize int) map[string]any {
	q := r.URL.Query()
	to := min(from+pageSize, len(hotels))
	props := make([]map[string]any, 0, to-from)
	for _, h := range hotels[from:to] {
		props = append(props, property(h, q.Get("currency")))
	}
	pagination := map[string]any{"current_from": from + 1, "current_to": to}
	if to < len(hotels) {
		token := tokenOf(to)
		next := *r.URL
		nq := next.Query()
		nq.Set("next_page_token", token)
		nq.Del("api_key")
		next.RawQuery = nq.Encode()
		pagination["next_page_token"] = token
		pagination["next"] = "https://serpapi.com" + next.RequestURI()
	}
	return map[string]any{"search_metadata": metadata(r), "search_parameters": parameters(q),
		"properties": props, "serpapi_pagination": pagination}
}

func property(h Hotel, searchCurrency string) map[string]any {
	currency := h.Currency
	if currency == "" {
		currency = searchCurrency
	}
	p := map[string]any{
		"type": "hotel", "name": h.Name, "description": "A hotel near the searched location.",
		"link":            "https://example.com/" + h.Token,
		"gps_coordinates": map[string]any{"latitude": h.Latitude, "longitude": h.Longitude},
		"check_in_time":   "3:00 PM", "check_out_time": "11:00 AM",
		"amenities":      []string{"Free Wi-Fi", "Air conditioning"},
		"property_token": h.Token,
		"serpapi_property_details_link": "https://serpapi.com/search.json?engine=google_hotels&property_token=" +
			url.QueryEscape(h.Token),
	}
	if h.Nightly != nil {
		p["rate_per_night"] = rate(*h.Nightly, currency)
		p["prices"] = []map[string]any{{"source": "Example Travel", "logo": "https://example.com/logo.png",
			"rate_per_night": rate(*h.Nightly, currency)}}
	}
	if h.Total != nil {
		p["total_rate"] = rate(*h.Total, currency)
	}
	if h.Class != nil {
		p["hotel_class"] = fmt.Sprintf("%d-star hotel", *h.Class)
		p["extracted_hotel_class"] = *h.Class
	}
	if h.OverallRating != nil {
		p["overall_rating"] = *h.OverallRating
	}
	if h.Reviews != nil {
		p["reviews"] = *h.Reviews
	}
	return p
}

// rate is a SerpApi rate object: formatted strings with the currency's sign, and the numbers.
func rate(amount float64, currency string) map[string]any {
	before := amount * 0.9
	return map[string]any{"lowest": format(amount, currency), "extracted_lowest": amount,
		"before_taxes_fees": format(before, currency), "extracted_before_taxes_fees": before}
}

func format(amount float64, currency string) string {
	n := strconv.Itoa(int(amount + 0.5))
	switch currency {
	case "USD":
		return "$" + n
	case "EUR":
		return "€" + n
	case "GBP":
		return "£" + n
	}
	return currency + " " + n
}

func metadata(r *http.Request) map[string]any {
	return map[string]any{"id": "6790f0c3b1a2c3d4e5f60718", "status": "Success",
		"json_endpoint": "https://serpapi.com/searches/6790f0c3b1a2c3d4e5f60718.json",
		"created_at":    "2026-01-22 10:11:12 UTC", "processed_at": "2026-01-22 10:11:12 UTC",
		"google_hotels_url": "https://www.google.com/travel/search?q=" + url.QueryEscape(r.URL.Query().Get("q")),
		"total_time_taken":  1.23}
}

func parameters(q url.Values) map[string]any {
	p := map[string]any{"engine": "google_hotels"}
	for _, k := range []string{"q", "gl", "hl", "currency", "check_in_date", "check_out_date", "next_page_token"} {
		if v := q.Get(k); v != "" {
			p[k] = v
		}
	}
	if adults, err := strconv.Atoi(q.Get("adults")); err == nil {
		p["adults"] = adults
	}
	return p
}

func writeAnswer(w http.ResponseWriter, a Answer) {
	if a.RetryAfter != "" {
		w.Header().Set("Retry-After", a.RetryAfter)
	}
	if a.Body != "" {
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.WriteHeader(a.Status)
		_, _ = w.Write([]byte(a.Body))
		return
	}
	writeJSON(w, a.Status, map[string]any{"error": a.Error})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// next_page_token is opaque to clients; here it encodes the next page's first index.
func tokenOf(offset int) string {
	return base64.RawURLEncoding.EncodeToString([]byte("offset:" + strconv.Itoa(offset)))
}

func offsetOf(token string) (int, error) {
	if token == "" {
		return 0, nil
	}
	raw, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil {
		return 0, err
	}
	var n int
	_, err = fmt.Sscanf(string(raw), "offset:%d", &n)
	return n, err
}

// DemoHotels are n hotels with prices around 80 to 300 a night for a stay of nights, the same
// for the same seed.
func DemoHotels(n, nights int, seed uint64) []Hotel {
	rng := rand.New(rand.NewPCG(seed, seed))
	hotels := make([]Hotel, n)
	for i := range hotels {
		nightly := float64(8000+rng.IntN(22000)) / 100
		total := nightly * float64(nights)
		rating := float64(30+rng.IntN(20)) / 10
		reviews := rng.IntN(5000)
		class := 2 + rng.IntN(4)
		hotels[i] = Hotel{Token: fmt.Sprintf("ChkI%08dQ", i), Name: fmt.Sprintf("Demo Hotel %d", i+1),
			Nightly: &nightly, Total: &total, OverallRating: &rating, Reviews: &reviews, Class: &class,
			Latitude: 41.38 + float64(rng.IntN(400))/10000, Longitude: 2.15 + float64(rng.IntN(400))/10000}
	}
	return hotels
}
