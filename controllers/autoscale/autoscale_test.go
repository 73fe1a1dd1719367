package autoscale

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var t0 = time.Date(2026, 3, 4, 5, 6, 0, 0, time.UTC)

// at is t0 plus sec seconds.
func at(sec int) time.Time { return t0.Add(time.Duration(sec) * time.Second) }

// hist builds a History from (second, replicas) pairs.
func hist(pairs ...int) []Recommendation {
	var h []Recommendation
	for i := 0; i+1 < len(pairs); i += 2 {
		h = append(h, Recommendation{Time: at(pairs[i]), Replicas: int32(pairs[i+1])})
	}
	return h
}

var (
	// base is the policy of most cases: the defaults with minReplicas 1.
	base = Policy{MinReplicas: 1, MaxReplicas: 10, TargetJobsPerReplica: 10}
	// toZero allows scale to zero.
	toZero = Policy{MinReplicas: 0, MaxReplicas: 10, TargetJobsPerReplica: 10}
	// enrichment is the seed's rate-limited queue: 10 per minute, concurrency 3, median 20 s.
	enrichment = Policy{MaxReplicas: 10, TargetJobsPerReplica: 10,
		RateMax: 10, RateWindow: time.Minute, Concurrency: 3, MedianJobDuration: 20 * time.Second}
)

func with(p Policy, f func(*Policy)) Policy { f(&p); return p }

func TestDecide(t *testing.T) {
	tests := []struct {
		name       string
		p          Policy
		in         Input
		want       int32
		wantRec    int32  // -1: not checked
		wantReason string // substring of Reason
	}{
		// desired = ceil(depth / target), clamped to [min, max].
		{"95 waiting, target 10, from 6: 10", base,
			Input{Waiting: 95, CurrentReplicas: 6}, 10, 10, "scale up 6→10: 95 jobs / 10 per replica = 10"},
		{"150 waiting capped at max 10", base,
			Input{Waiting: 150, CurrentReplicas: 6}, 10, 10, "capped at maxReplicas 10"},
		{"95 waiting with max 5, from 3: 5", with(base, func(p *Policy) { p.MaxReplicas = 5 }),
			Input{Waiting: 95, CurrentReplicas: 3}, 5, 5, "capped at maxReplicas 5"},
		{"waiting and active both count", base,
			Input{Waiting: 45, Active: 50, CurrentReplicas: 6}, 10, 10, "95 jobs"},
		{"target 25", with(base, func(p *Policy) { p.TargetJobsPerReplica = 25 }),
			Input{Waiting: 80, CurrentReplicas: 2}, 4, 4, "scale up 2→4"},
		{"minReplicas is the floor", with(base, func(p *Policy) { p.MinReplicas = 3 }),
			Input{Waiting: 5, CurrentReplicas: 3}, 3, 3, "raised to minReplicas 3"},
		{"maxReplicas lowered below current: down at once despite the window",
			with(base, func(p *Policy) { p.MaxReplicas = 5 }),
			Input{Waiting: 95, CurrentReplicas: 8, History: hist(-15, 8)}, 5, 5, "scale down 8→5"},
		{"negative counts are zero", base,
			Input{Waiting: -5, Active: -1, CurrentReplicas: 1}, 1, 1, "keep 1"},

		// Scale up at once, at most max(+100%, +4) per decision.
		{"2 replicas, 95 jobs: bounded to 6 (+4)", base,
			Input{Waiting: 95, CurrentReplicas: 2}, 6, 10, "scale-up limited to 6 per decision"},
		{"6 replicas, 95 jobs: 10 (bound 12)", base,
			Input{Waiting: 95, CurrentReplicas: 6}, 10, 10, "scale up 6→10"},
		{"+100% when larger than +4", with(base, func(p *Policy) { p.MaxReplicas = 100 }),
			Input{Waiting: 1000, CurrentReplicas: 10}, 20, 100, "limited to 20"},
		{"from 0: +4", toZero,
			Input{Waiting: 95}, 4, 10, "scale up 0→4"},

		// Tolerance: |raw/current − 1| ≤ tolerance keeps current (raw unrounded).
		{"54 jobs on 5 replicas: within 10%", base,
			Input{Waiting: 54, CurrentReplicas: 5}, 5, 5, "within 10% of 5 × 10"},
		{"55 jobs on 5 replicas: exactly 10%, kept", base,
			Input{Waiting: 55, CurrentReplicas: 5}, 5, 5, "keep 5"},
		{"56 jobs on 5 replicas: 6", base,
			Input{Waiting: 56, CurrentReplicas: 5}, 6, 6, "scale up 5→6"},
		{"90 jobs on 10 replicas: exactly −10%, kept",
			with(base, func(p *Policy) { p.ScaleDownStabilization = -1 }),
			Input{Waiting: 90, CurrentReplicas: 10}, 10, 10, "within"},
		{"89 jobs on 10 replicas: 9",
			with(base, func(p *Policy) { p.ScaleDownStabilization = -1 }),
			Input{Waiting: 89, CurrentReplicas: 10}, 9, 9, "scale down 10→9"},
		{"negative tolerance: none", with(base, func(p *Policy) { p.Tolerance = -1 }),
			Input{Waiting: 51, CurrentReplicas: 5}, 6, 6, "scale up 5→6"},
		{"tolerance 0.29: the bound is exact despite floats (0.29 × 100 < 29)",
			with(base, func(p *Policy) { p.Tolerance = 0.29; p.MaxReplicas = 20 }),
			Input{Waiting: 129, CurrentReplicas: 10}, 10, 10, "within 29%"},
		{"tolerance 0.5", with(base, func(p *Policy) { p.Tolerance = 0.5 }),
			Input{Waiting: 59, CurrentReplicas: 4}, 4, 4, "within 50%"},
		{"no tolerance at 0 replicas", toZero,
			Input{Waiting: 1, LastActive: at(0)}, 1, 1, "scale up 0→1"},

		// Scale down: the highest recommendation of the window (default 300 s).
		{"drained: held by a 10 299 s ago", base,
			Input{CurrentReplicas: 10, History: hist(-299, 10, -15, 1)}, 10, 1,
			"scale-down stabilization: highest in 5m0s is 10"},
		{"drained: the 10 is 300 s old, down to 1", base,
			Input{CurrentReplicas: 10, History: hist(-300, 10, -15, 1)}, 1, 1, "scale down 10→1"},
		{"highest of the window, not the latest", base,
			Input{Waiting: 30, CurrentReplicas: 10, History: hist(-200, 7, -100, 5)}, 7, 3, "scale down 10→7"},
		{"custom 60 s window", with(base, func(p *Policy) { p.ScaleDownStabilization = time.Minute }),
			Input{Waiting: 30, CurrentReplicas: 10, History: hist(-61, 10, -30, 4)}, 4, 3, "highest in 1m0s is 4"},
		{"negative window: down at once", with(base, func(p *Policy) { p.ScaleDownStabilization = -1 }),
			Input{Waiting: 30, CurrentReplicas: 10, History: hist(-15, 10)}, 3, 3, "scale down 10→3"},
		{"no history: current is recorded, the scale-down waits", base,
			Input{CurrentReplicas: 10}, 10, 1, "keep 10"},
		{"scale-down never goes above current", base,
			Input{Waiting: 30, CurrentReplicas: 5, History: hist(-100, 9)}, 5, 3, "keep 5"},

		// Scale up: the lowest recommendation of the scale-up window (default 0: at once).
		{"scale-up window 60 s: held by 1s", with(base, func(p *Policy) { p.ScaleUpStabilization = time.Minute }),
			Input{Waiting: 100, CurrentReplicas: 1, History: hist(-45, 1, -30, 1, -15, 1)}, 1, 10,
			"scale-up stabilization: lowest in 1m0s is 1"},
		{"scale-up window 60 s: lowest in the window", with(base, func(p *Policy) { p.ScaleUpStabilization = time.Minute }),
			Input{Waiting: 100, CurrentReplicas: 3, History: hist(-60, 1, -45, 5, -30, 6)}, 5, 10, "scale up 3→5"},

		// Scale to zero after the idle cooldown (default 300 s), when minReplicas is 0.
		{"empty 299 s: kept at 1", toZero,
			Input{CurrentReplicas: 1, LastActive: at(-299)}, 1, 1, "kept at 1 until the idle cooldown (5m0s) is over"},
		{"empty 300 s: zero", toZero,
			Input{CurrentReplicas: 1, LastActive: at(-300)}, 0, 0, "scale down 1→0: queue empty since"},
		{"never active: zero", toZero,
			Input{CurrentReplicas: 3}, 0, 0, "never active"},
		{"minReplicas 1: never zero", base,
			Input{CurrentReplicas: 1, LastActive: at(-3600)}, 1, 1, "keep 1"},
		{"custom cooldown 60 s", with(toZero, func(p *Policy) { p.IdleCooldown = time.Minute }),
			Input{CurrentReplicas: 2, LastActive: at(-60)}, 0, 0, "idle cooldown 1m0s over"},
		{"negative cooldown: zero once empty", with(toZero, func(p *Policy) { p.IdleCooldown = -1 }),
			Input{CurrentReplicas: 2, LastActive: at(-15)}, 0, 0, "scale down 2→0"},
		{"within the cooldown the window still holds", toZero,
			Input{CurrentReplicas: 5, LastActive: at(-15), History: hist(-15, 5)}, 5, 1, "keep 5"},
		{"the zero step does not wait for the scale-down window", toZero,
			Input{CurrentReplicas: 10, LastActive: at(-300), History: hist(-15, 10)}, 0, 0, "scale down 10→0"},
		{"at zero, empty, within the cooldown: stays 0", toZero,
			Input{LastActive: at(-10)}, 0, 0, "keep 0"},

		// Activation: from 0 replicas, any job gives at least 1 at once.
		{"first job at 0 replicas, despite a scale-up window of zeros",
			with(toZero, func(p *Policy) { p.ScaleUpStabilization = 2 * time.Minute }),
			Input{Waiting: 1, History: hist(-30, 0, -15, 0), LastActive: at(-3600)}, 1, 1, "activation"},
		{"an active job at 0 replicas", toZero,
			Input{Active: 1, History: hist(-15, 0)}, 1, 1, "scale up 0→1"},

		// Rate limit: ceil(10/60 × 20 / 3) = 2.
		{"95 jobs on a 10/min queue, concurrency 3, median 20 s: 2", enrichment,
			Input{Waiting: 95, CurrentReplicas: 1}, 2, 2, "capped at 2 by the rate limit (10 per 1m0s, median job 20s, concurrency 3)"},
		{"same from 0", enrichment,
			Input{Waiting: 95}, 2, 2, "scale up 0→2"},
		{"same from 8: the cap applies at once", enrichment,
			Input{Waiting: 95, CurrentReplicas: 8, History: hist(-15, 8)}, 2, 2, "scale down 8→2"},
		{"median unknown: ceil(10/3) = 4", with(enrichment, func(p *Policy) { p.MedianJobDuration = 0 }),
			Input{Waiting: 95, CurrentReplicas: 2}, 4, 4, "capped at 4 by the rate limit"},
		{"median 18 s: exactly 1", with(enrichment, func(p *Policy) { p.MedianJobDuration = 18 * time.Second }),
			Input{Waiting: 95, CurrentReplicas: 1}, 1, 1, "keep 1"},
		{"1 per hour: at least 1 while jobs wait",
			with(enrichment, func(p *Policy) { p.RateMax, p.RateWindow, p.MedianJobDuration = 1, time.Hour, time.Second }),
			Input{Waiting: 95}, 1, 1, "scale up 0→1"},
		{"minReplicas above the cap wins", with(enrichment, func(p *Policy) { p.MinReplicas = 3 }),
			Input{Waiting: 95, CurrentReplicas: 3}, 3, 3, "keep 3"},
		{"no rate limit without RateMax", with(enrichment, func(p *Policy) { p.RateMax = 0 }),
			Input{Waiting: 95, CurrentReplicas: 6}, 10, 10, "scale up 6→10"},
		{"a huge limit does not overflow",
			with(enrichment, func(p *Policy) { p.RateMax, p.RateWindow, p.MedianJobDuration = 1000000, time.Nanosecond, time.Hour }),
			Input{Waiting: 95, CurrentReplicas: 6}, 10, 10, "scale up 6→10"},

		// Defaults of a zero Policy: target 10, max 10, tolerance 10%, window 300 s.
		{"zero policy: 95 jobs from 6", Policy{},
			Input{Waiting: 95, CurrentReplicas: 6}, 10, 10, "95 jobs / 10 per replica = 10"},
		{"zero policy: max 10", Policy{},
			Input{Waiting: 500, CurrentReplicas: 6}, 10, 10, "capped at maxReplicas 10"},
		{"zero policy: tolerance 10%", Policy{},
			Input{Waiting: 54, CurrentReplicas: 5}, 5, 5, "within 10%"},
		{"zero policy: window 300 s", Policy{},
			Input{Waiting: 10, CurrentReplicas: 5, History: hist(-299, 5)}, 5, 1, "highest in 5m0s is 5"},
		{"zero policy: cooldown 300 s", Policy{},
			Input{CurrentReplicas: 1, LastActive: at(-299)}, 1, 1, "keep 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.in.Now.IsZero() {
				tt.in.Now = t0
			}
			before := slices.Clone(tt.in.History)
			got := Decide(tt.p, tt.in)
			if got.DesiredReplicas != tt.want {
				t.Errorf("DesiredReplicas = %d, want %d (%s)", got.DesiredReplicas, tt.want, got.Reason)
			}
			if tt.wantRec >= 0 && got.Recommendation != tt.wantRec {
				t.Errorf("Recommendation = %d, want %d (%s)", got.Recommendation, tt.wantRec, got.Reason)
			}
			if !strings.Contains(got.Reason, tt.wantReason) {
				t.Errorf("Reason = %q, want it to contain %q", got.Reason, tt.wantReason)
			}
			if diff := cmp.Diff(before, tt.in.History); diff != "" {
				t.Errorf("Decide changed the input History (-before +after):\n%s", diff)
			}
			checkDecision(t, tt.p, tt.in, got)
		})
	}
}

// checkDecision checks what holds for every decision.
func checkDecision(t *testing.T, p Policy, in Input, d Decision) {
	t.Helper()
	p = p.WithDefaults()
	current := max(in.CurrentReplicas, 0)
	depth := max(in.Waiting, 0) + max(in.Active, 0)
	if d.DesiredReplicas < 0 || d.DesiredReplicas > p.MaxReplicas {
		t.Errorf("DesiredReplicas %d outside [0, %d]", d.DesiredReplicas, p.MaxReplicas)
	}
	if d.DesiredReplicas < p.MinReplicas && d.DesiredReplicas <= current { // only a bounded scale-up may stop short
		t.Errorf("DesiredReplicas %d below minReplicas %d", d.DesiredReplicas, p.MinReplicas)
	}
	if c := current; d.DesiredReplicas > c && d.DesiredReplicas > max(2*c, c+4) {
		t.Errorf("scale up %d→%d beyond max(+100%%, +4)", c, d.DesiredReplicas)
	}
	if rc, ok := p.RateCap(); ok && d.DesiredReplicas > max(rc, p.MinReplicas) {
		t.Errorf("DesiredReplicas %d above the rate cap %d", d.DesiredReplicas, rc)
	}
	if depth > 0 && d.DesiredReplicas == 0 {
		t.Errorf("DesiredReplicas 0 with %d jobs", depth)
	}
	if depth == 0 && d.DesiredReplicas == 0 && current > 0 && p.MinReplicas == 0 &&
		!in.LastActive.IsZero() && in.Now.Sub(in.LastActive) < p.IdleCooldown {
		t.Errorf("scaled to zero %s after the last job, before the cooldown %s", in.Now.Sub(in.LastActive), p.IdleCooldown)
	}
	wantActive := in.LastActive
	if depth > 0 {
		wantActive = in.Now
	}
	if !d.LastActive.Equal(wantActive) {
		t.Errorf("LastActive = %v, want %v", d.LastActive, wantActive)
	}
	if d.Reason == "" {
		t.Error("no Reason")
	}
	h := d.History
	if len(h) == 0 || len(h) > MaxHistory {
		t.Fatalf("len(History) = %d, want 1..%d", len(h), MaxHistory)
	}
	if last := h[len(h)-1]; !last.Time.Equal(in.Now) || last.Replicas != d.Recommendation {
		t.Errorf("last History entry = %+v, want this reading {%v %d}", last, in.Now, d.Recommendation)
	}
	longest := max(p.ScaleUpStabilization, p.ScaleDownStabilization)
	for i, r := range h {
		if r.Time.After(in.Now) || (i < len(h)-1 && !r.Time.After(in.Now.Add(-longest))) {
			t.Errorf("History[%d] at %v outside the window (%v, %v]", i, r.Time, in.Now.Add(-longest), in.Now)
		}
		if i > 0 && r.Time.Before(h[i-1].Time) {
			t.Errorf("History not sorted at %d", i)
		}
	}
}

func TestWithDefaults(t *testing.T) {
	tests := []struct {
		name string
		p    Policy
		want Policy
	}{
		{"zero", Policy{}, Policy{
			MaxReplicas: DefaultMaxReplicas, TargetJobsPerReplica: DefaultTargetJobsPerReplica,
			Tolerance: DefaultTolerance, ScaleUpStabilization: DefaultScaleUpStabilization,
			ScaleDownStabilization: DefaultScaleDownStabilization, IdleCooldown: DefaultIdleCooldown,
			Concurrency: 1,
		}},
		{"negative means none", Policy{
			MinReplicas: -1, MaxReplicas: -1, TargetJobsPerReplica: -1, Tolerance: -1,
			ScaleUpStabilization: -time.Second, ScaleDownStabilization: -time.Second, IdleCooldown: -time.Second,
			RateMax: -5, RateWindow: time.Minute, Concurrency: -2, MedianJobDuration: -time.Second,
		}, Policy{MaxReplicas: 10, TargetJobsPerReplica: 10, Concurrency: 1}},
		{"NaN tolerance", Policy{Tolerance: math.NaN()}, Policy{
			MaxReplicas: 10, TargetJobsPerReplica: 10, Tolerance: 0.1,
			ScaleDownStabilization: 300 * time.Second, IdleCooldown: 300 * time.Second, Concurrency: 1,
		}},
		{"minReplicas above the default max raises max", Policy{MinReplicas: 20}, Policy{
			MinReplicas: 20, MaxReplicas: 20, TargetJobsPerReplica: 10, Tolerance: 0.1,
			ScaleDownStabilization: 300 * time.Second, IdleCooldown: 300 * time.Second, Concurrency: 1,
		}},
		{"rate window without max is no limit", Policy{RateWindow: time.Minute}, Policy{
			MaxReplicas: 10, TargetJobsPerReplica: 10, Tolerance: 0.1,
			ScaleDownStabilization: 300 * time.Second, IdleCooldown: 300 * time.Second, Concurrency: 1,
		}},
		{"set values stay", Policy{
			MinReplicas: 2, MaxReplicas: 50, TargetJobsPerReplica: 7, Tolerance: 0.2,
			ScaleUpStabilization: time.Minute, ScaleDownStabilization: 2 * time.Minute, IdleCooldown: 3 * time.Minute,
			RateMax: 10, RateWindow: time.Minute, Concurrency: 3, MedianJobDuration: 20 * time.Second,
		}, Policy{
			MinReplicas: 2, MaxReplicas: 50, TargetJobsPerReplica: 7, Tolerance: 0.2,
			ScaleUpStabilization: time.Minute, ScaleDownStabilization: 2 * time.Minute, IdleCooldown: 3 * time.Minute,
			RateMax: 10, RateWindow: time.Minute, Concurrency: 3, MedianJobDuration: 20 * time.Second,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, tt.p.WithDefaults()); diff != "" {
				t.Errorf("WithDefaults() (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRateCap(t *testing.T) {
	tests := []struct {
		max             int32
		window          time.Duration
		concurrency     int32
		median          time.Duration
		want            int32
		wantRateLimited bool
	}{
		{10, time.Minute, 3, 20 * time.Second, 2, true}, // ceil(10/60 × 20 / 3) = ceil(1.11)
		{10, time.Minute, 3, 18 * time.Second, 1, true}, // exactly 1, not 2
		{10, time.Minute, 3, 0, 4, true},                // median unknown: ceil(10/3)
		{10, time.Minute, 0, 20 * time.Second, 4, true}, // concurrency 0 counts as 1: ceil(3.33)
		{100, time.Second, 2, 500 * time.Millisecond, 25, true},
		{1, time.Hour, 3, time.Second, 1, true}, // at least 1
		{1000000, time.Nanosecond, 1, time.Hour, math.MaxInt32, true},
		{0, time.Minute, 3, 20 * time.Second, 0, false},
		{10, 0, 3, 20 * time.Second, 0, false},
	}
	for _, tt := range tests {
		p := Policy{RateMax: tt.max, RateWindow: tt.window, Concurrency: tt.concurrency, MedianJobDuration: tt.median}
		got, limited := p.RateCap()
		if got != tt.want || limited != tt.wantRateLimited {
			t.Errorf("RateCap(%d per %s, concurrency %d, median %s) = %d, %t; want %d, %t",
				tt.max, tt.window, tt.concurrency, tt.median, got, limited, tt.want, tt.wantRateLimited)
		}
	}
}

func TestHistory(t *testing.T) {
	tests := []struct {
		name string
		p    Policy
		in   Input
		want []Recommendation
	}{
		{"pruned to the window, sorted, future entries dropped, reading appended", base,
			Input{Waiting: 30, CurrentReplicas: 7, History: hist(-400, 9, -100, 5, -300, 8, 10, 9, -299, 7, -200, 6)},
			hist(-299, 7, -200, 6, -100, 5, 0, 3)},
		{"the longest window is the scale-up one", with(base, func(p *Policy) { p.ScaleUpStabilization = 10 * time.Minute }),
			Input{Waiting: 30, CurrentReplicas: 3, History: hist(-601, 1, -500, 2)},
			hist(-500, 2, 0, 3)},
		{"no windows: only this reading",
			with(base, func(p *Policy) { p.ScaleDownStabilization = -1 }),
			Input{Waiting: 30, CurrentReplicas: 3, History: hist(-15, 3)},
			hist(0, 3)},
		{"empty: current recorded first", base,
			Input{CurrentReplicas: 4, History: hist(-900, 8)},
			hist(0, 4, 0, 1)},
		{"empty: no seed when it equals the reading", base,
			Input{Waiting: 40, CurrentReplicas: 4},
			hist(0, 4)},
		{"scale to zero appends 0", toZero,
			Input{CurrentReplicas: 1, LastActive: at(-600), History: hist(-15, 1)},
			hist(-15, 1, 0, 0)},
		{"negative replicas read as 0", base,
			Input{Waiting: 30, CurrentReplicas: 3, History: hist(-15, -2)},
			hist(-15, 0, 0, 3)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.in.Now = t0
			got := Decide(tt.p, tt.in)
			if diff := cmp.Diff(tt.want, got.History); diff != "" {
				t.Errorf("History (-want +got):\n%s", diff)
			}
			checkDecision(t, tt.p, tt.in, got)
		})
	}
}

func TestHistoryCap(t *testing.T) {
	t.Run("at most 128, the oldest go first", func(t *testing.T) {
		// 200 readings a second apart, strictly falling: each one still matters for the
		// scale-down window, so only the cap can drop them.
		var in []Recommendation
		for i := range 200 {
			in = append(in, Recommendation{Time: at(-200 + i), Replicas: int32(1000 - i)})
		}
		p := with(base, func(p *Policy) { p.MaxReplicas = 1000 })
		d := Decide(p, Input{Now: t0, Waiting: 30, CurrentReplicas: 900, History: in})
		want := append(slices.Clone(in[73:]), Recommendation{Time: t0, Replicas: 3})
		if diff := cmp.Diff(want, d.History); diff != "" {
			t.Errorf("History (-want +got):\n%s", diff)
		}
		if d.DesiredReplicas != 900 { // highest left in the window is 927, above current
			t.Errorf("DesiredReplicas = %d, want 900", d.DesiredReplicas)
		}
	})
	t.Run("over the cap, entries that no longer matter go first", func(t *testing.T) {
		// 299 readings a second apart: all 10 but one 20. Dropping the oldest would lose the
		// 20, which holds the scale-down; the 10s but the newest are what can go.
		var in []Recommendation
		for i := range 299 {
			r := int32(10)
			if i == 50 {
				r = 20
			}
			in = append(in, Recommendation{Time: at(-299 + i), Replicas: r})
		}
		p := with(base, func(p *Policy) { p.MaxReplicas = 30 })
		d := Decide(p, Input{Now: t0, Waiting: 5, CurrentReplicas: 20, History: in})
		if diff := cmp.Diff(hist(-249, 20, -1, 10, 0, 1), d.History); diff != "" {
			t.Errorf("History (-want +got):\n%s", diff)
		}
		if d.DesiredReplicas != 20 {
			t.Errorf("DesiredReplicas = %d, want 20 (%s)", d.DesiredReplicas, d.Reason)
		}
	})
	t.Run("over the cap with a scale-up window, lows are kept too", func(t *testing.T) {
		var in []Recommendation
		for i := range 200 {
			r := int32(5)
			switch i {
			case 20:
				r = 9
			case 150:
				r = 2
			}
			in = append(in, Recommendation{Time: at(-200 + i), Replicas: r})
		}
		p := with(base, func(p *Policy) { p.ScaleUpStabilization = time.Minute })
		d := Decide(p, Input{Now: t0, Waiting: 40, CurrentReplicas: 5, History: in})
		// -180: 9, the highest; -50: 2, the lowest of the scale-up window; -1: 5, the newest 5.
		if diff := cmp.Diff(hist(-180, 9, -50, 2, -1, 5, 0, 4), d.History); diff != "" {
			t.Errorf("History (-want +got):\n%s", diff)
		}
		if d.DesiredReplicas != 5 {
			t.Errorf("DesiredReplicas = %d, want 5 (%s)", d.DesiredReplicas, d.Reason)
		}
	})
}

// run simulates the controller: a reading every `every` seconds from `from` to `to` (seconds
// from t0, inclusive), the Deployment following each decision at once. It returns the desired
// replicas by second and the decisions.
func run(t *testing.T, p Policy, offset time.Duration, current int32, from, to, every int, depth func(sec int) (waiting, active int64)) (map[int]int32, map[int]Decision) {
	t.Helper()
	got := map[int]int32{}
	decisions := map[int]Decision{}
	var prev Decision
	for s := from; s <= to; s += every {
		w, a := depth(s)
		in := Input{Now: at(s).Add(offset), Waiting: w, Active: a, CurrentReplicas: current, History: prev.History, LastActive: prev.LastActive}
		d := Decide(p, in)
		checkDecision(t, p, in, d)
		got[s], decisions[s] = d.DesiredReplicas, d
		current, prev = d.DesiredReplicas, d
	}
	return got, decisions
}

// span is the replicas wanted from second `from` to `to`, inclusive.
type span struct {
	from, to int
	want     int32
}

func checkSpans(t *testing.T, got map[int]int32, every int, spans []span) {
	t.Helper()
	for _, sp := range spans {
		for s := sp.from; s <= sp.to; s += every {
			if g, ok := got[s]; !ok || g != sp.want {
				t.Errorf("t=%ds: %d replicas, want %d", s, g, sp.want)
			}
		}
	}
}

func TestSequences(t *testing.T) {
	const tenMinutes = 600
	tests := []struct {
		name     string
		p        Policy
		current  int32
		from, to int
		every    int
		depth    func(sec int) (int64, int64)
		want     []span
	}{
		{
			name: "burst of 95 from 2 replicas, drained at 2 min: 6, 10, held 300 s after the last 10, then 1",
			p:    base, current: 2, from: 0, to: tenMinutes, every: 15,
			depth: func(s int) (int64, int64) {
				if s < 120 {
					return 95, 0
				}
				return 0, 0
			},
			want: []span{{0, 0, 6}, {15, 390, 10}, {405, 600, 1}},
		},
		{
			name: "scale to zero: up from 0, held by the window, 1 until the cooldown, 0, then back to 1 on a job",
			p:    with(toZero, func(p *Policy) { p.IdleCooldown = 450 * time.Second }), from: 0, to: tenMinutes, every: 15,
			depth: func(s int) (int64, int64) {
				switch {
				case s < 60:
					return 95, 0 // last active at 45
				case s >= 540:
					return 1, 0
				}
				return 0, 0
			},
			// 45 + 300 = 345: the window lets go of the 10s; 45 + 450 = 495: the cooldown is over.
			want: []span{{0, 0, 4}, {15, 15, 8}, {30, 330, 10}, {345, 480, 1}, {495, 525, 0}, {540, 600, 1}},
		},
		{
			name: "depth flapping inside the tolerance band: no change",
			p:    with(base, func(p *Policy) { p.MaxReplicas = 20 }), current: 10, from: 0, to: tenMinutes, every: 15,
			depth: func(s int) (int64, int64) {
				return []int64{95, 105, 100, 91, 109, 90, 110}[(s/15)%7], 0
			},
			want: []span{{0, 600, 10}},
		},
		{
			name: "depth flapping outside the band: up at once, down held by the window",
			p:    with(base, func(p *Policy) { p.MaxReplicas = 20 }), current: 10, from: 0, to: tenMinutes, every: 15,
			depth: func(s int) (int64, int64) {
				if s < 300 {
					return []int64{100, 50}[(s/15)%2], 0
				}
				return []int64{150, 100}[(s/15)%2], 0
			},
			want: []span{{0, 285, 10}, {300, 600, 15}},
		},
		{
			name: "rate-limited queue draining at its limit: 2 replicas throughout",
			p:    enrichment, from: 0, to: tenMinutes, every: 15,
			depth: func(s int) (int64, int64) {
				left := max(95-10*int64(s/60), 0)
				return max(left-2, 0), min(left, 2)
			},
			want: []span{{0, 600, 2}},
		},
		{
			name:    "scale-up window 60 s: a jump waits for the window, then bounded steps",
			p:       with(base, func(p *Policy) { p.MaxReplicas = 20; p.ScaleUpStabilization = time.Minute }),
			current: 1, from: -120, to: tenMinutes - 120, every: 15,
			depth: func(s int) (int64, int64) {
				if s < 0 {
					return 10, 0
				}
				return 200, 0
			},
			want: []span{{-120, 30, 1}, {45, 45, 5}, {60, 60, 10}, {75, 480, 20}},
		},
		{
			name: "a reading every second for 10 minutes: the 128 cap keeps the 300 s window",
			p:    base, current: 2, from: 0, to: tenMinutes, every: 1,
			depth: func(s int) (int64, int64) {
				if s < 60 {
					return 95, 0 // the last 10 is recommended at 59
				}
				return 0, 0
			},
			want: []span{{0, 0, 6}, {1, 358, 10}, {359, 600, 1}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, _ := run(t, tt.p, 0, tt.current, tt.from, tt.to, tt.every, tt.depth)
			checkSpans(t, got, tt.every, tt.want)
			if t.Failed() {
				var b strings.Builder
				for s := tt.from; s <= tt.to; s += tt.every {
					fmt.Fprintf(&b, " %d:%d", s, got[s])
				}
				t.Logf("trajectory:%s", b.String())
			}
		})
	}
}

// TestNewLeader: a leader that starts from the status (History and LastActive, stored as
// metav1.Time, so to the second and without a monotonic clock) decides as the old one would.
func TestNewLeader(t *testing.T) {
	p := with(toZero, func(p *Policy) { p.IdleCooldown = 450 * time.Second })
	depth := func(s int) (int64, int64) {
		if s < 120 {
			return 95, 10
		}
		return 0, 0
	}
	const every = 15
	// Readings at x.5 s, so storing to the second really changes the times.
	start := 500 * time.Millisecond
	got, decisions := run(t, p, start, 2, 0, 900, every, depth)
	// Last active at 105: the window lets go at 405, the cooldown at 555.
	checkSpans(t, got, every, []span{{0, 0, 6}, {15, 390, 10}, {405, 540, 1}, {555, 900, 0}})

	stored := func(tm time.Time) time.Time { return tm.Truncate(time.Second).UTC().Round(0) }
	for s := every; s <= 900; s += every {
		prev := decisions[s-every]
		var h []Recommendation
		for _, r := range prev.History {
			h = append(h, Recommendation{Time: stored(r.Time), Replicas: r.Replicas})
		}
		la := time.Time{}
		if !prev.LastActive.IsZero() {
			la = stored(prev.LastActive)
		}
		w, a := depth(s)
		in := Input{Now: at(s).Add(start), Waiting: w, Active: a, CurrentReplicas: prev.DesiredReplicas, History: h, LastActive: la}
		d := Decide(p, in)
		checkDecision(t, p, in, d)
		if d.DesiredReplicas != got[s] {
			t.Errorf("t=%ds: new leader decides %d (%s), the old one %d", s, d.DesiredReplicas, d.Reason, got[s])
		}
	}

	// Without the History (status lost) the new leader starts its window over: at 405 s, where
	// the old leader scales down, it keeps 10.
	prev := decisions[390]
	d := Decide(p, Input{Now: at(405).Add(start), CurrentReplicas: prev.DesiredReplicas, LastActive: prev.LastActive})
	if d.DesiredReplicas != 10 {
		t.Errorf("without History: %d replicas at 405 s, want 10 (a new window)", d.DesiredReplicas)
	}
}
