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
	base := namespacePrefix(namespace) + queue + "}:"
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

// namespacePrefix starts every key of the namespace's queues, and no other key.
func namespacePrefix(namespace string) string { return "qo:{" + namespace + "/" }

// NamespaceACL is the rules of a Redis ACL user that may run the queues of one namespace and
// reach no other key (ACL SETUSER <user> on ><password> <rules...>): for the workers and the
// facade of that namespace. Namespace names (DNS labels) hold no glob characters. The controller
// serves every namespace and needs the keys ~qo:* (README "Security").
func NamespaceACL(namespace string) []string {
	return []string{"resetkeys", "~" + namespacePrefix(namespace) + "*", "resetchannels",
		"-@all", "+@connection", "+@read", "+@write", "+@scripting", "+time", "-@dangerous",
		"-scan", "-randomkey", "-script|flush", "-function"}
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
