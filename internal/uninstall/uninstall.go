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
	"strings"
	"time"

	"github.com/go-logr/logr"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
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

// pageSize bounds the objects a list returns at once: a namespace at the scale target holds
// 20,000 jobs of a kind, and the hook's pod has little memory.
const pageSize = 500

// maxNamed bounds how many jobs Run's error names.
const maxNamed = 20

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
		left, err := r.pass(ctx, false)
		if err != nil {
			return r.res, err
		}
		if left.count == 0 {
			r.done()
			return r.res, nil
		}
		if !opts.Clock.Now().Before(deadline) {
			break
		}
		log.V(1).Info("Waiting for the controller to release the jobs", "left", left.count)
		if err := r.sleep(ctx); err != nil {
			return r.res, err
		}
	}
	log.Info("The controller did not release every job in time: removing their finalizers; their Redis records stay until Redis expires them",
		"timeout", opts.Timeout)
	var left leftover
	for range removalPasses {
		if _, err := r.pass(ctx, true); err != nil {
			return r.res, err
		}
		var err error
		if left, err = r.pass(ctx, false); err != nil {
			return r.res, err
		}
		if left.count == 0 {
			r.done()
			return r.res, nil
		}
	}
	return r.res, fmt.Errorf("%w in namespace %s: %d, held by other finalizers than %s: %s", ErrLeft, opts.Namespace,
		left.count, jobsv1alpha1.Finalizer, strings.Join(left.named, "; "))
}

type run struct {
	c    client.Client
	opts Options
	log  logr.Logger
	res  Result
}

// leftover is what a pass found: how many jobs, and the first of them by name.
type leftover struct {
	count int
	named []string
}

func (r *run) done() {
	r.log.Info("Every job is gone", "schedulesDeleted", r.res.Schedules, "jobsDeleted", r.res.Jobs,
		"finalizersRemoved", len(r.res.Released))
}

// pass deletes the schedules there are and the jobs not being deleted yet, removes the
// product's finalizer from the jobs being deleted when release is set, and returns what it
// found. It reads metadata only, a page at a time.
func (r *run) pass(ctx context.Context, release bool) (leftover, error) {
	var left leftover
	schedules, err := r.each(ctx, "JobSchedule", func(*metav1.PartialObjectMetadata) error { return nil })
	if err != nil {
		return left, err
	}
	if schedules > 0 {
		if err := r.deleteAll(ctx, "JobSchedule"); err != nil {
			return left, err
		}
		r.res.Schedules += schedules
		r.log.Info("Deleted the JobSchedules", "count", schedules)
	}
	for _, kind := range jobsv1alpha1.JobKinds {
		live := 0
		_, err := r.each(ctx, kind.Kind, func(job *metav1.PartialObjectMetadata) error {
			if len(left.named) < maxNamed {
				left.named = append(left.named, fmt.Sprintf("%s/%s (finalizers %s)", kind.Kind, job.Name, strings.Join(job.Finalizers, ",")))
			}
			left.count++
			if job.DeletionTimestamp == nil {
				live++
				return nil
			}
			if release {
				return r.removeFinalizer(ctx, kind.Kind, job)
			}
			return nil
		})
		if err != nil {
			return left, err
		}
		// One deletecollection per kind, and only when something is not being deleted yet.
		if live > 0 {
			if err := r.deleteAll(ctx, kind.Kind); err != nil {
				return left, err
			}
			r.res.Jobs += live
			r.log.Info("Deleted jobs", "kind", kind.Kind, "count", live)
		}
	}
	return left, nil
}

// each calls fn with every object of kind in the namespace, a page at a time, and returns how
// many there were.
func (r *run) each(ctx context.Context, kind string, fn func(*metav1.PartialObjectMetadata) error) (int, error) {
	list := &metav1.PartialObjectMetadataList{}
	list.SetGroupVersionKind(jobsv1alpha1.GroupVersion.WithKind(kind + "List"))
	n := 0
	for {
		if err := r.c.List(ctx, list, client.InNamespace(r.opts.Namespace), client.Limit(pageSize), client.Continue(list.Continue)); err != nil {
			return n, fmt.Errorf("list %ss: %w", kind, err)
		}
		for i := range list.Items {
			list.Items[i].SetGroupVersionKind(jobsv1alpha1.GroupVersion.WithKind(kind))
			if err := fn(&list.Items[i]); err != nil {
				return n, err
			}
		}
		n += len(list.Items)
		if list.Continue == "" {
			return n, nil
		}
	}
}

func (r *run) deleteAll(ctx context.Context, kind string) error {
	obj := &metav1.PartialObjectMetadata{}
	obj.SetGroupVersionKind(jobsv1alpha1.GroupVersion.WithKind(kind))
	if err := r.c.DeleteAllOf(ctx, obj, client.InNamespace(r.opts.Namespace), client.PropagationPolicy(metav1.DeletePropagationBackground)); err != nil {
		return fmt.Errorf("delete %ss: %w", kind, err)
	}
	return nil
}

// removeFinalizer removes the product's finalizer from a job being deleted. The resourceVersion
// precondition keeps a job's other finalizers; a conflict or a job already gone is left to the
// next pass, which lists again.
func (r *run) removeFinalizer(ctx context.Context, kind string, job *metav1.PartialObjectMetadata) error {
	if !controllerutil.ContainsFinalizer(job, jobsv1alpha1.Finalizer) {
		return nil
	}
	before := job.DeepCopy()
	controllerutil.RemoveFinalizer(job, jobsv1alpha1.Finalizer)
	name := Job(kind + "/" + job.Name)
	err := r.c.Patch(ctx, job, client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{}))
	switch {
	case apierrors.IsNotFound(err) || apierrors.IsConflict(err):
		return nil
	case err != nil:
		return fmt.Errorf("remove the finalizer of %s: %w", name, err)
	}
	r.res.Released = append(r.res.Released, name)
	r.log.Info("Removed the finalizer the controller did not release", "job", name)
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
