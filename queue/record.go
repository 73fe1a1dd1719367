package queue

import (
	"fmt"
	"strconv"
	"time"
)

// State is where a job record is.
type State string

const (
	StateWaiting   State = "waiting"
	StateActive    State = "active"
	StateDelayed   State = "delayed"
	StateCompleted State = "completed"
	StateFailed    State = "failed"
	StateCancelled State = "cancelled"
)

// IsFinished reports whether the state is terminal.
func (s State) IsFinished() bool {
	return s == StateCompleted || s == StateFailed || s == StateCancelled
}

// BackoffType is how the delay between attempts grows.
type BackoffType string

const (
	BackoffExponential BackoffType = "exponential"
	BackoffFixed       BackoffType = "fixed"
)

// Backoff is the wait before a failed job's next attempt: Delay × Multiplier^(attempt-1) when
// exponential, shortened at random by up to JitterPercent.
type Backoff struct {
	Type          BackoffType
	Delay         time.Duration
	Multiplier    int
	JitterPercent int
}

// SeedBackoff is the seed document's backoff: exponential from 5 s, ×5 (5, 25, 125, 625 s).
var SeedBackoff = Backoff{Type: BackoffExponential, Delay: 5 * time.Second, Multiplier: 5}

// DelayReason says why a job is delayed.
type DelayReason string

const (
	DelayRetry       DelayReason = "retry"        // backoff after a failed attempt
	DelayRateLimited DelayReason = "rate-limited" // the queue's or an outside API's rate limit
	DelayRequested   DelayReason = "delay"        // enqueued with a delay
)

// Record is a job record as Redis holds it.
type Record struct {
	ID  string
	UID string // the owner CR's UID: a CR recreated under the same name is a new job
	// Payload is opaque to the engine; PayloadVersion says which schema it follows.
	Payload        []byte
	PayloadVersion int
	Priority       int
	Seq            int64 // enqueue order within the queue

	AttemptsMade int
	MaxAttempts  int
	Stalls       int
	Backoff      Backoff
	Timeout      time.Duration

	State           State
	Progress        int
	ProgressMessage string
	CreatedAt       time.Time
	ProcessedAt     time.Time // start of the current or last attempt
	FinishedAt      time.Time
	DueAt           time.Time // when a delayed job becomes due
	DelayReason     DelayReason
	Error           string
	// RetryToken is the last retry token RetryFailed acted on.
	RetryToken string
	Result     []byte

	// Version rises with every transition and progress tick.
	Version int64
	// Token fences the current lease; Worker holds it until LeaseUntil unless it heartbeats.
	Token      string
	Worker     string
	LeaseUntil time.Time
}

// decodeRecord reads a record from its hash fields (HGETALL). It refuses malformed numbers and
// unknown states instead of guessing. An absent field is zero, except those Enqueue leaves out
// when they hold its defaults: pv and maxAttempts (1) and backoffType (fixed).
func decodeRecord(f map[string]string) (*Record, error) {
	d := fieldDecoder{fields: f}
	j := &Record{
		ID:              f["id"],
		UID:             f["uid"],
		Payload:         []byte(f["payload"]),
		PayloadVersion:  d.int("pv"),
		Priority:        d.int("priority"),
		Seq:             d.int64("seq"),
		AttemptsMade:    d.int("attempts"),
		MaxAttempts:     d.int("maxAttempts"),
		Stalls:          d.int("stalls"),
		Timeout:         d.millis("timeout"),
		State:           State(f["state"]),
		Progress:        d.int("progress"),
		ProgressMessage: f["progressMessage"],
		CreatedAt:       d.time("createdAt"),
		ProcessedAt:     d.time("processedAt"),
		FinishedAt:      d.time("finishedAt"),
		DueAt:           d.time("dueAt"),
		DelayReason:     DelayReason(f["delayReason"]),
		Error:           f["error"],
		RetryToken:      f["retryToken"],
		Version:         d.int64("version"),
		Token:           f["token"],
		Worker:          f["worker"],
		LeaseUntil:      d.time("leaseUntil"),
		Backoff: Backoff{
			Type:          BackoffType(f["backoffType"]),
			Delay:         d.millis("backoffDelay"),
			Multiplier:    d.int("backoffMult"),
			JitterPercent: d.int("backoffJitter"),
		},
	}
	if r, ok := f["result"]; ok {
		j.Result = []byte(r)
	}
	// Enqueue does not store the settings that are its defaults (appendEnqueueArgs).
	if j.Backoff.Type == "" {
		j.Backoff.Type = BackoffFixed
	}
	if _, ok := f["pv"]; !ok {
		j.PayloadVersion = 1
	}
	if _, ok := f["maxAttempts"]; !ok {
		j.MaxAttempts = 1
	}
	if d.err != nil {
		return nil, fmt.Errorf("decode job %q: %w", j.ID, d.err)
	}
	if j.ID == "" {
		return nil, fmt.Errorf("decode job: no id")
	}
	switch j.State {
	case StateWaiting, StateActive, StateDelayed, StateCompleted, StateFailed, StateCancelled:
	default:
		return nil, fmt.Errorf("decode job %q: unknown state %q", j.ID, j.State)
	}
	if j.Progress < 0 || j.Progress > 100 {
		return nil, fmt.Errorf("decode job %q: progress %d out of 0..100", j.ID, j.Progress)
	}
	return j, nil
}

// pairsToMap turns a script's flat field/value list (HGETALL's reply, where a value the script
// computed may be an integer) into a record map as HGETALL gives it.
func pairsToMap(v any) (map[string]string, error) {
	list, ok := v.([]any)
	if !ok || len(list)%2 != 0 {
		return nil, fmt.Errorf("record reply is %T, not field/value pairs", v)
	}
	m := make(map[string]string, len(list)/2+6)
	for i := 0; i < len(list); i += 2 {
		name, ok := list[i].(string)
		if !ok {
			return nil, fmt.Errorf("record reply holds a %T as a field name at %d", list[i], i)
		}
		switch x := list[i+1].(type) {
		case string:
			m[name] = x
		case int64:
			m[name] = strconv.FormatInt(x, 10)
		default:
			return nil, fmt.Errorf("record reply holds a %T at %d", list[i+1], i+1)
		}
	}
	return m, nil
}

// fieldDecoder parses numeric fields, keeping the first error. Absent fields are zero.
type fieldDecoder struct {
	fields map[string]string
	err    error
}

func (d *fieldDecoder) int64(name string) int64 {
	s, ok := d.fields[name]
	if !ok || s == "" {
		return 0
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		// Lua writes large numbers as floats ("1.7e+12") when it computed them.
		fl, ferr := strconv.ParseFloat(s, 64)
		if ferr != nil || fl != float64(int64(fl)) {
			if d.err == nil {
				d.err = fmt.Errorf("field %s: %q is not an integer", name, s)
			}
			return 0
		}
		n = int64(fl)
	}
	return n
}

func (d *fieldDecoder) int(name string) int { return int(d.int64(name)) }

func (d *fieldDecoder) millis(name string) time.Duration {
	return time.Duration(d.int64(name)) * time.Millisecond
}

func (d *fieldDecoder) time(name string) time.Time {
	ms := d.int64(name)
	if ms <= 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms)
}
