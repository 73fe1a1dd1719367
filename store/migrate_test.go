package store_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"
	"github.com/go-logr/logr/testr"
	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"
	. "github.com/onsi/gomega"

	"github.com/jengu/queue-operator/store"
)

// latestVersion is the version of the last file in store/migrations.
const latestVersion = 5

// migrationVersions are the versions of the files in store/migrations, in order.
func migrationVersions() []int {
	entries, err := os.ReadDir("migrations")
	if err != nil {
		panic(err)
	}
	var versions []int
	for _, e := range entries {
		var v int
		if _, err := fmt.Sscanf(e.Name(), "%05d_", &v); err == nil {
			versions = append(versions, v)
		}
	}
	if len(versions) == 0 || versions[len(versions)-1] != latestVersion {
		panic(fmt.Sprintf("the last migration file is not version %d (latestVersion): %v", latestVersion, versions))
	}
	return versions
}

// allApplied is goose's version table once every migration ran: its initial row, then each file.
func allApplied() []string {
	versions := []string{"0 true"}
	for _, v := range migrationVersions() {
		versions = append(versions, fmt.Sprintf("%d true", v))
	}
	return versions
}

// schema is what a migration leaves behind, to compare before and after.
type schema struct {
	Versions    []string // goose's applied versions
	Columns     []string
	Constraints []string
	Indexes     []string
}

func snapshotSchema(t *testing.T, conn *pgx.Conn) schema {
	t.Helper()
	return snapshotSchemaOf(t, conn, store.DefaultSchema)
}

// snapshotSchemaOf is the tables of one PostgreSQL schema, and the versions goose keeps there.
func snapshotSchemaOf(t *testing.T, conn *pgx.Conn, name string) schema {
	t.Helper()
	list := func(query string) []string {
		rows, err := conn.Query(context.Background(), query)
		if err != nil {
			t.Fatalf("snapshot schema: %v", err)
		}
		out, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatalf("snapshot schema: %v", err)
		}
		return out
	}
	return schema{
		Versions: list(`SELECT version_id || ' ' || is_applied FROM ` + name + `.` + store.SchemaVersionTable + ` ORDER BY id`),
		Columns: list(`
			SELECT table_name || '.' || column_name || ' ' || data_type || ' nullable=' || is_nullable
				|| ' default=' || coalesce(column_default, '-')
			FROM information_schema.columns WHERE table_schema = '` + name + `'
				AND table_name <> '` + store.SchemaVersionTable + `' ORDER BY table_name, ordinal_position`),
		Constraints: list(`
			SELECT conrelid::regclass || ' ' || conname || ' ' || pg_get_constraintdef(oid)
			FROM pg_constraint WHERE connamespace = '` + name + `'::regnamespace
				AND conrelid <> '` + name + `.` + store.SchemaVersionTable + `'::regclass ORDER BY 1`),
		Indexes: list(`SELECT indexdef FROM pg_indexes WHERE schemaname = '` + name + `'
			AND tablename <> '` + store.SchemaVersionTable + `' ORDER BY indexname`),
	}
}

func TestMigrateTwiceChangesNothing(t *testing.T) {
	t.Parallel()
	dbURL := newDatabase(t)
	conn := connect(t, dbURL)

	migrate(t, dbURL)
	first := snapshotSchema(t, conn)
	migrate(t, dbURL)
	second := snapshotSchema(t, conn)

	if diff := cmp.Diff(first, second); diff != "" {
		t.Errorf("second Migrate changed the schema (-first +second):\n%s", diff)
	}
	if want := allApplied(); !cmp.Equal(first.Versions, want) {
		t.Errorf("versions = %v, want %v", first.Versions, want)
	}
	for _, table := range []string{"properties", "pricing_rows", "competitor_prices", "analytics_inputs",
		"analytics_results", "job_results"} {
		if !slicesHasPrefix(first.Columns, table+".") {
			t.Errorf("no table %s after Migrate", table)
		}
	}
}

func slicesHasPrefix(list []string, prefix string) bool {
	for _, s := range list {
		if strings.HasPrefix(s, prefix) {
			return true
		}
	}
	return false
}

// logBuffer is a logger whose lines tests can read while other goroutines write.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) logger() logr.Logger {
	return funcr.New(func(prefix, args string) {
		b.mu.Lock()
		defer b.mu.Unlock()
		fmt.Fprintln(&b.buf, prefix, args)
	}, funcr.Options{})
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// waitingForMigrationLock counts sessions of the database waiting for the migration lock.
func waitingForMigrationLock(conn *pgx.Conn) func() (int, error) {
	return func() (int, error) {
		var n int
		err := conn.QueryRow(context.Background(), `
			SELECT count(*) FROM pg_locks
			WHERE locktype = 'advisory' AND NOT granted
				AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
				AND ((classid::bigint << 32) | objid::bigint) = $1`, store.MigrationLockKey).Scan(&n)
		return n, err
	}
}

func tableExists(conn *pgx.Conn, table string) func() (bool, error) {
	return func() (bool, error) {
		var exists bool
		err := conn.QueryRow(context.Background(), `SELECT to_regclass($1) IS NOT NULL`, table).Scan(&exists)
		return exists, err
	}
}

func TestMigrateWaitsForTheLockHolder(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	ctx := context.Background()
	dbURL := newDatabase(t)
	holder := connect(t, dbURL)
	observer := connect(t, dbURL)

	// The test plays the first migrator: it holds the lock on its own session.
	_, err := holder.Exec(ctx, "SELECT pg_advisory_lock($1)", store.MigrationLockKey)
	g.Expect(err).NotTo(HaveOccurred())

	var logs logBuffer
	done := make(chan error, 1)
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		done <- store.Migrate(ctx, dbURL, logs.logger())
	}()
	// Whatever happens below, the migrator is let go and finished before the database is dropped.
	t.Cleanup(func() {
		_, _ = holder.Exec(ctx, "SELECT pg_advisory_unlock_all()")
		<-finished
	})

	g.Eventually(waitingForMigrationLock(observer)).Should(Equal(1), "the migrator should queue on the lock")
	g.Expect(logs.String()).To(ContainSubstring("Waiting for another migrator"))
	g.Consistently(done).WithTimeout(time.Second).ShouldNot(Receive(), "Migrate returned while the lock was held")
	g.Expect(tableExists(observer, "properties")()).To(BeFalse(), "tables created without the lock")

	var released bool
	g.Expect(holder.QueryRow(ctx, "SELECT pg_advisory_unlock($1)", store.MigrationLockKey).Scan(&released)).To(Succeed())
	g.Expect(released).To(BeTrue())

	g.Eventually(done).WithTimeout(30 * time.Second).Should(Receive(BeNil()))
	g.Expect(tableExists(observer, "properties")()).To(BeTrue())
	g.Expect(snapshotSchema(t, observer).Versions).To(Equal(allApplied()))
}

func TestConcurrentMigratorsApplyEachMigrationOnce(t *testing.T) {
	t.Parallel()
	dbURL := newDatabase(t)
	const migrators = 3

	var logs logBuffer
	errs := make(chan error, migrators)
	for range migrators {
		go func() { errs <- store.Migrate(context.Background(), dbURL, logs.logger()) }()
	}
	for range migrators {
		if err := <-errs; err != nil {
			t.Errorf("Migrate: %v", err)
		}
	}
	// Without the lock, the losers would fail on CREATE TABLE; with it, they find nothing to do.
	if got := strings.Count(logs.String(), `"Applied migration"`); got != len(migrationVersions()) {
		t.Errorf("migrations applied %d times, want %d:\n%s", got, len(migrationVersions()), logs.String())
	}
	if got := strings.Count(logs.String(), `"applied"=0`); got != migrators-1 {
		t.Errorf("%d migrators found nothing to do, want %d:\n%s", got, migrators-1, logs.String())
	}
}

func TestMigrateGivesUpWhenItsContextEnds(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	dbURL := newDatabase(t)
	holder := connect(t, dbURL)
	_, err := holder.Exec(context.Background(), "SELECT pg_advisory_lock($1)", store.MigrationLockKey)
	g.Expect(err).NotTo(HaveOccurred())

	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	err = store.Migrate(ctx, dbURL, logr.Discard())
	g.Expect(err).To(MatchError(context.DeadlineExceeded))
	g.Expect(err.Error()).To(ContainSubstring("wait for the migration lock"))
	g.Expect(tableExists(holder, "properties")()).To(BeFalse())
}

func TestMigrationURL(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want string
	}{
		{
			name: "direct URL preferred",
			env:  map[string]string{"DATABASE_URL": "postgres://pooler:6543/db", "DATABASE_MIGRATION_URL": "postgres://direct:5432/db"},
			want: "postgres://direct:5432/db",
		},
		{
			name: "runtime URL otherwise",
			env:  map[string]string{"DATABASE_URL": "postgres://db:5432/db"},
			want: "postgres://db:5432/db",
		},
		{
			name: "empty migration URL counts as unset",
			env:  map[string]string{"DATABASE_URL": "postgres://db:5432/db", "DATABASE_MIGRATION_URL": ""},
			want: "postgres://db:5432/db",
		},
		{name: "neither", env: map[string]string{}, want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := store.MigrationURL(func(k string) string { return tt.env[k] })
			if got != tt.want {
				t.Errorf("MigrationURL = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestOpenFromEnvMigratesOverTheMigrationURL(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	migrated, runtime := newDatabase(t), newDatabase(t)
	env := map[string]string{store.EnvDatabaseURL: runtime, store.EnvMigrationURL: migrated}
	s, err := store.OpenFromEnv(ctx, func(k string) string { return env[k] }, testr.New(t))
	if err != nil {
		t.Fatalf("OpenFromEnv: %v", err)
	}
	defer s.Close()
	if got := snapshotSchema(t, connect(t, migrated)).Versions; !cmp.Equal(got, allApplied()) {
		t.Errorf("migration database versions = %v, want %v", got, allApplied())
	}
	// The store runs over DATABASE_URL, which nobody migrated here.
	if _, err := s.GetProperty(ctx, "p"); err == nil || errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetProperty over the unmigrated DATABASE_URL = %v, want a missing-table error", err)
	}
}
