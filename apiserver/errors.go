package apiserver

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"syscall"

	"github.com/gin-gonic/gin"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// apiError is a failed request as the API answers it:
// {"success": false, "error": {"code", "message", "fields"}}.
type apiError struct {
	Status  int               `json:"-"`
	Code    string            `json:"code"`
	Message string            `json:"message"`
	Fields  map[string]string `json:"fields,omitempty"`
	// RetryAfter, in seconds, becomes the Retry-After header when above 0.
	RetryAfter int `json:"-"`
}

func (e *apiError) Error() string { return e.Code + ": " + e.Message }

func badRequest(message string, fields map[string]string) *apiError {
	return &apiError{Status: http.StatusBadRequest, Code: "invalid_request", Message: message, Fields: fields}
}

func fieldError(field, message string) *apiError {
	return badRequest(field+": "+message, map[string]string{field: message})
}

func unavailable(message string) *apiError {
	return &apiError{Status: http.StatusServiceUnavailable, Code: "unavailable", Message: message, RetryAfter: 5}
}

// fail answers err: an *apiError as it is, anything else as a 500 whose detail goes to the log,
// not to the caller.
func (s *Server) fail(c *gin.Context, err error) {
	var e *apiError
	if !errors.As(err, &e) {
		s.log.Error(err, "Request failed", "method", c.Request.Method, "route", c.FullPath())
		e = &apiError{Status: http.StatusInternalServerError, Code: "internal", Message: "internal error"}
	}
	if e.RetryAfter > 0 {
		c.Header("Retry-After", strconv.Itoa(e.RetryAfter))
	}
	c.AbortWithStatusJSON(e.Status, gin.H{"success": false, "error": e})
}

// jobNotFound answers for a job that does not exist or is another user's, alike: the body the
// seed's polling hook reads as data.job.status == "not_found", so it stops.
func (s *Server) jobNotFound(c *gin.Context, id string) {
	c.AbortWithStatusJSON(http.StatusNotFound, gin.H{
		"success": false,
		"job":     gin.H{"id": id, "status": "not_found"},
		"error":   &apiError{Code: "job_not_found", Message: "job " + id + " not found"},
	})
}

// kubeError turns a kube-apiserver error into the caller's terms: an invalid object into a 400
// naming each field of the request at fault, an unreachable or overloaded kube-apiserver into a 503.
func kubeError(err error) error {
	var status apierrors.APIStatus
	switch {
	case apierrors.IsInvalid(err) && errors.As(err, &status):
		return invalidFromCauses(status.Status())
	case apierrors.IsForbidden(err) && strings.Contains(err.Error(), "exceeded quota"):
		// The namespace's ResourceQuota on job objects (the chart's quota values) is reached.
		return &apiError{Status: http.StatusServiceUnavailable, Code: "namespace_full",
			Message: "the namespace holds the most jobs its quota allows; try again when finished jobs expire", RetryAfter: 60}
	case apierrors.IsServerTimeout(err), apierrors.IsTimeout(err), apierrors.IsServiceUnavailable(err),
		apierrors.IsTooManyRequests(err), apierrors.IsInternalError(err):
		return unavailable("the Kubernetes API server is unavailable; try again")
	case errors.As(err, &status):
		return err // forbidden, a quota, ...: the operator's to fix; logged as a 500
	case unreachable(err):
		return unavailable("the Kubernetes API server is unreachable; try again")
	}
	return err
}

// unreachable says whether err is the network's: a refused, reset or timed-out connection.
func unreachable(err error) bool {
	var netErr net.Error
	return errors.As(err, &netErr) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, context.DeadlineExceeded) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET)
}

// invalidFromCauses names the request's fields: the CRD validates spec.location.latitude, the
// request calls it location.latitude.
func invalidFromCauses(status metav1.Status) *apiError {
	fields := map[string]string{}
	var messages []string
	if status.Details != nil {
		for _, cause := range status.Details.Causes {
			field := strings.TrimPrefix(cause.Field, "spec.")
			message := strings.Replace(cause.Message, cause.Field+" in body ", "", 1)
			if field == "spec" || field == "" {
				messages = append(messages, message) // a rule on the whole request
				continue
			}
			fields[field] = message
			messages = append(messages, field+": "+message)
		}
	}
	if len(messages) == 0 {
		messages = append(messages, status.Message)
	}
	return badRequest(strings.Join(messages, "; "), fields)
}
