package apiserver

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	jobsv1alpha1 "github.com/jengu/queue-operator/api/v1alpha1"
)

// retryJob answers POST /api/jobs/:jobId/retry: it sets the retry annotation on a failed job,
// and the controller moves it back to waiting, as `kubectl annotate` would.
func (s *Server) retryJob(c *gin.Context) {
	id := c.Param("jobId")
	job, ok := s.callersJob(c, id)
	if !ok {
		return
	}
	status, _ := s.liveStatus(c, job)
	if status.Phase != jobsv1alpha1.PhaseFailed || job.GetDeletionTimestamp() != nil {
		s.fail(c, &apiError{Status: http.StatusConflict, Code: "job_not_failed",
			Message: "job " + id + " is " + statusOf(job, status.Phase) + "; only a failed job can be retried"})
		return
	}
	token := strconv.FormatInt(s.clock.Now().UnixNano(), 10)
	// A new token each time: the controller acts once per token, so a repeated retry of a job
	// that failed again retries it again, and two at once retry it once.
	patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{
		"annotations": map[string]string{jobsv1alpha1.AnnotationRetry: token},
	}})
	if err := s.cfg.Kube.Patch(c, job, client.RawPatch(types.MergePatchType, patch)); err != nil {
		if apierrors.IsNotFound(err) {
			s.jobNotFound(c, id)
			return
		}
		s.fail(c, kubeError(err))
		return
	}
	c.JSON(http.StatusOK, gin.H{"success": true, "message": "Job retry initiated", "jobId": id})
}

// cancelJob answers DELETE /api/jobs/:jobId: it deletes the CR; the finalizer removes the
// Redis record, and a worker holding the job learns it at its next heartbeat.
func (s *Server) cancelJob(c *gin.Context) {
	id := c.Param("jobId")
	job, ok := s.callersJob(c, id)
	if !ok {
		return
	}
	err := s.deleteJob(c, job)
	switch {
	case errors.Is(err, errJobReplaced):
		s.jobNotFound(c, id)
		return
	case err != nil:
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"success": true, "jobId": id, "status": "cancelled"})
}

// errJobReplaced: the job's CR was gone and a new one took its name.
var errJobReplaced = errors.New("the job was replaced by a new one of the same name")

// deleteJob cancels a job by deleting its CR: this one, never a new one created under its name
// meanwhile (a UID precondition), which is errJobReplaced. A job already gone is no error.
func (s *Server) deleteJob(ctx context.Context, job jobsv1alpha1.JobObject) error {
	err := s.cfg.Kube.Delete(ctx, job, client.Preconditions{UID: ptr(job.GetUID())})
	switch {
	case err == nil, apierrors.IsNotFound(err):
		return nil
	case apierrors.IsConflict(err):
		return errJobReplaced
	}
	return kubeError(err)
}

// callersJob reads the caller's job id, or answers that there is none (or that it cannot be
// read) and says so.
func (s *Server) callersJob(c *gin.Context, id string) (jobsv1alpha1.JobObject, bool) {
	job, err := s.findJob(c, userOf(c), id)
	switch {
	case errors.Is(err, errJobNotFound):
		s.jobNotFound(c, id)
		return nil, false
	case err != nil:
		s.fail(c, err)
		return nil, false
	}
	return job, true
}

func ptr[T any](v T) *T { return &v }
