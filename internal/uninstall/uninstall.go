// Package uninstall empties a namespace of the product's jobs and schedules while the controller
// still runs, so that no job is left holding its finalizer once the controller is gone. The
// chart's pre-delete hook runs it (`queue-operator uninstall`): `helm uninstall` deletes the
// controller's Deployment together with everything else, and a job whose finalizer no one
// releases blocks its own deletion and its namespace's.
package uninstall

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/go-logr/logr"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	jobsv1alpha1 "github.com/jengu/queue-operator/api/v1alpha1"
)

// Options say what Run empties and how long it waits for the controller.
type Options struct {
	// Namespace is the namespace whose jobs and schedules are deleted.
	Namespace string
	// Timeout is how long the controller gets to remove the jobs' Redis records and release
	// their finalizers; past it Run removes the finalizers of what is left itself.
	Timeout time.Duration
	// PollInterval is how often Run lists what is left.
	PollInterval time.Duration
	// Clock measures Timeout.
	Clock clock.WithTicker
}

// DefaultOptions are the settings of the chart's hook (less than helm's default --timeout of 5
// minutes, which bounds the whole hook).
func DefaultOptions() Options {
	return Options{Namespace: "default", Timeout: 2 * time.Minute, PollInterval: time.Second, Clock: clock.RealClock{}}
}

// Job names one job Run saw: "EnrichmentJob/enrich-…".
type Job string

// Result is what Run did.
type Result struct {
	// Schedules and Jobs count the objects Run asked the kube-apiserver to delete, all kinds
	// together (a job deleted twice, once as it appeared, counts twice).
	Schedules, Jobs int
	// Released are the jobs whose finalizer Run removed because the controller had not.
	Released []Job
}

// ErrLeft is wrapped by Run's error when jobs are still there at the end, held by finalizers
// other than the product's.
var ErrLeft = errors.New("jobs are left")

// removalPasses is how many times, past the timeout, Run removes the finalizers of what is left
// and deletes what appeared meanwhile (a facade still running may create jobs until helm
// deletes it) before it gives up.
const removalPasses = 3

// Run deletes the namespace's JobSchedules (first, so they start no new runs) and its jobs of
// every kind, and waits until the jobs are gone: the controller removes each job's Redis record
// and releases its finalizer. Jobs still there after opts.Timeout lose the product's finalizer
// to Run itself, so none stays stuck; their Redis records then stay until Redis' own expiry.
// It needs list, deletecollection and patch of the job kinds and list and deletecollection of
// JobSchedules in the namespace, nothing more.
func Run(ctx context.Context, c client.Client, opts Options) (Result, error) {
	log := logr.FromContextOrDiscard(ctx).WithValues("namespace", opts.Namespace)
	r := &run{c: c, opts: opts, log: log}
	deadline := opts.Clock.Now().Add(opts.Timeout)
	log.Info("Deleting the namespace's JobSchedules and jobs", "timeout", opts.Timeout)
	for {
		left, err := r.pass(ctx)
		if err != nil {
			return r.res, err
		}
		if len(left) == 0 {
			log.Info("Every job is gone", "schedulesDeleted", r.res.Schedules, "jobsDeleted", r.res.Jobs,
				"finalizersRemoved", len(r.res.Released))
			return r.res, nil
		}
		if !opts.Clock.Now().Before(deadline) {
			return r.res, r.removeFinalizers(ctx, left)
		}
		log.V(1).Info("Waiting for the controller to release the jobs", "left", len(left))
		if err := r.sleep(ctx); err != nil {
			return r.res, err
		}
	}
}

type run struct {
	c    client.Client
	opts Options
	log  logr.Logger
	res  Result
}

// pass deletes the schedules there are and the jobs not being deleted yet, and returns the jobs
// still there.
func (r *run) pass(ctx context.Context) ([]jobsv1alpha1.JobObject, error) {
	schedules := &jobsv1alpha1.JobScheduleList{}
	if err := r.c.List(ctx, schedules, client.InNamespace(r.opts.Namespace)); err != nil {
		return nil, fmt.Errorf("list JobSchedules: %w", err)
	}
	if n := len(schedules.Items); n > 0 {
		if err := r.deleteAll(ctx, &jobsv1alpha1.JobSchedule{}); err != nil {
			return nil, fmt.Errorf("delete JobSchedules: %w", err)
		}
		r.res.Schedules += n
		r.log.Info("Deleted the JobSchedules", "count", n)
	}
	var left []jobsv1alpha1.JobObject
	for _, kind := range jobsv1alpha1.JobKinds {
		list := kind.NewList()
		if err := r.c.List(ctx, list, client.InNamespace(r.opts.Namespace)); err != nil {
			return nil, fmt.Errorf("list %ss: %w", kind.Kind, err)
		}
		jobs := list.Jobs()
		// One deletecollection per kind, and only when something is not being deleted yet:
		// a namespace at the scale target holds 20,000 jobs of a kind.
		if live := countLive(jobs); live > 0 {
			if err := r.deleteAll(ctx, kind.New()); err != nil {
				return nil, fmt.Errorf("delete %ss: %w", kind.Kind, err)
			}
			r.res.Jobs += live
			r.log.Info("Deleted jobs", "kind", kind.Kind, "count", live)
		}
		left = append(left, jobs...)
	}
	return left, nil
}

func (r *run) deleteAll(ctx context.Context, obj client.Object) error {
	return r.c.DeleteAllOf(ctx, obj, client.InNamespace(r.opts.Namespace), client.PropagationPolicy("Background"))
}

// removeFinalizers removes the product's finalizer from the jobs left, deletes what appeared
// meanwhile, and reports what still stays.
func (r *run) removeFinalizers(ctx context.Context, left []jobsv1alpha1.JobObject) error {
	r.log.Info("The controller did not release every job in time: removing their finalizers; their Redis records stay until Redis expires them",
		"timeout", r.opts.Timeout, "left", len(left))
	for range removalPasses {
		for _, job := range left {
			if err := r.removeFinalizer(ctx, job); err != nil {
				return err
			}
		}
		var err error
		if left, err = r.pass(ctx); err != nil || len(left) == 0 {
			return err
		}
	}
	names := make([]string, 0, len(left))
	for _, job := range left {
		names = append(names, fmt.Sprintf("%s (finalizers %s)", nameOf(job), strings.Join(job.GetFinalizers(), ",")))
	}
	slices.Sort(names)
	return fmt.Errorf("%w in namespace %s: %s", ErrLeft, r.opts.Namespace, strings.Join(names, "; "))
}

// removeFinalizer removes the product's finalizer from a job being deleted. The resourceVersion
// precondition keeps a job's other finalizers; a conflict or a job already gone is left to the
// next pass, which lists again.
func (r *run) removeFinalizer(ctx context.Context, job jobsv1alpha1.JobObject) error {
	if job.GetDeletionTimestamp() == nil || !controllerutil.ContainsFinalizer(job, jobsv1alpha1.Finalizer) {
		return nil
	}
	before := job.DeepCopyObject().(jobsv1alpha1.JobObject)
	controllerutil.RemoveFinalizer(job, jobsv1alpha1.Finalizer)
	err := r.c.Patch(ctx, job, client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{}))
	switch {
	case apierrors.IsNotFound(err) || apierrors.IsConflict(err):
		return nil
	case err != nil:
		return fmt.Errorf("remove the finalizer of %s: %w", nameOf(job), err)
	}
	r.res.Released = append(r.res.Released, nameOf(job))
	r.log.Info("Removed the finalizer the controller did not release", "job", nameOf(job), "phase", job.JobStatus().Phase)
	return nil
}

func (r *run) sleep(ctx context.Context) error {
	t := r.opts.Clock.NewTimer(r.opts.PollInterval)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return fmt.Errorf("waiting for the jobs to go: %w", context.Cause(ctx))
	case <-t.C():
		return nil
	}
}

func countLive(jobs []jobsv1alpha1.JobObject) int {
	n := 0
	for _, j := range jobs {
		if j.GetDeletionTimestamp() == nil {
			n++
		}
	}
	return n
}

func nameOf(job jobsv1alpha1.JobObject) Job {
	return Job(kindOf(job) + "/" + job.GetName())
}

// kindOf is the job's kind: typed objects from a list carry no TypeMeta.
func kindOf(job jobsv1alpha1.JobObject) string {
	if k, ok := jobsv1alpha1.KindOf(job.QueueName()); ok {
		return k.Kind
	}
	return string(job.QueueName())
}
