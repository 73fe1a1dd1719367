package authn

import (
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"k8s.io/utils/clock"
)

// DefaultTicketTTL is how long a stream ticket opens its job's stream: long enough for a browser
// to open (and, after a network blip, reopen) the stream, short enough that a ticket copied out
// of a proxy's log is already useless.
const DefaultTicketTTL = time.Minute

// A ticket is an HS256 JWT with the facade's own key, its own issuer and audience, so neither a
// Supabase token passes for a ticket nor a ticket for a Supabase token.
const (
	ticketIssuer   = "queue-operator"
	ticketAudience = "queue-operator/job-events"
	ticketLeeway   = 5 * time.Second
)

// DeriveTicketKey derives the stream tickets' key from the HS256 secret, for when no key of
// their own is configured: every facade replica derives the same one, and a ticket's signature
// tells nothing about the secret.
func DeriveTicketKey(secret []byte) []byte {
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte("queue-operator stream tickets v1"))
	return mac.Sum(nil)
}

// Tickets issues and checks stream tickets: each lets one user open one job's event stream, in
// one namespace, until it expires.
type Tickets struct {
	key    []byte
	ttl    time.Duration
	clock  clock.Clock
	parser *jwt.Parser
}

type ticketClaims struct {
	jwt.RegisteredClaims
	Namespace string `json:"ns"`
	Job       string `json:"job"`
}

// NewTickets builds tickets signed with key (at least MinSecretBytes) that last ttl.
func NewTickets(key []byte, ttl time.Duration, clk clock.Clock) (*Tickets, error) {
	if len(key) < MinSecretBytes {
		return nil, fmt.Errorf("the stream ticket key (STREAM_TICKET_SECRET) is %d bytes; at least %d are required", len(key), MinSecretBytes)
	}
	if ttl <= 0 {
		return nil, fmt.Errorf("the stream ticket lifetime must be positive, not %s", ttl)
	}
	return &Tickets{key: key, ttl: ttl, clock: clk, parser: jwt.NewParser(
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithIssuer(ticketIssuer),
		jwt.WithAudience(ticketAudience),
		jwt.WithExpirationRequired(),
		jwt.WithLeeway(ticketLeeway),
		jwt.WithTimeFunc(clk.Now),
	)}, nil
}

// Issue signs a ticket for user's stream of job in namespace and says when it expires.
func (t *Tickets) Issue(namespace, user, job string) (string, time.Time, error) {
	now := t.clock.Now()
	expires := now.Add(t.ttl).Truncate(time.Second)
	c := ticketClaims{RegisteredClaims: jwt.RegisteredClaims{Issuer: ticketIssuer, Subject: user,
		Audience: jwt.ClaimStrings{ticketAudience}, IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(expires)},
		Namespace: namespace, Job: job}
	signed, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(t.key)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("sign stream ticket: %w", err)
	}
	return signed, expires, nil
}

// Check verifies a ticket for job's stream in namespace and returns its user.
func (t *Tickets) Check(raw, namespace, job string) (string, error) {
	var c ticketClaims
	if _, err := t.parser.ParseWithClaims(raw, &c, func(*jwt.Token) (any, error) { return t.key, nil }); err != nil {
		return "", fmt.Errorf("invalid stream ticket: %w", err)
	}
	if c.Namespace != namespace || c.Job != job {
		return "", errors.New("invalid stream ticket: it is for another job's stream")
	}
	if c.Subject == "" {
		return "", errors.New("invalid stream ticket: no user")
	}
	return c.Subject, nil
}
