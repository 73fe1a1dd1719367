package store

import (
	"context"

	"github.com/go-logr/logr"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// ExecMode is how the store's queries go to the server; for tests.
func (s *Store) ExecMode() pgx.QueryExecMode { return s.pool.Config().ConnConfig.DefaultQueryExecMode }

// Pool is the store's pool; for tests that look at its sessions.
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

// MigrateUpTo applies the migrations up to version in schema, as an older release did.
func MigrateUpTo(ctx context.Context, url string, log logr.Logger, schema string, version int64) error {
	return migrate(ctx, url, log, schema, version)
}
