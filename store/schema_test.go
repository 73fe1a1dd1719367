package store_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/url"
	"strings"
	"testing"

	"github.com/go-logr/logr/testr"
	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"

	"github.com/jengu/queue-operator/store"
)

// mainAppTables plays the main app sharing the database: its own public.properties, of another
// shape, with a row.
const mainAppTables = `
	CREATE TABLE public.properties (id uuid PRIMARY KEY, owner uuid NOT NULL, title text NOT NULL);
	INSERT INTO public.properties VALUES ('6c5e4b2a-0f55-4d3e-9f1a-2b8f1f3c9d10', '0b8c7a1e-3d2f-4e5a-8b6c-9d0e1f2a3b4c', 'Casa');`

func TestMigrateBesideAnotherAppsPublicProperties(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dbURL := newDatabase(t)
	plain := connectIn(t, dbURL, "public")
	if _, err := plain.Exec(ctx, mainAppTables); err != nil {
		t.Fatalf("create the main app's table: %v", err)
	}
	before := snapshotSchemaOfPublic(t, plain)

	migrate(t, dbURL)
	s := openStore(t, dbURL)
	mustProperty(t, s, "casa", "user-1")
	if _, err := s.GetProperty(ctx, "casa"); err != nil {
		t.Fatalf("GetProperty: %v", err)
	}

	if diff := cmp.Diff(before, snapshotSchemaOfPublic(t, plain)); diff != "" {
		t.Errorf("Migrate changed the main app's public schema (-before +after):\n%s", diff)
	}
	if n := count(t, plain, "public.properties"); n != 1 {
		t.Errorf("public.properties has %d rows, want the main app's 1", n)
	}
	if n := count(t, plain, store.DefaultSchema+".properties"); n != 1 {
		t.Errorf("%s.properties has %d rows, want 1", store.DefaultSchema, n)
	}
	if got := snapshotSchema(t, plain).Versions; !cmp.Equal(got, allApplied()) {
		t.Errorf("versions = %v, want %v", got, allApplied())
	}
}

// snapshotSchemaOfPublic is the public schema's tables; no goose table is expected there.
func snapshotSchemaOfPublic(t *testing.T, conn *pgx.Conn) []string {
	t.Helper()
	rows, err := conn.Query(context.Background(), `
		SELECT table_name || '.' || column_name || ' ' || data_type FROM information_schema.columns
		WHERE table_schema = 'public' ORDER BY table_name, ordinal_position`)
	if err != nil {
		t.Fatal(err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestMigrateMovesAnInstallFromPublicIntoTheSchema(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	fresh, legacy := newDatabase(t), newDatabase(t)
	migrate(t, fresh)

	// A release before 00003 kept everything in public; it left a property with rows and a job.
	if err := store.MigrateUpTo(ctx, legacy, testr.New(t), "public", 2); err != nil {
		t.Fatalf("migrate as the older release: %v", err)
	}
	if _, err := connectIn(t, legacy, "public").Exec(ctx, `
		INSERT INTO properties (id, user_id) VALUES ('p1', 'user-1');
		INSERT INTO pricing_rows (property_id, date, price) VALUES ('p1', '2026-01-01', 120);`); err != nil {
		t.Fatal(err)
	}

	migrate(t, legacy)

	conn := connect(t, legacy)
	if diff := cmp.Diff(snapshotSchema(t, connect(t, fresh)), snapshotSchema(t, conn)); diff != "" {
		t.Errorf("the moved install differs from a fresh one (-fresh +moved):\n%s", diff)
	}
	if left := snapshotSchemaOfPublic(t, conn); len(left) != 0 {
		t.Errorf("public still has tables: %v", left)
	}
	rows, err := openStore(t, legacy).ListPricingRows(ctx, "p1")
	if err != nil || len(rows) != 1 || *rows[0].Price != 120 {
		t.Errorf("the moved property's rows = %+v, %v; want its one day at 120", rows, err)
	}
}

func TestSchemasOfOneDatabaseAreSeparateInstalls(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dbURL := newDatabase(t)
	for _, name := range []string{"staging", "production"} {
		if err := store.Migrate(ctx, dbURL, testr.New(t), store.WithSchema(name)); err != nil {
			t.Fatalf("migrate %s: %v", name, err)
		}
	}
	staging := openStore(t, dbURL, store.WithSchema("staging"))
	production := openStore(t, dbURL, store.WithSchema("production"))
	mustProperty(t, staging, "p1", "user-1")

	if _, err := production.GetProperty(ctx, "p1"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("production sees staging's property: %v", err)
	}
	conn := connect(t, dbURL)
	for _, name := range []string{"staging", "production"} {
		if got := snapshotSchemaOf(t, conn, name).Versions; !cmp.Equal(got, allApplied()) {
			t.Errorf("%s versions = %v, want %v", name, got, allApplied())
		}
	}
}

func TestSchemaNameIsChecked(t *testing.T) {
	t.Parallel()
	dbURL := newDatabase(t)
	for _, name := range []string{"Queue", "queue-operator", "a;DROP TABLE x", ""} {
		if err := store.Migrate(context.Background(), dbURL, testr.New(t), store.WithSchema(name)); err == nil {
			t.Errorf("Migrate in schema %q succeeded, want an error", name)
		}
		if _, err := store.Open(context.Background(), dbURL, store.WithSchema(name)); err == nil {
			t.Errorf("Open in schema %q succeeded, want an error", name)
		}
	}
}

func TestSchemaFromEnv(t *testing.T) {
	tests := []struct {
		env  map[string]string
		want string
	}{
		{env: map[string]string{}, want: store.DefaultSchema},
		{env: map[string]string{store.EnvDatabaseSchema: ""}, want: store.DefaultSchema},
		{env: map[string]string{store.EnvDatabaseSchema: "pricing"}, want: "pricing"},
	}
	for _, tt := range tests {
		if got := store.SchemaFromEnv(func(k string) string { return tt.env[k] }); got != tt.want {
			t.Errorf("SchemaFromEnv(%v) = %q, want %q", tt.env, got, tt.want)
		}
	}
}

// TestOpenRefusesAnIgnoredSearchPath plays a transaction pooler that drops the search_path
// startup parameter (as Supavisor does): the store must refuse to start rather than resolve its
// table names in public.
func TestOpenRefusesAnIgnoredSearchPath(t *testing.T) {
	t.Parallel()
	dbURL := newDatabase(t)
	migrate(t, dbURL)
	proxied := startupParamDropper(t, dbURL, "search_path")

	_, err := store.Open(context.Background(), proxied)
	if err == nil || !strings.Contains(err.Error(), `ignored the search_path startup parameter`) {
		t.Fatalf("Open through a pooler that drops search_path = %v, want a refusal naming it", err)
	}
	err = store.Migrate(context.Background(), proxied, testr.New(t))
	if err == nil || !strings.Contains(err.Error(), `ignored the search_path startup parameter`) {
		t.Fatalf("Migrate through a pooler that drops search_path = %v, want a refusal naming it", err)
	}
	// The same database, reached directly, is fine.
	openStore(t, dbURL)
}

// startupParamDropper proxies dbURL's server, removing param from each connection's startup
// message, and returns the URL to reach it through.
func startupParamDropper(t *testing.T, dbURL, param string) string {
	t.Helper()
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	target := u.Host
	go func() {
		for {
			client, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer client.Close()
				server, err := net.Dial("tcp", target)
				if err != nil {
					return
				}
				defer server.Close()
				if err := forwardStartup(client, server, param); err != nil {
					return
				}
				go func() { _, _ = io.Copy(server, client) }()
				_, _ = io.Copy(client, server)
			}()
		}
	}()
	u.Host = l.Addr().String()
	return u.String()
}

// forwardStartup copies the startup message (length, protocol, key NUL value NUL ..., NUL) from
// client to server without param.
func forwardStartup(client, server net.Conn, param string) error {
	var size uint32
	if err := binary.Read(client, binary.BigEndian, &size); err != nil {
		return err
	}
	body := make([]byte, size-4)
	if _, err := io.ReadFull(client, body); err != nil {
		return err
	}
	fields := bytes.Split(body[4:len(body)-1], []byte{0})
	out := append([]byte(nil), body[:4]...)
	for i := 0; i+1 < len(fields); i += 2 {
		if string(fields[i]) != param {
			out = append(append(append(append(out, fields[i]...), 0), fields[i+1]...), 0)
		}
	}
	out = append(out, 0)
	return binary.Write(server, binary.BigEndian, append(binary.BigEndian.AppendUint32(nil, uint32(len(out)+4)), out...))
}
