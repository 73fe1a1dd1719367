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

// CredentialRef names one value of a credential Secret, for a job of UserID.
type CredentialRef struct {
	Namespace, Name, Key string
	// UserID is the job's spec.userId: the Secret must be labelled with it.
	UserID string
}

// SecretReader reads one value of a credential Secret a job names.
type SecretReader interface {
	SecretValue(ctx context.Context, ref CredentialRef) (string, error)
}

// KubeSecrets reads credential Secrets from the kube-apiserver. A job may use only a Secret in its
// own namespace labelled jobs.jengu.io/credential=true and jobs.jengu.io/user=<the job's user>, so
// naming any other Secret (a service account token, another user's or another team's keys) gets
// nothing.
type KubeSecrets struct {
	Client client.Client
}

var _ SecretReader = KubeSecrets{}

// +kubebuilder:rbac:groups="",resources=secrets,verbs=get

// SecretValue returns the key's value. A missing, unlabelled, someone else's or incomplete
// Secret is a PermanentError (retrying cannot fix it) whose public message is the same in every
// case, so a job's user learns nothing about Secrets that are not theirs; the detail is only in
// the error (the worker's log and the job's Events).
func (k KubeSecrets) SecretValue(ctx context.Context, ref CredentialRef) (string, error) {
	secret := &corev1.Secret{}
	err := k.Client.Get(ctx, client.ObjectKey{Namespace: ref.Namespace, Name: ref.Name}, secret)
	switch {
	case apierrors.IsNotFound(err):
		return "", unusableCredential(ref, errors.New("not found"))
	case apierrors.IsForbidden(err):
		// The worker's Role limits Secret reads to named ones (resourceNames): any other is as
		// unusable as a missing one.
		return "", unusableCredential(ref, err)
	case err != nil:
		return "", fmt.Errorf("read credential Secret %s/%s: %w", ref.Namespace, ref.Name, err)
	case secret.Labels[jobsv1alpha1.LabelCredential] != "true":
		return "", unusableCredential(ref, fmt.Errorf("not labelled %s=true", jobsv1alpha1.LabelCredential))
	case ref.UserID == "" || secret.Labels[jobsv1alpha1.LabelCredentialOwner] != ref.UserID:
		return "", unusableCredential(ref, fmt.Errorf("labelled %s=%q, the job's user is %q",
			jobsv1alpha1.LabelCredentialOwner, secret.Labels[jobsv1alpha1.LabelCredentialOwner], ref.UserID))
	}
	value, ok := secret.Data[ref.Key]
	if !ok || len(value) == 0 {
		return "", unusableCredential(ref, fmt.Errorf("no key %q", ref.Key))
	}
	return string(value), nil
}

// unusableCredential is the one error of a credential Secret a job may not use.
func unusableCredential(ref CredentialRef, detail error) error {
	return Permanent(Public(fmt.Sprintf("credential Secret %q cannot be used by this job: it must exist in the job's namespace, "+
		"be labelled %s=true and %s=<the job's userId>, and hold the key %s",
		ref.Name, jobsv1alpha1.LabelCredential, jobsv1alpha1.LabelCredentialOwner, ref.Key),
		fmt.Errorf("credential Secret %s/%s: %w", ref.Namespace, ref.Name, detail)))
}

// ErrNoSecrets: a job names a credential Secret but this worker reads none.
var ErrNoSecrets = errors.New("this worker cannot read credential Secrets")
