package main

import (
	"context"
	"fmt"
	"time"

	"github.com/hibiken/asynq"
)

// asynqSys is github.com/hibiken/asynq with its defaults (completed tasks are deleted: no
// Retention), except a quiet logger.
type asynqSys struct {
	// taskCheckInterval is asynq's Config.TaskCheckInterval; 0 keeps asynq's default (1 s).
	taskCheckInterval time.Duration
}

type asynqConn struct {
	e      *env
	sys    asynqSys
	client *asynq.Client
	name   string
}

func (s asynqSys) open(e *env, name string) (goConn, error) {
	return &asynqConn{e: e, sys: s, name: name, client: asynq.NewClient(asynq.RedisClientOpt{Addr: e.addr})}, nil
}

func (c *asynqConn) close() { _ = c.client.Close() }

func (c *asynqConn) enqueue(ctx context.Context, i int) error {
	_, err := c.client.EnqueueContext(ctx, asynq.NewTask("bench", c.e.payload), asynq.Queue(c.name), asynq.TaskID(jobID(i)))
	return err
}

// settle waits until asynq acknowledged every handled task (its active and pending lists are
// empty): asynq removes a task after its handler returned.
func (c *asynqConn) settle(ctx context.Context) error {
	active, pending := "asynq:{"+c.name+"}:active", "asynq:{"+c.name+"}:pending"
	for {
		p := c.e.admin.Pipeline()
		a, w := p.LLen(ctx, active), p.LLen(ctx, pending)
		if _, err := p.Exec(ctx); err != nil {
			return err
		}
		if a.Val() == 0 && w.Val() == 0 {
			return nil
		}
		if err := sleepCtx(ctx, 200*time.Microsecond); err != nil {
			return fmt.Errorf("asynq: %d active, %d pending: %w", a.Val(), w.Val(), err)
		}
	}
}

type quietLogger struct{}

func (quietLogger) Debug(...any) {}
func (quietLogger) Info(...any)  {}
func (quietLogger) Warn(...any)  {}
func (quietLogger) Error(...any) {}
func (quietLogger) Fatal(args ...any) {
	panic(fmt.Sprint(args...))
}

func (c *asynqConn) worker(ctx context.Context, conc int, started func(int), finished func()) (func(), error) {
	srv := asynq.NewServer(asynq.RedisClientOpt{Addr: c.e.addr}, asynq.Config{
		Concurrency:       conc,
		Queues:            map[string]int{c.name: 1},
		Logger:            quietLogger{},
		LogLevel:          asynq.FatalLevel,
		ShutdownTimeout:   5 * time.Second,
		TaskCheckInterval: c.sys.taskCheckInterval,
	})
	h := asynq.HandlerFunc(func(ctx context.Context, t *asynq.Task) error {
		if id, ok := asynq.GetTaskID(ctx); ok {
			if i, ok := jobIndex(id); ok {
				started(i)
			}
		}
		finished() // the no-op handler returns; asynq acknowledges after this (settle)
		return nil
	})
	if err := srv.Start(h); err != nil {
		return nil, err
	}
	return srv.Shutdown, nil
}
