package store_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"

	"github.com/jengu/queue-operator/store"
)

// fixedClock always tells the same time, so that a write repeated gives an identical row.
type fixedClock struct{ t time.Time }

func (c fixedClock) Now() time.Time { return c.t }

var testNow = time.Date(2026, 3, 1, 12, 30, 0, 123456000, time.UTC)

var databaseSeq atomic.Int64

// serverURL is DATABASE_URL, the server hack/with-services.sh started.
func serverURL(t *testing.T) string {
	t.Helper()
	u := os.Getenv("DATABASE_URL")
	if u == "" {
		t.Fatal("DATABASE_URL is not set: run the tests with `make test` (or hack/with-services.sh go test ./store/...), which starts PostgreSQL")
	}
	return u
}

// newDatabase creates an empty database of the test's own and returns its URL; it is dropped when
// the test ends.
func newDatabase(t *testing.T) string {
	t.Helper()
	server := serverURL(t)
	ctx := context.Background()
	name := fmt.Sprintf("store_test_%d_%d", time.Now().UnixNano(), databaseSeq.Add(1))
	admin, err := pgx.Connect(ctx, server)
	if err != nil {
		t.Fatalf("connect to DATABASE_URL: %v", err)
	}
	defer admin.Close(ctx)
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create database %s: %v", name, err)
	}
	t.Cleanup(func() {
		admin, err := pgx.Connect(ctx, server)
		if err != nil {
			t.Errorf("connect to drop database %s: %v", name, err)
			return
		}
		defer admin.Close(ctx)
		if _, err := admin.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("drop database %s: %v", name, err)
		}
	})
	u, err := url.Parse(server)
	if err != nil {
		t.Fatalf("DATABASE_URL is not a postgres:// URL: %v", err)
	}
	u.Path = "/" + name
	return u.String()
}

// withQuery returns dbURL with one more query parameter.
func withQuery(t *testing.T, dbURL, key, value string) string {
	t.Helper()
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set(key, value)
	u.RawQuery = q.Encode()
	return u.String()
}

// migrate applies the migrations to dbURL, failing the test on error.
func migrate(t *testing.T, dbURL string) {
	t.Helper()
	if err := store.Migrate(context.Background(), dbURL, testr.New(t)); err != nil {
		t.Fatalf("migrate: %v", err)
	}
}

// openStore opens a store on dbURL with the fixed clock; it is closed when the test ends.
func openStore(t *testing.T, dbURL string, opts ...store.Option) *store.Store {
	t.Helper()
	opts = append([]store.Option{store.WithClock(fixedClock{testNow}), store.WithLogger(testr.New(t))}, opts...)
	s, err := store.Open(context.Background(), dbURL, opts...)
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(s.Close)
	return s
}

// newStore returns a store on a migrated database of the test's own, in the default (simple
// protocol) mode, and a direct connection to the same database for assertions.
func newStore(t *testing.T, opts ...store.Option) (*store.Store, *pgx.Conn) {
	t.Helper()
	dbURL := newDatabase(t)
	migrate(t, dbURL)
	return openStore(t, dbURL, opts...), connect(t, dbURL)
}

// connect opens a direct connection that resolves names in the store's default schema, as the
// store's own do; it is closed when the test ends.
func connect(t *testing.T, dbURL string) *pgx.Conn {
	t.Helper()
	return connectIn(t, dbURL, store.DefaultSchema)
}

// connectIn opens a direct connection that resolves names in schema, closed when the test ends.
func connectIn(t *testing.T, dbURL, schema string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), withQuery(t, dbURL, "search_path", schema))
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	return conn
}

// count returns the number of rows of table.
func count(t *testing.T, conn *pgx.Conn, table string) int {
	t.Helper()
	var n int
	if err := conn.QueryRow(context.Background(), "SELECT count(*) FROM "+table).Scan(&n); err != nil {
		t.Fatalf("count %s: %v", table, err)
	}
	return n
}

// mustProperty creates a property for rows to refer to.
func mustProperty(t *testing.T, s *store.Store, id, userID string) store.Property {
	t.Helper()
	p, err := s.UpsertProperty(context.Background(), store.Property{ID: id, UserID: userID,
		Location: &store.Location{Latitude: 48.8566, Longitude: 2.3522}, CountryCode: "FR"})
	if err != nil {
		t.Fatalf("upsert property %s: %v", id, err)
	}
	return p
}

// jsonEqual compares JSON documents by meaning: jsonb sorts keys and rewrites whitespace.
var jsonEqual = cmp.Transformer("json", func(doc json.RawMessage) any {
	if doc == nil {
		return nil
	}
	var v any
	if err := json.Unmarshal(doc, &v); err != nil {
		return fmt.Sprintf("invalid JSON %q: %v", doc, err)
	}
	return v
})

func ptr[T any](v T) *T { return &v }

// containsAll reports whether s contains every one of parts.
func containsAll(s string, parts ...string) bool {
	for _, p := range parts {
		if !strings.Contains(s, p) {
			return false
		}
	}
	return true
}

func day(s string) time.Time {
	d, err := time.Parse(time.DateOnly, s)
	if err != nil {
		panic(err)
	}
	return d
}
