// Package store is the PostgreSQL side of the product: the schema (goose migrations, embedded) and
// the reads and writes that processors and the REST facade make. Every write a processor makes is
// an idempotent upsert keyed so that a job run twice leaves its rows once, because delivery is
// at-least-once. It knows nothing of Kubernetes or Redis.
package store

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/go-logr/logr"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

var (
	// ErrNotFound: no row with this id.
	ErrNotFound = errors.New("not found")
	// ErrInvalid: the database (or the store, before asking it) refused the data: a value out of
	// range, an unknown enum value, a row for a property that does not exist. Retrying the same
	// data fails the same way, so a processor fails the job at once.
	ErrInvalid = errors.New("invalid data")
	// ErrConflict: the id is taken by a row the write must not change (a property of another
	// user, an analytics input saved with other rows).
	ErrConflict = errors.New("conflict with stored row")
)

// Clock tells the time; tests inject one so that rows written twice are identical.
type Clock interface{ Now() time.Time }

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

// Store reads and writes the results schema over a connection pool.
type Store struct {
	pool   *pgxpool.Pool
	clock  Clock
	log    logr.Logger
	schema string
}

type options struct {
	clock    Clock
	log      logr.Logger
	execMode *pgx.QueryExecMode
	schema   string
}

// Option configures Open and Migrate.
type Option func(*options)

// WithClock sets the clock that stamps created_at, updated_at, enriched_at and the like.
func WithClock(c Clock) Option { return func(o *options) { o.clock = c } }

// WithLogger sets the logger.
func WithLogger(l logr.Logger) Option { return func(o *options) { o.log = l } }

// WithQueryExecMode forces how queries go to the server, over whatever the URL says.
func WithQueryExecMode(m pgx.QueryExecMode) Option { return func(o *options) { o.execMode = &m } }

// Open connects a pool to connString (a postgres:// URL or a keyword/value string) and checks that the
// server answers. Unless the URL sets default_query_exec_mode (or WithQueryExecMode is given),
// queries use the simple protocol: transaction poolers such as Supabase's hand each transaction
// to any server connection, so a statement prepared on one is missing on the next. The schema
// must already be migrated (see Migrate), in the same schema (WithSchema). Every connection
// resolves table names in that schema alone (search_path as a startup parameter); Open fails when
// the server, or a pooler in front of it, does not take it.
func Open(ctx context.Context, connString string, opts ...Option) (*Store, error) {
	o := newOptions(opts)
	if err := checkSchemaName(o.schema); err != nil {
		return nil, err
	}
	cfg, err := pgxpool.ParseConfig(connString)
	if err != nil {
		return nil, fmt.Errorf("parse database URL: %w", err) // pgx redacts the password
	}
	inSchema(cfg.ConnConfig, o.schema)
	switch {
	case o.execMode != nil:
		cfg.ConnConfig.DefaultQueryExecMode = *o.execMode
	case !choosesExecMode(connString):
		cfg.ConnConfig.DefaultQueryExecMode = pgx.QueryExecModeSimpleProtocol
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", cfg.ConnConfig.Host, err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("ping %s/%s: %w", cfg.ConnConfig.Host, cfg.ConnConfig.Database, err)
	}
	if err := checkSearchPath(ctx, pool, o.schema); err != nil {
		pool.Close()
		return nil, fmt.Errorf("open %s/%s: %w", cfg.ConnConfig.Host, cfg.ConnConfig.Database, err)
	}
	o.log.Info("Connected to PostgreSQL", "host", cfg.ConnConfig.Host, "database", cfg.ConnConfig.Database,
		"schema", o.schema, "execMode", cfg.ConnConfig.DefaultQueryExecMode.String(), "maxConns", cfg.MaxConns)
	return &Store{pool: pool, clock: o.clock, log: o.log, schema: o.schema}, nil
}

func newOptions(opts []Option) options {
	o := options{clock: realClock{}, log: logr.Discard(), schema: DefaultSchema}
	for _, opt := range opts {
		opt(&o)
	}
	return o
}

// Schema is the PostgreSQL schema the store's tables live in.
func (s *Store) Schema() string { return s.schema }

// Close closes the pool, waiting for connections in use to be returned.
func (s *Store) Close() { s.pool.Close() }

// Ping checks that the database answers, for readiness probes.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.pool.Ping(ctx); err != nil {
		return fmt.Errorf("ping database: %w", err)
	}
	return nil
}

// now is the clock's time, as pgTime.
func (s *Store) now() time.Time { return pgTime(s.clock.Now()) }

// pgTime is t at the database's precision, truncated in Go: sent as it is, the binary protocol
// would truncate the nanoseconds and the simple protocol's text would have the server round them.
func pgTime(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

var dsnExecMode = regexp.MustCompile(`(^|\s)default_query_exec_mode\s*=`)

// choosesExecMode reports whether the connection string sets default_query_exec_mode, which pgx's
// parsed config cannot tell apart from its default.
func choosesExecMode(connString string) bool {
	if strings.HasPrefix(connString, "postgres://") || strings.HasPrefix(connString, "postgresql://") {
		u, err := url.Parse(connString)
		return err == nil && u.Query().Has("default_query_exec_mode")
	}
	return dsnExecMode.MatchString(connString)
}

// SQLSTATE codes that mean "this data can never be stored", as opposed to a lost
// connection, a deadlock or a timeout, which a retry may cure.
var invalidDataCodes = map[string]bool{
	"23502": true, // not_null_violation
	"23503": true, // foreign_key_violation
	"23514": true, // check_violation
	"22001": true, // string_data_right_truncation
	"22003": true, // numeric_value_out_of_range
	"22007": true, // invalid_datetime_format
	"22008": true, // datetime_field_overflow
	"22021": true, // character_not_in_repertoire (a NUL byte in text, sent typed)
	// protocol_violation: in the simple protocol the arguments are spelled out in the SQL text, and
	// a NUL byte in text ends the statement early, so the server finds the message malformed. pgx
	// writes the protocol itself, so the statement's bytes are the cause: sent again, they are
	// refused again.
	"08P01": true,
	"22P02": true, // invalid_text_representation (bad JSON, bad number)
	"22P05": true, // untranslatable_character (\u0000 in JSON)
	"21000": true, // cardinality_violation (one upsert touching a row twice)
}

// invalidDataError is a PostgreSQL error that refused the data. It matches both ErrInvalid and the
// *pgconn.PgError, so callers can branch on either.
type invalidDataError struct{ pg *pgconn.PgError }

func (e *invalidDataError) Error() string {
	msg := "invalid data: " + e.pg.Message
	// A foreign-key detail names the missing key, which is the useful part; a check detail
	// repeats the whole failing row (perhaps a large JSON document), so it is left out.
	switch {
	case e.pg.Code == "23503" && e.pg.Detail != "":
		msg += ": " + e.pg.Detail
	case e.pg.Code == "08P01":
		msg += " (the statement could not be read: text holding a NUL byte?)"
	}
	return msg
}

func (e *invalidDataError) Unwrap() []error { return []error{ErrInvalid, e.pg} }

// classify turns a PostgreSQL error that refused the data into one matching ErrInvalid, and
// returns any other error as it is.
func classify(err error) error {
	var pg *pgconn.PgError
	if errors.As(err, &pg) && invalidDataCodes[pg.Code] {
		return &invalidDataError{pg: pg}
	}
	return err
}

// invalidf returns an error matching ErrInvalid, for data the store refuses before sending it.
func invalidf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}
