package apiserver

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"

	jobsv1alpha1 "github.com/jengu/queue-operator/api/v1alpha1"
	"github.com/jengu/queue-operator/metrics"
	"github.com/jengu/queue-operator/queue"
	"github.com/jengu/queue-operator/store"
)

// createEnrichment answers POST /api/files/:id/enrich. Location and country come from the body
// or, when absent, from the property's row.
func (s *Server) createEnrichment(c *gin.Context) {
	var req enrichRequest
	s.create(c, jobsv1alpha1.QueueEnrichment, &req, maxJobBody, req.build)
}

// createCompetitor answers POST /api/files/:id/competitors with the seed's CompetitorJobData.
func (s *Server) createCompetitor(c *gin.Context) {
	var req competitorRequest
	s.create(c, jobsv1alpha1.QueueCompetitor, &req, maxJobBody, req.build)
}

// createAnalytics answers POST /api/files/:id/analytics with the seed's AnalyticsJobData. The
// data rows go to PostgreSQL under the job's id, which the CR's inputRef names; without data the
// job analyses the property's stored pricing rows.
func (s *Server) createAnalytics(c *gin.Context) {
	var req analyticsRequest
	s.create(c, jobsv1alpha1.QueueAnalytics, &req, maxAnalyticsBody, req.build, func(ctx context.Context, job jobsv1alpha1.JobObject) error {
		if len(req.Data) == 0 {
			return nil
		}
		// The input is saved only once the kube-apiserver accepts the job (a dry run), so an invalid
		// request leaves no rows behind; saving it again is a no-op.
		job.(*jobsv1alpha1.AnalyticsJob).Spec.InputRef = job.GetName()
		if err := s.cfg.Kube.Create(ctx, job.DeepCopyObject().(client.Object), client.DryRunAll); err != nil && !apierrors.IsAlreadyExists(err) {
			return kubeError(err)
		}
		err := s.cfg.Store.SaveAnalyticsInput(ctx, store.AnalyticsInput{ID: job.GetName(),
			PropertyID: job.Common().PropertyID, UserID: job.Common().UserID, Rows: req.Data})
		switch {
		case errors.Is(err, store.ErrConflict):
			return idempotencyConflict()
		case errors.Is(err, store.ErrInvalid):
			return fieldError("data", err.Error())
		case err != nil:
			return fmt.Errorf("save analytics input: %w", err)
		}
		return nil
	})
}

// build makes the EnrichmentJob the request asks for.
func (req *enrichRequest) build(common jobsv1alpha1.JobCommonSpec, property store.Property) (jobsv1alpha1.JobObject, error) {
	if req.CalendarificAPIKey != nil {
		return nil, fieldError("calendarificApiKey", "API keys are not accepted in requests: the worker's CALENDARIFIC_API_KEY, or a credential Secret named by credentialSecretName, holds them")
	}
	job := &jobsv1alpha1.EnrichmentJob{Spec: jobsv1alpha1.EnrichmentJobSpec{JobCommonSpec: common,
		EnrichmentFields: jobsv1alpha1.EnrichmentFields{CountryCode: req.CountryCode, CredentialSecretName: req.CredentialSecretName}}}
	switch {
	case req.Location != nil && req.Location.Latitude == nil:
		return nil, fieldError("location.latitude", "required")
	case req.Location != nil && req.Location.Longitude == nil:
		return nil, fieldError("location.longitude", "required")
	case req.Location != nil:
		job.Spec.Location = jobsv1alpha1.GeoLocation{Latitude: *req.Location.Latitude, Longitude: *req.Location.Longitude}
	case property.Location != nil:
		job.Spec.Location = jobsv1alpha1.GeoLocation{Latitude: property.Location.Latitude, Longitude: property.Location.Longitude}
	default:
		return nil, fieldError("location", "required: the request has none and none is stored for file "+property.ID)
	}
	if job.Spec.CountryCode == "" {
		job.Spec.CountryCode = property.CountryCode
	}
	return job, nil
}

// build makes the CompetitorJob the request asks for.
func (req *competitorRequest) build(common jobsv1alpha1.JobCommonSpec, _ store.Property) (jobsv1alpha1.JobObject, error) {
	return &jobsv1alpha1.CompetitorJob{Spec: jobsv1alpha1.CompetitorJobSpec{JobCommonSpec: common,
		CompetitorFields: jobsv1alpha1.CompetitorFields{Location: req.Location, CheckIn: req.CheckIn, CheckOut: req.CheckOut,
			Adults: req.Adults, Currency: req.Currency, CredentialSecretName: req.CredentialSecretName}}}, nil
}

// build makes the AnalyticsJob the request asks for, its params checked for its type; the
// caller deals with its data.
func (req *analyticsRequest) build(common jobsv1alpha1.JobCommonSpec, _ store.Property) (jobsv1alpha1.JobObject, error) {
	params, err := analyticsParams(req.AnalysisType, req.Params)
	if err != nil {
		return nil, err
	}
	return &jobsv1alpha1.AnalyticsJob{Spec: jobsv1alpha1.AnalyticsJobSpec{JobCommonSpec: common,
		AnalyticsFields: jobsv1alpha1.AnalyticsFields{AnalysisType: req.AnalysisType, Params: params}}}, nil
}

// jobBuilder makes the kind's job from the request, the common spec and the caller's property.
type jobBuilder func(common jobsv1alpha1.JobCommonSpec, property store.Property) (jobsv1alpha1.JobObject, error)

// bodyDecoder is a request that reads its own body, counting what it may not hold too much of
// as the body streams in.
type bodyDecoder interface {
	decode(body io.Reader) error
}

// create is every enqueue route: check the file is the caller's, then read the body (at most
// limit bytes; a large one waits for its turn), build, apply the caller's cap and backpressure,
// name, create (with the finalizer and the owner's labels) and answer 202 at once.
// beforeCreate runs on the named job just before its create.
func (s *Server) create(c *gin.Context, queueName jobsv1alpha1.QueueName, req any, limit int64, build jobBuilder,
	beforeCreate ...func(context.Context, jobsv1alpha1.JobObject) error) {
	started := time.Now()
	user := userOf(c)
	// The owner first: another user's file costs no read of the body.
	property, err := s.callersFile(c, c.Param("id"))
	if err != nil {
		s.fail(c, err)
		return
	}
	if limit > maxJobBody {
		// Held until the answer: the rows stay in memory until they are stored.
		release, err := s.largeBodies.acquire(c)
		if err != nil {
			s.fail(c, err)
			return
		}
		defer release()
	}
	job, err := s.prepare(c, req, limit, build, user, property)
	if err != nil {
		s.fail(c, err)
		return
	}
	key := c.GetHeader("Idempotency-Key")
	// A repeat of a request whose job exists adds nothing, so neither the caller's cap nor
	// backpressure applies to it.
	if key == "" || !s.exists(c, job, s.jobName(queueName, user, key)) {
		if err := s.underLiveJobCap(c, queueName, user); err != nil {
			s.fail(c, err)
			return
		}
		if err := s.admit(c, queueName); err != nil {
			s.fail(c, err)
			return
		}
	}
	name, replayed, err := s.createNamed(c, job, key, beforeCreate)
	if err != nil {
		s.fail(c, err)
		return
	}
	if key != "" {
		s.awaitCached(c, job)
	}
	metrics.ObserveAPIEnqueue(string(queueName), time.Since(started))
	c.Header("Location", "/api/jobs/"+name)
	if replayed {
		c.Header("Idempotent-Replayed", "true")
	}
	c.JSON(http.StatusAccepted, gin.H{"success": true, "jobId": name, "status": "queued"})
}

// prepare reads the body into req (at most limit bytes) and builds the job it asks for on the
// caller's property.
func (s *Server) prepare(c *gin.Context, req any, limit int64, build jobBuilder, user string,
	property store.Property) (jobsv1alpha1.JobObject, error) {
	job, err := parseJob(http.MaxBytesReader(c.Writer, c.Request.Body, limit), req, build, user, property)
	if err != nil {
		return nil, err
	}
	jobsv1alpha1.Stamp(job, s.cfg.Namespace)
	return job, nil
}

// parseJob reads body into req and builds the job it asks for, sent by user for the caller's
// property.
func parseJob(body io.Reader, req any, build jobBuilder, user string, property store.Property) (jobsv1alpha1.JobObject, error) {
	var err error
	if d, ok := req.(bodyDecoder); ok {
		err = d.decode(body)
	} else {
		err = decodeBody(body, req)
	}
	if err != nil {
		return nil, err
	}
	return buildJob(req.(jobRequest), build, property, user)
}

// admit turns a job away with 503 and Retry-After while its queue has more than its JobQueue's
// maxWaiting jobs waiting: those in Redis, and those accepted that the controller has not
// enqueued yet, so a burst cannot slip past the limit during the controller's lag.
func (s *Server) admit(ctx context.Context, queueName jobsv1alpha1.QueueName) error {
	jq := &jobsv1alpha1.JobQueue{}
	err := s.cfg.Kube.Get(ctx, client.ObjectKey{Namespace: s.cfg.Namespace, Name: string(queueName)}, jq)
	if apierrors.IsNotFound(err) {
		return nil // the job waits for its JobQueue (QueueReady=False) and is never lost
	}
	if err != nil {
		return kubeError(err)
	}
	settings := jq.Spec.Settings()
	if settings.MaxWaiting == nil {
		return nil
	}
	// The CRs the controller has not enqueued yet, less those it has enqueued meanwhile, read
	// before Redis' counts: a job enqueued between the reads counts twice, never not at all.
	pending := kindOf(queueName).NewList()
	if err := s.cfg.Kube.List(ctx, pending, client.InNamespace(s.cfg.Namespace), client.MatchingFields{phaseIndex: ""},
		client.UnsafeDisableDeepCopy); err != nil {
		return kubeError(err)
	}
	var unqueued []string
	for _, job := range pending.Jobs() {
		unqueued = append(unqueued, job.GetName())
	}
	redisQueue := s.engine.Queue(s.cfg.Namespace, string(queueName))
	queued, err := redisQueue.CountRecords(ctx, unqueued)
	var counts queue.Counts
	if err == nil {
		counts, err = redisQueue.Counts(ctx)
	}
	if err != nil {
		s.log.Error(err, "Reading the queue's depth failed", "queue", queueName)
		return unavailable("the queue is unreachable; try again")
	}
	waiting, limit := counts.Waiting+counts.Paused+int64(len(unqueued))-queued, int64(*settings.MaxWaiting)
	if waiting <= limit {
		return nil
	}
	return &apiError{Status: http.StatusServiceUnavailable, Code: "queue_full",
		Message:    fmt.Sprintf("queue %s has %d jobs waiting, over its limit of %d; try again later", queueName, waiting, limit),
		RetryAfter: retryAfter(waiting-limit, settings)}
}

// retryAfter estimates when the excess has drained: at the queue's rate limit when it has one,
// else a short pause; between 1 s and 5 min.
func retryAfter(excess int64, settings jobsv1alpha1.QueueSettings) int {
	seconds := 5.0
	if rl := settings.RateLimit; rl != nil && rl.Max > 0 {
		seconds = math.Ceil(float64(excess) * rl.Duration.Seconds() / float64(rl.Max))
	}
	return int(min(max(seconds, 1), 300))
}

// createNamed names the job and creates it. With an idempotency key the name is derived from
// the user and the key, so a repeated request finds its job (replayed) instead of a second one;
// without, the name is the seed's shape, <prefix>-<8 hex>-<unix ms>.
func (s *Server) createNamed(ctx context.Context, job jobsv1alpha1.JobObject, key string,
	beforeCreate []func(context.Context, jobsv1alpha1.JobObject) error) (name string, replayed bool, err error) {
	if len(key) > 255 {
		return "", false, &apiError{Status: http.StatusBadRequest, Code: "invalid_request", Message: "Idempotency-Key is over 255 characters"}
	}
	for range 3 {
		job.SetName(s.jobName(job.QueueName(), job.Common().UserID, key))
		for _, f := range beforeCreate {
			if err := f(ctx, job); err != nil {
				return "", false, err
			}
		}
		err := s.cfg.Kube.Create(ctx, job)
		switch {
		case err == nil:
			return job.GetName(), false, nil
		case !apierrors.IsAlreadyExists(err):
			return "", false, kubeError(err)
		case key != "":
			return job.GetName(), true, s.sameRequest(ctx, job)
		}
		// A random name taken (one chance in 4 billion in the same millisecond): draw again.
	}
	return "", false, fmt.Errorf("no free job name after 3 tries")
}

// cachedWithin bounds how long a create with an Idempotency-Key waits for the facade's cache.
const cachedWithin = 5 * time.Second

// awaitCached waits, a little, until the cache holds a job created under an Idempotency-Key's
// name: such a name carries no timestamp, so a read that misses the cache is not read from the
// kube-apiserver (mayLagTheCache), and a client reading its job right after the 202 must find it.
func (s *Server) awaitCached(ctx context.Context, job jobsv1alpha1.JobObject) {
	err := wait.PollUntilContextTimeout(ctx, 10*time.Millisecond, cachedWithin, true, func(ctx context.Context) (bool, error) {
		return s.cfg.Kube.Get(ctx, client.ObjectKeyFromObject(job), kindOf(job.QueueName()).New()) == nil, nil
	})
	if err != nil {
		s.log.Info("The cache did not show a new job in time", "job", job.GetName(), "within", cachedWithin)
	}
}

// exists reports whether a job of job's kind is stored under name.
func (s *Server) exists(ctx context.Context, job jobsv1alpha1.JobObject, name string) bool {
	return s.cfg.Reader.Get(ctx, client.ObjectKey{Namespace: s.cfg.Namespace, Name: name}, kindOf(job.QueueName()).New()) == nil
}

// sameRequest checks that the job already under an idempotency key's name was asked with the
// same data.
func (s *Server) sameRequest(ctx context.Context, job jobsv1alpha1.JobObject) error {
	existing := kindOf(job.QueueName()).New()
	if err := s.cfg.Reader.Get(ctx, client.ObjectKeyFromObject(job), existing); err != nil {
		return kubeError(err)
	}
	if !apiequality.Semantic.DeepEqual(existing.JobSpec(), job.JobSpec()) {
		return idempotencyConflict()
	}
	return nil
}

func idempotencyConflict() error {
	return &apiError{Status: http.StatusConflict, Code: "idempotency_key_reused",
		Message: "this Idempotency-Key was used for a request with other data"}
}

func (s *Server) jobName(queueName jobsv1alpha1.QueueName, user, key string) string {
	prefix := kindOf(queueName).IDPrefix
	if key != "" {
		// The namespace is in the hash: job ids also key the PostgreSQL tables, which every
		// namespace shares.
		sum := sha256.Sum256([]byte(s.cfg.Namespace + "\x00" + user + "\x00" + string(queueName) + "\x00" + key))
		h := hex.EncodeToString(sum[:])
		return prefix + "-" + h[:8] + "-" + h[8:24]
	}
	return randomID(prefix, s.clock.Now())
}
