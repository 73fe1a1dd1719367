package queue

import (
	"errors"
	"fmt"
	"strings"
)

var (
	// ErrNotFound: no record with this id.
	ErrNotFound = errors.New("job not found")
	// ErrLeaseLost: the token no longer holds the job (it stalled and was taken over, or was
	// cancelled or removed). The caller's work on it does not count.
	ErrLeaseLost = errors.New("lease lost")
	// ErrConflict: a live job has this id under another owner UID.
	ErrConflict = errors.New("a live job with this id belongs to another owner")
	// ErrWrongState: the operation does not apply to the job's state (retrying a job that is
	// not failed).
	ErrWrongState = errors.New("job is in the wrong state")
	// ErrRetryTokenUsed: the job was retried with this token already.
	ErrRetryTokenUsed = errors.New("retry token already acted on")
)

func leaseErr(op, id string, err error) error {
	if err == nil {
		return nil
	}
	if strings.HasPrefix(err.Error(), "LEASE") {
		return fmt.Errorf("%s %s: %w", op, id, ErrLeaseLost)
	}
	return fmt.Errorf("%s %s: %w", op, id, err)
}

func stateErr(op, id string, err error) error {
	if err == nil {
		return nil
	}
	switch msg := err.Error(); {
	case strings.HasPrefix(msg, "NOTFOUND"):
		return fmt.Errorf("%s %s: %w", op, id, ErrNotFound)
	case strings.HasPrefix(msg, "STATE"):
		return fmt.Errorf("%s %s: %w (%s)", op, id, ErrWrongState, msg)
	case strings.HasPrefix(msg, "USED"):
		return fmt.Errorf("%s %s: %w", op, id, ErrRetryTokenUsed)
	}
	return fmt.Errorf("%s %s: %w", op, id, err)
}
