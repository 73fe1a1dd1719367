package main

import (
	"testing"
	"time"
)

// row is a rate's result with n jobs, all completed, every enqueue taking enqueue and every
// start start.
func row(rate float64, enqueue, start time.Duration) rateRow {
	const n = 10
	s := summary{jobs: n, accepted: n, completed: n}
	for range n {
		s.enqueue = append(s.enqueue, enqueue)
		s.toStart = append(s.toStart, start)
	}
	return rateRow{system: systemOurs, rate: rate, s: s}
}

func TestWithinGoals(t *testing.T) {
	incomplete := row(10, time.Millisecond, time.Millisecond)
	incomplete.s.completed--
	for _, tc := range []struct {
		name string
		row  rateRow
		want bool
		why  string
	}{
		{"fast", row(10, 5*time.Millisecond, 100*time.Millisecond), true, ""},
		{"slow enqueue", row(10, 20*time.Millisecond, 100*time.Millisecond), false, "enqueue p99 20 ms"},
		{"late start", row(10, 5*time.Millisecond, time.Second), false, "start p99 1000 ms"},
		{"a job not completed", incomplete, false, "9 of 10 completed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ok, why := withinGoals(tc.row)
			if ok != tc.want || why != tc.why {
				t.Errorf("withinGoals = %v, %q; want %v, %q", ok, why, tc.want, tc.why)
			}
		})
	}
}

func TestNextSearchRate(t *testing.T) {
	in := func(rate float64) rateRow { return row(rate, time.Millisecond, time.Millisecond) }
	out := func(rate float64) rateRow { return row(rate, time.Second, time.Millisecond) }
	for _, tc := range []struct {
		name string
		rows []rateRow
		want float64
		more bool
	}{
		{"nothing run", nil, 0, false},
		{"every rate within: double the highest", []rateRow{in(10), in(25)}, 50, true},
		{"none within: halve the lowest", []rateRow{out(10), out(25)}, 5, true},
		{"none within down to the slowest: stop", []rateRow{out(3)}, 0, false},
		{"bisect", []rateRow{in(10), in(25), out(50)}, 37.5, true},
		{"a failure below the highest success is noise", []rateRow{out(10), in(25), out(50), out(100)}, 37.5, true},
		{"bounds within 10%: stop", []rateRow{in(40), out(43)}, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, more := nextSearchRate(tc.rows, 2)
			if got != tc.want || more != tc.more {
				t.Errorf("nextSearchRate = %g, %v; want %g, %v", got, more, tc.want, tc.more)
			}
		})
	}
}
