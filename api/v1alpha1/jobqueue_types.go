package v1alpha1

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// BackoffType is how the delay between attempts grows.
// +kubebuilder:validation:Enum=exponential;fixed
type BackoffType string

const (
	// BackoffExponential waits delay × multiplier^(attempt-1): 5, 25, 125, 625 s at the defaults.
	BackoffExponential BackoffType = "exponential"
	// BackoffFixed waits delay between every two attempts.
	BackoffFixed BackoffType = "fixed"
)

// Backoff is the wait before a failed job's next attempt.
type Backoff struct {
	// type is exponential or fixed.
	// +optional
	// +kubebuilder:default=exponential
	Type BackoffType `json:"type,omitempty"`

	// delay before the second attempt (the first retry).
	// +optional
	// +kubebuilder:default="5s"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h))+$`
	Delay metav1.Duration `json:"delay,omitempty"`

	// multiplier grows an exponential delay at each further attempt.
	// +optional
	// +kubebuilder:default=5
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100
	Multiplier int32 `json:"multiplier,omitempty"`

	// jitterPercent spreads each delay randomly by up to this share, so retries of jobs that
	// failed together do not come back together.
	// +optional
	// +kubebuilder:default=0
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100
	JitterPercent int32 `json:"jitterPercent,omitempty"`
}

// RetryPolicy is how often a failing job is tried and how long it waits in between.
type RetryPolicy struct {
	// attempts is the number of attempts in all, the first included (BullMQ's attempts).
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100
	Attempts *int32 `json:"attempts,omitempty"`

	// backoff between attempts.
	// +optional
	Backoff Backoff `json:"backoff,omitempty"`
}

// RateLimit caps how many jobs of the queue start per window, across all workers; or, with
// unlimited: true, says the queue has no cap (the seed's 10 per minute on enrichment included).
// +kubebuilder:validation:XValidation:rule="has(self.unlimited) && self.unlimited ? !has(self.max) : (has(self.max) && has(self.duration))",message="set either unlimited: true, or max and duration"
type RateLimit struct {
	// unlimited switches the cap off, the seed's default included.
	// +optional
	Unlimited bool `json:"unlimited,omitempty"`

	// max jobs started per duration.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1000000
	Max int32 `json:"max,omitempty"`

	// duration of the window.
	// +optional
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h))+$`
	Duration metav1.Duration `json:"duration,omitempty"`
}

// Retention is how long finished jobs are kept; it is the default of each job's
// ttlSecondsAfterFinished.
type Retention struct {
	// completed jobs are kept this long.
	// +optional
	// +kubebuilder:default="24h"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h))+$`
	Completed metav1.Duration `json:"completed,omitempty"`

	// failed jobs stay in the dead letter set this long.
	// +optional
	// +kubebuilder:default="168h"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h))+$`
	Failed metav1.Duration `json:"failed,omitempty"`
}

// WorkerSpec is the Deployment that runs the queue's workers.
type WorkerSpec struct {
	// image of the queue-operator binary the workers run (`queue-operator worker --queue NAME`).
	// Defaults to the controller's own image.
	// +optional
	// +kubebuilder:validation:MaxLength=512
	Image string `json:"image,omitempty"`

	// template is merged into the worker pod template: resources, env, node selector,
	// tolerations, service account. It is validated when the Deployment is written, and errors
	// show on the JobQueue's Ready condition.
	// +optional
	// +kubebuilder:validation:Schemaless
	// +kubebuilder:validation:Type=object
	// +kubebuilder:pruning:PreserveUnknownFields
	Template *corev1.PodTemplateSpec `json:"template,omitempty"`

	// redisURLSecretRef names a Secret of the JobQueue's namespace, and its key, holding the
	// queues' Redis URL (with its password): the workers get it as REDIS_URL by secretKeyRef, so
	// it is in no Deployment in plain text. The controller neither reads nor copies the Secret.
	// Unset: the controller passes its own Redis URL in plain text, unless it runs with
	// --worker-plain-redis-url=false (the chart's default), when the template must set REDIS_URL.
	// +optional
	RedisURLSecretRef *SecretKeyRef `json:"redisURLSecretRef,omitempty"`
}

// SecretKeyRef names one key of a Secret in the object's own namespace.
type SecretKeyRef struct {
	// name of the Secret.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$`
	Name string `json:"name"`

	// key in the Secret's data.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[-._a-zA-Z0-9]+$`
	Key string `json:"key"`
}

// Autoscaling scales the worker Deployment on queue depth, as the HPA would.
// +kubebuilder:validation:XValidation:rule="!has(self.minReplicas) || !has(self.maxReplicas) || self.minReplicas <= self.maxReplicas",message="minReplicas must not exceed maxReplicas"
type Autoscaling struct {
	// enabled lets the controller own the Deployment's replicas. Set it false to leave them to
	// KEDA or an HPA.
	// +optional
	// +kubebuilder:default=true
	Enabled *bool `json:"enabled,omitempty"`

	// minReplicas is the floor; 0 allows scaling to zero when the queue is idle.
	// +optional
	// +kubebuilder:default=0
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=1000
	MinReplicas *int32 `json:"minReplicas,omitempty"`

	// maxReplicas is the ceiling.
	// +optional
	// +kubebuilder:default=10
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1000
	MaxReplicas *int32 `json:"maxReplicas,omitempty"`

	// targetJobsPerReplica is the queue depth (waiting + active) one replica should carry.
	// +optional
	// +kubebuilder:default=10
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100000
	TargetJobsPerReplica *int32 `json:"targetJobsPerReplica,omitempty"`

	// pollingInterval is how often the queue depth is read.
	// +optional
	// +kubebuilder:default="15s"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h))+$`
	PollingInterval metav1.Duration `json:"pollingInterval,omitempty"`

	// scaleUpStabilizationWindow: scaling up uses the lowest recommendation of this window.
	// +optional
	// +kubebuilder:default="0s"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h))+$`
	ScaleUpStabilizationWindow metav1.Duration `json:"scaleUpStabilizationWindow,omitempty"`

	// scaleDownStabilizationWindow: scaling down uses the highest recommendation of this window;
	// "0s" scales down at once.
	// +optional
	// +kubebuilder:default="300s"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h))+$`
	ScaleDownStabilizationWindow *metav1.Duration `json:"scaleDownStabilizationWindow,omitempty"`

	// idleCooldown is how long the queue must be empty before scaling to zero; "0s" scales to zero
	// as soon as it is empty.
	// +optional
	// +kubebuilder:default="300s"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h))+$`
	IdleCooldown *metav1.Duration `json:"idleCooldown,omitempty"`
}

// JobQueueSpec configures one queue of a namespace. Unset fields take the seed document's values
// for the queue (see JobKinds).
type JobQueueSpec struct {
	// queue is the queue this object configures; it must equal metadata.name, so a namespace has
	// at most one JobQueue per queue.
	// +required
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="queue is immutable"
	Queue QueueName `json:"queue"`

	// concurrency is the jobs one worker process runs at once. The worker's
	// ENRICHMENT_WORKER_CONCURRENCY, COMPETITOR_WORKER_CONCURRENCY or ANALYTICS_WORKER_CONCURRENCY
	// overrides it. Seed defaults: 3, 2, 2.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1000
	Concurrency *int32 `json:"concurrency,omitempty"`

	// retry policy. Seed defaults: 5, 3 and 2 attempts, exponential from 5 s.
	// +optional
	Retry RetryPolicy `json:"retry,omitempty"`

	// rateLimit caps job starts across all workers. Seed default: 10 per minute for enrichment,
	// none for the others; {unlimited: true} switches it off.
	// +optional
	RateLimit *RateLimit `json:"rateLimit,omitempty"`

	// timeout of one attempt, unless the job sets timeoutSeconds.
	// +optional
	// +kubebuilder:default="5m"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h))+$`
	Timeout metav1.Duration `json:"timeout,omitempty"`

	// retention of finished jobs.
	// +optional
	Retention Retention `json:"retention,omitempty"`

	// maxWaiting turns new jobs away (HTTP 503 with Retry-After at the facade) while more than
	// this many wait. Unset: no limit.
	// +optional
	// +kubebuilder:validation:Minimum=1
	MaxWaiting *int32 `json:"maxWaiting,omitempty"`

	// paused stops workers leasing from the queue and scales them to zero; no job is lost.
	// +optional
	Paused bool `json:"paused,omitempty"`

	// worker is the Deployment that runs the workers.
	// +optional
	Worker WorkerSpec `json:"worker,omitempty"`

	// autoscaling of the worker Deployment on queue depth.
	// +optional
	Autoscaling Autoscaling `json:"autoscaling,omitempty"`
}

// Condition types of a JobQueue.
const (
	// ConditionReady is true when the queue's Redis is reachable and its Deployment is in shape:
	// what the controller itself does. Whether the worker pods run is ConditionWorkersAvailable's
	// to say, so a crash-looping worker does not hide a Redis or Deployment problem, nor the other
	// way round.
	ConditionReady = "Ready"
	// ConditionScaling is true while the Deployment is moving to a new replica count.
	ConditionScaling = "Scaling"
	// ConditionRedisPolicyOK is false when Redis may evict keys (maxmemory-policy is not
	// noeviction), which silently loses jobs.
	ConditionRedisPolicyOK = "RedisPolicyOK"
	// ConditionWorkersAvailable is true when the worker pods the Deployment wants are ready, or
	// it wants none; false while they start, or when they cannot start or keep crashing (bad
	// image, crash loop, a failed pod, pods the Deployment cannot create, a rollout past its
	// progress deadline).
	ConditionWorkersAvailable = "WorkersAvailable"
)

// Reasons of a JobQueue's conditions.
const (
	// Ready: ReasonReady, or why not.
	ReasonReady            = "Ready"
	ReasonRedisUnreachable = "RedisUnreachable"
	ReasonDeploymentFailed = "DeploymentFailed"
	// Scaling: ReasonStable, ReasonScaledUp or ReasonScaledDown.
	ReasonStable     = "Stable"
	ReasonScaledUp   = "ScaledUp"
	ReasonScaledDown = "ScaledDown"
	// RedisPolicyOK: ReasonNoEviction, ReasonEvictionPolicy, or ReasonPolicyUnreadable.
	ReasonNoEviction       = "NoEviction"
	ReasonEvictionPolicy   = "EvictionPolicy"
	ReasonPolicyUnreadable = "Unreadable"
	// ReasonWorkersRunning (WorkersAvailable true): every worker the Deployment wants is ready.
	ReasonWorkersRunning = "WorkersRunning"
	// ReasonNoWorkersWanted (WorkersAvailable true): the Deployment is scaled to zero (an idle or
	// paused queue).
	ReasonNoWorkersWanted = "NoWorkersWanted"
	// ReasonWorkersStarting (WorkersAvailable false): fewer workers are ready than wanted, and
	// none shows a failure yet (scheduling, pulling, starting).
	ReasonWorkersStarting = "WorkersStarting"
	// ReasonWorkersFailing (WorkersAvailable false): a worker cannot start or keeps crashing; the
	// message names the pod, the container, why it waits and how it last ended. It is also the
	// reason of the Warning Event emitted when the condition turns to it. It stays until every
	// wanted worker is ready and a restarted one has run for a while, so a crash loop's short runs
	// do not flap it.
	ReasonWorkersFailing = "WorkersFailing"
	// ReasonWorkersRecovered is the reason of the Normal Event emitted when WorkersAvailable turns
	// true after ReasonWorkersFailing.
	ReasonWorkersRecovered = "WorkersRecovered"
)

// ScaleRecommendation is one autoscaler reading kept for the stabilization windows.
type ScaleRecommendation struct {
	// time the recommendation was made.
	// +required
	Time metav1.Time `json:"time"`

	// replicas recommended.
	// +required
	// +kubebuilder:validation:Minimum=0
	Replicas int32 `json:"replicas"`
}

// JobQueueStatus is the queue's depth and its workers' scale.
type JobQueueStatus struct {
	// waiting jobs, ready to be leased.
	// +optional
	Waiting int64 `json:"waiting,omitempty"`
	// active jobs, leased by a worker.
	// +optional
	Active int64 `json:"active,omitempty"`
	// delayed jobs, waiting for a backoff or rate-limit window.
	// +optional
	Delayed int64 `json:"delayed,omitempty"`
	// due counts the delayed jobs whose time has come and that no one has moved to waiting yet
	// (the housekeeping does within seconds). The autoscaler counts them as waiting, so a job
	// back from a long backoff brings a worker even when the queue scaled to zero.
	// +optional
	// +kubebuilder:validation:Minimum=0
	Due int64 `json:"due,omitempty"`
	// completed jobs still retained.
	// +optional
	Completed int64 `json:"completed,omitempty"`
	// failed jobs in the dead letter set.
	// +optional
	Failed int64 `json:"failed,omitempty"`
	// paused is true while the queue is paused in Redis.
	// +optional
	Paused bool `json:"paused,omitempty"`

	// replicas of the worker Deployment now.
	// +optional
	Replicas int32 `json:"replicas,omitempty"`
	// desiredReplicas the autoscaler asked for.
	// +optional
	DesiredReplicas int32 `json:"desiredReplicas,omitempty"`
	// lastScaleTime is when the replicas last changed.
	// +optional
	LastScaleTime *metav1.Time `json:"lastScaleTime,omitempty"`
	// lastActiveTime is the last time the queue had waiting or active jobs; scaling to zero
	// waits idleCooldown after it.
	// +optional
	LastActiveTime *metav1.Time `json:"lastActiveTime,omitempty"`
	// recommendations of the current stabilization window, so a new leader continues the same
	// decision.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=128
	Recommendations []ScaleRecommendation `json:"recommendations,omitempty"`

	// observedGeneration is the generation of the spec this status was written for.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// conditions: Ready, Scaling, RedisPolicyOK and WorkersAvailable.
	// +optional
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=16
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=jq,categories=jengu
// +kubebuilder:validation:XValidation:rule="self.metadata.name == self.spec.queue",message="metadata.name must equal spec.queue"
// +kubebuilder:printcolumn:name="Waiting",type=integer,JSONPath=`.status.waiting`
// +kubebuilder:printcolumn:name="Active",type=integer,JSONPath=`.status.active`
// +kubebuilder:printcolumn:name="Failed",type=integer,JSONPath=`.status.failed`
// +kubebuilder:printcolumn:name="Replicas",type=integer,JSONPath=`.status.replicas`
// +kubebuilder:printcolumn:name="Workers",type=string,JSONPath=`.status.conditions[?(@.type=="WorkersAvailable")].reason`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:printcolumn:name="Delayed",type=integer,JSONPath=`.status.delayed`,priority=1
// +kubebuilder:printcolumn:name="Due",type=integer,JSONPath=`.status.due`,priority=1
// +kubebuilder:printcolumn:name="Completed",type=integer,JSONPath=`.status.completed`,priority=1
// +kubebuilder:printcolumn:name="Desired",type=integer,JSONPath=`.status.desiredReplicas`,priority=1
// +kubebuilder:printcolumn:name="Paused",type=boolean,JSONPath=`.spec.paused`,priority=1

// JobQueue configures one queue in its namespace (concurrency, retries, rate limit, retention)
// and runs and scales its workers.
type JobQueue struct {
	metav1.TypeMeta `json:",inline"`
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec configures the queue.
	// +required
	Spec JobQueueSpec `json:"spec"`

	// status is the queue's depth and scale.
	// +optional
	Status JobQueueStatus `json:"status,omitempty"`
}

// +kubebuilder:object:root=true

// JobQueueList is a list of JobQueues.
type JobQueueList struct {
	metav1.TypeMeta `json:",inline"`
	// +optional
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []JobQueue `json:"items"`
}

func init() {
	SchemeBuilder.Register(&JobQueue{}, &JobQueueList{})
}
