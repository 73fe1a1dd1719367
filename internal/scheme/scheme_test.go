package scheme_test

import (
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"

	jobsv1alpha1 "github.com/jengu/queue-operator/api/v1alpha1"
	"github.com/jengu/queue-operator/internal/scheme"
)

func TestNewKnowsTheProductsKinds(t *testing.T) {
	s := scheme.New()
	objs := []runtime.Object{&corev1.Secret{}, &appsv1.Deployment{}, &jobsv1alpha1.JobQueue{}}
	for _, k := range jobsv1alpha1.JobKinds {
		objs = append(objs, k.New(), k.NewList())
	}
	for _, obj := range objs {
		if _, _, err := s.ObjectKinds(obj); err != nil {
			t.Errorf("%T: %v", obj, err)
		}
	}
	if scheme.New() == s {
		t.Error("New returned the same scheme twice; callers that add kinds would share them")
	}
}
