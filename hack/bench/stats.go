package main

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
)

// result is one run of one scenario on one system.
type result struct {
	Jobs       int     `json:"jobs"`
	Seconds    float64 `json:"seconds"`
	P50Ms      float64 `json:"p50_ms"`
	P99Ms      float64 `json:"p99_ms"`
	RedisUs    float64 `json:"redis_cpu_us"`  // Redis CPU over the measured section
	ClientUs   float64 `json:"client_cpu_us"` // the benchmarking process' CPU over it
	HasLatency bool    `json:"has_latency"`
}

func (r result) rate() float64 {
	if r.Seconds <= 0 {
		return 0
	}
	return float64(r.Jobs) / r.Seconds
}

// percentile is the nearest-rank percentile of sorted durations, in milliseconds.
func percentile(sorted []time.Duration, p float64) float64 {
	if len(sorted) == 0 {
		return math.NaN()
	}
	i := int(math.Ceil(p/100*float64(len(sorted)))) - 1
	i = max(0, min(i, len(sorted)-1))
	return float64(sorted[i]) / float64(time.Millisecond)
}

func latencyResult(r *result, lat []time.Duration) {
	slices.Sort(lat)
	r.P50Ms, r.P99Ms, r.HasLatency = percentile(lat, 50), percentile(lat, 99), true
}

type summary struct{ med, lo, hi float64 }

func summarize(v []float64) (summary, bool) {
	if len(v) == 0 {
		return summary{}, false
	}
	s := slices.Clone(v)
	slices.Sort(s)
	med := s[len(s)/2]
	if len(s)%2 == 0 {
		med = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return summary{med: med, lo: s[0], hi: s[len(s)-1]}, true
}

// thousands formats n with comma separators.
func thousands(n float64) string {
	s := fmt.Sprintf("%.0f", n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

func formatValue(v float64, unit string) string {
	switch unit {
	case "jobs/s", "rt/s":
		return thousands(v)
	case "ms":
		if v < 10 {
			return fmt.Sprintf("%.2f", v)
		}
		return fmt.Sprintf("%.0f", v)
	case "µs/job":
		return fmt.Sprintf("%.1f", v)
	}
	return fmt.Sprintf("%g", v)
}

func formatCell(v []float64, unit string) string {
	s, ok := summarize(v)
	if !ok {
		return "—"
	}
	if len(v) == 1 {
		return formatValue(s.med, unit)
	}
	return fmt.Sprintf("%s (%s–%s)", formatValue(s.med, unit), formatValue(s.lo, unit), formatValue(s.hi, unit))
}

// row is one line of the table.
type row struct {
	label  string
	unit   string
	higher bool // higher is better
	goal   string
	goalOK func(ours float64) bool
	vals   map[string][]float64 // system -> one value per run
	// oursFrom, when set, is the row whose "ours" values the ratios use (ours has no such mode).
	oursFrom *row
	note     string
}

func ratioCell(ours, other []float64, higher bool) string {
	o, ok1 := summarize(ours)
	t, ok2 := summarize(other)
	if !ok1 || !ok2 || t.med == 0 {
		return "—"
	}
	r := o.med / t.med
	win := r > 1
	if !higher {
		win = r < 1
	}
	mark := "✗"
	if win {
		mark = "✓"
	}
	if r < 0.1 {
		return fmt.Sprintf("%.2g %s", r, mark)
	}
	return fmt.Sprintf("%.2f %s", r, mark)
}

func printTable(rows []*row, systems []string) string {
	header := []string{"scenario", "unit"}
	names := map[string]string{"ours": "ours", "asynq": "asynq", "bullmq": "BullMQ"}
	for _, s := range systems {
		header = append(header, names[s])
	}
	hasAsynq, hasBull := slices.Contains(systems, "asynq"), slices.Contains(systems, "bullmq")
	if slices.Contains(systems, "ours") {
		if hasAsynq {
			header = append(header, "ours/asynq")
		}
		if hasBull {
			header = append(header, "ours/BullMQ")
		}
	}
	header = append(header, "goal (ours)")
	table := [][]string{header}
	for _, r := range rows {
		line := []string{r.label, r.unit}
		for _, s := range systems {
			cell := formatCell(r.vals[s], r.unit)
			if s == "ours" && r.oursFrom != nil {
				cell = "n/a (no bulk API)"
			}
			line = append(line, cell)
		}
		ours := r.vals["ours"]
		if r.oursFrom != nil {
			ours = r.oursFrom.vals["ours"]
		}
		if slices.Contains(systems, "ours") {
			if hasAsynq {
				line = append(line, ratioCell(ours, r.vals["asynq"], r.higher))
			}
			if hasBull {
				c := ratioCell(ours, r.vals["bullmq"], r.higher)
				if r.oursFrom != nil && c != "—" {
					c += " *"
				}
				line = append(line, c)
			}
		}
		g := ""
		if r.goal != "" {
			g = r.goal
			if s, ok := summarize(r.vals["ours"]); ok && r.goalOK != nil {
				if r.goalOK(s.med) {
					g += " met"
				} else {
					g += " NOT met"
				}
			}
		}
		line = append(line, g)
		table = append(table, line)
	}
	widths := make([]int, len(header))
	for _, l := range table {
		for i, c := range l {
			widths[i] = max(widths[i], len([]rune(c)))
		}
	}
	var b strings.Builder
	for li, l := range table {
		for i, c := range l {
			pad := widths[i] - len([]rune(c))
			if i > 1 { // numbers right-aligned
				b.WriteString(strings.Repeat(" ", pad) + c)
			} else {
				b.WriteString(c + strings.Repeat(" ", pad))
			}
			if i < len(l)-1 {
				b.WriteString(" | ")
			}
		}
		b.WriteString("\n")
		if li == 0 {
			for i, w := range widths {
				b.WriteString(strings.Repeat("-", w))
				if i < len(widths)-1 {
					b.WriteString("-+-")
				}
			}
			b.WriteString("\n")
		}
	}
	return b.String()
}
