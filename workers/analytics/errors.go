package analytics

import (
	"errors"
	"fmt"
)

// ErrInput: the job's input cannot give the analysis it asks for (no usable row, a field the type
// needs is missing). Retrying the same input fails the same way, so the job fails at once.
var ErrInput = errors.New("unusable input")

func inputErrorf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInput, fmt.Sprintf(format, args...))
}

// enrichHint is how to get the enrichment features a type needs.
const enrichHint = "enrich the property first (POST /api/files/{id}/enrich) and run the analysis without data, or send the features in the rows"
