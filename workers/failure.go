package workers

import (
	"context"
	"errors"
	"net"

	"github.com/jackc/pgx/v5/pgconn"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
)

// PublicMessager is an error that carries a message written for the job's user: it is what the
// user sees (the job's failedReason, its CR's message); the full error goes only to the worker's
// log and the job's Events, which only the cluster's operators read.
type PublicMessager interface {
	PublicMessage() string
}

// PublicError pairs a message for the job's user with the detail behind it.
type PublicError struct {
	Message string
	Err     error
}

func (e *PublicError) Error() string {
	if e.Err == nil {
		return e.Message
	}
	return e.Message + ": " + e.Err.Error()
}
func (e *PublicError) Unwrap() error         { return e.Err }
func (e *PublicError) PublicMessage() string { return e.Message }

// Public wraps detail with the message its job's user gets.
func Public(message string, detail error) error { return &PublicError{Message: message, Err: detail} }

// The public messages of failures whose detail is not for the job's user: the database's,
// the cluster's and the network's errors name hosts, users, tables and Secrets.
const (
	ReasonInternalDatabase = "internal error (database); the operators have the detail"
	ReasonInternalCluster  = "internal error (Kubernetes API); the operators have the detail"
	ReasonInternalNetwork  = "internal error (network); the operators have the detail"
	ReasonInternal         = "internal error; the operators have the detail"
)

// errPanic marks a processor's panic, whose text and stack are for the log only.
var errPanic = errors.New("processor panicked")

// PublicReason is what a failed attempt tells the job's user, one classification for every
// processor. In order:
//   - the job's own timeout (cause): its message;
//   - a PublicMessager in the chain (Public, an outside API's error): its message;
//   - a database, Kubernetes API or network error anywhere in the chain, a panic: a fixed
//     internal-error message of its category;
//   - a Permanent or RateLimited error: its message, which a processor writes about the job's
//     data or an outside API;
//   - anything else: the fixed internal-error message.
func PublicReason(err, cause error) string {
	if cause != nil && errors.Is(err, context.DeadlineExceeded) {
		return cause.Error()
	}
	var public PublicMessager
	if errors.As(err, &public) {
		return public.PublicMessage()
	}
	var (
		pgErr     *pgconn.PgError
		connErr   *pgconn.ConnectError
		apiStatus apierrors.APIStatus
		netErr    net.Error
	)
	switch {
	case errors.As(err, &pgErr), errors.As(err, &connErr), pgconn.SafeToRetry(err), pgconn.Timeout(err):
		return ReasonInternalDatabase
	case errors.As(err, &apiStatus):
		return ReasonInternalCluster
	case errors.As(err, &netErr):
		return ReasonInternalNetwork
	case errors.Is(err, errPanic):
		return ReasonInternal
	}
	var permanent *PermanentError
	var limited *RateLimitedError
	if errors.As(err, &permanent) || errors.As(err, &limited) {
		return err.Error()
	}
	return ReasonInternal
}
