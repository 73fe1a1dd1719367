package apiserver

import (
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/golang-jwt/jwt/v5"
	"k8s.io/utils/clock"
)

// DefaultAudience is the aud of Supabase's user tokens.
const DefaultAudience = "authenticated"

// userIDPattern is spec.userId's: the token's subject becomes the job's owner and label.
var userIDPattern = regexp.MustCompile(`^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$`)

// authenticator verifies bearer tokens as Supabase issues them: HS256 with the project's secret.
type authenticator struct {
	secret []byte
	parser *jwt.Parser
}

func newAuthenticator(secret []byte, audience string, clk clock.Clock) *authenticator {
	return &authenticator{secret: secret, parser: jwt.NewParser(
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}), // refuses none, RS256, HS512, ...
		jwt.WithAudience(audience),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(30*time.Second),
		jwt.WithTimeFunc(clk.Now),
	)}
}

// user returns the token's subject, the caller's user id.
func (a *authenticator) user(header string) (string, error) {
	scheme, raw, _ := strings.Cut(header, " ")
	if !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(raw) == "" {
		return "", errors.New("missing bearer token: send Authorization: Bearer <JWT>")
	}
	var claims jwt.RegisteredClaims
	_, err := a.parser.ParseWithClaims(strings.TrimSpace(raw), &claims, func(*jwt.Token) (any, error) { return a.secret, nil })
	if err != nil {
		return "", fmt.Errorf("invalid token: %w", err)
	}
	if len(claims.Subject) > 63 || !userIDPattern.MatchString(claims.Subject) {
		return "", errors.New("invalid token: sub must be a user id (at most 63 letters, digits, '-', '_' or '.')")
	}
	return claims.Subject, nil
}

const userKey = "queue-operator/user"

// authenticate lets a request on with a valid token and remembers its user.
func (s *Server) authenticate(c *gin.Context) {
	user, err := s.auth.user(c.GetHeader("Authorization"))
	if err != nil {
		c.Header("WWW-Authenticate", `Bearer error="invalid_token"`)
		s.fail(c, &apiError{Status: http.StatusUnauthorized, Code: "unauthorized", Message: err.Error()})
		return
	}
	c.Set(userKey, user)
	c.Next()
}

func userOf(c *gin.Context) string { return c.GetString(userKey) }
