// Package authn checks who calls the facade: Supabase access tokens (HS256 with the project's
// secret, ES256/RS256 with the keys of its JWKS URL) and the facade's own short-lived stream
// tickets, which let a browser's EventSource open a job's event stream.
package authn

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"time"

	"github.com/go-logr/logr"
	"github.com/golang-jwt/jwt/v5"
	"k8s.io/utils/clock"
)

// DefaultAudience is the aud of Supabase's user tokens.
const DefaultAudience = "authenticated"

// MinSecretBytes is the shortest HMAC secret accepted: shorter ones can be brute-forced from one
// token (Supabase's project secrets are longer).
const MinSecretBytes = 32

// authenticatedRole is the role claim of a signed-in Supabase user; the anon key and service
// keys carry other roles.
const authenticatedRole = "authenticated"

// leeway is the clock skew allowed on exp, nbf and iat.
const leeway = 30 * time.Second

// UserIDPattern is spec.userId's: the token's subject becomes the job's owner and label.
var UserIDPattern = regexp.MustCompile(`^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$`)

// Config says which tokens a Verifier accepts.
type Config struct {
	// Secret verifies HS256 tokens (Supabase's legacy JWT secret); empty turns HS256 off.
	Secret []byte
	// JWKSURL is the project's key set (https://<project>.supabase.co/auth/v1/.well-known/jwks.json),
	// whose keys verify ES256 and RS256 tokens; empty turns them off.
	JWKSURL string
	// Issuer is the iss every token must carry (https://<project>.supabase.co/auth/v1); empty
	// leaves iss unchecked.
	Issuer string
	// Audience is the aud every token must carry; DefaultAudience when empty.
	Audience string
}

// Option configures a Verifier.
type Option func(*Verifier)

// WithClock sets the clock that checks expiry and paces JWKS fetches.
func WithClock(c clock.Clock) Option { return func(v *Verifier) { v.clock = c } }

// WithLogger sets the logger of JWKS fetch failures.
func WithLogger(l logr.Logger) Option { return func(v *Verifier) { v.log = l } }

// WithHTTPClient sets the client that fetches the JWKS.
func WithHTTPClient(c *http.Client) Option { return func(v *Verifier) { v.httpClient = c } }

// WithJWKSRefresh sets how old cached keys may get (maxAge) and how often an unknown key id may
// fetch the set at most (minInterval).
func WithJWKSRefresh(maxAge, minInterval time.Duration) Option {
	return func(v *Verifier) { v.maxAge, v.minInterval = maxAge, minInterval }
}

// Verifier checks bearer tokens as Supabase issues them.
type Verifier struct {
	secret     []byte
	keys       *jwks
	parser     *jwt.Parser
	clock      clock.Clock
	log        logr.Logger
	httpClient *http.Client
	maxAge     time.Duration
	// minInterval bounds the JWKS fetches an unknown key id causes.
	minInterval time.Duration
}

// NewVerifier checks cfg and builds its verifier: at least one of Secret and JWKSURL, a secret
// of at least MinSecretBytes, an https JWKS URL (http only on a loopback host).
func NewVerifier(cfg Config, opts ...Option) (*Verifier, error) {
	v := &Verifier{clock: clock.RealClock{}, log: logr.Discard(), httpClient: &http.Client{Timeout: jwksFetchTimeout},
		maxAge: DefaultJWKSMaxAge, minInterval: DefaultJWKSMinInterval}
	for _, o := range opts {
		o(v)
	}
	if len(cfg.Secret) == 0 && cfg.JWKSURL == "" {
		return nil, errors.New("no token verification configured: set the HS256 secret (SUPABASE_JWT_SECRET), the JWKS URL (--jwks-url), or both")
	}
	var methods []string
	if len(cfg.Secret) > 0 {
		if len(cfg.Secret) < MinSecretBytes {
			return nil, fmt.Errorf("the HS256 secret (SUPABASE_JWT_SECRET) is %d bytes; at least %d are required", len(cfg.Secret), MinSecretBytes)
		}
		v.secret = cfg.Secret
		methods = append(methods, jwt.SigningMethodHS256.Alg())
	}
	if cfg.JWKSURL != "" {
		if err := checkJWKSURL(cfg.JWKSURL); err != nil {
			return nil, err
		}
		v.keys = &jwks{url: cfg.JWKSURL, client: v.httpClient, clock: v.clock, log: v.log,
			maxAge: v.maxAge, minInterval: v.minInterval}
		methods = append(methods, jwt.SigningMethodES256.Alg(), jwt.SigningMethodRS256.Alg())
	}
	if cfg.Audience == "" {
		cfg.Audience = DefaultAudience
	}
	popts := []jwt.ParserOption{
		jwt.WithValidMethods(methods), // refuses none, HS512, and whatever is not configured
		jwt.WithAudience(cfg.Audience),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(leeway),
		jwt.WithTimeFunc(v.clock.Now),
	}
	if cfg.Issuer != "" {
		popts = append(popts, jwt.WithIssuer(cfg.Issuer))
	}
	v.parser = jwt.NewParser(popts...)
	return v, nil
}

func checkJWKSURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return fmt.Errorf("the JWKS URL %q is not an absolute URL", raw)
	}
	if u.Scheme == "https" {
		return nil
	}
	if ip := net.ParseIP(u.Hostname()); u.Scheme == "http" && (u.Hostname() == "localhost" || (ip != nil && ip.IsLoopback())) {
		return nil
	}
	return fmt.Errorf("the JWKS URL %q must be https (http only on a loopback host)", raw)
}

// claims are the claims of a Supabase access token the facade reads.
type claims struct {
	jwt.RegisteredClaims
	Role        string `json:"role"`
	IsAnonymous bool   `json:"is_anonymous"`
}

// User checks a raw token and returns its subject, the caller's user id. Anonymous Supabase
// users (is_anonymous) and tokens of another role (the anon key, service keys) are refused:
// jobs belong to signed-in users.
func (v *Verifier) User(ctx context.Context, raw string) (string, error) {
	var c claims
	_, err := v.parser.ParseWithClaims(raw, &c, func(t *jwt.Token) (any, error) { return v.key(ctx, t) })
	if err != nil {
		return "", fmt.Errorf("invalid token: %w", err)
	}
	switch {
	case c.Role != authenticatedRole:
		return "", fmt.Errorf("invalid token: role must be %q, not %q", authenticatedRole, c.Role)
	case c.IsAnonymous:
		return "", errors.New("invalid token: anonymous users may not use this API; sign in")
	case len(c.Subject) > 63 || !UserIDPattern.MatchString(c.Subject):
		return "", errors.New("invalid token: sub must be a user id (at most 63 letters, digits, '-', '_' or '.')")
	}
	return c.Subject, nil
}

// key is the key of the token's algorithm: the secret for HS256, the JWKS key its kid names for
// ES256 and RS256 (the parser has already refused algorithms not configured).
func (v *Verifier) key(ctx context.Context, t *jwt.Token) (any, error) {
	alg := t.Method.Alg()
	if alg == jwt.SigningMethodHS256.Alg() {
		return v.secret, nil
	}
	kid, _ := t.Header["kid"].(string)
	if kid == "" {
		return nil, fmt.Errorf("an %s token needs a kid header", alg)
	}
	return v.keys.key(ctx, kid, alg)
}
