// Package faultproc is the processor of the fault suite's workers (test/faults/faultworker)
// and what the suite needs to know of it: the properties that say how a job behaves, and the
// PostgreSQL tables in which every run and every side effect is recorded.
//
// A run is one call of the processor: a row in fault_runs, finished with its outcome. The side
// effect is one row per job in fault_effects, written idempotently (INSERT ... ON CONFLICT
// (job_id) DO UPDATE SET runs = runs + 1): the row exists once whatever happens, and runs counts
// how often the effect was applied, so a job whose work was done twice shows runs = 2.
package faultproc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/jengu/queue-operator/workers"
)

// The properties of the suite's user. A job's property says how it behaves.
const (
	// PropertyOK: the job applies its side effect and completes.
	PropertyOK = "faults-ok"
	// PropertyFail: the job fails permanently every time it runs (no effect).
	PropertyFail = "faults-fail"
	// PropertyRetryFail: like PropertyFail; the suite retries it once through the REST API, so
	// it runs exactly twice and ends failed.
	PropertyRetryFail = "faults-retry-fail"
	// PropertyRetryOK: the job fails permanently on its first run and applies its effect on the
	// next; the suite retries it once, so it ends completed with its effect once.
	PropertyRetryOK = "faults-retry-ok"
)

// Outcomes of a run in fault_runs.outcome; NULL while running (or when its worker died).
const (
	OutcomeOK        = "ok"        // the effect was applied
	OutcomePermanent = "permanent" // failed permanently, as the job's property asks
	OutcomeAborted   = "aborted"   // its context ended (lease lost, cancelled, shutdown, timeout)
)

// Schema creates the suite's tables.
const Schema = `
CREATE TABLE IF NOT EXISTS fault_runs (
	id          bigserial PRIMARY KEY,
	job_id      text NOT NULL,
	worker      text NOT NULL,
	attempt     int NOT NULL,
	started_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
	finished_at timestamptz,
	outcome     text
);
CREATE INDEX IF NOT EXISTS fault_runs_job ON fault_runs (job_id);
CREATE TABLE IF NOT EXISTS fault_effects (
	job_id    text PRIMARY KEY,
	runs      int NOT NULL DEFAULT 1,
	first_run bigint NOT NULL,
	last_run  bigint NOT NULL,
	first_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
	last_at   timestamptz NOT NULL DEFAULT clock_timestamp()
);`

// Duration is how long a job works: 100 to 500 ms, fixed by its id.
func Duration(jobID string) time.Duration {
	h := fnv.New32a()
	_, _ = h.Write([]byte(jobID))
	return time.Duration(100+h.Sum32()%401) * time.Millisecond
}

// Processor records its runs and effects in db.
type Processor struct {
	DB     *pgxpool.Pool
	Worker string
}

var _ workers.Processor = (*Processor)(nil)

// ErrPermanent is the failure of the jobs whose property asks for one.
var ErrPermanent = errors.New("fault suite: this job fails permanently")

// Process records the run, works (sleeping, with progress), then fails or applies the effect
// as the job's property says. A database error is an ordinary error: the attempt is retried.
func (p *Processor) Process(ctx context.Context, task workers.Task, progress workers.Progress) ([]byte, error) {
	var spec struct {
		PropertyID string `json:"propertyId"`
	}
	if err := json.Unmarshal(task.Payload, &spec); err != nil {
		return nil, workers.Permanent(fmt.Errorf("payload: %w", err))
	}
	var run int64
	if err := p.DB.QueryRow(ctx, `INSERT INTO fault_runs (job_id, worker, attempt) VALUES ($1, $2, $3) RETURNING id`,
		task.ID, p.Worker, task.Attempt).Scan(&run); err != nil {
		return nil, fmt.Errorf("record run: %w", err)
	}
	const steps = 4
	step := Duration(task.ID) / steps
	for i := 1; i <= steps; i++ {
		select {
		case <-ctx.Done():
			p.finish(run, OutcomeAborted)
			return nil, context.Cause(ctx)
		case <-time.After(step):
		}
		progress(i*100/steps-5, fmt.Sprintf("step %d of %d", i, steps))
	}

	fail := spec.PropertyID == PropertyFail || spec.PropertyID == PropertyRetryFail
	if spec.PropertyID == PropertyRetryOK {
		var failedBefore bool
		if err := p.DB.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM fault_runs WHERE job_id = $1 AND outcome = $2)`,
			task.ID, OutcomePermanent).Scan(&failedBefore); err != nil {
			return nil, fmt.Errorf("read earlier runs: %w", err)
		}
		fail = !failedBefore
	}
	if fail {
		if _, err := p.DB.Exec(ctx, `UPDATE fault_runs SET outcome = $2, finished_at = clock_timestamp() WHERE id = $1`,
			run, OutcomePermanent); err != nil {
			return nil, fmt.Errorf("record run outcome: %w", err)
		}
		return nil, workers.Permanent(ErrPermanent)
	}

	// The side effect and the run's outcome commit together.
	tx, err := p.DB.Begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("begin effect: %w", err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	if _, err := tx.Exec(ctx, `
		INSERT INTO fault_effects (job_id, first_run, last_run) VALUES ($1, $2, $2)
		ON CONFLICT (job_id) DO UPDATE SET runs = fault_effects.runs + 1, last_run = EXCLUDED.last_run, last_at = clock_timestamp()`,
		task.ID, run); err != nil {
		return nil, fmt.Errorf("apply effect: %w", err)
	}
	if _, err := tx.Exec(ctx, `UPDATE fault_runs SET outcome = $2, finished_at = clock_timestamp() WHERE id = $1`,
		run, OutcomeOK); err != nil {
		return nil, fmt.Errorf("record run outcome: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, fmt.Errorf("commit effect: %w", err)
	}
	return json.Marshal(map[string]any{"run": run, "worker": p.Worker})
}

// finish records how an interrupted run ended, best effort (its context is over).
func (p *Processor) finish(run int64, outcome string) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_, _ = p.DB.Exec(ctx, `UPDATE fault_runs SET outcome = $2, finished_at = clock_timestamp() WHERE id = $1`, run, outcome)
}
