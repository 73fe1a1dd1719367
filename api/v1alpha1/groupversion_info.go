// Package v1alpha1 holds the jobs.jengu.io/v1alpha1 API: the three job kinds (EnrichmentJob,
// CompetitorJob, AnalyticsJob) and the JobQueue that configures and scales their queue.
//
// +kubebuilder:object:generate=true
// +groupName=jobs.jengu.io
package v1alpha1

import (
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/scheme"
)

var (
	// GroupVersion is the group and version of every kind in this package.
	GroupVersion = schema.GroupVersion{Group: "jobs.jengu.io", Version: "v1alpha1"}

	// SchemeBuilder registers the kinds of this package with a runtime.Scheme.
	SchemeBuilder = &scheme.Builder{GroupVersion: GroupVersion}

	// AddToScheme adds the kinds of this package to a runtime.Scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)
