package apiserver

import "time"

// Limits bound what one request, connection or user may take of the facade: memory, sockets,
// event streams and a share of the queues. A zero field turns its limit off.
type Limits struct {
	// UserRate is each user's sustained requests per second on /api, UserBurst how many it may
	// send at once. Each facade replica counts its own.
	UserRate  float64
	UserBurst int
	// MaxLiveJobsPerUser caps a user's unfinished jobs per queue, counted in the job cache, so
	// every replica sees the same jobs.
	MaxLiveJobsPerUser int
	// MaxLargeBodies is how many analytics and upload bodies are read at once; a request waits
	// up to LargeBodyWait for its turn, then gets 503 with Retry-After.
	MaxLargeBodies int
	LargeBodyWait  time.Duration
	// MaxStreams and MaxStreamsPerUser cap the open event streams; MaxStreamLifetime ends a
	// stream after so long (the client reconnects and gets the job's state first).
	MaxStreams, MaxStreamsPerUser int
	MaxStreamLifetime             time.Duration
	// IdleTimeout closes a keep-alive connection idle that long. BodyTimeout bounds reading a
	// small JSON request, UploadTimeout an upload or analytics request, WriteTimeout writing an
	// answer (event streams excepted).
	IdleTimeout, BodyTimeout, UploadTimeout, WriteTimeout time.Duration
}

// DefaultLimits are the limits of a facade built without WithLimits. The per-user rate and
// live-jobs caps are off here (a library default cannot know the traffic); the apiserver
// command turns them on (--user-rate, --max-live-jobs-per-user).
func DefaultLimits() Limits {
	return Limits{
		MaxLargeBodies: 4, LargeBodyWait: 2 * time.Second,
		MaxStreams: 1000, MaxStreamsPerUser: 10, MaxStreamLifetime: 10 * time.Minute,
		IdleTimeout: 60 * time.Second, BodyTimeout: 10 * time.Second, UploadTimeout: 60 * time.Second,
		WriteTimeout: 30 * time.Second,
	}
}

// WithLimits sets the limits (default DefaultLimits).
func WithLimits(l Limits) Option { return func(s *Server) { s.limits = l } }
