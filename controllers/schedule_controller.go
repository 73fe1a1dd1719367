package controllers

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	jobsv1alpha1 "github.com/jengu/queue-operator/api/v1alpha1"
)

// ScheduleReconciler creates a JobSchedule's jobs at its runs, as the CronJob controller
// creates Jobs: named from the schedule and the run's time (the kube-apiserver's AlreadyExists
// makes a run create one job whatever restarts or races), owned by the schedule, at most the
// latest missed run caught up within the starting deadline, its concurrency policy counted
// over its unfinished jobs, and its finished jobs pruned to the history limits.
type ScheduleReconciler struct {
	client client.Client
	// reader reads the schedule from the kube-apiserver before a run: a second controller (or
	// this one before a restart) may have run it since the cache's copy.
	reader   client.Reader
	recorder events.EventRecorder
	clock    clock.PassiveClock
	// recheck bounds how long a schedule waits between reconciles (0: until its next run).
	recheck time.Duration
}

var _ reconcile.Reconciler = &ScheduleReconciler{}

// +kubebuilder:rbac:groups=jobs.jengu.io,resources=jobschedules,verbs=get;list;watch
// +kubebuilder:rbac:groups=jobs.jengu.io,resources=jobschedules/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=jobs.jengu.io,resources=jobschedules/finalizers,verbs=update
// +kubebuilder:rbac:groups=jobs.jengu.io,resources=enrichmentjobs;competitorjobs;analyticsjobs,verbs=create

func setupSchedules(mgr ctrl.Manager, opts Options) error {
	r := &ScheduleReconciler{client: mgr.GetClient(), reader: mgr.GetAPIReader(),
		recorder: mgr.GetEventRecorder("queue-operator"), clock: opts.Clock, recheck: opts.ScheduleRecheck}
	b := ctrl.NewControllerManagedBy(mgr).Named("jobschedule").For(&jobsv1alpha1.JobSchedule{})
	for _, kind := range jobsv1alpha1.JobKinds {
		// A job that finishes or goes frees a Forbid run, and moves the history and the status.
		b = b.Owns(kind.New())
	}
	return b.Complete(r)
}

// Reconcile runs one schedule: its jobs, its history, and its run if one is due.
func (r *ScheduleReconciler) Reconcile(ctx context.Context, req reconcile.Request) (result reconcile.Result, err error) {
	s := &jobsv1alpha1.JobSchedule{}
	if err := r.client.Get(ctx, req.NamespacedName, s); err != nil {
		return reconcile.Result{}, client.IgnoreNotFound(err)
	}
	if !s.DeletionTimestamp.IsZero() {
		return reconcile.Result{}, nil // its jobs go with it (owner references)
	}
	before := s.DeepCopy()
	defer func() {
		s.Status.ObservedGeneration = s.Generation
		if equality.Semantic.DeepEqual(before.Status, s.Status) {
			return
		}
		if perr := r.client.Status().Patch(ctx, s, client.MergeFrom(before)); perr != nil && !apierrors.IsNotFound(perr) {
			err = fmt.Errorf("write status of schedule %s: %w", req.Name, perr)
		}
	}()
	return r.reconcile(ctx, s)
}

func (r *ScheduleReconciler) reconcile(ctx context.Context, s *jobsv1alpha1.JobSchedule) (reconcile.Result, error) {
	jobs, err := r.jobsOf(ctx, s)
	if err != nil {
		return reconcile.Result{}, err
	}
	active := r.observe(s, jobs)
	if err := r.pruneHistory(ctx, s, jobs); err != nil {
		return reconcile.Result{}, err
	}
	sched, reason, err := parseSchedule(&s.Spec)
	if err != nil {
		s.Status.NextScheduleTime = nil
		r.setReady(s, metav1.ConditionFalse, reason, err.Error())
		return reconcile.Result{}, nil // reconciled again when the spec changes
	}
	if s.Spec.Suspend {
		s.Status.NextScheduleTime = nil
		r.setReady(s, metav1.ConditionTrue, jobsv1alpha1.ReasonSuspended, "Suspended: no new runs")
		return reconcile.Result{}, nil
	}
	r.setReady(s, metav1.ConditionTrue, jobsv1alpha1.ReasonScheduled, "")
	now := r.clock.Now()
	next := sched.next(now)
	s.Status.NextScheduleTime = &metav1.Time{Time: next}
	result := reconcile.Result{RequeueAfter: next.Sub(now)}
	if r.recheck > 0 && r.recheck < result.RequeueAfter {
		result.RequeueAfter = r.recheck
	}
	run, missed := sched.lastMissed(earliestRun(s, now), now)
	if run.IsZero() {
		return result, nil
	}
	if missed > tooManyMissed {
		r.recorder.Eventf(s, nil, corev1.EventTypeWarning, jobsv1alpha1.ReasonTooManyMissed, "Schedule",
			"%d runs were missed; only the latest, %s, starts", missed, run.UTC().Format(time.RFC3339))
	}
	return result, r.start(ctx, s, run, active)
}

// start runs the schedule at run, as its concurrency policy allows.
func (r *ScheduleReconciler) start(ctx context.Context, s *jobsv1alpha1.JobSchedule, run time.Time, active []jobsv1alpha1.JobObject) error {
	// The cache may lag a run made since (by another replica, before a restart, or by this
	// reconciler a moment ago): the stored schedule and the run's own job decide, before the
	// policy acts on the unfinished jobs, which may hold the run's own.
	fresh := &jobsv1alpha1.JobSchedule{}
	if err := r.reader.Get(ctx, client.ObjectKeyFromObject(s), fresh); err != nil {
		return client.IgnoreNotFound(err)
	}
	if last := fresh.Status.LastScheduleTime; last != nil && !last.Time.Before(run) {
		s.Status.LastScheduleTime = last
		return nil
	}
	name := jobsv1alpha1.ScheduledJobName(s.Name, run)
	if slices.ContainsFunc(active, func(job jobsv1alpha1.JobObject) bool { return job.GetName() == name }) {
		s.Status.LastScheduleTime = &metav1.Time{Time: run}
		return nil
	}
	switch {
	case len(active) == 0, s.Spec.ConcurrencyPolicy == jobsv1alpha1.ConcurrencyAllow, s.Spec.ConcurrencyPolicy == "":
	case s.Spec.ConcurrencyPolicy == jobsv1alpha1.ConcurrencyForbid:
		r.recorder.Eventf(s, nil, corev1.EventTypeNormal, jobsv1alpha1.ReasonConcurrentSkip, "Schedule",
			"Run %s waits: %d job(s) of earlier runs have not finished", run.UTC().Format(time.RFC3339), len(active))
		return nil
	case s.Spec.ConcurrencyPolicy == jobsv1alpha1.ConcurrencyReplace:
		replaced := active
		active, s.Status.Active = nil, nil
		for _, job := range replaced {
			uid := job.GetUID()
			err := r.client.Delete(ctx, job, client.Preconditions{UID: &uid}, client.PropagationPolicy(metav1.DeletePropagationBackground))
			if client.IgnoreNotFound(err) != nil {
				return fmt.Errorf("replace job %s: %w", job.GetName(), err)
			}
			r.recorder.Eventf(s, job, corev1.EventTypeNormal, jobsv1alpha1.ReasonJobReplaced, "Schedule",
				"Deleted unfinished job %s for run %s", job.GetName(), run.UTC().Format(time.RFC3339))
		}
	}
	job, err := r.newJob(s, run)
	if err != nil {
		return err
	}
	switch err := r.client.Create(ctx, job); {
	case err == nil:
		r.recorder.Eventf(s, job, corev1.EventTypeNormal, jobsv1alpha1.ReasonJobCreated, "Schedule",
			"Created job %s for run %s", job.GetName(), run.UTC().Format(time.RFC3339))
	case apierrors.IsAlreadyExists(err):
		// Another controller made this run's job: the name is the arbiter.
	default:
		return fmt.Errorf("create job for run %s of schedule %s: %w", run.UTC().Format(time.RFC3339), s.Name, err)
	}
	s.Status.LastScheduleTime = &metav1.Time{Time: run}
	s.Status.Active = appendActive(s.Status.Active, job)
	s.Status.ActiveCount = int32(len(active) + 1)
	return nil
}

// newJob makes the schedule's job for run: the template's spec, stamped as every job is, named
// for the run, labelled with and owned by the schedule.
func (r *ScheduleReconciler) newJob(s *jobsv1alpha1.JobSchedule, run time.Time) (jobsv1alpha1.JobObject, error) {
	job := s.Spec.JobTemplate.NewJob()
	if job == nil {
		return nil, fmt.Errorf("schedule %s has no job template", s.Name)
	}
	job.SetName(jobsv1alpha1.ScheduledJobName(s.Name, run))
	job.SetLabels(map[string]string{jobsv1alpha1.LabelSchedule: s.Name})
	job.SetAnnotations(map[string]string{jobsv1alpha1.AnnotationScheduledAt: run.UTC().Format(time.RFC3339)})
	jobsv1alpha1.Stamp(job, s.Namespace)
	if err := controllerutil.SetControllerReference(s, job, r.client.Scheme()); err != nil {
		return nil, err
	}
	return job, nil
}

// jobsOf lists the schedule's jobs of every kind: labelled with its name and owned by it (not by
// an earlier schedule of the same name).
func (r *ScheduleReconciler) jobsOf(ctx context.Context, s *jobsv1alpha1.JobSchedule) ([]jobsv1alpha1.JobObject, error) {
	var jobs []jobsv1alpha1.JobObject
	for _, kind := range jobsv1alpha1.JobKinds {
		list := kind.NewList()
		if err := r.client.List(ctx, list, client.InNamespace(s.Namespace), client.MatchingLabels{jobsv1alpha1.LabelSchedule: s.Name}); err != nil {
			return nil, fmt.Errorf("list jobs of schedule %s: %w", s.Name, err)
		}
		for _, job := range list.Jobs() {
			if owner := metav1.GetControllerOf(job); owner != nil && owner.UID == s.UID {
				jobs = append(jobs, job)
			}
		}
	}
	slices.SortFunc(jobs, func(a, b jobsv1alpha1.JobObject) int { return runOf(a).Compare(runOf(b)) })
	return jobs, nil
}

// observe sets the status from the jobs (active ones, last success) and returns the active ones.
func (r *ScheduleReconciler) observe(s *jobsv1alpha1.JobSchedule, jobs []jobsv1alpha1.JobObject) []jobsv1alpha1.JobObject {
	var active []jobsv1alpha1.JobObject
	s.Status.Active = nil
	for _, job := range jobs {
		status := job.JobStatus()
		switch {
		case status.Phase == jobsv1alpha1.PhaseCompleted && status.FinishedAt != nil:
			if last := s.Status.LastSuccessfulTime; last == nil || last.Before(status.FinishedAt) {
				s.Status.LastSuccessfulTime = status.FinishedAt.DeepCopy()
			}
		case !status.Phase.IsFinished() && job.GetDeletionTimestamp().IsZero():
			active = append(active, job)
			s.Status.Active = appendActive(s.Status.Active, job)
		}
	}
	s.Status.ActiveCount = int32(len(active))
	return active
}

// maxActiveListed is status.active's bound; activeCount counts the rest.
const maxActiveListed = 50

func appendActive(refs []jobsv1alpha1.JobReference, job jobsv1alpha1.JobObject) []jobsv1alpha1.JobReference {
	if len(refs) >= maxActiveListed {
		return refs
	}
	kind, _ := jobsv1alpha1.KindOf(job.QueueName())
	return append(refs, jobsv1alpha1.JobReference{Kind: kind.Kind, Name: job.GetName()})
}

// pruneHistory deletes the oldest finished jobs beyond the history limits.
func (r *ScheduleReconciler) pruneHistory(ctx context.Context, s *jobsv1alpha1.JobSchedule, jobs []jobsv1alpha1.JobObject) error {
	keep := map[jobsv1alpha1.JobPhase]int{jobsv1alpha1.PhaseCompleted: 3, jobsv1alpha1.PhaseFailed: 1}
	if l := s.Spec.SuccessfulJobsHistoryLimit; l != nil {
		keep[jobsv1alpha1.PhaseCompleted] = int(*l)
	}
	if l := s.Spec.FailedJobsHistoryLimit; l != nil {
		keep[jobsv1alpha1.PhaseFailed] = int(*l)
	}
	for phase, limit := range keep {
		var finished []jobsv1alpha1.JobObject
		for _, job := range jobs {
			if job.JobStatus().Phase != phase || !job.GetDeletionTimestamp().IsZero() {
				continue
			}
			if wait, err := chainHolds(ctx, r.client, job); err != nil || wait > 0 {
				continue // pruned once its follow-ups have finished (a listing error: next time)
			}
			finished = append(finished, job)
		}
		// jobs is oldest run first: the first len-limit go.
		for _, job := range finished[:max(len(finished)-limit, 0)] {
			uid := job.GetUID()
			err := r.client.Delete(ctx, job, client.Preconditions{UID: &uid}, client.PropagationPolicy(metav1.DeletePropagationBackground))
			if client.IgnoreNotFound(err) != nil {
				return fmt.Errorf("prune job %s of schedule %s: %w", job.GetName(), s.Name, err)
			}
			r.recorder.Eventf(s, job, corev1.EventTypeNormal, jobsv1alpha1.ReasonHistoryPruned, "Schedule",
				"Deleted %s job %s beyond the history limit of %d", strings.ToLower(string(phase)), job.GetName(), limit)
		}
	}
	return nil
}

func (r *ScheduleReconciler) setReady(s *jobsv1alpha1.JobSchedule, status metav1.ConditionStatus, reason, message string) {
	meta.SetStatusCondition(&s.Status.Conditions, metav1.Condition{Type: jobsv1alpha1.ConditionReady, Status: status,
		Reason: reason, Message: truncateMessage(message), ObservedGeneration: s.Generation})
}

// runOf is the run a schedule's job was made for (its creation when the annotation is gone).
func runOf(job jobsv1alpha1.JobObject) time.Time {
	if t, err := time.Parse(time.RFC3339, job.GetAnnotations()[jobsv1alpha1.AnnotationScheduledAt]); err == nil {
		return t
	}
	return job.GetCreationTimestamp().Time
}

func truncateMessage(s string) string {
	if len(s) > 1024 {
		return s[:1024]
	}
	return s
}
