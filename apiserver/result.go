package apiserver

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	jobsv1alpha1 "github.com/jengu/queue-operator/api/v1alpha1"
	"github.com/jengu/queue-operator/store"
)

// finishedJob is a completed job as a result reader sees it.
type finishedJob struct {
	Namespace string
	ID        string
	// ReturnValue is the processor's return value (the CR's summary), nil when none is kept.
	ReturnValue json.RawMessage
}

// resultReader reads a completed job's full result, in its queue's shape.
type resultReader func(ctx context.Context, db *store.Store, job finishedJob) (any, error)

// resultReaders are the queues whose jobs have a result to read at GET /api/jobs/:jobId/result;
// a queue's processor issue adds its line.
var resultReaders = map[jobsv1alpha1.QueueName]resultReader{
	jobsv1alpha1.QueueEnrichment: returnValueResult,
	jobsv1alpha1.QueueCompetitor: competitorResult,
	jobsv1alpha1.QueueAnalytics:  analyticsResult,
}

// getJobResult answers GET /api/jobs/:jobId/result: a completed job's full result, owner-checked
// like GET /api/jobs/:jobId (another user's job is 404, as an unknown one). A job still running
// or failed is 409 (job_not_finished, job_failed): the job exists, its result does not.
func (s *Server) getJobResult(c *gin.Context) {
	id, user := c.Param("jobId"), userOf(c)
	queueName, status, returnValue, err := s.finishedState(c, user, id)
	switch {
	case errors.Is(err, errJobNotFound):
		s.jobNotFound(c, id)
		return
	case err != nil:
		s.fail(c, err)
		return
	}
	if err := resultConflict(id, status); err != nil {
		s.fail(c, err)
		return
	}
	read, ok := resultReaders[queueName]
	if !ok {
		s.fail(c, &apiError{Status: http.StatusNotFound, Code: "no_result",
			Message: "jobs of queue " + string(queueName) + " keep no result to read here; see returnvalue at GET /api/jobs/" + id})
		return
	}
	result, err := read(c, s.cfg.Store, finishedJob{Namespace: s.cfg.Namespace, ID: id, ReturnValue: returnValue})
	if errors.Is(err, store.ErrNotFound) {
		s.fail(c, &apiError{Status: http.StatusNotFound, Code: "no_result",
			Message: "job " + id + " completed, but its result is no longer stored; see returnvalue at GET /api/jobs/" + id})
		return
	}
	if err != nil {
		s.log.Error(err, "Reading the job's result failed", "job", id)
		s.fail(c, unavailable("the job's result is unreachable; try again"))
		return
	}
	c.JSON(http.StatusOK, gin.H{"success": true, "jobId": id, "queue": queueName, "status": "completed", "result": result})
}

// finishedState reads the caller's job: from its CR and Redis record while it lives, else from
// the history of finished jobs.
func (s *Server) finishedState(ctx context.Context, user, id string) (jobsv1alpha1.QueueName, string, json.RawMessage, error) {
	job, err := s.findJob(ctx, user, id)
	if errors.Is(err, errJobNotFound) {
		view, err := s.historyOf(ctx, user, id)
		return jobsv1alpha1.QueueName(view.Queue), view.Status, view.ReturnValue, err
	}
	if err != nil {
		return "", "", nil, err
	}
	status, record := s.liveStatus(ctx, job)
	view := newJobView(job, status, record)
	if view.Status == "completed" && view.ReturnValue == nil {
		// The record is gone (Redis lost it, or a FLUSHALL): the history keeps the return value.
		if past, err := s.historyOf(ctx, user, id); err == nil {
			view.ReturnValue = past.ReturnValue
		}
	}
	return job.QueueName(), view.Status, view.ReturnValue, nil
}

// resultConflict is the 409 of a job whose result cannot be read (yet), nil for a completed one.
func resultConflict(id, status string) error {
	switch status {
	case "completed":
		return nil
	case "failed":
		return &apiError{Status: http.StatusConflict, Code: "job_failed",
			Message: "job " + id + " failed and has no result; see failedReason at GET /api/jobs/" + id}
	}
	return &apiError{Status: http.StatusConflict, Code: "job_not_finished",
		Message: "job " + id + " is " + status + "; its result can be read once it has completed"}
}

// returnValueResult is a job's return value as its whole result (enrichment: its summary; the
// rows themselves are the property's pricing rows).
func returnValueResult(_ context.Context, _ *store.Store, job finishedJob) (any, error) {
	return job.ReturnValue, nil
}

// competitorHotel is one competitor of a competitor job's result.
type competitorHotel struct {
	ID            string    `json:"id"`
	Name          string    `json:"name"`
	NightlyRate   *float64  `json:"nightlyRate"`
	TotalRate     *float64  `json:"totalRate"`
	Currency      string    `json:"currency"`
	OverallRating *float64  `json:"overallRating"`
	Reviews       *int      `json:"reviews"`
	HotelClass    *int      `json:"hotelClass"`
	Latitude      *float64  `json:"latitude"`
	Longitude     *float64  `json:"longitude"`
	FetchedAt     time.Time `json:"fetchedAt"`
}

// competitorResult is a competitor job's statistics (its return value) and every hotel stored,
// cheapest first, hotels without a price last.
// analyticsResult is the analysis the worker stored (docs/openapi.yaml, AnalyticsResult).
func analyticsResult(ctx context.Context, db *store.Store, job finishedJob) (any, error) {
	stored, err := db.GetAnalyticsResult(ctx, job.Namespace, job.ID)
	return stored.Result, err
}

func competitorResult(ctx context.Context, db *store.Store, job finishedJob) (any, error) {
	prices, err := db.ListCompetitorPrices(ctx, job.Namespace, job.ID)
	if err != nil {
		return nil, err
	}
	hotels := make([]competitorHotel, len(prices))
	for i, p := range prices {
		hotels[i] = competitorHotel{ID: p.HotelID, Name: p.HotelName, NightlyRate: p.Price, TotalRate: p.TotalPrice,
			Currency: p.Currency, OverallRating: p.OverallRating, Reviews: p.Reviews, HotelClass: p.HotelClass,
			Latitude: p.Latitude, Longitude: p.Longitude, FetchedAt: p.FetchedAt}
	}
	return gin.H{"summary": job.ReturnValue, "hotels": hotels}, nil
}
