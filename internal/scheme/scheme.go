// Package scheme builds the one runtime.Scheme of the binary, the facade and the tests: the
// built-in kinds and jobs.jengu.io/v1alpha1.
package scheme

import (
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"

	jobsv1alpha1 "github.com/jengu/queue-operator/api/v1alpha1"
)

// New returns a new scheme that knows the built-in kinds and jobs.jengu.io/v1alpha1. It is
// new on every call, so a caller may add kinds of its own (the tests add the CRD types).
func New() *runtime.Scheme {
	s := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(s))
	utilruntime.Must(jobsv1alpha1.AddToScheme(s))
	return s
}
