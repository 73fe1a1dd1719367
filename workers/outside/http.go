package outside

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// MaxRetryAfter caps a Retry-After: a wait of more than a day is surely a misconfigured header,
// and a huge number of seconds would overflow time.Duration.
const MaxRetryAfter = 24 * time.Hour

// Client sends the GETs of one processor's outside APIs. Its zero value is usable: no timeout
// beyond the caller's context, no size limit, Retry-After default 0.
type Client struct {
	// HTTP sends the requests (http.DefaultClient when nil). Give it no Timeout: each request
	// gets its own context deadline, which also covers reading the body and lets us tell our
	// timeout from the caller's cancellation.
	HTTP *http.Client
	// Timeout bounds each request, body included (none when 0).
	Timeout time.Duration
	// MaxResponseBytes bounds each body (none when 0). A 2xx body over it is an APIError
	// wrapping ErrResponseTooLarge with TooLargeOutcome; an error body is only truncated, so
	// that a huge 502 page from a proxy stays retryable.
	MaxResponseBytes int64
	// TooLargeOutcome is the outcome of a 2xx body over the limit: OutcomePermanent when 0 (the
	// same request would get the same body again), OutcomeRetryable for APIs whose answers
	// change between attempts.
	TooLargeOutcome Outcome
	// DefaultRetryAfter is the wait reported for a Retry-After that is absent or unreadable.
	DefaultRetryAfter time.Duration
	UserAgent         string
	// Now turns an HTTP-date Retry-After into a duration (time.Now when nil).
	Now func() time.Time
	// SecretParams are query parameters whose values must never reach a log or a job's
	// message; api_key always is one.
	SecretParams []string
}

// Response is what Get returns: the status and headers, and the body up to the size limit.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
	// Truncated: the body went past the limit; Body holds its first MaxResponseBytes.
	Truncated bool
}

// Get sends one GET under the per-request timeout and reads at most MaxResponseBytes of the
// body. Transport failures come back classified, with secrets redacted; HTTP statuses are left
// to the caller, who knows the API's error format.
func (c *Client) Get(ctx context.Context, source, rawURL string) (*Response, error) {
	reqCtx, cancel := ctx, context.CancelFunc(func() {})
	if c.Timeout > 0 {
		reqCtx, cancel = context.WithTimeout(ctx, c.Timeout)
	}
	defer cancel()

	req, err := http.NewRequestWithContext(reqCtx, http.MethodGet, rawURL, nil)
	if err != nil {
		return nil, &APIError{Outcome: OutcomePermanent, Source: source, Reason: "building request", Err: c.RedactErr(err)}
	}
	req.Header.Set("Accept", "application/json")
	if c.UserAgent != "" {
		req.Header.Set("User-Agent", c.UserAgent)
	}
	httpClient := c.HTTP
	if httpClient == nil {
		httpClient = http.DefaultClient
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return nil, c.transportError(ctx, source, err)
	}
	defer resp.Body.Close()
	return c.read(ctx, source, resp)
}

func (c *Client) read(ctx context.Context, source string, resp *http.Response) (*Response, error) {
	limit := c.MaxResponseBytes
	ok := resp.StatusCode >= 200 && resp.StatusCode < 300
	if limit > 0 && ok && resp.ContentLength > limit {
		return nil, c.tooLarge(source, resp.StatusCode)
	}
	reader := io.Reader(resp.Body)
	if limit > 0 {
		reader = io.LimitReader(resp.Body, limit+1)
	}
	body, err := io.ReadAll(reader)
	if err != nil {
		return nil, c.transportError(ctx, source, err)
	}
	r := &Response{Status: resp.StatusCode, Header: resp.Header, Body: body}
	if limit > 0 && int64(len(body)) > limit {
		if ok {
			return nil, c.tooLarge(source, resp.StatusCode)
		}
		r.Body, r.Truncated = body[:limit], true
	}
	return r, nil
}

func (c *Client) tooLarge(source string, status int) error {
	outcome := c.TooLargeOutcome
	if outcome == OutcomeOK {
		outcome = OutcomePermanent
	}
	return &APIError{Outcome: outcome, Source: source, StatusCode: status,
		Reason: fmt.Sprintf("response body larger than %d bytes", c.MaxResponseBytes), Err: ErrResponseTooLarge}
}

// transportError classifies a failure to get a response: the caller's own cancellation is
// passed through (OutcomeCanceled), our timeout and everything else are retryable.
func (c *Client) transportError(parent context.Context, source string, err error) error {
	err = c.RedactErr(err)
	if parent.Err() != nil {
		return fmt.Errorf("%s: %w", source, err)
	}
	var netErr net.Error
	if errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &netErr) && netErr.Timeout()) {
		return &APIError{Outcome: OutcomeRetryable, Source: source, Err: fmt.Errorf("%w after %s: %w", ErrTimeout, c.Timeout, err)}
	}
	return &APIError{Outcome: OutcomeRetryable, Source: source, Err: err}
}

// RetryAfter reads a Retry-After header: delay-seconds or an HTTP date (RFC 9110 §10.2.3).
// A date in the past means "now" (0); an absent or unreadable header gets the default.
func (c *Client) RetryAfter(h http.Header) time.Duration {
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return c.DefaultRetryAfter
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs < 0 {
			return c.DefaultRetryAfter
		}
		if secs > int64(MaxRetryAfter/time.Second) {
			return MaxRetryAfter
		}
		return time.Duration(secs) * time.Second
	}
	if at, err := http.ParseTime(v); err == nil {
		now := c.Now
		if now == nil {
			now = time.Now
		}
		return min(max(at.Sub(now()), 0), MaxRetryAfter)
	}
	return c.DefaultRetryAfter
}

// RedactErr hides secrets in the URL that net/http puts into a *url.Error's message.
func (c *Client) RedactErr(err error) error {
	var ue *url.Error
	if !errors.As(err, &ue) {
		return err
	}
	if red := c.RedactURL(ue.URL); red != ue.URL {
		// Rebuild rather than mutate: the *url.Error may be shared.
		cp := *ue
		cp.URL = red
		if ue == err {
			return &cp
		}
		// The url.Error is deeper in a chain we did not build; fall back to a flat message
		// without the URL, keeping the cause for errors.Is.
		return fmt.Errorf("%s: %w", cp.Op, cp.Err)
	}
	return err
}

// RedactURL is raw with the values of the secret parameters replaced by REDACTED.
func (c *Client) RedactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	q := u.Query()
	changed := false
	for _, p := range append([]string{"api_key"}, c.SecretParams...) {
		if q.Has(p) {
			q.Set(p, "REDACTED")
			changed = true
		}
	}
	if !changed {
		return raw
	}
	u.RawQuery = q.Encode()
	return u.String()
}
