package enrichment

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

// maxRetryAfter caps a Retry-After: a wait of more than a day is surely a misconfigured header,
// and a huge number of seconds would overflow time.Duration.
const maxRetryAfter = 24 * time.Hour

// response is what get returns: the status and headers, and the body up to the size limit.
type response struct {
	status    int
	header    http.Header
	body      []byte
	truncated bool // the body went past the limit; body holds its first maxResponseBytes
}

// get sends one GET under the per-request timeout and reads at most maxResponseBytes of the
// body. Transport failures come back classified; HTTP statuses are left to the caller, who
// knows the API's error format. An oversized 2xx body is an error here; an oversized error
// body is only truncated, so that a huge 502 page from a proxy stays retryable.
func (o *options) get(ctx context.Context, source, rawURL string) (*response, error) {
	reqCtx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()

	req, err := http.NewRequestWithContext(reqCtx, http.MethodGet, rawURL, nil)
	if err != nil {
		return nil, &APIError{Outcome: OutcomePermanent, Source: source, Reason: "building request", Err: redactErr(err)}
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", o.userAgent)

	resp, err := o.httpClient.Do(req)
	if err != nil {
		return nil, o.transportError(ctx, source, err)
	}
	defer resp.Body.Close()

	limit := o.maxResponseBytes
	tooLarge := func() error {
		return &APIError{
			Outcome:    OutcomePermanent,
			Source:     source,
			StatusCode: resp.StatusCode,
			Reason:     fmt.Sprintf("response body larger than %d bytes", limit),
			Err:        ErrResponseTooLarge,
		}
	}
	ok := resp.StatusCode >= 200 && resp.StatusCode < 300
	if ok && resp.ContentLength > limit {
		return nil, tooLarge()
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, o.transportError(ctx, source, err)
	}
	r := &response{status: resp.StatusCode, header: resp.Header, body: body}
	if int64(len(body)) > limit {
		if ok {
			return nil, tooLarge()
		}
		r.body, r.truncated = body[:limit], true
	}
	return r, nil
}

// transportError classifies a failure to get a response: the caller's own cancellation is
// passed through (OutcomeCanceled), our timeout and everything else are retryable.
func (o *options) transportError(parent context.Context, source string, err error) error {
	err = redactErr(err)
	if parent.Err() != nil {
		return fmt.Errorf("%s: %w", source, err)
	}
	var netErr net.Error
	if errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &netErr) && netErr.Timeout()) {
		return &APIError{Outcome: OutcomeRetryable, Source: source, Err: fmt.Errorf("%w after %s: %w", ErrTimeout, o.timeout, err)}
	}
	return &APIError{Outcome: OutcomeRetryable, Source: source, Err: err}
}

// retryAfter reads a Retry-After header: delay-seconds or an HTTP date (RFC 9110 §10.2.3).
// A date in the past means "now" (0); an absent or unreadable header gets the default.
func (o *options) retryAfter(h http.Header) time.Duration {
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return o.defaultRetryAfter
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs < 0 {
			return o.defaultRetryAfter
		}
		if secs > int64(maxRetryAfter/time.Second) {
			return maxRetryAfter
		}
		return time.Duration(secs) * time.Second
	}
	if at, err := http.ParseTime(v); err == nil {
		d := at.Sub(o.now())
		return min(max(d, 0), maxRetryAfter)
	}
	return o.defaultRetryAfter
}

// secretParams are query parameters whose values must never reach a log or a job's message.
var secretParams = []string{"api_key"}

// redactErr hides secrets in the URL that net/http puts into a *url.Error's message.
func redactErr(err error) error {
	var ue *url.Error
	if !errors.As(err, &ue) {
		return err
	}
	if red := redactURL(ue.URL); red != ue.URL {
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

func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	q := u.Query()
	changed := false
	for _, p := range secretParams {
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
