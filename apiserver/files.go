package apiserver

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	jobsv1alpha1 "github.com/jengu/queue-operator/api/v1alpha1"
	"github.com/jengu/queue-operator/apiserver/pricingfile"
	"github.com/jengu/queue-operator/store"
)

// Pages of the files routes: the seed's 20 and 100 for the list of files; a chart's worth of
// days for the rows.
const (
	defaultRowsLimit = 500
	maxRowsLimit     = 5000
)

func (s *Server) fileRoutes(api *gin.RouterGroup) {
	api.POST("/files", s.uploadFile)
	api.GET("/files", s.listFiles)
	api.GET("/files/:id", s.getFile)
	api.PUT("/files/:id", s.replaceFile)
	api.DELETE("/files/:id", s.deleteFile)
	api.GET("/files/:id/rows", s.fileRows)
}

// uploadFile answers POST /api/files: a new file of the caller's, under an id of the facade's.
func (s *Server) uploadFile(c *gin.Context) {
	release, err := s.largeBodies.acquire(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	defer release()
	up, err := readUpload(c)
	if err != nil {
		s.failUpload(c, err)
		return
	}
	p, err := up.property(newFileID(), userOf(c), true)
	if err != nil {
		s.fail(c, err)
		return
	}
	file, err := s.cfg.Store.CreateFile(c, p, up.pricingBase())
	if err != nil {
		s.fail(c, s.storeError(err))
		return
	}
	c.Header("Location", "/api/files/"+file.ID)
	c.JSON(http.StatusCreated, uploadAnswer(file, up.result))
}

// replaceFile answers PUT /api/files/:id: the caller's file gets the upload's rows instead of
// its own, in one transaction, and its enrichment turns stale.
func (s *Server) replaceFile(c *gin.Context) {
	id := c.Param("id")
	if _, err := s.callersFile(c, id); err != nil {
		s.fail(c, err)
		return
	}
	if err := s.notBeingEnriched(c, id); err != nil {
		s.fail(c, err)
		return
	}
	release, err := s.largeBodies.acquire(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	defer release()
	up, err := readUpload(c)
	if err != nil {
		s.failUpload(c, err)
		return
	}
	p, err := up.property(id, userOf(c), false)
	if err != nil {
		s.fail(c, err)
		return
	}
	file, err := s.cfg.Store.ReplaceFile(c, p, up.pricingBase())
	if errors.Is(err, store.ErrNotFound) { // deleted meanwhile
		s.fail(c, fileNotFound(id))
		return
	}
	if err != nil {
		s.fail(c, s.storeError(err))
		return
	}
	c.JSON(http.StatusOK, uploadAnswer(file, up.result))
}

func uploadAnswer(file store.File, res *pricingfile.Result) gin.H {
	return gin.H{"success": true, "fileId": file.ID, "rows": file.Rows, "dateRange": dateRangeOf(file),
		"rejected": rejections(res.Rejected), "rejectedCount": res.RejectedCount}
}

func rejections(r []pricingfile.Rejection) []pricingfile.Rejection {
	if r == nil {
		return []pricingfile.Rejection{}
	}
	return r
}

// failUpload answers a refused upload; a file refused as a whole lists the rows it refused.
func (s *Server) failUpload(c *gin.Context, err error) {
	var rejected *rejectedFile
	if !errors.As(err, &rejected) {
		s.fail(c, err)
		return
	}
	body := gin.H{"success": false, "error": &apiError{Code: rejected.file.Code, Message: rejected.file.Message}}
	if res := rejected.file.Result; res != nil {
		body["rejected"], body["rejectedCount"] = rejections(res.Rejected), res.RejectedCount
	}
	c.AbortWithStatusJSON(rejected.status(), body)
}

// listFiles answers GET /api/files: the caller's files, newest first.
func (s *Server) listFiles(c *gin.Context) {
	page, err := pageParams(c, store.DefaultJobResultsLimit, store.MaxJobResultsLimit)
	if err != nil {
		s.fail(c, err)
		return
	}
	files, total, err := s.cfg.Store.ListFiles(c, userOf(c), page)
	if err != nil {
		s.fail(c, s.storeError(err))
		return
	}
	views := make([]fileView, len(files))
	for i, f := range files {
		views[i] = newFileView(f)
	}
	c.JSON(http.StatusOK, gin.H{"success": true, "files": views, "total": total, "limit": page.Limit, "offset": page.Offset})
}

// getFile answers GET /api/files/:id, with the newest job of each kind on the file.
func (s *Server) getFile(c *gin.Context) {
	id := c.Param("id")
	if _, err := s.callersFile(c, id); err != nil {
		s.fail(c, err)
		return
	}
	file, err := s.cfg.Store.GetFile(c, id)
	if err != nil {
		s.fail(c, s.storeError(err))
		return
	}
	jobs, err := s.fileJobs(c, id)
	if err != nil {
		s.fail(c, err)
		return
	}
	view := newFileView(file)
	view.LastJobs = map[string]jobView{}
	for _, job := range jobs { // newest first: the first of each queue is its last job
		if _, seen := view.LastJobs[string(job.QueueName())]; !seen {
			status, record := s.liveStatus(c, job)
			view.LastJobs[string(job.QueueName())] = newJobView(job, status, record)
		}
	}
	c.JSON(http.StatusOK, gin.H{"success": true, "file": view})
}

// fileRows answers GET /api/files/:id/rows: a page of the file's days in date order, with their
// enrichment features once enriched.
func (s *Server) fileRows(c *gin.Context) {
	id := c.Param("id")
	if _, err := s.callersFile(c, id); err != nil {
		s.fail(c, err)
		return
	}
	page, err := pageParams(c, defaultRowsLimit, maxRowsLimit)
	if err != nil {
		s.fail(c, err)
		return
	}
	rows, total, err := s.cfg.Store.PricingRowsPage(c, id, page)
	if err != nil {
		s.fail(c, s.storeError(err))
		return
	}
	views := make([]rowView, len(rows))
	for i, r := range rows {
		views[i] = newRowView(r)
	}
	c.JSON(http.StatusOK, gin.H{"success": true, "fileId": id, "rows": views, "total": total, "limit": page.Limit, "offset": page.Offset})
}

// deleteFile answers DELETE /api/files/:id: the caller's running jobs on the file are cancelled
// (as DELETE /api/jobs/:jobId does), then the file goes with its rows and results.
func (s *Server) deleteFile(c *gin.Context) {
	id := c.Param("id")
	if _, err := s.callersFile(c, id); err != nil {
		s.fail(c, err)
		return
	}
	schedules, err := s.deleteFileSchedules(c, id)
	if err != nil {
		s.fail(c, err)
		return
	}
	jobs, err := s.fileJobs(c, id)
	if err != nil {
		s.fail(c, err)
		return
	}
	cancelled := []string{}
	for _, job := range jobs {
		if job.JobStatus().Phase.IsFinished() || job.GetDeletionTimestamp() != nil {
			continue
		}
		switch err := s.deleteJob(c, job); {
		case errors.Is(err, errJobReplaced):
			continue // not this file's job any more
		case err != nil:
			s.fail(c, err)
			return
		}
		cancelled = append(cancelled, job.GetName())
	}
	if err := s.cfg.Store.DeleteFile(c, id, userOf(c)); err != nil && !errors.Is(err, store.ErrNotFound) {
		s.fail(c, s.storeError(err))
		return
	}
	c.JSON(http.StatusOK, gin.H{"success": true, "fileId": id, "status": "deleted", "cancelledJobs": cancelled,
		"deletedSchedules": schedules})
}

// callersFile reads the caller's file, or says it is not found: another user's file is exactly
// as absent as one that does not exist, on every route.
func (s *Server) callersFile(c *gin.Context, id string) (store.Property, error) {
	p, err := s.cfg.Store.GetProperty(c, id)
	switch {
	case errors.Is(err, store.ErrNotFound), err == nil && p.UserID != userOf(c):
		return store.Property{}, fileNotFound(id)
	case err != nil:
		return store.Property{}, s.storeError(err)
	}
	return p, nil
}

func fileNotFound(id string) error {
	return &apiError{Status: http.StatusNotFound, Code: "file_not_found", Message: "file " + id + " not found"}
}

// notBeingEnriched refuses to replace a file whose enrichment job has not finished: the job would
// write the old days' features over the new rows and mark the file enriched.
func (s *Server) notBeingEnriched(c *gin.Context, id string) error {
	jobs, err := s.fileJobs(c, id)
	if err != nil {
		return err
	}
	for _, job := range jobs {
		if job.QueueName() == jobsv1alpha1.QueueEnrichment && !job.JobStatus().Phase.IsFinished() && job.GetDeletionTimestamp() == nil {
			return &apiError{Status: http.StatusConflict, Code: "file_busy", Message: fmt.Sprintf(
				"file %s is being enriched by job %s; replace it once that job has finished, or cancel it (DELETE /api/jobs/%s)",
				id, job.GetName(), job.GetName())}
		}
	}
	return nil
}

// fileJobs is the caller's jobs on the file that still have a CR, newest first.
func (s *Server) fileJobs(c *gin.Context, id string) ([]jobsv1alpha1.JobObject, error) {
	jobs, err := s.userJobs(c, userOf(c), jobsv1alpha1.JobKinds)
	if err != nil {
		return nil, err
	}
	var out []jobsv1alpha1.JobObject
	for _, job := range jobs {
		if job.Common().PropertyID == id {
			out = append(out, job)
		}
	}
	return out, nil
}

// storeError answers data the database refused as a 400, a conflicting write as a 409, and
// anything else, logged, as unavailable.
func (s *Server) storeError(err error) error {
	if errors.Is(err, store.ErrInvalid) {
		return badRequest(err.Error(), nil)
	}
	if errors.Is(err, store.ErrConflict) {
		return &apiError{Status: http.StatusConflict, Code: "conflict", Message: err.Error()}
	}
	s.log.Error(err, "Database request failed")
	return unavailable("the database is unreachable; try again")
}

// newFileID names a new file: random, so ids say nothing about other users' files.
func newFileID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	return "file-" + hex.EncodeToString(b)
}

// pageParams reads limit and offset.
func pageParams(c *gin.Context, defaultLimit, maxLimit int) (store.Page, error) {
	page := store.Page{Limit: defaultLimit}
	if v := c.Query("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxLimit {
			return page, fieldError("limit", "must be a whole number from 1 to "+strconv.Itoa(maxLimit))
		}
		page.Limit = n
	}
	if v := c.Query("offset"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return page, fieldError("offset", "must be a whole number from 0")
		}
		page.Offset = n
	}
	return page, nil
}

// fileView is a file as the files routes answer it; dates are YYYY-MM-DD, times RFC 3339.
type fileView struct {
	ID          string             `json:"id"`
	Name        string             `json:"name,omitempty"`
	Rows        int                `json:"rows"`
	DateRange   *dateRange         `json:"dateRange"`
	Location    *locationView      `json:"location"`
	CountryCode string             `json:"countryCode,omitempty"`
	Currency    string             `json:"currency,omitempty"`
	Enrichment  enrichmentView     `json:"enrichment"`
	CreatedAt   time.Time          `json:"createdAt"`
	UpdatedAt   time.Time          `json:"updatedAt"`
	UploadedAt  *time.Time         `json:"uploadedAt,omitempty"`
	LastJobs    map[string]jobView `json:"lastJobs,omitempty"`
}

type dateRange struct {
	From string `json:"from"`
	To   string `json:"to"`
}

type locationView struct {
	Latitude  float64 `json:"latitude"`
	Longitude float64 `json:"longitude"`
}

type enrichmentView struct {
	Status     store.EnrichmentStatus `json:"status"`
	EnrichedAt *time.Time             `json:"enrichedAt,omitempty"`
}

func newFileView(f store.File) fileView {
	v := fileView{ID: f.ID, Name: f.Name, Rows: f.Rows, DateRange: dateRangeOf(f), CountryCode: f.CountryCode,
		Currency: f.Currency, Enrichment: enrichmentView{Status: f.EnrichmentStatus, EnrichedAt: timeOrNil(f.EnrichedAt)},
		CreatedAt: f.CreatedAt, UpdatedAt: f.UpdatedAt, UploadedAt: timeOrNil(f.UploadedAt)}
	if f.Location != nil {
		v.Location = &locationView{Latitude: f.Location.Latitude, Longitude: f.Location.Longitude}
	}
	return v
}

func dateRangeOf(f store.File) *dateRange {
	if f.Rows == 0 {
		return nil
	}
	return &dateRange{From: f.FirstDate.Format(time.DateOnly), To: f.LastDate.Format(time.DateOnly)}
}

func timeOrNil(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// rowView is a day as GET /api/files/:id/rows answers it.
type rowView struct {
	Date       string        `json:"date"`
	Price      *float64      `json:"price"`
	Occupancy  *float64      `json:"occupancy"`
	Features   *featuresView `json:"features"`
	EnrichedAt *time.Time    `json:"enrichedAt,omitempty"`
}

type featuresView struct {
	TempMaxC          *float64 `json:"tempMaxC"`
	TempMinC          *float64 `json:"tempMinC"`
	PrecipitationMM   *float64 `json:"precipitationMm"`
	WeatherCode       *int     `json:"weatherCode"`
	IsHoliday         bool     `json:"isHoliday"`
	HolidayName       string   `json:"holidayName,omitempty"`
	DayOfWeek         int      `json:"dayOfWeek"`
	IsWeekend         bool     `json:"isWeekend"`
	Month             int      `json:"month"`
	Quarter           int      `json:"quarter"`
	ISOWeek           int      `json:"isoWeek"`
	ISOYear           int      `json:"isoYear"`
	Season            string   `json:"season"`
	DaysToNextHoliday *int     `json:"daysToNextHoliday"`
}

func newRowView(r store.PricingRow) rowView {
	v := rowView{Date: r.Date.Format(time.DateOnly), Price: r.Price, Occupancy: r.Occupancy, EnrichedAt: timeOrNil(r.EnrichedAt)}
	if f := r.Features; f != nil {
		v.Features = &featuresView{TempMaxC: f.TempMaxC, TempMinC: f.TempMinC, PrecipitationMM: f.PrecipitationMM,
			WeatherCode: f.WeatherCode, IsHoliday: f.IsHoliday, HolidayName: f.HolidayName, DayOfWeek: f.DayOfWeek,
			IsWeekend: f.IsWeekend, Month: f.Month, Quarter: f.Quarter, ISOWeek: f.ISOWeek, ISOYear: f.ISOYear,
			Season: string(f.Season), DaysToNextHoliday: f.DaysToNextHoliday}
	}
	return v
}
