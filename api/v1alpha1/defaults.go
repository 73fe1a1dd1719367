package v1alpha1

import (
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// SeedQueue is a queue's configuration as the seed document fixes it: the values a JobQueue
// takes where its spec is silent.
type SeedQueue struct {
	// Concurrency is the jobs one worker runs at once.
	Concurrency int32
	// ConcurrencyEnv is the worker environment variable that overrides Concurrency.
	ConcurrencyEnv string
	// Attempts in all, the first included.
	Attempts int32
	// RateLimit across all workers, or nil.
	RateLimit *RateLimit
}

// QueueSettings are a JobQueue's effective settings: its spec with the seed's values where the
// spec is silent.
type QueueSettings struct {
	Concurrency     int32
	Attempts        int32
	Backoff         Backoff
	RateLimit       *RateLimit
	Timeout         time.Duration
	RetainCompleted time.Duration
	RetainFailed    time.Duration
	MaxWaiting      *int32
	Paused          bool
}

// Settings resolves the queue's effective settings.
func (s *JobQueueSpec) Settings() QueueSettings {
	var seed SeedQueue
	if kind, ok := KindOf(s.Queue); ok {
		seed = kind.Seed
	}
	out := QueueSettings{
		Concurrency:     seed.Concurrency,
		Attempts:        seed.Attempts,
		Backoff:         Backoff{Type: BackoffExponential, Delay: metav1.Duration{Duration: 5 * time.Second}, Multiplier: 5},
		RateLimit:       seed.RateLimit.DeepCopy(),
		Timeout:         5 * time.Minute,
		RetainCompleted: 24 * time.Hour,
		RetainFailed:    7 * 24 * time.Hour,
		MaxWaiting:      s.MaxWaiting,
		Paused:          s.Paused,
	}
	if s.Concurrency != nil {
		out.Concurrency = *s.Concurrency
	}
	if s.Retry.Attempts != nil {
		out.Attempts = *s.Retry.Attempts
	}
	b := s.Retry.Backoff
	if b.Type != "" {
		out.Backoff.Type = b.Type
	}
	if b.Delay.Duration > 0 {
		out.Backoff.Delay = b.Delay
	}
	if b.Multiplier > 0 {
		out.Backoff.Multiplier = b.Multiplier
	}
	out.Backoff.JitterPercent = b.JitterPercent
	switch {
	case s.RateLimit != nil && s.RateLimit.Unlimited:
		out.RateLimit = nil
	case s.RateLimit != nil:
		out.RateLimit = s.RateLimit
	}
	if s.Timeout.Duration > 0 {
		out.Timeout = s.Timeout.Duration
	}
	if s.Retention.Completed.Duration > 0 {
		out.RetainCompleted = s.Retention.Completed.Duration
	}
	if s.Retention.Failed.Duration > 0 {
		out.RetainFailed = s.Retention.Failed.Duration
	}
	return out
}
