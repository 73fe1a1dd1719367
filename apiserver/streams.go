package apiserver

import (
	"net/http"
	"sync"
	"time"
)

// streamSlots counts the open event streams, in all and per user.
type streamSlots struct {
	max, maxPerUser int

	mu      sync.Mutex
	total   int
	perUser map[string]int
}

func newStreamSlots(limit, perUser int) *streamSlots {
	return &streamSlots{max: limit, maxPerUser: perUser, perUser: map[string]int{}}
}

// open takes a slot for a stream of user and returns its release; 429 with Retry-After when
// the user, or the facade, has all its streams open.
func (st *streamSlots) open(user string) (func(), error) {
	st.mu.Lock()
	defer st.mu.Unlock()
	switch {
	case st.maxPerUser > 0 && st.perUser[user] >= st.maxPerUser:
		return nil, &apiError{Status: http.StatusTooManyRequests, Code: "too_many_streams",
			Message: "you have the most event streams open a user may; close one, or poll GET /api/jobs/:jobId", RetryAfter: 5}
	case st.max > 0 && st.total >= st.max:
		return nil, &apiError{Status: http.StatusTooManyRequests, Code: "too_many_streams",
			Message: "the server has the most event streams open it serves; try again, or poll GET /api/jobs/:jobId", RetryAfter: 5}
	}
	st.total++
	st.perUser[user]++
	var once sync.Once
	return func() {
		once.Do(func() {
			st.mu.Lock()
			defer st.mu.Unlock()
			st.total--
			if st.perUser[user]--; st.perUser[user] <= 0 {
				delete(st.perUser, user)
			}
		})
	}, nil
}

// streamLifetime is the channel that ends a stream after MaxStreamLifetime (never without one)
// and the function that stops its timer.
func (s *Server) streamLifetime() (<-chan time.Time, func()) {
	if s.limits.MaxStreamLifetime <= 0 {
		return nil, func() {}
	}
	t := time.NewTimer(s.limits.MaxStreamLifetime)
	return t.C, func() { t.Stop() }
}
