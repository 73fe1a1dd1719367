package enrichment

import (
	"context"
	"net/http"
	"time"

	"github.com/jengu/queue-operator/workers/outside"
)

// maxRetryAfter caps a Retry-After (see outside.MaxRetryAfter).
const maxRetryAfter = outside.MaxRetryAfter

// client is the shared outside-API client configured by the options.
func (o *options) client() *outside.Client {
	return &outside.Client{HTTP: o.httpClient, Timeout: o.timeout, MaxResponseBytes: o.maxResponseBytes,
		TooLargeOutcome: outside.OutcomePermanent, DefaultRetryAfter: o.defaultRetryAfter,
		UserAgent: o.userAgent, Now: o.now}
}

// get sends one GET through the shared client (outside.Client.Get).
func (o *options) get(ctx context.Context, source, rawURL string) (*outside.Response, error) {
	return o.client().Get(ctx, source, rawURL)
}

// retryAfter reads a Retry-After header (outside.Client.RetryAfter).
func (o *options) retryAfter(h http.Header) time.Duration { return o.client().RetryAfter(h) }
