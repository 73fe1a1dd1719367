package store_test

import (
	"context"
	"errors"
	"testing"

	"github.com/jackc/pgx/v5"
	. "github.com/onsi/gomega"

	"github.com/jengu/queue-operator/store"
)

// A NUL byte cannot be stored in a PostgreSQL text column: sending it again cannot help, so the
// write fails as invalid data (the processor then fails the job at once instead of retrying it),
// in the default simple protocol (where the server refuses the statement as a malformed message)
// and with prepared statements alike.
func TestNULByteInTextIsInvalidData(t *testing.T) {
	t.Parallel()
	for _, mode := range []struct {
		name string
		opts []store.Option
	}{
		{"simple protocol", nil},
		{"prepared statements", []store.Option{store.WithQueryExecMode(pgx.QueryExecModeCacheStatement)}},
	} {
		t.Run(mode.name, func(t *testing.T) {
			g := NewWithT(t)
			ctx := context.Background()
			s, _ := newStore(t, mode.opts...)
			mustProperty(t, s, "p1", "u1")
			err := s.UpsertPricingFeatures(ctx, "p1", []store.PricingFeatures{featuresOf(day("2026-01-04"), "New\x00Year")})
			g.Expect(err).To(HaveOccurred())
			g.Expect(errors.Is(err, store.ErrInvalid)).To(BeTrue(), "%v", err)
			g.Expect(err.Error()).To(ContainSubstring("pricing features of p1"))
		})
	}
}

// The history keeps a failed job's error message even when the message (ours, though it may quote
// an outside API) holds a NUL byte: the byte is written escaped.
func TestJobResultErrorWithANULByteIsRecorded(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	ctx := context.Background()
	s, _ := newStore(t)
	err := s.RecordJobResult(ctx, store.JobResult{JobID: "enrich-nul", Queue: "enrichment", Namespace: "jengu",
		UserID: "u1", PropertyID: "p1", Status: store.JobFailed, Attempts: 1, CreatedAt: testNow,
		Error: "holiday API said \x00\x00 oops"})
	g.Expect(err).NotTo(HaveOccurred())
	r, err := s.GetJobResult(ctx, "jengu", "enrich-nul")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(r.Error).To(Equal(`holiday API said \x00\x00 oops`))
}
