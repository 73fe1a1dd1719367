package controllers

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	jobsv1alpha1 "github.com/jengu/queue-operator/api/v1alpha1"
)

func TestLastMissedRun(t *testing.T) {
	at := func(s string) time.Time {
		t, err := time.Parse(time.RFC3339, s)
		if err != nil {
			panic(err)
		}
		return t
	}
	tests := []struct {
		name        string
		schedule    string
		zone        string
		after, now  string
		wantRun     string // "" for none
		wantMissed  int
		wantNextRun string
	}{
		{"none due yet", "* * * * *", "", "2027-01-01T00:00:00Z", "2027-01-01T00:00:59Z", "", 0, "2027-01-01T00:01:00Z"},
		{"one due, on the second", "* * * * *", "", "2027-01-01T00:00:00Z", "2027-01-01T00:01:00Z", "2027-01-01T00:01:00Z", 1, "2027-01-01T00:02:00Z"},
		{"three missed: the latest starts", "* * * * *", "", "2027-01-01T00:00:00Z", "2027-01-01T00:03:30Z", "2027-01-01T00:03:00Z", 3, "2027-01-01T00:04:00Z"},
		{"09:00 Madrid in winter is 08:00 UTC", "0 9 * * *", "Europe/Madrid", "2027-03-26T12:00:00Z", "2027-03-27T12:00:00Z", "2027-03-27T08:00:00Z", 1, "2027-03-28T07:00:00Z"},
		{"09:00 Madrid in summer is 07:00 UTC", "0 9 * * *", "Europe/Madrid", "2027-03-27T12:00:00Z", "2027-03-28T12:00:00Z", "2027-03-28T07:00:00Z", 1, "2027-03-29T07:00:00Z"},
		{"back to winter in October", "0 9 * * *", "Europe/Madrid", "2027-10-30T12:00:00Z", "2027-10-31T12:00:00Z", "2027-10-31T08:00:00Z", 1, "2027-11-01T08:00:00Z"},
		{"a time the spring change skips does not run that day", "30 2 * * *", "Europe/Madrid", "2027-03-27T12:00:00Z", "2027-03-28T23:00:00Z", "", 0, "2027-03-29T00:30:00Z"},
		{"@daily in New York", "@daily", "America/New_York", "2027-01-01T00:00:00Z", "2027-01-01T06:00:00Z", "2027-01-01T05:00:00Z", 1, "2027-01-02T05:00:00Z"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sched, _, err := parseSchedule(&jobsv1alpha1.JobScheduleSpec{Schedule: tt.schedule, TimeZone: tt.zone})
			if err != nil {
				t.Fatal(err)
			}
			run, missed := sched.lastMissed(at(tt.after), at(tt.now))
			got := ""
			if !run.IsZero() {
				got = run.UTC().Format(time.RFC3339)
			}
			if diff := cmp.Diff([]any{tt.wantRun, tt.wantMissed, tt.wantNextRun},
				[]any{got, missed, sched.next(at(tt.now)).UTC().Format(time.RFC3339)}); diff != "" {
				t.Errorf("run, missed, next (-want +got):\n%s", diff)
			}
		})
	}
}

func TestEarliestRunHonoursTheDeadline(t *testing.T) {
	created := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
	now := created.Add(time.Hour)
	last := metav1.NewTime(created.Add(50 * time.Minute))
	tests := []struct {
		name     string
		last     *metav1.Time
		deadline *int64
		want     time.Time
	}{
		{"from the creation", nil, nil, created},
		{"from the last run", &last, nil, last.Time},
		{"no earlier than the deadline allows", nil, ptr.To[int64](60), now.Add(-time.Minute - time.Nanosecond)},
		{"the last run when it is later than the window", &last, ptr.To[int64](3600), last.Time},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &jobsv1alpha1.JobSchedule{ObjectMeta: metav1.ObjectMeta{CreationTimestamp: metav1.NewTime(created)},
				Spec: jobsv1alpha1.JobScheduleSpec{StartingDeadlineSeconds: tt.deadline}, Status: jobsv1alpha1.JobScheduleStatus{LastScheduleTime: tt.last}}
			if got := earliestRun(s, now); !got.Equal(tt.want) {
				t.Errorf("earliestRun = %v, want %v", got, tt.want)
			}
		})
	}
}
