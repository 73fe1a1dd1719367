package store

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"path"

	"github.com/go-logr/logr"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
)

// Environment variables naming the database.
const (
	// EnvDatabaseURL is the runtime URL; it may point at a transaction pooler.
	EnvDatabaseURL = "DATABASE_URL"
	// EnvMigrationURL is a direct (session) URL for migrations, for when DATABASE_URL is a pooler.
	EnvMigrationURL = "DATABASE_MIGRATION_URL"
)

// MigrationLockKey is the pg_advisory_lock key that serialises migrators. It is fixed, so every
// replica and every version of the product agrees on it; its bytes spell "queue_op", which makes
// it recognisable in pg_locks (classid 0x71756575, objid 0x655f6f70).
const MigrationLockKey int64 = 0x71756575655f6f70

// SchemaVersionTable is goose's table of applied migrations, in the product's schema (so two
// installs in two schemas of one database keep their own). It has a name of its own because the
// schema may be shared with another goose user, whose goose_db_version it must not read as ours.
const SchemaVersionTable = "queue_operator_schema_version"

//go:embed migrations/*.sql
var embeddedMigrations embed.FS

// MigrationURL returns the URL to migrate over: DATABASE_MIGRATION_URL when set, else DATABASE_URL.
// Pass os.Getenv.
func MigrationURL(getenv func(string) string) string {
	if u := getenv(EnvMigrationURL); u != "" {
		return u
	}
	return getenv(EnvDatabaseURL)
}

// OpenFromEnv is what every component does at start: it migrates over MigrationURL(getenv), then
// opens the store over DATABASE_URL, both in the schema DATABASE_SCHEMA names (DefaultSchema when
// unset; a WithSchema option wins). Pass os.Getenv.
func OpenFromEnv(ctx context.Context, getenv func(string) string, log logr.Logger, opts ...Option) (*Store, error) {
	opts = append([]Option{WithSchema(SchemaFromEnv(getenv))}, opts...)
	if err := Migrate(ctx, MigrationURL(getenv), log.WithName("migrate"), opts...); err != nil {
		return nil, err
	}
	return Open(ctx, getenv(EnvDatabaseURL), opts...)
}

// Migrate applies the pending migrations. Every replica runs it at start, so it first takes a
// session-level advisory lock (MigrationLockKey) on a connection of its own: a second migrator
// waits there until the first is done, then finds nothing to do. The lock is a session's, so url
// must reach PostgreSQL directly (or through a session pooler): a transaction pooler would hand
// the lock's session to someone else. See MigrationURL.
//
// The migrations run in the schema WithSchema names (DefaultSchema otherwise), which Migrate
// creates; goose's version table lives there too. Of opts, only WithSchema matters.
func Migrate(ctx context.Context, url string, log logr.Logger, opts ...Option) error {
	return migrate(ctx, url, log, newOptions(opts).schema, 0)
}

// migrate applies the migrations up to version upTo (all of them when 0) in schema.
func migrate(ctx context.Context, url string, log logr.Logger, schema string, upTo int64) error {
	if err := checkSchemaName(schema); err != nil {
		return err
	}
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return fmt.Errorf("parse migration URL: %w", err)
	}
	inSchema(cfg, schema)
	lockConn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return fmt.Errorf("connect to %s for migrations: %w", cfg.Host, err)
	}
	// Ending the session releases the lock whatever happened, even if the unlock below failed.
	defer func() { _ = lockConn.Close(context.WithoutCancel(ctx)) }()
	if err := lockMigrations(ctx, lockConn, log); err != nil {
		return err
	}
	defer func() {
		if _, err := lockConn.Exec(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1)", MigrationLockKey); err != nil {
			log.Error(err, "Release the migration lock; closing the session releases it")
		}
	}()
	if err := checkSearchPath(ctx, lockConn, schema); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	if err := adoptLegacyVersionTable(ctx, lockConn, schema); err != nil {
		return err
	}

	// Migrations run over other connections than the lock's: goose wants a *sql.DB.
	db := stdlib.OpenDB(*cfg)
	defer func() { _ = db.Close() }()
	migrations, err := fs.Sub(embeddedMigrations, "migrations")
	if err != nil {
		return fmt.Errorf("open embedded migrations: %w", err)
	}
	provider, err := goose.NewProvider(goose.DialectPostgres, db, migrations,
		goose.WithTableName(schema+"."+SchemaVersionTable),
		// Go migrations registered elsewhere in the binary are not ours.
		goose.WithDisableGlobalRegistry(true),
		goose.WithLogger(goose.NopLogger()),
	)
	if err != nil {
		return fmt.Errorf("load migrations: %w", err)
	}
	var results []*goose.MigrationResult
	if upTo > 0 {
		results, err = provider.UpTo(ctx, upTo)
	} else {
		results, err = provider.Up(ctx)
	}
	for _, r := range results { // on failure, the migrations applied before it
		if r.Error == nil {
			log.Info("Applied migration", "version", r.Source.Version, "file", path.Base(r.Source.Path),
				"duration", r.Duration.String())
		}
	}
	if err != nil {
		return fmt.Errorf("apply migrations: %w", err)
	}
	version, err := provider.GetDBVersion(ctx)
	if err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	log.Info("Database schema is up to date", "schema", schema, "version", version, "applied", len(results))
	return nil
}

// lockMigrations takes the migration lock on conn, waiting for another migrator to finish. It
// tries first, so that a wait is logged: a migrator stuck behind a hung one is then visible.
func lockMigrations(ctx context.Context, conn *pgx.Conn, log logr.Logger) error {
	var locked bool
	if err := conn.QueryRow(ctx, "SELECT pg_try_advisory_lock($1)", MigrationLockKey).Scan(&locked); err != nil {
		return fmt.Errorf("take the migration lock: %w", err)
	}
	if locked {
		return nil
	}
	log.Info("Waiting for another migrator to release the migration lock", "key", MigrationLockKey)
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", MigrationLockKey); err != nil {
		return fmt.Errorf("wait for the migration lock: %w", err)
	}
	return nil
}
