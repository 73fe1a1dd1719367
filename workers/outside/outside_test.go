package outside

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/jengu/queue-operator/workers"
)

func TestAsJobError(t *testing.T) {
	tests := []struct {
		name           string
		err            error
		wantPermanent  bool
		wantRetryAfter time.Duration // > 0: a RateLimitedError
	}{
		{name: "permanent", err: &APIError{Outcome: OutcomePermanent, Source: "s"}, wantPermanent: true},
		{name: "rate limited", err: &APIError{Outcome: OutcomeRateLimited, Source: "s", RetryAfter: time.Minute}, wantRetryAfter: time.Minute},
		{name: "retryable", err: &APIError{Outcome: OutcomeRetryable, Source: "s"}},
		{name: "unknown", err: errors.New("boom")},
		{name: "canceled", err: context.Canceled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := AsJobError(tt.err)
			var permanent *workers.PermanentError
			var limited *workers.RateLimitedError
			if errors.As(got, &permanent) != tt.wantPermanent {
				t.Errorf("AsJobError(%v) = %v: permanent %v, want %v", tt.err, got, !tt.wantPermanent, tt.wantPermanent)
			}
			if isLimited := errors.As(got, &limited); isLimited != (tt.wantRetryAfter > 0) || (isLimited && limited.RetryAfter != tt.wantRetryAfter) {
				t.Errorf("AsJobError(%v) = %v: want rate limited after %v", tt.err, got, tt.wantRetryAfter)
			}
			if !errors.Is(got, tt.err) {
				t.Errorf("AsJobError(%v) = %v no longer wraps the error", tt.err, got)
			}
		})
	}
}

func TestTooLargeOutcome(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte(strings.Repeat("x", 100)))
	}))
	defer srv.Close()
	for _, tt := range []struct {
		configured, want Outcome
	}{{OutcomeOK, OutcomePermanent}, {OutcomePermanent, OutcomePermanent}, {OutcomeRetryable, OutcomeRetryable}} {
		c := &Client{MaxResponseBytes: 10, TooLargeOutcome: tt.configured}
		_, err := c.Get(context.Background(), "src", srv.URL+"?api_key=secret")
		if OutcomeOf(err) != tt.want || !errors.Is(err, ErrResponseTooLarge) {
			t.Errorf("TooLargeOutcome %v: error %v (%v), want %v wrapping ErrResponseTooLarge", tt.configured, err, OutcomeOf(err), tt.want)
		}
	}
}

func TestRedactURL(t *testing.T) {
	c := &Client{SecretParams: []string{"token"}}
	got := c.RedactURL("https://api.example/x?api_key=k1&token=k2&q=Barcelona")
	if strings.Contains(got, "k1") || strings.Contains(got, "k2") || !strings.Contains(got, "q=Barcelona") {
		t.Errorf("RedactURL = %q, want both secrets redacted and the rest kept", got)
	}
}
