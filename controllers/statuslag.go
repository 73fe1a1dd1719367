package controllers

import (
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"
)

// statusLag holds back the controller's writes of a status its CR lags behind the record. The
// worker that made a transition writes it itself (its start, at once its end), and a job that
// a worker starts soon after it is enqueued never needs its Waiting written: so the controller
// writes a lagging status only once it has lagged for the grace, which leaves it what nobody
// else writes (a job still waiting, a job whose worker died before its write, a job the
// housekeeping moved). A grace of zero writes at once.
type statusLag struct {
	grace time.Duration
	mu    sync.Mutex
	since map[types.NamespacedName]time.Time
}

func newStatusLag(grace time.Duration) *statusLag {
	return &statusLag{grace: grace, since: map[types.NamespacedName]time.Time{}}
}

// wait returns how much longer the job's lag is left to its other writers: zero when the
// controller should write now. The lag is timed from when it was first seen, whatever the
// record did since (progress raises its version without ending the lag).
func (l *statusLag) wait(job types.NamespacedName, now time.Time) time.Duration {
	if l.grace <= 0 {
		return 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	since, ok := l.since[job]
	if !ok {
		since = now
		l.since[job] = now
	}
	return max(since.Add(l.grace).Sub(now), 0)
}

// forget ends the job's lag: its CR caught up, or it is gone.
func (l *statusLag) forget(job types.NamespacedName) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.since, job)
}
