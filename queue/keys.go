package queue

// keys names the Redis keys of one queue. Every key carries the hash tag {<namespace>/<queue>},
// so one queue's keys share a Cluster slot and a Lua script may touch them all.
type keys struct {
	jobPrefix string // + job id: the job record (hash)
	wait      string // sorted set: waiting jobs by priority, then FIFO
	delayed   string // sorted set: jobs by due time (backoff, rate limit, delay)
	active    string // sorted set: leased jobs by lease expiry
	completed string // sorted set: completed jobs by finish time
	failed    string // sorted set: the dead letter set, by failure time
	meta      string // hash: paused, limitedUntil, rateMax, rateDuration, seq
	limiter   string // sorted set: job starts inside the rate-limit window
	events    string // stream: every transition and progress tick
	marker    string // sorted set: wakes one blocked worker when jobs are ready
	stats     string // hash: lifetime counters and duration histograms (stats.go)
}

func newKeys(namespace, queue string) keys {
	base := "qo:{" + namespace + "/" + queue + "}:"
	return keys{
		jobPrefix: base + "job:",
		wait:      base + "wait",
		delayed:   base + "delayed",
		active:    base + "active",
		completed: base + "completed",
		failed:    base + "failed",
		meta:      base + "meta",
		limiter:   base + "limiter",
		events:    base + "events",
		marker:    base + "marker",
		stats:     base + "stats",
	}
}

func (k keys) job(id string) string { return k.jobPrefix + id }

// stateSet is the sorted set that holds jobs in a state, or "" for a state without one.
func (k keys) stateSet(s State) string {
	switch s {
	case StateWaiting:
		return k.wait
	case StateDelayed:
		return k.delayed
	case StateActive:
		return k.active
	case StateCompleted:
		return k.completed
	case StateFailed:
		return k.failed
	}
	return ""
}
