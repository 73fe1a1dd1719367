package apiserver

import (
	"cmp"
	"context"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"
	"sigs.k8s.io/controller-runtime/pkg/client"

	jobsv1alpha1 "github.com/jengu/queue-operator/api/v1alpha1"
	"github.com/jengu/queue-operator/store"
)

// getJob answers GET /api/jobs/:jobId from the CR (cache, then kube-apiserver) and its Redis
// record; past the CR's TTL, from the history of finished jobs.
func (s *Server) getJob(c *gin.Context) {
	id, user := c.Param("jobId"), userOf(c)
	job, err := s.findJob(c, user, id)
	if errors.Is(err, errJobNotFound) {
		s.historyOrNotFound(c, user, id)
		return
	}
	if err != nil {
		s.fail(c, err)
		return
	}
	status, record := s.liveStatus(c, job)
	c.JSON(http.StatusOK, gin.H{"success": true, "job": newJobView(job, status, record)})
}

func (s *Server) historyOrNotFound(c *gin.Context, user, id string) {
	view, err := s.historyOf(c, user, id)
	switch {
	case errors.Is(err, errJobNotFound):
		s.jobNotFound(c, id)
	case err != nil:
		s.fail(c, err)
	default:
		c.JSON(http.StatusOK, gin.H{"success": true, "job": view})
	}
}

// historyOf reads how the caller's finished job ended from the history of finished jobs;
// errJobNotFound when it holds no such job of this namespace and user.
func (s *Server) historyOf(ctx context.Context, user, id string) (jobView, error) {
	r, err := s.cfg.Store.GetJobResult(ctx, s.cfg.Namespace, id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return jobView{}, errJobNotFound
	case err != nil:
		s.log.Error(err, "Reading the job history failed", "job", id)
		return jobView{}, unavailable("the job history is unreachable; try again")
	case r.UserID != user:
		return jobView{}, errJobNotFound
	}
	return historyView(r), nil
}

// listItem is one job of GET /api/jobs.
type listItem struct {
	ID        string `json:"id"`
	Queue     string `json:"queue"`
	Status    string `json:"status"`
	Progress  int32  `json:"progress"`
	Timestamp int64  `json:"timestamp"`
}

// statuses are the values GET /api/jobs filters by.
var statuses = []string{"waiting", "active", "completed", "failed", "delayed", "cancelled"}

// listJobs answers GET /api/jobs?queue=&status=&limit=: the caller's jobs, newest first, from
// the cache's user index. It covers the jobs whose CR is alive (24 h after completing, 7 days
// after failing, by default); older ones answer on GET /api/jobs/:jobId from the history.
func (s *Server) listJobs(c *gin.Context) {
	status := c.Query("status")
	if status != "" && !slices.Contains(statuses, status) {
		s.fail(c, fieldError("status", "must be one of "+strings.Join(statuses, ", ")))
		return
	}
	jobs, limit, err := s.listed(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	items := []listItem{}
	for _, job := range jobs {
		item := listItem{ID: job.GetName(), Queue: string(job.QueueName()), Status: statusOf(job, job.JobStatus().Phase),
			Progress: job.JobStatus().Progress, Timestamp: job.GetCreationTimestamp().UnixMilli()}
		if status == "" || item.Status == status {
			items = append(items, item)
		}
	}
	c.JSON(http.StatusOK, gin.H{"success": true, "jobs": items[:min(limit, len(items))], "total": len(items)})
}

// deadLetter is one job of GET /api/jobs/dlq/list.
type deadLetter struct {
	ID           string `json:"id"`
	Queue        string `json:"queue"`
	Error        string `json:"error"`
	AttemptsMade int32  `json:"attemptsMade"`
	FailedAt     int64  `json:"failedAt"`
	Data         any    `json:"data"`
}

// listDeadLetters answers GET /api/jobs/dlq/list: the caller's failed jobs, newest first, with
// the same queue and limit parameters as GET /api/jobs.
func (s *Server) listDeadLetters(c *gin.Context) {
	jobs, limit, err := s.listed(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	failed := []deadLetter{}
	for _, job := range jobs {
		status := job.JobStatus()
		if status.Phase == jobsv1alpha1.PhaseFailed && job.GetDeletionTimestamp() == nil {
			failed = append(failed, deadLetter{ID: job.GetName(), Queue: string(job.QueueName()), Error: status.Message,
				AttemptsMade: status.AttemptsMade, FailedAt: millis(status.FinishedAt), Data: job.JobSpec()})
		}
	}
	c.JSON(http.StatusOK, gin.H{"success": true, "failedJobs": failed[:min(limit, len(failed))], "total": len(failed)})
}

// listed reads the queue and limit parameters of the list routes and the caller's jobs of
// those queues.
func (s *Server) listed(c *gin.Context) (jobs []jobsv1alpha1.JobObject, limit int, err error) {
	kinds, err := kindsParam(c.Query("queue"))
	if err != nil {
		return nil, 0, err
	}
	if limit, err = limitParam(c.Query("limit")); err != nil {
		return nil, 0, err
	}
	jobs, err = s.userJobs(c, userOf(c), kinds)
	return jobs, limit, err
}

// userJobs reads the user's jobs of the queues from the cache's user index, newest first.
func (s *Server) userJobs(c *gin.Context, user string, kinds []jobsv1alpha1.JobKind) ([]jobsv1alpha1.JobObject, error) {
	var jobs []jobsv1alpha1.JobObject
	for _, kind := range kinds {
		list := kind.NewList()
		if err := s.cfg.Kube.List(c, list, client.InNamespace(s.cfg.Namespace), client.MatchingFields{userIndex: user}); err != nil {
			return nil, kubeError(err)
		}
		jobs = append(jobs, list.Jobs()...)
	}
	slices.SortFunc(jobs, func(a, b jobsv1alpha1.JobObject) int {
		if c := b.GetCreationTimestamp().Compare(a.GetCreationTimestamp().Time); c != 0 {
			return c
		}
		// Creation times have whole seconds; a facade id's stamp orders jobs within one.
		if c := cmp.Compare(idMillis(b.GetName()), idMillis(a.GetName())); c != 0 {
			return c
		}
		return strings.Compare(b.GetName(), a.GetName())
	})
	return jobs, nil
}

// kindsParam reads the queue filter as the job kinds it selects.
func kindsParam(v string) ([]jobsv1alpha1.JobKind, error) {
	if v == "" {
		return jobsv1alpha1.JobKinds, nil
	}
	kind, ok := jobsv1alpha1.KindOf(jobsv1alpha1.QueueName(v))
	if !ok {
		return nil, fieldError("queue", "must be one of enrichment, competitor, analytics-heavy")
	}
	return []jobsv1alpha1.JobKind{kind}, nil
}

// limitParam reads the seed's limit: 20 when absent, at most 100.
func limitParam(v string) (int, error) {
	if v == "" {
		return store.DefaultJobResultsLimit, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > store.MaxJobResultsLimit {
		return 0, fieldError("limit", "must be a whole number from 1 to 100")
	}
	return n, nil
}
