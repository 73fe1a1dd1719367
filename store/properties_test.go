package store_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	. "github.com/onsi/gomega"

	"github.com/jengu/queue-operator/store"
)

func TestUpsertPropertyTwiceLeavesOneRow(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, conn := newStore(t)
	in := store.Property{ID: "p1", UserID: "u1", Location: &store.Location{Latitude: 47.3769, Longitude: 8.5417},
		CountryCode: "CH"}
	want := store.Property{ID: "p1", UserID: "u1", Location: &store.Location{Latitude: 47.3769, Longitude: 8.5417},
		CountryCode: "CH", EnrichmentStatus: store.EnrichmentPending, CreatedAt: testNow, UpdatedAt: testNow}

	for run := range 2 {
		got, err := s.UpsertProperty(ctx, in)
		if err != nil {
			t.Fatalf("run %d: UpsertProperty: %v", run, err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("run %d: UpsertProperty returned (-want +got):\n%s", run, diff)
		}
	}
	if n := count(t, conn, "properties"); n != 1 {
		t.Errorf("%d properties, want 1", n)
	}
	got, err := s.GetProperty(ctx, "p1")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("GetProperty (-want +got):\n%s", diff)
	}
}

func TestUpsertPropertyKeepsWhatTheWriterDoesNotKnow(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _ := newStore(t)
	zurich := &store.Location{Latitude: 47.3769, Longitude: 8.5417}
	geneva := &store.Location{Latitude: 46.2044, Longitude: 6.1432}

	tests := []struct {
		name string
		in   store.Property
		want store.Property
	}{
		{
			name: "created without location",
			in:   store.Property{ID: "p1", UserID: "u1"},
			want: store.Property{ID: "p1", UserID: "u1"},
		},
		{
			name: "location and country added",
			in:   store.Property{ID: "p1", UserID: "u1", Location: zurich, CountryCode: "CH"},
			want: store.Property{ID: "p1", UserID: "u1", Location: zurich, CountryCode: "CH"},
		},
		{
			name: "a writer that knows neither keeps both",
			in:   store.Property{ID: "p1", UserID: "u1"},
			want: store.Property{ID: "p1", UserID: "u1", Location: zurich, CountryCode: "CH"},
		},
		{
			name: "location moved",
			in:   store.Property{ID: "p1", UserID: "u1", Location: geneva},
			want: store.Property{ID: "p1", UserID: "u1", Location: geneva, CountryCode: "CH"},
		},
	}
	for _, tt := range tests {
		// Steps of one story, in order: not parallel.
		t.Run(tt.name, func(t *testing.T) {
			if _, err := s.UpsertProperty(ctx, tt.in); err != nil {
				t.Fatal(err)
			}
			got, err := s.GetProperty(ctx, "p1")
			if err != nil {
				t.Fatal(err)
			}
			tt.want.EnrichmentStatus, tt.want.CreatedAt, tt.want.UpdatedAt = store.EnrichmentPending, testNow, testNow
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("GetProperty (-want +got):\n%s", diff)
			}
		})
	}
}

func TestUpsertPropertyOfAnotherUserConflicts(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	ctx := context.Background()
	s, _ := newStore(t)
	before := mustProperty(t, s, "p1", "u1")

	_, err := s.UpsertProperty(ctx, store.Property{ID: "p1", UserID: "intruder",
		Location: &store.Location{Latitude: 1, Longitude: 1}})
	g.Expect(err).To(MatchError(store.ErrConflict))
	g.Expect(err.Error()).To(ContainSubstring("upsert property p1"))

	after, err := s.GetProperty(ctx, "p1")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(cmp.Diff(before, after)).To(BeEmpty(), "the refused write changed the row")
}

func TestGetPropertyNotFound(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	_, err := s.GetProperty(context.Background(), "nope")
	if !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("GetProperty = %v, want ErrNotFound", err)
	}
}

func TestSetEnrichmentStatus(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _ := newStore(t)
	mustProperty(t, s, "p1", "u1")

	// Steps of one property's enrichments, in order; EnrichedAt is the last completion.
	tests := []struct {
		status         store.EnrichmentStatus
		wantEnrichedAt time.Time
	}{
		{status: store.EnrichmentRunning, wantEnrichedAt: time.Time{}},
		{status: store.EnrichmentCompleted, wantEnrichedAt: testNow},
		{status: store.EnrichmentCompleted, wantEnrichedAt: testNow}, // a re-run changes nothing
		{status: store.EnrichmentRunning, wantEnrichedAt: testNow},
		{status: store.EnrichmentFailed, wantEnrichedAt: testNow},
	}
	for i, tt := range tests {
		if err := s.SetEnrichmentStatus(ctx, "p1", tt.status); err != nil {
			t.Fatalf("step %d: SetEnrichmentStatus(%s): %v", i, tt.status, err)
		}
		got, err := s.GetProperty(ctx, "p1")
		if err != nil {
			t.Fatal(err)
		}
		if got.EnrichmentStatus != tt.status || !got.EnrichedAt.Equal(tt.wantEnrichedAt) {
			t.Errorf("step %d: status %s, enrichedAt %v; want %s, %v", i, got.EnrichmentStatus, got.EnrichedAt,
				tt.status, tt.wantEnrichedAt)
		}
	}

	err := s.SetEnrichmentStatus(ctx, "nope", store.EnrichmentRunning)
	if !errors.Is(err, store.ErrNotFound) {
		t.Errorf("SetEnrichmentStatus of an unknown property = %v, want ErrNotFound", err)
	}
}
