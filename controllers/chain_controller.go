package controllers

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	jobsv1alpha1 "github.com/jengu/queue-operator/api/v1alpha1"
	"github.com/jengu/queue-operator/jobstatus"
)

// ChainReconciler creates a completed job's follow-ups (spec.then): each named from the parent
// and its step (FollowUpName), so the kube-apiserver's AlreadyExists makes each one exist once
// whatever restarts or races; labelled with and owned by the parent; listed in the parent's
// status.followUps. A job that failed gets none (a DLQ retry that completes it does).
type ChainReconciler struct {
	kind   jobsv1alpha1.JobKind
	client client.Client
	// status writes the parent's followUps through jobstatus, re-reading on a conflict from the
	// kube-apiserver.
	status   client.Client
	recorder events.EventRecorder
}

var _ reconcile.Reconciler = &ChainReconciler{}

func setupChain(mgr ctrl.Manager, kind jobsv1alpha1.JobKind) error {
	r := &ChainReconciler{kind: kind, client: mgr.GetClient(),
		status: freshReads{Client: mgr.GetClient(), reader: mgr.GetAPIReader()}, recorder: mgr.GetEventRecorder("queue-operator")}
	hasThen := predicate.NewPredicateFuncs(func(o client.Object) bool {
		job, ok := o.(jobsv1alpha1.JobObject)
		return ok && len(job.Common().Then) > 0
	})
	return ctrl.NewControllerManagedBy(mgr).
		Named(string(kind.Queue)+"-chain").
		For(kind.New(), builder.WithPredicates(hasThen)).
		Complete(r)
}

// Reconcile creates the follow-ups of a completed job that has not got them all yet.
func (r *ChainReconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	parent := r.kind.New()
	if err := r.client.Get(ctx, req.NamespacedName, parent); err != nil {
		return reconcile.Result{}, client.IgnoreNotFound(err)
	}
	if !chainPending(parent) || !parent.GetDeletionTimestamp().IsZero() {
		return reconcile.Result{}, nil
	}
	names := make([]string, 0, len(parent.Common().Then))
	for step := range parent.Common().Then {
		name, err := r.createFollowUp(ctx, parent, step)
		if err != nil {
			return reconcile.Result{}, err
		}
		names = append(names, name)
	}
	err := jobstatus.WriteUnversioned(ctx, r.status, parent, func(s *jobsv1alpha1.JobStatus) { s.FollowUps = names })
	if err != nil {
		return reconcile.Result{}, err
	}
	r.recorder.Eventf(parent, nil, corev1.EventTypeNormal, jobsv1alpha1.ReasonFollowUpsCreated, "Chain",
		"Completed: follow-ups %v", names)
	return reconcile.Result{}, nil
}

// createFollowUp creates the parent's then[step] unless it exists, and returns its name.
func (r *ChainReconciler) createFollowUp(ctx context.Context, parent jobsv1alpha1.JobObject, step int) (string, error) {
	followUp := &parent.Common().Then[step]
	job := followUp.NewJob(parent)
	if job == nil {
		return "", fmt.Errorf("then[%d] of %s names no job kind", step, parent.GetName())
	}
	kind, _ := jobsv1alpha1.KindOf(job.QueueName())
	job.SetName(jobsv1alpha1.FollowUpName(parent, step, kind))
	job.SetLabels(map[string]string{jobsv1alpha1.LabelParent: parent.GetName()})
	jobsv1alpha1.Stamp(job, parent.GetNamespace())
	if err := controllerutil.SetControllerReference(parent, job, r.client.Scheme()); err != nil {
		return "", err
	}
	err := r.client.Create(ctx, job)
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return "", fmt.Errorf("create then[%d] of %s: %w", step, parent.GetName(), err)
	}
	return job.GetName(), nil
}

// chainHolds says whether a finished job must stay for its chain, and for how long to wait
// before asking again: until it has every follow-up (chainPending), and while one of them is
// unfinished, since its follow-ups are its dependents and go with it.
func chainHolds(ctx context.Context, c client.Reader, job jobsv1alpha1.JobObject) (time.Duration, error) {
	if chainPending(job) {
		return time.Second, nil
	}
	then := job.Common().Then
	for i, name := range job.JobStatus().FollowUps {
		if i >= len(then) {
			break
		}
		followUp := then[i].NewJob(job)
		if followUp == nil {
			continue
		}
		err := c.Get(ctx, client.ObjectKey{Namespace: job.GetNamespace(), Name: name}, followUp)
		if apierrors.IsNotFound(err) {
			continue
		}
		if err != nil {
			return 0, err
		}
		if !followUp.JobStatus().Phase.IsFinished() {
			return followUpRecheck, nil
		}
	}
	return 0, nil
}

// followUpRecheck is how often a finished parent looks whether its follow-ups have finished.
const followUpRecheck = 5 * time.Second

// chainPending says whether a job has completed and not yet got every follow-up of its then:
// until it has, the job is not expired (its TTL may be shorter than the chain's reconcile).
func chainPending(job jobsv1alpha1.JobObject) bool {
	return job.JobStatus().Phase == jobsv1alpha1.PhaseCompleted && len(job.JobStatus().FollowUps) < len(job.Common().Then)
}
