package apiserver

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"golang.org/x/time/rate"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"

	jobsv1alpha1 "github.com/jengu/queue-operator/api/v1alpha1"
)

// userRates is a token bucket per user: each user's requests per second on /api.
type userRates struct {
	limit rate.Limit
	burst int
	clock clock.PassiveClock

	mu    sync.Mutex
	users map[string]*rate.Limiter
}

// sweepAbove is how many users' buckets are kept before the full ones (users idle long enough
// to have their whole burst back) are dropped.
const sweepAbove = 10_000

func newUserRates(perSecond float64, burst int, clk clock.PassiveClock) *userRates {
	return &userRates{limit: rate.Limit(perSecond), burst: max(burst, 1), clock: clk, users: map[string]*rate.Limiter{}}
}

// wait says how long user must wait before this request is allowed; 0 lets it on (and spends
// a token).
func (u *userRates) wait(user string) time.Duration {
	now := u.clock.Now()
	u.mu.Lock()
	defer u.mu.Unlock()
	lim := u.users[user]
	if lim == nil {
		if len(u.users) >= sweepAbove {
			for name, l := range u.users {
				if l.TokensAt(now) >= float64(u.burst) {
					delete(u.users, name) // as good as new
				}
			}
		}
		lim = rate.NewLimiter(u.limit, u.burst)
		u.users[user] = lim
	}
	r := lim.ReserveN(now, 1)
	delay := r.DelayFrom(now)
	if delay > 0 {
		r.CancelAt(now) // refused requests spend nothing
	}
	return delay
}

// rateLimit turns away a user's request over its rate with 429 and Retry-After.
func (s *Server) rateLimit(c *gin.Context) {
	if s.userRates == nil {
		c.Next()
		return
	}
	if wait := s.userRates.wait(userOf(c)); wait > 0 {
		s.fail(c, &apiError{Status: http.StatusTooManyRequests, Code: "rate_limited",
			Message:    fmt.Sprintf("over %g requests per second; try again later", s.limits.UserRate),
			RetryAfter: int(math.Ceil(wait.Seconds()))})
		return
	}
	c.Next()
}

// underLiveJobCap turns away a job of a user who has MaxLiveJobsPerUser unfinished jobs in its
// queue, with 429 and Retry-After. The jobs are counted in the cache through the user index,
// so every facade replica counts the same jobs; a burst spread over replicas can pass the cap by
// what arrives within the cache's lag.
func (s *Server) underLiveJobCap(ctx context.Context, queueName jobsv1alpha1.QueueName, user string) error {
	limit := s.limits.MaxLiveJobsPerUser
	if limit <= 0 {
		return nil
	}
	jobs := kindOf(queueName).NewList()
	if err := s.cfg.Kube.List(ctx, jobs, client.InNamespace(s.cfg.Namespace), client.MatchingFields{userIndex: user},
		client.UnsafeDisableDeepCopy); err != nil {
		return kubeError(err)
	}
	live := 0
	for _, job := range jobs.Jobs() {
		if phase := job.JobStatus().Phase; phase != jobsv1alpha1.PhaseCompleted && phase != jobsv1alpha1.PhaseFailed {
			live++
		}
	}
	if live < limit {
		return nil
	}
	return &apiError{Status: http.StatusTooManyRequests, Code: "too_many_jobs",
		Message:    fmt.Sprintf("you have %d unfinished jobs in queue %s, the limit per user; try again when some have finished", live, queueName),
		RetryAfter: 30}
}

// bodySlots bounds how many large bodies are read and held at once.
type bodySlots struct {
	slots chan struct{}
	wait  time.Duration
}

func newBodySlots(n int, wait time.Duration) *bodySlots {
	if n <= 0 {
		return &bodySlots{}
	}
	return &bodySlots{slots: make(chan struct{}, n), wait: wait}
}

// acquire takes a slot, waiting up to the slots' wait, and returns its release; 503 with
// Retry-After when none frees up in time.
func (b *bodySlots) acquire(ctx context.Context) (func(), error) {
	if b.slots == nil {
		return func() {}, nil
	}
	timer := time.NewTimer(b.wait)
	defer timer.Stop()
	select {
	case b.slots <- struct{}{}:
		return func() { <-b.slots }, nil
	case <-timer.C:
	case <-ctx.Done():
	}
	return nil, &apiError{Status: http.StatusServiceUnavailable, Code: "busy",
		Message: "too many large requests are being read; try again", RetryAfter: 1}
}
