package enrichment

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"
)

func TestAPIErrorMessagesAndOutcomes(t *testing.T) {
	tests := []struct {
		name        string
		err         error
		wantMsg     string
		wantOutcome Outcome
	}{
		{
			name:        "rate limited with a reason",
			err:         &APIError{Outcome: OutcomeRateLimited, Source: SourceCalendarific, StatusCode: 429, RetryAfter: time.Hour, Reason: "quota"},
			wantMsg:     "calendarific: rate limited (HTTP 429), retry after 1h0m0s: quota",
			wantOutcome: OutcomeRateLimited,
		},
		{
			name:        "rate limited without a reason",
			err:         &APIError{Outcome: OutcomeRateLimited, Source: SourceOpenMeteoArchive, RetryAfter: 90 * time.Second},
			wantMsg:     "open-meteo-archive: rate limited (HTTP 429), retry after 1m30s",
			wantOutcome: OutcomeRateLimited,
		},
		{
			name:        "retryable HTTP status",
			err:         &APIError{Outcome: OutcomeRetryable, Source: SourceOpenMeteoArchive, StatusCode: 502, Reason: "Bad Gateway"},
			wantMsg:     "open-meteo-archive: HTTP 502 (retryable): Bad Gateway",
			wantOutcome: OutcomeRetryable,
		},
		{
			name:        "retryable without a response",
			err:         &APIError{Outcome: OutcomeRetryable, Source: SourceCalendarific, Err: fmt.Errorf("%w after 10s: boom", ErrTimeout)},
			wantMsg:     "calendarific (retryable): request timed out after 10s: boom",
			wantOutcome: OutcomeRetryable,
		},
		{
			name:        "retryable garbled body",
			err:         &APIError{Outcome: OutcomeRetryable, Source: SourceCalendarific, StatusCode: 200, Err: fmt.Errorf("%w: eof", ErrMalformedResponse)},
			wantMsg:     "calendarific: HTTP 200 (retryable): malformed response: eof",
			wantOutcome: OutcomeRetryable,
		},
		{
			name:        "permanent with status, reason and cause",
			err:         &APIError{Outcome: OutcomePermanent, Source: SourceOpenMeteoForecast, StatusCode: 200, Reason: "response body larger than 10 bytes", Err: ErrResponseTooLarge},
			wantMsg:     "open-meteo-forecast: HTTP 200 (permanent): response body larger than 10 bytes: response body exceeds limit",
			wantOutcome: OutcomePermanent,
		},
		{
			name:        "permanent whose reason is its cause's message",
			err:         &APIError{Outcome: OutcomePermanent, Source: "property", Reason: "invalid input", Err: ErrInvalidInput},
			wantMsg:     "property (permanent): invalid input",
			wantOutcome: OutcomePermanent,
		},
		{
			name:        "wrapped",
			err:         fmt.Errorf("weather: %w", &APIError{Outcome: OutcomePermanent, Source: SourceCalendarific, StatusCode: 401, Reason: "auth failed"}),
			wantMsg:     "weather: calendarific: HTTP 401 (permanent): auth failed",
			wantOutcome: OutcomePermanent,
		},
		{
			name:        "an outcome an APIError does not carry is retryable",
			err:         &APIError{Source: SourceCalendarific, Err: errors.New("x")},
			wantMsg:     "calendarific (retryable): x",
			wantOutcome: OutcomeRetryable,
		},
		{name: "canceled", err: fmt.Errorf("x: %w", context.Canceled), wantMsg: "x: context canceled", wantOutcome: OutcomeCanceled},
		{name: "unknown", err: errors.New("surprise"), wantMsg: "surprise", wantOutcome: OutcomeRetryable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.err.Error(); got != tt.wantMsg {
				t.Errorf("Error() = %q, want %q", got, tt.wantMsg)
			}
			if got := OutcomeOf(tt.err); got != tt.wantOutcome {
				t.Errorf("OutcomeOf = %v, want %v", got, tt.wantOutcome)
			}
		})
	}
	if OutcomeOf(nil) != OutcomeOK {
		t.Errorf("OutcomeOf(nil) = %v, want ok", OutcomeOf(nil))
	}
}
