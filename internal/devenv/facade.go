package devenv

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/go-logr/logr"
	"github.com/golang-jwt/jwt/v5"
	"github.com/redis/go-redis/v9"
	"k8s.io/client-go/rest"

	"github.com/jengu/queue-operator/apiserver"
	"github.com/jengu/queue-operator/store"
)

// The demo's user and property: the printed token is this user's, and the property is theirs.
const (
	DemoUser     = "demo-user"
	DemoProperty = "demo-property"
	// SampleFile is the sample pricing file of the samples directory the usage uploads.
	SampleFile = "pricing-barcelona.csv"
	// devJWTSecret signs the demo token when SUPABASE_JWT_SECRET is not set. It is only for the
	// local environment, whose facade listens on this machine.
	devJWTSecret = "queue-operator-dev-secret-not-for-production-use"
	// Issuer is the iss of the local environment's tokens, as a Supabase project's would be
	// https://<project>.supabase.co/auth/v1.
	Issuer = "queue-operator-dev"
)

func jwtSecret() string {
	if s := os.Getenv("SUPABASE_JWT_SECRET"); s != "" {
		return s
	}
	return devJWTSecret
}

// seedDemo stores the demo property (Barcelona) with 30 days of prices from today, so an
// enrichment job has rows to enrich.
func seedDemo(ctx context.Context, db *store.Store) error {
	return SeedProperty(ctx, db, DemoUser, DemoProperty, 30)
}

// SeedProperty stores a property of user in Barcelona with days of prices from today, as the
// demo's, so an enrichment job of it has rows to enrich.
func SeedProperty(ctx context.Context, db *store.Store, user, property string, days int) error {
	if _, err := db.UpsertProperty(ctx, store.Property{ID: property, UserID: user,
		Location: &store.Location{Latitude: 41.3874, Longitude: 2.1686}, CountryCode: "ES"}); err != nil {
		return fmt.Errorf("seed property %s: %w", property, err)
	}
	today := time.Now().UTC().Truncate(24 * time.Hour)
	rows := make([]store.PricingBase, days)
	for i := range rows {
		price := 120 + float64(i%7)*10
		rows[i] = store.PricingBase{Date: today.AddDate(0, 0, i), Price: &price}
	}
	if err := db.UpsertPricingRows(ctx, property, rows); err != nil {
		return fmt.Errorf("seed pricing rows of %s: %w", property, err)
	}
	return nil
}

// JWTSecret is the secret the local facade verifies bearer tokens with: SUPABASE_JWT_SECRET, or
// the development one.
func JWTSecret() string { return jwtSecret() }

// SignToken signs a Supabase-style access token of user with JWTSecret, valid for a day.
func SignToken(user string) (string, error) { return signToken(jwtSecret(), user) }

// startFacade runs the REST facade in this process until ctx ends and returns its address and
// that of its ops port (probes and metrics, on a free loopback port).
func startFacade(ctx context.Context, log logr.Logger, cfg *rest.Config, rdb redis.UniversalClient, db *store.Store, opts Options) (string, string, error) {
	server, err := apiserver.Connect(ctx, cfg, apiserver.Config{Namespace: opts.Namespace, Redis: rdb, Store: db,
		JWTSecret: []byte(jwtSecret()), Issuer: Issuer}, apiserver.WithLogger(log.WithName("apiserver")))
	if err != nil {
		return "", "", err
	}
	l, err := net.Listen("tcp", opts.APIAddress)
	if err != nil {
		return "", "", fmt.Errorf("facade address %s (set --api-address): %w", opts.APIAddress, err)
	}
	ops, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", "", err
	}
	go func() {
		if err := server.Serve(ctx, l, ops); err != nil {
			log.Error(err, "Facade stopped")
		}
	}()
	return l.Addr().String(), ops.Addr().String(), nil
}

// signDemoToken signs a Supabase-style access token of the demo user, valid for a day.
func signDemoToken(secret string) (string, error) { return signToken(secret, DemoUser) }

func signToken(secret, user string) (string, error) {
	claims := jwt.MapClaims{"iss": Issuer, "sub": user, "aud": "authenticated", "role": "authenticated",
		"iat": time.Now().Unix(), "exp": time.Now().Add(24 * time.Hour).Unix()}
	return jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte(secret))
}

func printAPIUsage(out io.Writer, addr, opsAddr, token, samplesDir string) {
	base := "http://" + strings.Replace(addr, "[::]", "localhost", 1)
	auth := `-H "Authorization: Bearer $TOKEN"`
	sample := filepath.Join(samplesDir, SampleFile)
	lines := []string{
		"REST API on " + base + " (the seed's contract, plus file uploads; a demo property " + DemoProperty + " of " + DemoUser + " is in PostgreSQL too):",
		"  export TOKEN=" + token,
		"  FILE=$(curl -s " + auth + " -H 'Content-Type: text/csv' --data-binary @" + sample + " \\",
		"    '" + base + "/api/files?latitude=41.39&longitude=2.17&countryCode=ES' | sed 's/.*\"fileId\":\"\\([^\"]*\\)\".*/\\1/')",
		"  JOB=$(curl -s -X POST " + base + "/api/files/$FILE/enrich " + auth + " | sed 's/.*\"jobId\":\"\\([^\"]*\\)\".*/\\1/')",
		"  curl -s " + base + "/api/jobs/$JOB " + auth + "                 # status, progress, attemptsMade",
		"  curl -sN " + base + "/api/jobs/$JOB/events " + auth + "         # Server-Sent Events until it ends",
		"  curl -s '" + base + "/api/files/'$FILE'/rows?limit=3' " + auth + "   # the enriched rows",
		"  curl -s " + base + "/api/files " + auth + "                     # your files",
		"  curl -s " + base + "/api/jobs " + auth + "                      # your jobs",
		"  curl -s " + base + "/api/jobs/dlq/list " + auth + "             # failed jobs",
		"  curl -s -X POST " + base + "/api/jobs/$JOB/retry " + auth + "   # retry a failed job",
		"  # an enrichment that, once completed, starts an analysis of the same file (spec.then)",
		"  curl -s -X POST " + base + "/api/files/$FILE/enrich " + auth + " -d '{\"then\":[{\"analytics\":{\"analysisType\":\"weather-impact\"}}]}'",
		"  # the same every night at 03:30 Madrid time (a JobSchedule; kubectl get jobschedules)",
		"  curl -s -X POST " + base + "/api/files/$FILE/schedules " + auth + " -d '{\"schedule\":\"30 3 * * *\",\"timeZone\":\"Europe/Madrid\",\"jobTemplate\":{\"enrichment\":{\"then\":[{\"analytics\":{\"analysisType\":\"weather-impact\"}}]}}}'",
		"  curl -s " + base + "/api/schedules " + auth + "                 # your schedules",
		"  curl -s http://" + opsAddr + "/metrics/json                      # queue depths (the ops port)",
		"  curl -s " + base + "/api/openapi.json                             # this API, described",
		"  kubectl get enrichmentjobs",
		"",
	}
	fmt.Fprintln(out, strings.Join(lines, "\n"))
}
