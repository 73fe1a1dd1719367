package apiserver

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/gin-gonic/gin"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/controller-runtime/pkg/client"

	jobsv1alpha1 "github.com/jengu/queue-operator/api/v1alpha1"
)

// The facade creates, reads, suspends and deletes the caller's JobSchedules.
// +kubebuilder:rbac:groups=jobs.jengu.io,resources=jobschedules,verbs=get;list;watch;create;patch;delete

// scheduleUserIndex indexes JobSchedules by their template's userId.
const scheduleUserIndex = "spec.jobTemplate.userId"

func indexSchedules(ctx context.Context, indexer client.FieldIndexer) error {
	err := indexer.IndexField(ctx, &jobsv1alpha1.JobSchedule{}, scheduleUserIndex, func(o client.Object) []string {
		if common := o.(*jobsv1alpha1.JobSchedule).Spec.JobTemplate.Common(); common != nil {
			return []string{common.UserID}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("index JobSchedule by user: %w", err)
	}
	return nil
}

func (s *Server) scheduleRoutes(api *gin.RouterGroup) {
	api.POST("/files/:id/schedules", s.createSchedule)
	api.GET("/files/:id/schedules", s.listFileSchedules)
	api.GET("/schedules", s.listSchedules)
	api.GET("/schedules/:scheduleId", s.getSchedule)
	api.PATCH("/schedules/:scheduleId", s.patchSchedule)
	api.DELETE("/schedules/:scheduleId", s.deleteSchedule)
}

// scheduleRequest is the body of POST /api/files/:id/schedules: a JobSchedule's spec, its
// jobTemplate in the enqueue routes' request shapes.
type scheduleRequest struct {
	Schedule                   string                         `json:"schedule"`
	TimeZone                   string                         `json:"timeZone"`
	ConcurrencyPolicy          jobsv1alpha1.ConcurrencyPolicy `json:"concurrencyPolicy"`
	StartingDeadlineSeconds    *int64                         `json:"startingDeadlineSeconds"`
	Suspend                    bool                           `json:"suspend"`
	SuccessfulJobsHistoryLimit *int32                         `json:"successfulJobsHistoryLimit"`
	FailedJobsHistoryLimit     *int32                         `json:"failedJobsHistoryLimit"`
	JobTemplate                *templateRequest               `json:"jobTemplate"`
}

// templateRequest is a schedule's job: exactly one kind's request, with its then inside it as
// the enqueue routes take it.
type templateRequest struct {
	Enrichment *enrichRequest     `json:"enrichment"`
	Competitor *competitorRequest `json:"competitor"`
	Analytics  *analyticsRequest  `json:"analytics"`
}

// scheduleView is a JobSchedule as the schedule routes answer it; times in Unix milliseconds.
type scheduleView struct {
	ID                         string                         `json:"id"`
	FileID                     string                         `json:"fileId"`
	Queue                      string                         `json:"queue"`
	Schedule                   string                         `json:"schedule"`
	TimeZone                   string                         `json:"timeZone,omitempty"`
	ConcurrencyPolicy          jobsv1alpha1.ConcurrencyPolicy `json:"concurrencyPolicy"`
	StartingDeadlineSeconds    *int64                         `json:"startingDeadlineSeconds,omitempty"`
	Suspend                    bool                           `json:"suspend"`
	SuccessfulJobsHistoryLimit *int32                         `json:"successfulJobsHistoryLimit,omitempty"`
	FailedJobsHistoryLimit     *int32                         `json:"failedJobsHistoryLimit,omitempty"`
	Data                       any                            `json:"data"`
	Active                     []string                       `json:"active"`
	LastScheduleTime           int64                          `json:"lastScheduleTime,omitempty"`
	LastSuccessfulTime         int64                          `json:"lastSuccessfulTime,omitempty"`
	NextScheduleTime           int64                          `json:"nextScheduleTime,omitempty"`
	Timestamp                  int64                          `json:"timestamp"`
	// Error is why the controller cannot run the schedule (an unknown time zone), if it cannot.
	Error string `json:"error,omitempty"`
}

func newScheduleView(js *jobsv1alpha1.JobSchedule) scheduleView {
	v := scheduleView{ID: js.Name, Schedule: js.Spec.Schedule, TimeZone: js.Spec.TimeZone,
		ConcurrencyPolicy: js.Spec.ConcurrencyPolicy, StartingDeadlineSeconds: js.Spec.StartingDeadlineSeconds,
		Suspend: js.Spec.Suspend, SuccessfulJobsHistoryLimit: js.Spec.SuccessfulJobsHistoryLimit,
		FailedJobsHistoryLimit: js.Spec.FailedJobsHistoryLimit, Active: []string{},
		LastScheduleTime: millis(js.Status.LastScheduleTime), LastSuccessfulTime: millis(js.Status.LastSuccessfulTime),
		NextScheduleTime: millis(js.Status.NextScheduleTime), Timestamp: js.CreationTimestamp.UnixMilli()}
	if kind, ok := js.Spec.JobTemplate.Kind(); ok {
		v.Queue = string(kind.Queue)
		v.FileID = js.Spec.JobTemplate.Common().PropertyID
		v.Data = js.Spec.JobTemplate.NewJob().JobSpec()
	}
	for _, ref := range js.Status.Active {
		v.Active = append(v.Active, ref.Name)
	}
	if c := meta.FindStatusCondition(js.Status.Conditions, jobsv1alpha1.ConditionReady); c != nil && c.Status == metav1.ConditionFalse {
		v.Error = c.Message
	}
	return v
}

// createSchedule answers POST /api/files/:id/schedules: a JobSchedule on the caller's file whose
// job is built as its kind's enqueue route builds one.
func (s *Server) createSchedule(c *gin.Context) {
	user, propertyID := userOf(c), c.Param("id")
	// The owner first: another user's file costs no read of the body.
	property, err := s.callersFile(c, propertyID)
	if err != nil {
		s.fail(c, err)
		return
	}
	var req scheduleRequest
	if err := decodeRequest(c, &req, maxJobBody); err != nil {
		s.fail(c, err)
		return
	}
	if req.JobTemplate == nil {
		s.fail(c, fieldError("jobTemplate", "required: one of enrichment, competitor and analytics"))
		return
	}
	t := req.JobTemplate
	jobReq, build, name, err := thenRequest{Enrichment: t.Enrichment, Competitor: t.Competitor, Analytics: t.Analytics}.kind("jobTemplate")
	if err != nil {
		s.fail(c, err)
		return
	}
	job, err := buildJob(jobReq, build, property, user)
	if err != nil {
		s.fail(c, prefixed(err, "jobTemplate."+name+"."))
		return
	}
	js := &jobsv1alpha1.JobSchedule{
		ObjectMeta: metav1.ObjectMeta{Namespace: s.cfg.Namespace, Name: randomID(scheduleIDPrefix, s.clock.Now()),
			Labels: map[string]string{jobsv1alpha1.LabelUserID: user}},
		Spec: jobsv1alpha1.JobScheduleSpec{Schedule: req.Schedule, TimeZone: req.TimeZone, JobTemplate: jobsv1alpha1.TemplateOf(job),
			ConcurrencyPolicy: req.ConcurrencyPolicy, StartingDeadlineSeconds: req.StartingDeadlineSeconds, Suspend: req.Suspend,
			SuccessfulJobsHistoryLimit: req.SuccessfulJobsHistoryLimit, FailedJobsHistoryLimit: req.FailedJobsHistoryLimit},
	}
	if err := s.cfg.Kube.Create(c, js); err != nil {
		s.fail(c, kubeError(err))
		return
	}
	c.Header("Location", "/api/schedules/"+js.Name)
	c.JSON(http.StatusCreated, gin.H{"success": true, "scheduleId": js.Name, "schedule": newScheduleView(js)})
}

// scheduleIDPrefix begins the ids the facade draws for schedules.
const scheduleIDPrefix = "schedule"

// listSchedules answers GET /api/schedules: the caller's schedules, newest first.
func (s *Server) listSchedules(c *gin.Context) {
	s.answerSchedules(c, "")
}

// listFileSchedules answers GET /api/files/:id/schedules: the caller's schedules of the file.
func (s *Server) listFileSchedules(c *gin.Context) {
	id := c.Param("id")
	if _, err := s.callersFile(c, id); err != nil {
		s.fail(c, err)
		return
	}
	s.answerSchedules(c, id)
}

func (s *Server) answerSchedules(c *gin.Context, fileID string) {
	schedules, err := s.callersSchedules(c, fileID)
	if err != nil {
		s.fail(c, err)
		return
	}
	views := []scheduleView{}
	for _, js := range schedules {
		views = append(views, newScheduleView(js))
	}
	slices.SortFunc(views, func(a, b scheduleView) int {
		if a.Timestamp != b.Timestamp {
			return int(b.Timestamp - a.Timestamp)
		}
		return strings.Compare(b.ID, a.ID)
	})
	c.JSON(http.StatusOK, gin.H{"success": true, "schedules": views, "total": len(views)})
}

// callersSchedules reads the caller's schedules (of one file, unless fileID is empty) from the
// cache's user index.
func (s *Server) callersSchedules(c *gin.Context, fileID string) ([]*jobsv1alpha1.JobSchedule, error) {
	list := &jobsv1alpha1.JobScheduleList{}
	if err := s.cfg.Kube.List(c, list, client.InNamespace(s.cfg.Namespace), client.MatchingFields{scheduleUserIndex: userOf(c)}); err != nil {
		return nil, kubeError(err)
	}
	var out []*jobsv1alpha1.JobSchedule
	for i := range list.Items {
		if common := list.Items[i].Spec.JobTemplate.Common(); common != nil && (fileID == "" || common.PropertyID == fileID) {
			out = append(out, &list.Items[i])
		}
	}
	return out, nil
}

// deleteFileSchedules deletes the caller's schedules of a file being deleted and returns their ids.
func (s *Server) deleteFileSchedules(c *gin.Context, fileID string) ([]string, error) {
	schedules, err := s.callersSchedules(c, fileID)
	if err != nil {
		return nil, err
	}
	deleted := []string{}
	for _, js := range schedules {
		uid := js.UID
		err := s.cfg.Kube.Delete(c, js, client.Preconditions{UID: &uid}, client.PropagationPolicy(metav1.DeletePropagationBackground))
		if err != nil && !apierrors.IsNotFound(err) {
			return nil, kubeError(err)
		}
		deleted = append(deleted, js.Name)
	}
	return deleted, nil
}

// getSchedule answers GET /api/schedules/:scheduleId.
func (s *Server) getSchedule(c *gin.Context) {
	js, err := s.findSchedule(c, c.Param("scheduleId"))
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"success": true, "schedule": newScheduleView(js)})
}

// suspendRequest is the body of PATCH /api/schedules/:scheduleId.
type suspendRequest struct {
	Suspend *bool `json:"suspend"`
}

// patchSchedule answers PATCH /api/schedules/:scheduleId {"suspend": true|false}.
func (s *Server) patchSchedule(c *gin.Context) {
	var req suspendRequest
	if err := decodeRequest(c, &req, maxJobBody); err != nil {
		s.fail(c, err)
		return
	}
	if req.Suspend == nil {
		s.fail(c, fieldError("suspend", "required: true or false"))
		return
	}
	js, err := s.findSchedule(c, c.Param("scheduleId"))
	if err != nil {
		s.fail(c, err)
		return
	}
	patch := client.RawPatch("application/merge-patch+json", fmt.Appendf(nil, `{"spec":{"suspend":%t}}`, *req.Suspend))
	if err := s.cfg.Kube.Patch(c, js, patch); err != nil {
		if apierrors.IsNotFound(err) {
			err = scheduleNotFound(js.Name)
		}
		s.fail(c, kubeError(err))
		return
	}
	c.JSON(http.StatusOK, gin.H{"success": true, "schedule": newScheduleView(js)})
}

// deleteSchedule answers DELETE /api/schedules/:scheduleId; its jobs go with it (owner
// references), the unfinished ones cancelled.
func (s *Server) deleteSchedule(c *gin.Context) {
	js, err := s.findSchedule(c, c.Param("scheduleId"))
	if err != nil {
		s.fail(c, err)
		return
	}
	uid := js.UID
	err = s.cfg.Kube.Delete(c, js, client.Preconditions{UID: &uid}, client.PropagationPolicy(metav1.DeletePropagationBackground))
	if err != nil && !apierrors.IsNotFound(err) {
		s.fail(c, kubeError(err))
		return
	}
	c.JSON(http.StatusOK, gin.H{"success": true, "scheduleId": js.Name, "status": "deleted"})
}

// findSchedule reads the caller's schedule; another user's is exactly as absent as an unknown
// one. A miss in the cache is read from the kube-apiserver only for an id the facade may have
// drawn a moment ago (mayLagTheCache).
func (s *Server) findSchedule(c *gin.Context, id string) (*jobsv1alpha1.JobSchedule, error) {
	if len(validation.IsDNS1123Subdomain(id)) > 0 {
		return nil, scheduleNotFound(id)
	}
	js := &jobsv1alpha1.JobSchedule{}
	key := client.ObjectKey{Namespace: s.cfg.Namespace, Name: id}
	err := s.cfg.Kube.Get(c, key, js)
	if apierrors.IsNotFound(err) && strings.HasPrefix(id, scheduleIDPrefix+"-") && s.mayLagTheCache(id) {
		err = s.cfg.Reader.Get(c, key, js)
	}
	switch {
	case apierrors.IsNotFound(err):
		return nil, scheduleNotFound(id)
	case err != nil:
		return nil, kubeError(err)
	}
	if common := js.Spec.JobTemplate.Common(); common == nil || common.UserID != userOf(c) {
		return nil, scheduleNotFound(id)
	}
	return js, nil
}

func scheduleNotFound(id string) error {
	return &apiError{Status: http.StatusNotFound, Code: "schedule_not_found", Message: "schedule " + id + " not found"}
}
