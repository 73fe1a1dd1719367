package controllers

import (
	"k8s.io/client-go/tools/events"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	jobsv1alpha1 "github.com/jengu/queue-operator/api/v1alpha1"
	"github.com/jengu/queue-operator/queue"
)

// NewJobReconciler is a job reconciler over c (reads like a cache's) and reader (the
// kube-apiserver's), for tests that drive Reconcile by hand.
func NewJobReconciler(kind jobsv1alpha1.JobKind, c client.Client, reader client.Reader, engine *queue.Engine, opts Options) reconcile.Reconciler {
	return &JobReconciler{kind: kind, client: c, status: freshReads{Client: c, reader: reader}, engine: engine,
		recorder: events.NewFakeRecorder(100), clock: opts.Clock, opts: opts}
}
