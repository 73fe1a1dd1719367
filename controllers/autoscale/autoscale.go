// Package autoscale decides how many workers a JobQueue needs: the HPA's algorithm applied to
// queue depth (waiting + active jobs), with KEDA-style scale to zero and a cap for rate-limited
// queues.
//
// Decide is a pure function: everything it needs from earlier decisions comes in through
// Input.History and Input.LastActive, and goes back out in the Decision, so the controller stores
// them in the JobQueue status and a new leader continues the same decision.
//
// One decision, in order:
//
//  1. Defaults fill the zero fields of the Policy (see the Default constants and WithDefaults).
//  2. Scale to zero: when MinReplicas is 0, the queue is empty and it has been since
//     LastActive + IdleCooldown (or was never active), the answer is 0 at once. The idle
//     cooldown is the stabilization of this step; the scale-down window does not apply to it.
//  3. The recommendation: ceil((waiting + active) / TargetJobsPerReplica), or the current count
//     when the unrounded ratio is within Tolerance of it (and current > 0), clamped to
//     [floor, ceiling]. The ceiling is MaxReplicas, lowered to the rate-limit cap (never below
//     MinReplicas). The floor is MinReplicas, or 1 while an empty queue waits out its idle
//     cooldown with workers still running.
//  4. Stabilization over the History plus this recommendation: never above the highest
//     recommendation of the scale-down window, never below the lowest of the scale-up window
//     (the HPA's rule), then clamped to [floor, ceiling] again.
//  5. Activation: at 0 replicas with jobs in the queue, at least 1, whatever the windows say.
//  6. The scale-up bound: at most max(2 × current, current + 4) per decision.
package autoscale

import (
	"fmt"
	"math"
	"math/big"
	"slices"
	"strings"
	"time"
)

// Defaults of the Policy's zero fields, and the fixed limits of the algorithm.
const (
	// DefaultTolerance is used when Policy.Tolerance is 0: changes within ±10% are ignored.
	DefaultTolerance = 0.1
	// DefaultScaleUpStabilization is the scale-up window: 0, scale up at once.
	DefaultScaleUpStabilization time.Duration = 0
	// DefaultScaleDownStabilization is used when Policy.ScaleDownStabilization is 0.
	DefaultScaleDownStabilization = 300 * time.Second
	// DefaultIdleCooldown is used when Policy.IdleCooldown is 0.
	DefaultIdleCooldown = 300 * time.Second
	// DefaultTargetJobsPerReplica is used when Policy.TargetJobsPerReplica is 0 or less.
	DefaultTargetJobsPerReplica int32 = 10
	// DefaultMaxReplicas is used when Policy.MaxReplicas is 0 or less.
	DefaultMaxReplicas int32 = 10

	// ScaleUpMaxPods and ScaleUpMaxPercent bound one scale-up: the larger of +4 pods or +100% of
	// the current replicas (the HPA's default scale-up policy, applied per decision).
	ScaleUpMaxPods    int32 = 4
	ScaleUpMaxPercent int32 = 100

	// MaxHistory is the most recommendations a Decision keeps (the CRD's MaxItems of
	// status.recommendations).
	MaxHistory = 128
)

// Policy is a queue's autoscaling settings.
//
// Zero fields take the Default constants. Where 0 is a meaningful setting that the default
// hides (Tolerance, ScaleDownStabilization, IdleCooldown), a negative value means zero: no
// tolerance, scale down at once, scale to zero as soon as the queue is empty.
type Policy struct {
	// MinReplicas is the floor (0 allows scale to zero); negative counts as 0. When it exceeds
	// MaxReplicas (after defaulting), MaxReplicas is raised to it.
	// MaxReplicas is the ceiling; 0 or less means DefaultMaxReplicas.
	MinReplicas, MaxReplicas int32
	// TargetJobsPerReplica is the queue depth one replica carries; 0 or less means
	// DefaultTargetJobsPerReplica.
	TargetJobsPerReplica int32
	Tolerance            float64       // 0.1: changes within ±10% of current are ignored (0: DefaultTolerance; negative: none). The bound is inclusive.
	ScaleUpStabilization time.Duration // scale up uses the lowest recommendation in this window (0: at once; negative counts as 0)
	// ScaleDownStabilization: scale down uses the highest recommendation in this window
	// (0: DefaultScaleDownStabilization, 300s; negative: scale down at once).
	ScaleDownStabilization time.Duration
	// IdleCooldown: an empty queue scales to zero (when MinReplicas is 0) only after this
	// (0: DefaultIdleCooldown, 300s; negative: as soon as it is empty).
	IdleCooldown time.Duration
	// Rate limit of the queue, nil when none: replicas are capped at
	// ceil(RateMax/RateWindow.Seconds() × MedianJobDuration.Seconds() / Concurrency), at least 1 while jobs wait.
	//
	// The queue is rate-limited when RateMax > 0 and RateWindow > 0 ("nil" is RateMax == 0).
	// The cap is computed exactly in integers, so 10/min × 18 s / 3 is 1, not 2.
	RateMax    int32
	RateWindow time.Duration
	// Concurrency is the jobs one replica runs at once; 0 or less counts as 1.
	Concurrency int32
	// MedianJobDuration is the recent median; 0 when unknown. Unknown, the cap assumes a job
	// lasts a whole RateWindow: ceil(RateMax / Concurrency) replicas, enough to start a full
	// window's quota at once, and never more than the limit can keep busy at its burst.
	MedianJobDuration time.Duration // recent median; 0 when unknown
}

// WithDefaults returns p with its zero fields set to the defaults and its negative "none"
// values set to zero: the Policy Decide works with. Useful to log or show the effective policy.
func (p Policy) WithDefaults() Policy {
	p.MinReplicas = max(p.MinReplicas, 0)
	if p.MaxReplicas <= 0 {
		p.MaxReplicas = DefaultMaxReplicas
	}
	p.MaxReplicas = max(p.MaxReplicas, p.MinReplicas)
	if p.TargetJobsPerReplica <= 0 {
		p.TargetJobsPerReplica = DefaultTargetJobsPerReplica
	}
	switch {
	case p.Tolerance == 0 || math.IsNaN(p.Tolerance):
		p.Tolerance = DefaultTolerance
	case p.Tolerance < 0:
		p.Tolerance = 0
	}
	p.ScaleUpStabilization = max(p.ScaleUpStabilization, 0)
	switch {
	case p.ScaleDownStabilization == 0:
		p.ScaleDownStabilization = DefaultScaleDownStabilization
	case p.ScaleDownStabilization < 0:
		p.ScaleDownStabilization = 0
	}
	switch {
	case p.IdleCooldown == 0:
		p.IdleCooldown = DefaultIdleCooldown
	case p.IdleCooldown < 0:
		p.IdleCooldown = 0
	}
	if p.RateMax <= 0 || p.RateWindow <= 0 {
		p.RateMax, p.RateWindow = 0, 0
	}
	p.Concurrency = max(p.Concurrency, 1)
	p.MedianJobDuration = max(p.MedianJobDuration, 0)
	return p
}

// RateCap is the most replicas the policy's rate limit can feed (at least 1), and false when
// the queue has no rate limit. The policy's defaults are applied first.
func (p Policy) RateCap() (int32, bool) {
	p = p.WithDefaults()
	if p.RateMax == 0 {
		return 0, false
	}
	d := p.MedianJobDuration
	if d == 0 {
		d = p.RateWindow // unknown median: as if a job lasted the whole window
	}
	// ceil(RateMax × d / (RateWindow × Concurrency)), exact; the product can overflow int64.
	num := new(big.Int).Mul(big.NewInt(int64(p.RateMax)), big.NewInt(int64(d)))
	den := new(big.Int).Mul(big.NewInt(int64(p.RateWindow)), big.NewInt(int64(p.Concurrency)))
	num.Add(num, den).Sub(num, big.NewInt(1))
	q := num.Quo(num, den)
	if !q.IsInt64() || q.Int64() > math.MaxInt32 {
		return math.MaxInt32, true
	}
	return max(int32(q.Int64()), 1), true
}

// Recommendation is one reading kept for the stabilization windows (stored in the JobQueue status,
// so a new leader continues the same decision).
type Recommendation struct {
	Time     time.Time
	Replicas int32
}

// Input is what the controller observed.
type Input struct {
	Now             time.Time
	Waiting, Active int64 // negative counts as 0
	CurrentReplicas int32 // the Deployment's replicas now; negative counts as 0
	// History is the previous Decision's History (nil on the very first decision). When it holds
	// nothing inside the windows, CurrentReplicas is recorded at Now first (unless both windows
	// are 0, or it equals this reading), as the HPA does when it first sees a target, so a
	// scale-down always waits out a full window.
	History    []Recommendation
	LastActive time.Time // last time the queue had waiting or active jobs (zero: never)
}

// Decision is what to do.
type Decision struct {
	DesiredReplicas int32
	// History is pruned to the longest window, with this reading appended; at most MaxHistory
	// entries, sorted by time. Entries stamped after Now (a previous leader's clock ran ahead)
	// are dropped. Over MaxHistory, entries that can no longer change any decision go first
	// (an older entry with a newer one at least as high, for the scale-down window, and one at
	// least as low, for the scale-up window), then the oldest. It never aliases Input.History.
	History    []Recommendation
	LastActive time.Time // Now when the queue has jobs, else Input.LastActive
	Reason     string    // short, human-readable: why this number (for an Event / log)

	// Recommendation is this reading's recommendation, the entry appended to History: the
	// depth-based count after tolerance and [floor, ceiling], before the windows, activation
	// and the scale-up bound.
	Recommendation int32
}

// maxJobs keeps depth arithmetic far from int64 overflow.
const maxJobs = 1 << 50

// Decide returns the replicas a queue's workers should have. It is pure: the same Policy and
// Input give the same Decision.
func Decide(p Policy, in Input) Decision {
	p = p.WithDefaults()
	current := max(in.CurrentReplicas, 0)
	depth := min(max(in.Waiting, 0), maxJobs) + min(max(in.Active, 0), maxJobs)
	target := int64(p.TargetJobsPerReplica)

	d := Decision{LastActive: in.LastActive}
	if depth > 0 {
		d.LastActive = in.Now
	}

	// The windows' history: pruned, sorted, seeded when empty.
	longest := max(p.ScaleUpStabilization, p.ScaleDownStabilization)
	cutoff := in.Now.Add(-longest)
	hist := make([]Recommendation, 0, len(in.History)+2)
	for _, r := range in.History {
		if r.Time.After(cutoff) && !r.Time.After(in.Now) {
			hist = append(hist, Recommendation{Time: r.Time, Replicas: max(r.Replicas, 0)})
		}
	}
	slices.SortStableFunc(hist, func(a, b Recommendation) int { return a.Time.Compare(b.Time) })
	seeded := len(hist) == 0 && longest > 0
	if seeded {
		hist = append(hist, Recommendation{Time: in.Now, Replicas: current})
	}
	// reading appends this reading's recommendation; a seed equal to it says nothing more.
	reading := func(rec int32) []Recommendation {
		if seeded && hist[0].Replicas == rec {
			hist = hist[:0]
		}
		return capHistory(append(hist, Recommendation{Time: in.Now, Replicas: rec}), p, in.Now)
	}

	var notes []string
	note := func(format string, args ...any) { notes = append(notes, fmt.Sprintf(format, args...)) }

	// Scale to zero.
	if depth == 0 && p.MinReplicas == 0 &&
		(in.LastActive.IsZero() || !in.Now.Before(in.LastActive.Add(p.IdleCooldown))) {
		d.History = reading(0)
		if in.LastActive.IsZero() {
			note("queue empty and never active")
		} else {
			note("queue empty since %s, idle cooldown %s over", in.LastActive.UTC().Format(time.RFC3339), p.IdleCooldown)
		}
		d.Reason = reason(current, 0, notes)
		return d
	}

	// Bounds.
	ceiling, floor := p.MaxReplicas, p.MinReplicas
	rateCap, limited := p.RateCap()
	if limited && rateCap < ceiling {
		ceiling = max(rateCap, p.MinReplicas)
	}
	if depth == 0 && p.MinReplicas == 0 && current > 0 {
		floor = 1 // until the idle cooldown is over
	}

	// This reading's recommendation.
	var rec int64
	expected := target * int64(current)
	if diff := depth - expected; current > 0 && math.Abs(float64(diff)) <= p.Tolerance*float64(expected)*(1+1e-9) {
		rec = int64(current)
		note("%d jobs within %.4g%% of %d × %d", depth, p.Tolerance*100, current, target)
	} else {
		rec = (depth + target - 1) / target
		note("%d jobs / %d per replica = %d", depth, target, rec)
	}
	switch {
	case rec > int64(ceiling) && ceiling < p.MaxReplicas:
		note("capped at %d by the rate limit (%d per %s, median job %s, concurrency %d)",
			ceiling, p.RateMax, p.RateWindow, p.MedianJobDuration, p.Concurrency)
		rec = int64(ceiling)
	case rec > int64(ceiling):
		note("capped at maxReplicas %d", ceiling)
		rec = int64(ceiling)
	case rec < int64(floor) && floor > p.MinReplicas:
		note("kept at 1 until the idle cooldown (%s) is over", p.IdleCooldown)
		rec = int64(floor)
	case rec < int64(floor):
		note("raised to minReplicas %d", floor)
		rec = int64(floor)
	}
	d.Recommendation = int32(rec)
	hist = reading(d.Recommendation)
	d.History = hist

	// Stabilization (the HPA's rule): between the lowest of the scale-up window and the highest
	// of the scale-down window, as close to current as that allows.
	up, down := d.Recommendation, d.Recommendation
	upCut, downCut := in.Now.Add(-p.ScaleUpStabilization), in.Now.Add(-p.ScaleDownStabilization)
	for _, r := range hist[:len(hist)-1] {
		if r.Time.After(upCut) {
			up = min(up, r.Replicas)
		}
		if r.Time.After(downCut) {
			down = max(down, r.Replicas)
		}
	}
	// The bounds again: a window may hold readings from before MaxReplicas or the rate cap went
	// down. The recommendation is within them, so any difference left is the windows'.
	desired := min(max(min(max(current, up), down), floor), ceiling)
	switch {
	case desired > d.Recommendation:
		note("scale-down stabilization: highest in %s is %d", p.ScaleDownStabilization, down)
	case desired < d.Recommendation:
		note("scale-up stabilization: lowest in %s is %d", p.ScaleUpStabilization, up)
	}

	// Activation: the first job at zero replicas gets a worker at once.
	if current == 0 && depth > 0 && desired < 1 {
		desired = 1
		note("activation")
	}

	// The scale-up bound.
	if desired > current {
		c := int64(current)
		limit := max(c+c*int64(ScaleUpMaxPercent)/100, c+int64(ScaleUpMaxPods))
		if int64(desired) > limit {
			desired = int32(limit)
			note("scale-up limited to %d per decision", limit)
		}
	}

	d.DesiredReplicas = desired
	d.Reason = reason(current, desired, notes)
	return d
}

// capHistory keeps at most MaxHistory entries of the sorted h: first it drops the entries that
// can no longer change a decision, then the oldest. The last entry (this reading) stays.
func capHistory(h []Recommendation, p Policy, now time.Time) []Recommendation {
	if len(h) <= MaxHistory {
		return h
	}
	upCut, downCut := now.Add(-p.ScaleUpStabilization), now.Add(-p.ScaleDownStabilization)
	keep := make([]bool, len(h))
	keep[len(h)-1] = true
	newerMax, newerMin := h[len(h)-1].Replicas, h[len(h)-1].Replicas
	for i := len(h) - 2; i >= 0; i-- {
		r := h[i]
		// For the scale-down window an entry matters while no newer one is at least as high;
		// for the scale-up window while no newer one is at least as low. Windows only shrink
		// from the old end, so a newer entry outlives the older one in both.
		forDown := r.Time.After(downCut) && r.Replicas > newerMax
		forUp := r.Time.After(upCut) && r.Replicas < newerMin
		keep[i] = forDown || forUp
		newerMax, newerMin = max(newerMax, r.Replicas), min(newerMin, r.Replicas)
	}
	out := make([]Recommendation, 0, MaxHistory)
	for i, r := range h {
		if keep[i] {
			out = append(out, r)
		}
	}
	if len(out) > MaxHistory {
		out = out[len(out)-MaxHistory:]
	}
	return out
}

func reason(current, desired int32, notes []string) string {
	var verb string
	switch {
	case desired > current:
		verb = fmt.Sprintf("scale up %d→%d", current, desired)
	case desired < current:
		verb = fmt.Sprintf("scale down %d→%d", current, desired)
	default:
		verb = fmt.Sprintf("keep %d", current)
	}
	return verb + ": " + strings.Join(notes, "; ")
}
