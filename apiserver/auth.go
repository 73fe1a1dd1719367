package apiserver

import (
	"cmp"
	"crypto/rand"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/jengu/queue-operator/apiserver/authn"
)

// DefaultAudience is the aud of Supabase's user tokens.
const DefaultAudience = authn.DefaultAudience

// bearer is the token of an Authorization header.
func bearer(header string) (string, error) {
	scheme, raw, _ := strings.Cut(header, " ")
	if !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(raw) == "" {
		return "", errors.New("missing bearer token: send Authorization: Bearer <JWT>")
	}
	return strings.TrimSpace(raw), nil
}

const userKey = "queue-operator/user"

// authenticate lets a request on with a valid token, or the event stream with a valid ticket,
// and remembers its user.
func (s *Server) authenticate(c *gin.Context) {
	user, ticketed, err := s.ticketUser(c)
	if !ticketed {
		var raw string
		if raw, err = bearer(c.GetHeader("Authorization")); err == nil {
			user, err = s.verifier.User(c, raw)
		}
	}
	if err != nil {
		s.unauthorized(c, err)
		return
	}
	c.Set(userKey, user)
	c.Next()
}

func (s *Server) unauthorized(c *gin.Context, err error) {
	c.Header("WWW-Authenticate", `Bearer error="invalid_token"`)
	s.fail(c, &apiError{Status: http.StatusUnauthorized, Code: "unauthorized", Message: err.Error()})
}

func userOf(c *gin.Context) string { return c.GetString(userKey) }

// setUpAuth builds the token verifier, the stream tickets and the CORS policy from the config.
func (s *Server) setUpAuth() error {
	var err error
	if s.verifier, err = authn.NewVerifier(authn.Config{Secret: s.cfg.JWTSecret, JWKSURL: s.cfg.JWKSURL,
		Issuer: s.cfg.Issuer, Audience: s.cfg.Audience},
		authn.WithClock(s.clock), authn.WithLogger(s.log.WithName("jwks"))); err != nil {
		return fmt.Errorf("apiserver: %w", err)
	}
	key := s.cfg.StreamTicketSecret
	switch {
	case len(key) > 0:
	case len(s.cfg.JWTSecret) > 0:
		key = authn.DeriveTicketKey(s.cfg.JWTSecret)
	default:
		key = make([]byte, 32)
		_, _ = rand.Read(key)
		s.log.Info("No stream ticket secret (STREAM_TICKET_SECRET) and no HS256 secret: this process signs " +
			"stream tickets with a key of its own, so a ticket opens streams only on the replica that issued it")
	}
	ttl := cmp.Or(s.cfg.StreamTicketTTL, authn.DefaultTicketTTL)
	if s.tickets, err = authn.NewTickets(key, ttl, s.clock); err != nil {
		return fmt.Errorf("apiserver: %w", err)
	}
	if s.cors, err = newCORSPolicy(s.cfg.AllowedOrigins); err != nil {
		return fmt.Errorf("apiserver: %w", err)
	}
	return nil
}
