package workers

import (
	"context"
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	jobsv1alpha1 "github.com/jengu/queue-operator/api/v1alpha1"
)

// SecretReader reads one value of a credential Secret a job names.
type SecretReader interface {
	SecretValue(ctx context.Context, namespace, name, key string) (string, error)
}

// KubeSecrets reads credential Secrets from the kube-apiserver. A job may use only a Secret in its
// own namespace labelled jobs.jengu.io/credential=true, so naming any other Secret (a service
// account token, another team's keys) gets nothing.
type KubeSecrets struct {
	Client client.Client
}

var _ SecretReader = KubeSecrets{}

// +kubebuilder:rbac:groups="",resources=secrets,verbs=get

// SecretValue returns the key's value. A missing, unlabelled or incomplete Secret is a
// PermanentError: retrying cannot fix it.
func (k KubeSecrets) SecretValue(ctx context.Context, namespace, name, key string) (string, error) {
	secret := &corev1.Secret{}
	err := k.Client.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, secret)
	if apierrors.IsNotFound(err) {
		return "", Permanent(fmt.Errorf("credential Secret %s/%s not found", namespace, name))
	}
	if err != nil {
		return "", fmt.Errorf("read credential Secret %s/%s: %w", namespace, name, err)
	}
	if secret.Labels[jobsv1alpha1.LabelCredential] != "true" {
		return "", Permanent(fmt.Errorf("Secret %s/%s is not labelled %s=true, so jobs may not use it", namespace, name, jobsv1alpha1.LabelCredential))
	}
	value, ok := secret.Data[key]
	if !ok || len(value) == 0 {
		return "", Permanent(fmt.Errorf("credential Secret %s/%s has no key %q", namespace, name, key))
	}
	return string(value), nil
}

// ErrNoSecrets: a job names a credential Secret but this worker reads none.
var ErrNoSecrets = errors.New("this worker cannot read credential Secrets")
