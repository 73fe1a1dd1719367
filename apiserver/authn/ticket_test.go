package authn

import (
	"context"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	clocktesting "k8s.io/utils/clock/testing"
)

func TestTicketOpensOneJobsStreamUntilItExpires(t *testing.T) {
	g := NewWithT(t)
	clk := clocktesting.NewFakeClock(time.Now())
	tickets, err := NewTickets(DeriveTicketKey([]byte(testSecret)), time.Minute, clk)
	g.Expect(err).NotTo(HaveOccurred())
	ticket, expires, err := tickets.Issue("jobs", "user-a", "enrich-0a1b2c3d-1767225600000")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(expires).To(BeTemporally("~", clk.Now().Add(time.Minute), time.Second))

	user, err := tickets.Check(ticket, "jobs", "enrich-0a1b2c3d-1767225600000")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(user).To(Equal("user-a"))

	otherKey, err := NewTickets(DeriveTicketKey([]byte("another-project-secret-another-project")), time.Minute, clk)
	g.Expect(err).NotTo(HaveOccurred())
	forged, _, err := otherKey.Issue("jobs", "user-a", "enrich-0a1b2c3d-1767225600000")
	g.Expect(err).NotTo(HaveOccurred())

	refused := map[string]struct{ ticket, namespace, job, want string }{
		"another job":       {ticket, "jobs", "enrich-ffffffff-1767225600000", "another job's stream"},
		"another namespace": {ticket, "other", "enrich-0a1b2c3d-1767225600000", "another job's stream"},
		"another key":       {forged, "jobs", "enrich-0a1b2c3d-1767225600000", "signature is invalid"},
		"tampered":          {ticket[:len(ticket)-2] + "xx", "jobs", "enrich-0a1b2c3d-1767225600000", "signature is invalid"},
		"a bearer token":    {hs256(testSecret).sign(t, supabaseClaims(clk.Now())), "jobs", "enrich-0a1b2c3d-1767225600000", "signature is invalid"},
		"garbage":           {"not-a-ticket", "jobs", "enrich-0a1b2c3d-1767225600000", "invalid stream ticket"},
	}
	for name, tt := range refused {
		t.Run(name, func(t *testing.T) {
			_, err := tickets.Check(tt.ticket, tt.namespace, tt.job)
			NewWithT(t).Expect(err).To(MatchError(ContainSubstring(tt.want)))
		})
	}

	// Nor does a ticket pass for a bearer token with the secret it was derived from.
	v, err := NewVerifier(Config{Secret: []byte(testSecret)}, WithClock(clk))
	g.Expect(err).NotTo(HaveOccurred())
	_, err = v.User(context.Background(), ticket)
	g.Expect(err).To(MatchError(ContainSubstring("signature is invalid")))

	clk.Step(time.Minute + 6*time.Second)
	_, err = tickets.Check(ticket, "jobs", "enrich-0a1b2c3d-1767225600000")
	g.Expect(err).To(MatchError(ContainSubstring("token is expired")))
}

func TestNewTicketsRefusesAShortKey(t *testing.T) {
	_, err := NewTickets([]byte("short"), time.Minute, clocktesting.NewFakeClock(time.Now()))
	NewWithT(t).Expect(err).To(MatchError(ContainSubstring("is 5 bytes; at least 32")))
}
