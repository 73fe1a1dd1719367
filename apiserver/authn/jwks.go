package authn

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/utils/clock"
)

// The JWKS cache's defaults: keys are fetched again when older than DefaultJWKSMaxAge, and an
// unknown key id fetches them at once, but never more than once per DefaultJWKSMinInterval, so
// a flood of tokens with made-up key ids costs the JWKS endpoint one request per interval.
const (
	DefaultJWKSMaxAge      = 10 * time.Minute
	DefaultJWKSMinInterval = 10 * time.Second
	jwksFetchTimeout       = 10 * time.Second
	maxJWKSBody            = 1 << 20
	minRSABits             = 2048
)

// publicKey is one verification key of the set and the algorithm it verifies.
type publicKey struct {
	alg string
	key any
}

// jwks is the project's JSON Web Key Set, fetched from its URL and cached.
type jwks struct {
	url         string
	client      *http.Client
	clock       clock.Clock
	log         logr.Logger
	maxAge      time.Duration
	minInterval time.Duration

	mu          sync.Mutex
	keys        map[string]publicKey // by kid
	fetchedAt   time.Time            // of the keys held
	lastAttempt time.Time
	inflight    chan struct{} // closed when the running fetch ends; nil when none runs
	fetches     int           // attempts so far, for tests
}

// key is the verification key kid names for alg: from the cache while it is fresh, else after a
// fetch (one at a time, at most one per minInterval). A stale key is used while a fetch runs or
// when it fails, so an unreachable JWKS endpoint does not log every user out.
func (j *jwks) key(ctx context.Context, kid, alg string) (any, error) {
	j.mu.Lock()
	k, known := j.keys[kid]
	if known && j.clock.Since(j.fetchedAt) < j.maxAge {
		j.mu.Unlock()
		return k.verify(alg)
	}
	wait := j.inflight
	if wait == nil && (j.lastAttempt.IsZero() || j.clock.Since(j.lastAttempt) >= j.minInterval) {
		j.lastAttempt = j.clock.Now()
		j.fetches++
		wait = make(chan struct{})
		j.inflight = wait
		// The fetch outlives the request that started it: a client that gives up does not
		// waste it for the others.
		go j.fetch(wait)
	}
	j.mu.Unlock()
	if !known && wait != nil {
		select {
		case <-wait:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		j.mu.Lock()
		k, known = j.keys[kid]
		j.mu.Unlock()
	}
	if !known {
		return nil, fmt.Errorf("unknown key id %q", kid)
	}
	return k.verify(alg)
}

func (k publicKey) verify(alg string) (any, error) {
	if k.alg != alg {
		return nil, fmt.Errorf("the key is for %s, not %s", k.alg, alg)
	}
	return k.key, nil
}

// fetch reads the key set and replaces the cached one; on failure the cache keeps its keys.
func (j *jwks) fetch(done chan struct{}) {
	keys, err := j.get()
	j.mu.Lock()
	if err == nil {
		j.keys, j.fetchedAt = keys, j.clock.Now()
	}
	j.inflight = nil
	j.mu.Unlock()
	close(done)
	if err != nil {
		j.log.Error(err, "Fetching the JWKS failed; keeping the keys held", "url", j.url)
	}
}

func (j *jwks) get() (map[string]publicKey, error) {
	ctx, cancel := context.WithTimeout(context.Background(), jwksFetchTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, j.url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := j.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("get JWKS: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("get JWKS: %s", resp.Status)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKSBody+1))
	if err != nil {
		return nil, fmt.Errorf("read JWKS: %w", err)
	}
	if len(data) > maxJWKSBody {
		return nil, fmt.Errorf("JWKS is over %d bytes", maxJWKSBody)
	}
	return parseJWKS(data)
}

// jwk is one key of a JWKS document (RFC 7517, RFC 7518 section 6).
type jwk struct {
	Kty string `json:"kty"`
	Kid string `json:"kid"`
	Alg string `json:"alg"`
	Use string `json:"use"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Y   string `json:"y"`
	N   string `json:"n"`
	E   string `json:"e"`
}

// parseJWKS reads the set's signature keys of the algorithms accepted: EC P-256 (ES256) and RSA
// of at least 2048 bits (RS256). Keys of other kinds (symmetric ones included) are skipped, so
// an HS256 token can never be verified with a published key.
func parseJWKS(data []byte) (map[string]publicKey, error) {
	var doc struct {
		Keys []jwk `json:"keys"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("decode JWKS: %w", err)
	}
	keys := map[string]publicKey{}
	var errs []error
	for _, k := range doc.Keys {
		if k.Kid == "" || (k.Use != "" && k.Use != "sig") {
			continue
		}
		key, err := k.publicKey()
		if err != nil {
			errs = append(errs, fmt.Errorf("key %q: %w", k.Kid, err))
			continue
		}
		if key.key != nil {
			keys[k.Kid] = key
		}
	}
	if len(keys) == 0 {
		return nil, errors.Join(append([]error{errors.New("JWKS has no ES256 or RS256 signature key")}, errs...)...)
	}
	return keys, nil
}

// publicKey is the key k describes; a nil key for a kind this package does not accept.
func (k jwk) publicKey() (publicKey, error) {
	switch {
	case k.Kty == "EC" && k.Crv == "P-256" && (k.Alg == "" || k.Alg == "ES256"):
		x, err := coordinate(k.X, 32)
		if err != nil {
			return publicKey{}, fmt.Errorf("x: %w", err)
		}
		y, err := coordinate(k.Y, 32)
		if err != nil {
			return publicKey{}, fmt.Errorf("y: %w", err)
		}
		pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append(append([]byte{4}, x...), y...))
		if err != nil {
			return publicKey{}, err
		}
		return publicKey{alg: "ES256", key: pub}, nil
	case k.Kty == "RSA" && (k.Alg == "" || k.Alg == "RS256"):
		n, err := base64.RawURLEncoding.DecodeString(k.N)
		if err != nil {
			return publicKey{}, fmt.Errorf("n: %w", err)
		}
		e, err := base64.RawURLEncoding.DecodeString(k.E)
		if err != nil || len(e) == 0 || len(e) > 4 {
			return publicKey{}, errors.New("e: not a base64url exponent of at most 4 bytes")
		}
		pub := &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}
		if pub.N.BitLen() < minRSABits || pub.E < 3 || pub.E%2 == 0 {
			return publicKey{}, fmt.Errorf("RSA key of %d bits and exponent %d refused (at least %d bits, odd exponent)", pub.N.BitLen(), pub.E, minRSABits)
		}
		return publicKey{alg: "RS256", key: pub}, nil
	}
	return publicKey{}, nil
}

func coordinate(s string, size int) ([]byte, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return nil, err
	}
	if len(b) != size {
		return nil, fmt.Errorf("%d bytes, want %d", len(b), size)
	}
	return b, nil
}
