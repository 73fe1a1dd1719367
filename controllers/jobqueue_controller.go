package controllers

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	jobsv1alpha1 "github.com/jengu/queue-operator/api/v1alpha1"
	"github.com/jengu/queue-operator/controllers/autoscale"
	"github.com/jengu/queue-operator/internal/workercmd"
	"github.com/jengu/queue-operator/metrics"
	"github.com/jengu/queue-operator/queue"
)

// JobQueueReconciler keeps a JobQueue's worker Deployment in shape, applies its settings to
// its Redis queue, runs its housekeeping services, scales the workers on queue depth and
// reports the depth in the status.
type JobQueueReconciler struct {
	client client.Client
	// reader reads the JobQueue itself from the kube-apiserver: the status carries state from
	// one reconcile to the next (WorkersAvailable's last reason decides whether an Event is due,
	// the autoscaler's window), and the deferred merge patch writes the conditions list whole,
	// so a cached copy one patch behind would repeat an Event or undo a condition.
	reader       client.Reader
	housekeeping *housekeeper
	engine       *queue.Engine
	recorder     events.EventRecorder
	clock        clock.PassiveClock
	opts         Options

	// eviction caches the Redis eviction-policy check: every JobQueue shares one Redis, and a
	// check per queue per poll would repeat the CONFIG GET and its warning every few seconds.
	evictionMu        sync.Mutex
	eviction          queue.EvictionPolicy
	evictionErr       error
	evictionCheckedAt time.Time
}

// evictionPolicyCheckInterval is how often the cached eviction-policy check is refreshed.
const evictionPolicyCheckInterval = time.Minute

func (r *JobQueueReconciler) evictionPolicy(ctx context.Context) (queue.EvictionPolicy, error) {
	r.evictionMu.Lock()
	defer r.evictionMu.Unlock()
	if now := r.clock.Now(); r.evictionCheckedAt.IsZero() || now.Sub(r.evictionCheckedAt) >= evictionPolicyCheckInterval {
		r.eviction, r.evictionErr = checkEvictionPolicy(ctx, r.engine.Redis(), ctrl.LoggerFrom(ctx))
		r.evictionCheckedAt = now
	}
	return r.eviction, r.evictionErr
}

// +kubebuilder:rbac:groups=jobs.jengu.io,resources=jobqueues/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=apps,resources=deployments,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups="",resources=pods,verbs=get;list;watch

// Reconcile brings one JobQueue's Deployment, Redis pause and status in line.
func (r *JobQueueReconciler) Reconcile(ctx context.Context, req reconcile.Request) (result reconcile.Result, err error) {
	jq := &jobsv1alpha1.JobQueue{}
	if err := r.reader.Get(ctx, req.NamespacedName, jq); err != nil {
		if apierrors.IsNotFound(err) {
			r.forget(req.NamespacedName)
		}
		return reconcile.Result{}, client.IgnoreNotFound(err)
	}
	if !jq.DeletionTimestamp.IsZero() {
		r.forget(req.NamespacedName)
		return reconcile.Result{}, nil // the Deployment goes with it (owner reference)
	}
	r.housekeeping.ensure(jq)
	before := jq.DeepCopy()
	defer func() {
		if perr := r.client.Status().Patch(ctx, jq, client.MergeFrom(before)); perr != nil && err == nil {
			err = client.IgnoreNotFound(perr)
		}
	}()

	q := r.engine.Queue(jq.Namespace, string(jq.Spec.Queue))
	counts, err := r.syncRedis(ctx, jq, q)
	if err != nil {
		setCondition(jq, jobsv1alpha1.ConditionReady, metav1.ConditionFalse, jobsv1alpha1.ReasonRedisUnreachable, err.Error())
		// Workers crash-looping on the same outage still show.
		if err := r.reportWorkersOf(ctx, jq); err != nil {
			return reconcile.Result{}, err
		}
		return reconcile.Result{RequeueAfter: pollingInterval(jq)}, nil
	}
	deploy, err := r.ensureDeployment(ctx, jq)
	if err != nil {
		setCondition(jq, jobsv1alpha1.ConditionReady, metav1.ConditionFalse, jobsv1alpha1.ReasonDeploymentFailed, err.Error())
		return reconcile.Result{}, err
	}
	if err := r.scale(ctx, jq, q, deploy, counts); err != nil {
		return reconcile.Result{}, err
	}
	if err := r.reportWorkers(ctx, jq, deploy); err != nil {
		return reconcile.Result{}, err
	}
	setCondition(jq, jobsv1alpha1.ConditionReady, metav1.ConditionTrue, jobsv1alpha1.ReasonReady, "")
	jq.Status.ObservedGeneration = jq.Generation
	return reconcile.Result{RequeueAfter: pollingInterval(jq)}, nil
}

// forget stops the housekeeping of a JobQueue that is gone and drops its metric series. A
// JobQueue's name is its queue's (the CRD insists), so the key names both.
func (r *JobQueueReconciler) forget(key client.ObjectKey) {
	r.housekeeping.stop(key)
	metrics.ForgetQueue(key.Namespace, key.Name)
}

// syncRedis applies the spec's settings to the Redis queue and reads its depth into the
// status.
func (r *JobQueueReconciler) syncRedis(ctx context.Context, jq *jobsv1alpha1.JobQueue, q *queue.Queue) (queue.Counts, error) {
	counts, err := applySettings(ctx, q, jq.Spec)
	if err != nil {
		return counts, err
	}
	s := &jq.Status
	s.Waiting, s.Active, s.Delayed, s.Completed, s.Failed = counts.Waiting+counts.Paused, counts.Active, counts.Delayed, counts.Completed, counts.Failed
	s.Due, s.Paused = counts.Due, counts.IsPaused
	metrics.ReportQueueDepth(jq.Namespace, string(jq.Spec.Queue), s.Waiting, s.Active, s.Delayed, s.Completed, s.Failed)
	metrics.ReportQueuePaused(jq.Namespace, string(jq.Spec.Queue), counts.IsPaused)
	policy, err := r.evictionPolicy(ctx)
	switch {
	case err != nil:
		setCondition(jq, jobsv1alpha1.ConditionRedisPolicyOK, metav1.ConditionUnknown, jobsv1alpha1.ReasonPolicyUnreadable, err.Error())
	case policy.OK:
		setCondition(jq, jobsv1alpha1.ConditionRedisPolicyOK, metav1.ConditionTrue, jobsv1alpha1.ReasonNoEviction, "")
	default:
		setCondition(jq, jobsv1alpha1.ConditionRedisPolicyOK, metav1.ConditionFalse, jobsv1alpha1.ReasonEvictionPolicy,
			fmt.Sprintf("Redis maxmemory-policy is %s: under memory pressure Redis deletes job records; set noeviction", policy.Policy))
	}
	return counts, nil
}

// ensureDeployment creates the worker Deployment, or puts its template back in shape. Replicas
// are left to scale.
func (r *JobQueueReconciler) ensureDeployment(ctx context.Context, jq *jobsv1alpha1.JobQueue) (*appsv1.Deployment, error) {
	deploy := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: jq.Namespace, Name: WorkerDeploymentName(jq)}}
	_, err := controllerutil.CreateOrPatch(ctx, r.client, deploy, func() error {
		if deploy.CreationTimestamp.IsZero() {
			initial := int32(1)
			if m := jq.Spec.Autoscaling.MinReplicas; m != nil {
				initial = *m
			}
			if jq.Spec.Paused {
				initial = 0
			}
			deploy.Spec.Replicas = &initial
		}
		labels := workerLabels(jq.Spec.Queue)
		deploy.Labels = labels
		deploy.Spec.Selector = &metav1.LabelSelector{MatchLabels: labels}
		deploy.Spec.Template = r.workerTemplate(jq, labels)
		return controllerutil.SetControllerReference(jq, deploy, r.client.Scheme())
	})
	if err != nil {
		return nil, fmt.Errorf("worker Deployment %s: %w", deploy.Name, err)
	}
	return deploy, nil
}

// WorkerDeploymentName is the name of a JobQueue's worker Deployment.
func WorkerDeploymentName(jq *jobsv1alpha1.JobQueue) string { return jq.Name + "-worker" }

// workerTemplate is the spec's template with the worker container filled in: image, command,
// the namespace, a grace period that lets a job at the queue's timeout finish, requests, the
// log tail as termination message.
func (r *JobQueueReconciler) workerTemplate(jq *jobsv1alpha1.JobQueue, labels map[string]string) corev1.PodTemplateSpec {
	tpl := corev1.PodTemplateSpec{}
	if jq.Spec.Worker.Template != nil {
		tpl = *jq.Spec.Worker.Template.DeepCopy()
	}
	if tpl.Labels == nil {
		tpl.Labels = map[string]string{}
	}
	for k, v := range labels {
		tpl.Labels[k] = v
	}
	// Prometheus finds the workers by the label above (the chart's PodMonitor) or, without the
	// Prometheus Operator, by these annotations; a template's own annotations win.
	if tpl.Annotations == nil {
		tpl.Annotations = map[string]string{}
	}
	for k, v := range map[string]string{"prometheus.io/scrape": "true", "prometheus.io/port": strconv.Itoa(workercmd.MetricsPort),
		"prometheus.io/path": "/metrics"} {
		if _, set := tpl.Annotations[k]; !set {
			tpl.Annotations[k] = v
		}
	}
	image := jq.Spec.Worker.Image
	if image == "" {
		image = r.opts.WorkerImage
	}
	settings := jq.Spec.Settings()
	grace := int64((settings.Timeout + 30*time.Second).Seconds())
	tpl.Spec.TerminationGracePeriodSeconds = &grace
	var worker *corev1.Container
	for i := range tpl.Spec.Containers {
		if tpl.Spec.Containers[i].Name == "worker" {
			worker = &tpl.Spec.Containers[i]
		}
	}
	if worker == nil {
		tpl.Spec.Containers = append(tpl.Spec.Containers, corev1.Container{Name: "worker"})
		worker = &tpl.Spec.Containers[len(tpl.Spec.Containers)-1]
	}
	worker.Image = image
	worker.Args = workercmd.Command{Queue: jq.Spec.Queue, Namespace: jq.Namespace, ShutdownGrace: settings.Timeout}.Args()
	worker.Ports = []corev1.ContainerPort{{Name: workercmd.MetricsPortName, ContainerPort: workercmd.MetricsPort}}
	// A worker that dies before it logs to a file still tells why: the tail of its log becomes
	// its termination message, which WorkersAvailable and its Event quote.
	if worker.TerminationMessagePolicy == "" {
		worker.TerminationMessagePolicy = corev1.TerminationMessageFallbackToLogsOnError
	}
	if worker.LivenessProbe == nil {
		worker.LivenessProbe = &corev1.Probe{
			ProbeHandler:  corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/healthz", Port: intstr.FromString(workercmd.MetricsPortName)}},
			PeriodSeconds: 20, FailureThreshold: 3,
		}
	}
	if worker.Resources.Requests == nil {
		worker.Resources.Requests = corev1.ResourceList{
			corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("128Mi")}
	}
	if !hasEnv(worker.Env, "REDIS_URL") {
		if ref := jq.Spec.Worker.RedisURLSecretRef; ref != nil {
			worker.Env = append(worker.Env, corev1.EnvVar{Name: "REDIS_URL", ValueFrom: &corev1.EnvVarSource{
				SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: ref.Name}, Key: ref.Key}}})
		} else if r.opts.RedisURL != "" && r.opts.WorkerPlainRedisURL {
			worker.Env = append(worker.Env, corev1.EnvVar{Name: "REDIS_URL", Value: r.opts.RedisURL})
		}
	}
	if tpl.Spec.ServiceAccountName == "" {
		tpl.Spec.ServiceAccountName = r.opts.WorkerServiceAccount
	}
	restrict(&tpl.Spec)
	writableTmp(&tpl.Spec, worker)
	return tpl
}

// writableTmp gives the worker container an emptyDir at /tmp unless its template mounts something
// there: the root filesystem is read-only (restrict), and the binary panics at start without a
// writable temp directory (its envtest dependency makes one when the program starts).
func writableTmp(spec *corev1.PodSpec, worker *corev1.Container) {
	for _, m := range worker.VolumeMounts {
		if m.MountPath == "/tmp" {
			return
		}
	}
	name := "tmp"
	for _, v := range spec.Volumes {
		if v.Name == name {
			name = "worker-tmp"
		}
	}
	spec.Volumes = append(spec.Volumes, corev1.Volume{Name: name, VolumeSource: corev1.VolumeSource{
		EmptyDir: &corev1.EmptyDirVolumeSource{SizeLimit: ptr.To(resource.MustParse("64Mi"))}}})
	worker.VolumeMounts = append(worker.VolumeMounts, corev1.VolumeMount{Name: name, MountPath: "/tmp"})
}

// restrict gives the pod, and each of its containers, whose template leaves the securityContext
// unset the restricted Pod Security profile's: non-root, the runtime's seccomp profile, no
// privilege escalation, no capabilities, a read-only root filesystem (the worker writes no
// file). A securityContext the template sets is the JobQueue author's and stays as it is.
func restrict(spec *corev1.PodSpec) {
	if spec.SecurityContext == nil {
		spec.SecurityContext = &corev1.PodSecurityContext{
			RunAsNonRoot:   ptr.To(true),
			SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
		}
	}
	for i := range spec.Containers {
		if spec.Containers[i].SecurityContext == nil {
			spec.Containers[i].SecurityContext = &corev1.SecurityContext{
				AllowPrivilegeEscalation: ptr.To(false),
				ReadOnlyRootFilesystem:   ptr.To(true),
				Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
			}
		}
	}
}

func hasEnv(env []corev1.EnvVar, name string) bool {
	for _, e := range env {
		if e.Name == name {
			return true
		}
	}
	return false
}

// scale sets the Deployment's replicas from the autoscaler (unless autoscaling is off, when
// KEDA or an HPA owns them); a paused queue runs no workers.
func (r *JobQueueReconciler) scale(ctx context.Context, jq *jobsv1alpha1.JobQueue, q *queue.Queue, deploy *appsv1.Deployment, counts queue.Counts) error {
	current := int32(0)
	if deploy.Spec.Replicas != nil {
		current = *deploy.Spec.Replicas
	}
	jq.Status.Replicas = deploy.Status.Replicas
	metrics.ReportCurrentReplicas(jq.Namespace, string(jq.Spec.Queue), deploy.Status.Replicas)
	metrics.ReportReadyReplicas(jq.Namespace, string(jq.Spec.Queue), deploy.Status.ReadyReplicas)
	a := jq.Spec.Autoscaling
	if a.Enabled != nil && !*a.Enabled && !jq.Spec.Paused {
		jq.Status.DesiredReplicas = current
		return nil
	}
	desired := int32(0)
	reason := "queue paused"
	if !jq.Spec.Paused {
		decision := autoscale.Decide(r.policy(ctx, jq, q), autoscale.Input{
			Now: r.clock.Now(), Waiting: counts.Waiting + counts.Due, Active: counts.Active, CurrentReplicas: current,
			History: fromStatus(jq.Status.Recommendations), LastActive: timeOf(jq.Status.LastActiveTime),
		})
		desired, reason = decision.DesiredReplicas, decision.Reason
		jq.Status.Recommendations = toStatus(decision.History)
		if !decision.LastActive.IsZero() {
			t := metav1.NewTime(decision.LastActive)
			jq.Status.LastActiveTime = &t
		}
	}
	jq.Status.DesiredReplicas = desired
	metrics.ReportDesiredReplicas(jq.Namespace, string(jq.Spec.Queue), desired)
	if desired == current {
		setCondition(jq, jobsv1alpha1.ConditionScaling, metav1.ConditionFalse, jobsv1alpha1.ReasonStable, reason)
		return nil
	}
	patch := client.MergeFrom(deploy.DeepCopy())
	deploy.Spec.Replicas = &desired
	if err := r.client.Patch(ctx, deploy, patch); err != nil {
		return fmt.Errorf("scale %s to %d: %w", deploy.Name, desired, err)
	}
	direction, scaled := "up", jobsv1alpha1.ReasonScaledUp
	if desired < current {
		direction, scaled = "down", jobsv1alpha1.ReasonScaledDown
	}
	metrics.CountScaling(jq.Namespace, string(jq.Spec.Queue), direction)
	now := metav1.NewTime(r.clock.Now())
	jq.Status.LastScaleTime = &now
	setCondition(jq, jobsv1alpha1.ConditionScaling, metav1.ConditionTrue, scaled,
		fmt.Sprintf("%d → %d replicas: %s", current, desired, reason))
	r.recorder.Eventf(jq, deploy, corev1.EventTypeNormal, "Scaled", "Scale", "Scaled %s from %d to %d: %s", deploy.Name, current, desired, reason)
	return nil
}

func (r *JobQueueReconciler) policy(ctx context.Context, jq *jobsv1alpha1.JobQueue, q *queue.Queue) autoscale.Policy {
	a, settings := jq.Spec.Autoscaling, jq.Spec.Settings()
	p := autoscale.Policy{
		ScaleUpStabilization:   a.ScaleUpStabilizationWindow.Duration,
		ScaleDownStabilization: setOrDefault(a.ScaleDownStabilizationWindow),
		IdleCooldown:           setOrDefault(a.IdleCooldown),
		Concurrency:            settings.Concurrency,
	}
	if a.MinReplicas != nil {
		p.MinReplicas = *a.MinReplicas
	}
	if a.MaxReplicas != nil {
		p.MaxReplicas = *a.MaxReplicas
	}
	if a.TargetJobsPerReplica != nil {
		p.TargetJobsPerReplica = *a.TargetJobsPerReplica
	}
	if settings.RateLimit != nil {
		// Only the rate cap needs the median, and it costs a read of the last completed jobs.
		p.RateMax, p.RateWindow = settings.RateLimit.Max, settings.RateLimit.Duration.Duration
		p.MedianJobDuration = medianJobDuration(ctx, q)
	}
	return p
}

// medianJobDuration is the median processing time of the queue's last 50 completed jobs, or 0
// when there are none: the rate-limit cap's estimate of how long a replica keeps a slot busy.
func medianJobDuration(ctx context.Context, q *queue.Queue) time.Duration {
	jobs, _, err := q.List(ctx, queue.StateCompleted, 0, 50)
	if err != nil || len(jobs) == 0 {
		return 0
	}
	durations := make([]time.Duration, 0, len(jobs))
	for _, j := range jobs {
		if !j.ProcessedAt.IsZero() && j.FinishedAt.After(j.ProcessedAt) {
			durations = append(durations, j.FinishedAt.Sub(j.ProcessedAt))
		}
	}
	if len(durations) == 0 {
		return 0
	}
	slices.Sort(durations)
	return durations[len(durations)/2]
}

// setOrDefault reads a duration whose zero is a setting of its own: unset (nil) is 0, the
// autoscaler's default; an explicit 0 is negative, which the autoscaler reads as none.
func setOrDefault(d *metav1.Duration) time.Duration {
	switch {
	case d == nil:
		return 0
	case d.Duration == 0:
		return -1
	}
	return d.Duration
}

func pollingInterval(jq *jobsv1alpha1.JobQueue) time.Duration {
	if d := jq.Spec.Autoscaling.PollingInterval.Duration; d > 0 {
		return d
	}
	return 15 * time.Second
}

func setCondition(jq *jobsv1alpha1.JobQueue, t string, status metav1.ConditionStatus, reason, msg string) {
	if len(msg) > 1024 {
		msg = msg[:1024]
	}
	meta.SetStatusCondition(&jq.Status.Conditions, metav1.Condition{Type: t, Status: status, Reason: reason,
		Message: msg, ObservedGeneration: jq.Generation})
}

func fromStatus(in []jobsv1alpha1.ScaleRecommendation) []autoscale.Recommendation {
	out := make([]autoscale.Recommendation, len(in))
	for i, r := range in {
		out[i] = autoscale.Recommendation{Time: r.Time.Time, Replicas: r.Replicas}
	}
	return out
}

func toStatus(in []autoscale.Recommendation) []jobsv1alpha1.ScaleRecommendation {
	out := make([]jobsv1alpha1.ScaleRecommendation, len(in))
	for i, r := range in {
		out[i] = jobsv1alpha1.ScaleRecommendation{Time: metav1.NewTime(r.Time), Replicas: r.Replicas}
	}
	return out
}

func timeOf(t *metav1.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.Time
}
