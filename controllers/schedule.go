package controllers

import (
	"fmt"
	"time"
	// A controller image without the system's zone files still knows every IANA zone.
	_ "time/tzdata"

	"github.com/robfig/cron/v3"

	jobsv1alpha1 "github.com/jengu/queue-operator/api/v1alpha1"
)

// tooManyMissed is how many missed runs make a warning Event, as for a CronJob.
const tooManyMissed = 100

// cronSchedule is a JobSchedule's parsed schedule in its time zone.
type cronSchedule struct {
	spec cron.Schedule
	loc  *time.Location
}

// parseSchedule parses spec.schedule with robfig/cron's standard parser (five fields or a
// macro) and loads spec.timeZone (UTC when empty). The error's reason is the condition's.
func parseSchedule(spec *jobsv1alpha1.JobScheduleSpec) (cronSchedule, string, error) {
	loc := time.UTC
	if spec.TimeZone != "" {
		var err error
		if loc, err = time.LoadLocation(spec.TimeZone); err != nil {
			return cronSchedule{}, jobsv1alpha1.ReasonInvalidTimeZone, fmt.Errorf("unknown time zone %q: %w", spec.TimeZone, err)
		}
	}
	s, err := cron.ParseStandard(spec.Schedule)
	if err != nil {
		return cronSchedule{}, jobsv1alpha1.ReasonInvalidSchedule, fmt.Errorf("schedule %q: %w", spec.Schedule, err)
	}
	return cronSchedule{spec: s, loc: loc}, "", nil
}

// next is the first run strictly after t.
func (c cronSchedule) next(t time.Time) time.Time {
	return c.spec.Next(t.In(c.loc))
}

// lastMissed is the latest run in (after, now] and how many runs that interval holds: the run
// to start now, if any, as a CronJob starts only the most recent of the runs it missed.
func (c cronSchedule) lastMissed(after, now time.Time) (last time.Time, missed int) {
	for t := c.next(after); !t.IsZero() && !t.After(now); t = c.next(t) {
		last, missed = t, missed+1
	}
	return last, missed
}

// earliestRun is where a schedule's search for missed runs starts: after its last run (or its
// creation), but no earlier than its starting deadline allows.
func earliestRun(s *jobsv1alpha1.JobSchedule, now time.Time) time.Time {
	earliest := s.CreationTimestamp.Time
	if last := s.Status.LastScheduleTime; last != nil {
		earliest = last.Time
	}
	if d := s.Spec.StartingDeadlineSeconds; d != nil {
		if window := now.Add(-time.Duration(*d) * time.Second); window.After(earliest) {
			// A run at exactly now-deadline is still on time, so search from just before it.
			earliest = window.Add(-time.Nanosecond)
		}
	}
	return earliest
}
