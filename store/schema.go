package store

import (
	"context"
	"fmt"
	"regexp"

	"github.com/jackc/pgx/v5"
)

// DefaultSchema is the PostgreSQL schema the product's tables live in, so that a database shared
// with another app (Supabase's public.properties, say) collides with nothing.
const DefaultSchema = "queue_operator"

// EnvDatabaseSchema names the schema (DefaultSchema when unset).
const EnvDatabaseSchema = "DATABASE_SCHEMA"

// schemaName is what a schema may be called: a lower-case identifier PostgreSQL takes unquoted,
// so it can be spelled into search_path and DDL as it is.
var schemaName = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)

// WithSchema sets the schema the store's tables live in (DefaultSchema otherwise). Open and
// Migrate must be given the same one.
func WithSchema(name string) Option { return func(o *options) { o.schema = name } }

// SchemaFromEnv returns DATABASE_SCHEMA, or DefaultSchema when it is unset. Pass os.Getenv.
func SchemaFromEnv(getenv func(string) string) string {
	if s := getenv(EnvDatabaseSchema); s != "" {
		return s
	}
	return DefaultSchema
}

func checkSchemaName(name string) error {
	if !schemaName.MatchString(name) {
		return fmt.Errorf("database schema %q: want a lower-case identifier (letters, digits, _; at most 63)", name)
	}
	return nil
}

// inSchema makes every connection of cfg resolve unqualified names in schema alone: the
// search_path goes in the startup message, so it holds from the first statement on, for the
// store's queries and the migrations alike.
func inSchema(cfg *pgx.ConnConfig, schema string) {
	if cfg.RuntimeParams == nil {
		cfg.RuntimeParams = map[string]string{}
	}
	cfg.RuntimeParams["search_path"] = schema
}

// checkSearchPath fails when the server did not take the search_path of the startup message, as
// a transaction pooler does that drops or refuses startup parameters (Supabase's Supavisor on port
// 6543): every query would then miss the tables, or worse, find another app's of the same name.
func checkSearchPath(ctx context.Context, q interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}, schema string) error {
	var got string
	if err := q.QueryRow(ctx, "SELECT current_setting('search_path')").Scan(&got); err != nil {
		return fmt.Errorf("read search_path: %w", err)
	}
	if got != schema {
		return fmt.Errorf("the connection's search_path is %q, want %q: the server (or a pooler in front of it) "+
			"ignored the search_path startup parameter; connect directly or through a session pooler "+
			"(Supabase: port 5432), or see store/README.md", got, schema)
	}
	return nil
}

// adoptLegacyVersionTable moves goose's version table of an install that predates schemas (tables
// in public) into schema, so that goose there sees versions 1 and 2 applied and runs 00003, which
// moves the tables after it. It runs under the migration lock.
func adoptLegacyVersionTable(ctx context.Context, conn *pgx.Conn, schema string) error {
	if schema == "public" {
		return nil
	}
	if _, err := conn.Exec(ctx, "CREATE SCHEMA IF NOT EXISTS "+schema); err != nil {
		return fmt.Errorf("create schema %s: %w", schema, err)
	}
	_, err := conn.Exec(ctx, fmt.Sprintf(`
		DO $$
		BEGIN
			IF to_regclass('public.%[2]s') IS NOT NULL AND to_regclass('%[1]s.%[2]s') IS NULL THEN
				ALTER TABLE public.%[2]s SET SCHEMA %[1]s;
			END IF;
		END $$`, schema, SchemaVersionTable))
	if err != nil {
		return fmt.Errorf("move the version table into schema %s: %w", schema, err)
	}
	return nil
}
