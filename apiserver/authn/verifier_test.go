package authn

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	. "github.com/onsi/gomega"
	clocktesting "k8s.io/utils/clock/testing"
)

const (
	testIssuer = "https://project-ref.supabase.co/auth/v1"
	testSecret = "a-supabase-project-jwt-secret-of-more-than-32-bytes"
)

// jwksServer is a project's JWKS endpoint: it serves the public halves of its keys in the JWKS
// format Supabase serves, and counts the requests.
type jwksServer struct {
	*httptest.Server
	mu   sync.Mutex
	keys []map[string]string
	hits atomic.Int32
	down atomic.Bool
}

func newJWKSServer(t *testing.T) *jwksServer {
	s := &jwksServer{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		if s.down.Load() {
			http.Error(w, "unavailable", http.StatusServiceUnavailable)
			return
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"keys": s.keys})
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *jwksServer) url() string { return s.URL + "/auth/v1/.well-known/jwks.json" }

// publish replaces the served keys (a rotation publishes the new key beside, then instead of,
// the old one).
func (s *jwksServer) publish(keys ...signingKey) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keys = nil
	for _, k := range keys {
		s.keys = append(s.keys, k.jwk())
	}
}

// signingKey is a private key the test signs with, under a key id.
type signingKey struct {
	kid    string
	method jwt.SigningMethod
	key    any
}

func newECKey(t *testing.T, kid string) signingKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return signingKey{kid: kid, method: jwt.SigningMethodES256, key: k}
}

var (
	rsaOnce sync.Once
	rsaKey  *rsa.PrivateKey
)

func newRSAKey(t *testing.T, kid string) signingKey {
	rsaOnce.Do(func() {
		var err error
		if rsaKey, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			t.Fatal(err)
		}
	})
	return signingKey{kid: kid, method: jwt.SigningMethodRS256, key: rsaKey}
}

func (k signingKey) jwk() map[string]string {
	b64 := base64.RawURLEncoding.EncodeToString
	switch key := k.key.(type) {
	case *ecdsa.PrivateKey:
		point, _ := key.PublicKey.Bytes() // 0x04 || x || y
		return map[string]string{"kty": "EC", "crv": "P-256", "kid": k.kid, "alg": "ES256", "use": "sig",
			"x": b64(point[1:33]), "y": b64(point[33:])}
	case *rsa.PrivateKey:
		return map[string]string{"kty": "RSA", "kid": k.kid, "alg": "RS256", "use": "sig",
			"n": b64(key.N.Bytes()), "e": b64(big.NewInt(int64(key.E)).Bytes())}
	}
	panic(fmt.Sprintf("unknown key %T", k.key))
}

func (k signingKey) sign(t testing.TB, c jwt.MapClaims) string {
	tok := jwt.NewWithClaims(k.method, c)
	tok.Header["kid"] = k.kid
	s, err := tok.SignedString(k.key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func hs256(secret string) signingKey {
	return signingKey{method: jwt.SigningMethodHS256, key: []byte(secret)}
}

// supabaseClaims are an access token's claims as Supabase issues them to a signed-in user.
func supabaseClaims(now time.Time) jwt.MapClaims {
	return jwt.MapClaims{"iss": testIssuer, "sub": "8d1c4f7e-user", "aud": "authenticated", "role": "authenticated",
		"is_anonymous": false, "iat": now.Unix(), "exp": now.Add(time.Hour).Unix(), "session_id": "s1", "aal": "aal1"}
}

func claimsWith(now time.Time, kv ...any) jwt.MapClaims {
	c := supabaseClaims(now)
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == nil {
			delete(c, kv[i].(string))
		} else {
			c[kv[i].(string)] = kv[i+1]
		}
	}
	return c
}

func TestNewVerifierRefusesWeakConfigurations(t *testing.T) {
	tests := map[string]struct {
		cfg  Config
		want string
	}{
		"nothing":          {Config{Issuer: testIssuer}, "no token verification configured"},
		"short secret":     {Config{Secret: []byte("only-31-bytes-of-a-jwt-secret!!")}, "is 31 bytes; at least 32"},
		"plain http JWKS":  {Config{JWKSURL: "http://project-ref.supabase.co/auth/v1/.well-known/jwks.json"}, "must be https"},
		"relative JWKS":    {Config{JWKSURL: "/auth/v1/.well-known/jwks.json"}, "not an absolute URL"},
		"32 bytes is fine": {Config{Secret: []byte(strings.Repeat("s", 32))}, ""},
		"https JWKS":       {Config{JWKSURL: "https://project-ref.supabase.co/auth/v1/.well-known/jwks.json"}, ""},
		"loopback JWKS":    {Config{JWKSURL: "http://127.0.0.1:8080/jwks.json"}, ""},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := NewVerifier(tt.cfg)
			if tt.want == "" {
				NewWithT(t).Expect(err).NotTo(HaveOccurred())
				return
			}
			NewWithT(t).Expect(err).To(MatchError(ContainSubstring(tt.want)))
		})
	}
}

func TestVerifierAcceptsOnlyTheConfiguredTokens(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Now())
	now := clk.Now()
	server := newJWKSServer(t)
	ec, rs := newECKey(t, "ec-1"), newRSAKey(t, "rsa-1")
	server.publish(ec, rs)
	other := newECKey(t, "ec-1") // same kid, another key: a forgery

	verifiers := map[string]struct {
		cfg  Config
		algs []string
	}{
		"hs256 only": {Config{Secret: []byte(testSecret), Issuer: testIssuer}, []string{"HS256"}},
		"jwks only":  {Config{JWKSURL: server.url(), Issuer: testIssuer}, []string{"ES256", "RS256"}},
		"both":       {Config{Secret: []byte(testSecret), JWKSURL: server.url(), Issuer: testIssuer}, []string{"HS256", "ES256", "RS256"}},
	}
	tokens := []struct {
		name  string
		alg   string
		token string
		// want is the refusal of a verifier that accepts alg; "" accepts the token. A verifier
		// that does not accept alg refuses it as "signing method <alg> is invalid".
		want string
	}{
		{"HS256", "HS256", hs256(testSecret).sign(t, supabaseClaims(now)), ""},
		{"ES256", "ES256", ec.sign(t, supabaseClaims(now)), ""},
		{"RS256", "RS256", rs.sign(t, supabaseClaims(now)), ""},
		{"ES256 of another key under a known kid", "ES256", other.sign(t, supabaseClaims(now)), "signature is invalid"},
		{"HS256 with another secret", "HS256", hs256("another-secret-another-secret-another-secret").sign(t, supabaseClaims(now)), "signature is invalid"},
		{"RS256 header on the EC key's kid", "RS256", signingKey{kid: "ec-1", method: jwt.SigningMethodRS256, key: rs.key}.sign(t, supabaseClaims(now)), "the key is for ES256, not RS256"},
		{"HS256 signed with a published key as the secret", "HS256", publishedKeyAsSecret(t, ec), "signature is invalid"},
		{"another issuer", "HS256", hs256(testSecret).sign(t, claimsWith(now, "iss", "https://other-project.supabase.co/auth/v1")), "token has invalid issuer"},
		{"no issuer", "ES256", ec.sign(t, claimsWith(now, "iss", nil)), "iss claim is required"},
		{"anon key", "HS256", hs256(testSecret).sign(t, claimsWith(now, "role", "anon", "sub", nil)), `role must be "authenticated", not "anon"`},
		{"service role", "ES256", ec.sign(t, claimsWith(now, "role", "service_role")), `not "service_role"`},
		{"no role", "RS256", rs.sign(t, claimsWith(now, "role", nil)), `role must be "authenticated", not ""`},
		{"anonymous user", "HS256", hs256(testSecret).sign(t, claimsWith(now, "is_anonymous", true)), "anonymous users may not use this API"},
		{"anonymous user, ES256", "ES256", ec.sign(t, claimsWith(now, "is_anonymous", true)), "anonymous users may not use this API"},
		{"expired", "RS256", rs.sign(t, claimsWith(now, "exp", now.Add(-time.Minute).Unix())), "token is expired"},
		{"wrong audience", "ES256", ec.sign(t, claimsWith(now, "aud", "anon")), "token has invalid audience"},
		{"ES256 without kid", "ES256", signingKey{method: jwt.SigningMethodES256, key: ec.key}.sign(t, supabaseClaims(now)), "needs a kid header"},
		{"unknown kid", "ES256", newECKey(t, "ec-unknown").sign(t, supabaseClaims(now)), `unknown key id "ec-unknown"`},
		{"alg none", "none", noneToken(t, supabaseClaims(now)), "signing method none is invalid"},
	}
	for vname, vt := range verifiers {
		v, err := NewVerifier(vt.cfg, WithClock(clk))
		if err != nil {
			t.Fatal(err)
		}
		for _, tt := range tokens {
			t.Run(vname+"/"+tt.name, func(t *testing.T) {
				g := NewWithT(t)
				user, err := v.User(context.Background(), tt.token)
				want := tt.want
				if !slices.Contains(vt.algs, tt.alg) {
					want = "signing method " + tt.alg + " is invalid"
				}
				if want == "" {
					g.Expect(err).NotTo(HaveOccurred())
					g.Expect(user).To(Equal("8d1c4f7e-user"))
					return
				}
				g.Expect(err).To(MatchError(ContainSubstring(want)))
				g.Expect(user).To(BeEmpty())
			})
		}
	}
}

// publishedKeyAsSecret is an HS256 token whose "secret" is a published key's JWK text, the
// classic algorithm confusion: it must never verify, whatever is configured.
func publishedKeyAsSecret(t *testing.T, ec signingKey) string {
	pub, _ := json.Marshal(ec.jwk())
	return hs256(string(pub)).sign(t, supabaseClaims(time.Now()))
}

func noneToken(t *testing.T, c jwt.MapClaims) string {
	s, err := jwt.NewWithClaims(jwt.SigningMethodNone, c).SignedString(jwt.UnsafeAllowNoneSignatureType)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestJWKSFollowsAKeyRotation(t *testing.T) {
	g := NewWithT(t)
	clk := clocktesting.NewFakeClock(time.Now())
	server := newJWKSServer(t)
	current, standby := newECKey(t, "key-2026-01"), newECKey(t, "key-2026-02")
	server.publish(current)
	v, err := NewVerifier(Config{JWKSURL: server.url(), Issuer: testIssuer}, WithClock(clk), WithJWKSRefresh(time.Hour, 10*time.Second))
	g.Expect(err).NotTo(HaveOccurred())
	ctx := context.Background()

	_, err = v.User(ctx, current.sign(t, supabaseClaims(clk.Now())))
	g.Expect(err).NotTo(HaveOccurred())
	_, err = v.User(ctx, current.sign(t, supabaseClaims(clk.Now())))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(server.hits.Load()).To(Equal(int32(1)), "a known key is served from the cache")

	// The project rotates: the standby key signs from now on, the old one is revoked.
	server.publish(standby)
	clk.Step(11 * time.Second)
	_, err = v.User(ctx, standby.sign(t, supabaseClaims(clk.Now())))
	g.Expect(err).NotTo(HaveOccurred(), "an unknown kid fetches the set again")
	g.Expect(server.hits.Load()).To(Equal(int32(2)))
	_, err = v.User(ctx, current.sign(t, supabaseClaims(clk.Now())))
	g.Expect(err).To(MatchError(ContainSubstring(`unknown key id "key-2026-01"`)), "the revoked key is gone from the cache")

	// Past maxAge the set is fetched again; while the endpoint is down the held keys still verify.
	server.down.Store(true)
	clk.Step(2 * time.Hour)
	_, err = v.User(ctx, standby.sign(t, supabaseClaims(clk.Now())))
	g.Expect(err).NotTo(HaveOccurred())
	g.Eventually(server.hits.Load).Should(Equal(int32(3)))
	_, err = v.User(ctx, standby.sign(t, supabaseClaims(clk.Now())))
	g.Expect(err).NotTo(HaveOccurred())
}

func TestJWKSFloodOfUnknownKidsFetchesOncePerInterval(t *testing.T) {
	g := NewWithT(t)
	clk := clocktesting.NewFakeClock(time.Now())
	server := newJWKSServer(t)
	known := newRSAKey(t, "known")
	server.publish(known)
	v, err := NewVerifier(Config{JWKSURL: server.url(), Issuer: testIssuer}, WithClock(clk), WithJWKSRefresh(time.Hour, 10*time.Second))
	g.Expect(err).NotTo(HaveOccurred())
	ctx := context.Background()
	_, err = v.User(ctx, known.sign(t, supabaseClaims(clk.Now())))
	g.Expect(err).NotTo(HaveOccurred())

	// An attacker signs with keys of their own under 2000 made-up kids, 50 at a time.
	attacker := newECKey(t, "")
	flood := func(round int) {
		var wg sync.WaitGroup
		for w := range 50 {
			wg.Go(func() {
				for i := range 40 {
					k := attacker
					k.kid = fmt.Sprintf("forged-%d-%d-%d", round, w, i)
					_, err := v.User(ctx, k.sign(t, supabaseClaims(clk.Now())))
					if err == nil {
						t.Error("a token signed with an unpublished key was accepted")
					}
				}
			})
		}
		wg.Wait()
	}
	clk.Step(11 * time.Second)
	flood(1)
	g.Expect(server.hits.Load()).To(Equal(int32(2)), "2000 unknown kids in one interval fetch the set once")
	flood(2)
	g.Expect(server.hits.Load()).To(Equal(int32(2)))
	clk.Step(11 * time.Second)
	flood(3)
	g.Expect(server.hits.Load()).To(Equal(int32(3)), "and once more in the next interval")
	// Real users are not held up meanwhile.
	_, err = v.User(ctx, known.sign(t, supabaseClaims(clk.Now())))
	g.Expect(err).NotTo(HaveOccurred())
}

func TestParseJWKSSkipsKeysItDoesNotAccept(t *testing.T) {
	g := NewWithT(t)
	ec := newECKey(t, "ec")
	doc, _ := json.Marshal(map[string]any{"keys": []any{
		ec.jwk(),
		map[string]string{"kty": "oct", "kid": "hmac", "k": base64.RawURLEncoding.EncodeToString([]byte(testSecret))},
		map[string]string{"kty": "EC", "crv": "P-384", "kid": "p384", "x": "AA", "y": "AA"},
		func() map[string]string { k := ec.jwk(); k["kid"], k["use"] = "enc", "enc"; return k }(),
		func() map[string]string { k := ec.jwk(); k["kid"], k["y"] = "off-curve", k["x"]; return k }(),
		map[string]string{"kty": "RSA", "kid": "rsa-1024", "n": base64.RawURLEncoding.EncodeToString(make([]byte, 128)), "e": "AQAB"},
	}})
	keys, err := parseJWKS(doc)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(keys).To(HaveLen(1))
	g.Expect(keys).To(HaveKey("ec"))

	_, err = parseJWKS([]byte(`{"keys":[{"kty":"oct","kid":"hmac","k":"c2VjcmV0"}]}`))
	g.Expect(err).To(MatchError(ContainSubstring("no ES256 or RS256 signature key")))
}
