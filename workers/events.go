package workers

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/events"

	jobsv1alpha1 "github.com/jengu/queue-operator/api/v1alpha1"
	"github.com/jengu/queue-operator/queue"
)

// AttemptEvents hears each failed attempt with its full error, which the job's user never sees
// (PublicReason): the worker's log has it, and so may the job's Events.
type AttemptEvents interface {
	AttemptFailed(record *queue.Record, failure queue.Failure, err error)
}

// KubeEvents records a Warning Event on the job's CR for each failed attempt, its note the full
// error. Events are read by the cluster's operators (kubectl describe), not through the facade.
type KubeEvents struct {
	recorder  events.EventRecorder
	newObj    func() jobsv1alpha1.JobObject
	namespace string
}

var _ AttemptEvents = (*KubeEvents)(nil)

// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// NewKubeEvents records the Events of namespace's jobs (made by newObj) through cfg until ctx
// ends.
func NewKubeEvents(ctx context.Context, cfg *rest.Config, scheme *runtime.Scheme, newObj func() jobsv1alpha1.JobObject,
	namespace string) (*KubeEvents, error) {
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("events client: %w", err)
	}
	broadcaster := events.NewBroadcaster(&events.EventSinkImpl{Interface: cs.EventsV1()})
	if err := broadcaster.StartRecordingToSinkWithContext(ctx); err != nil {
		return nil, fmt.Errorf("start recording events: %w", err)
	}
	go func() { <-ctx.Done(); broadcaster.Shutdown() }()
	return &KubeEvents{recorder: broadcaster.NewRecorder(scheme, "queue-operator-worker"), newObj: newObj, namespace: namespace}, nil
}

// maxEventNote is below the API server's limit on an Event's note (1 KiB).
const maxEventNote = 1000

// AttemptFailed records the attempt's full error on the job's CR.
func (k *KubeEvents) AttemptFailed(record *queue.Record, failure queue.Failure, err error) {
	obj := k.newObj()
	obj.SetNamespace(k.namespace)
	obj.SetName(record.ID)
	obj.SetUID(types.UID(record.UID))
	note := fmt.Sprintf("attempt %d (%s): %v", record.AttemptsMade+1, failure.Kind, err)
	if len(note) > maxEventNote {
		note = note[:maxEventNote]
	}
	k.recorder.Eventf(obj, nil, corev1.EventTypeWarning, "AttemptFailed", "Process", "%s", note)
}
