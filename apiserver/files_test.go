package apiserver_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	jobsv1alpha1 "github.com/jengu/queue-operator/api/v1alpha1"
	"github.com/jengu/queue-operator/store"
)

// send sends body as contentType, as user.
func (f *fixture) send(method, path, user, contentType string, body io.Reader) response {
	f.t.Helper()
	return f.do(method, path, user, body, "Content-Type", contentType)
}

// multipartUpload writes a form of fields, then the file part.
func multipartUpload(fields map[string]string, filename, content string) (string, io.Reader) {
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	for k, v := range fields {
		_ = w.WriteField(k, v)
	}
	part, _ := w.CreateFormFile("file", filename)
	_, _ = io.WriteString(part, content)
	_ = w.Close()
	return w.FormDataContentType(), &buf
}

const barcelona = "latitude=41.39&longitude=2.17&countryCode=ES"

// uploadCSV uploads content as user through POST /api/files?query and returns the file id.
func (f *fixture) uploadCSV(user, query, content string) string {
	f.t.Helper()
	r := f.send(http.MethodPost, "/api/files?"+query, user, "text/csv", strings.NewReader(content))
	if r.Code != http.StatusCreated {
		f.t.Fatalf("upload: %d %s", r.Code, r.Raw)
	}
	return r.Body["fileId"].(string)
}

func januaryCSV(days int) string {
	var b strings.Builder
	b.WriteString("date,price,occupancy\n")
	for i := range days {
		fmt.Fprintf(&b, "2026-01-%02d,%d.50,%d\n", i+1, 100+i, 50+i)
	}
	return b.String()
}

func TestUploadACleanFileThreeWays(t *testing.T) {
	g := NewWithT(t)
	f := newFixture(t, withoutController())
	userA, userB := f.ns+"-a", f.ns+"-b"

	contentType, form := multipartUpload(map[string]string{"latitude": "41.39", "longitude": "2.17", "countryCode": "ES"},
		"january.csv", januaryCSV(31))
	jsonBody := `{"name": "january", "location": {"latitude": 41.39, "longitude": 2.17}, "currency": "EUR",
		"rows": [{"date": "2026-01-01", "price": 100.5, "occupancy": 50}, {"date": "2026-01-31", "price": 130.5}]}`
	uploads := []struct {
		name, contentType, query string
		body                     io.Reader
		wantName                 string
		wantRows                 float64
	}{
		{name: "multipart", contentType: contentType, body: form, wantName: "january.csv", wantRows: 31},
		{name: "text/csv", contentType: "text/csv", query: barcelona + "&name=jan", body: strings.NewReader(januaryCSV(31)), wantName: "jan", wantRows: 31},
		{name: "json", contentType: "application/json", body: strings.NewReader(jsonBody), wantName: "january", wantRows: 2},
	}
	for _, u := range uploads {
		r := f.send(http.MethodPost, "/api/files?"+u.query, userA, u.contentType, u.body)
		g.Expect(r.Code).To(Equal(http.StatusCreated), u.name+": "+r.Raw)
		id, _ := r.Body["fileId"].(string)
		g.Expect(id).To(MatchRegexp(`^file-[0-9a-f]{16}$`))
		g.Expect(r.Header.Get("Location")).To(Equal("/api/files/" + id))
		g.Expect(r.Body).To(And(HaveKeyWithValue("success", true), HaveKeyWithValue("rows", u.wantRows),
			HaveKeyWithValue("dateRange", map[string]any{"from": "2026-01-01", "to": "2026-01-31"}),
			HaveKeyWithValue("rejected", []any{}), HaveKeyWithValue("rejectedCount", 0.0)), u.name)

		r = f.do(http.MethodGet, "/api/files/"+id, userA, nil)
		g.Expect(r.Code).To(Equal(http.StatusOK), r.Raw)
		g.Expect(r.Body["file"]).To(And(HaveKeyWithValue("id", id), HaveKeyWithValue("name", u.wantName),
			HaveKeyWithValue("rows", u.wantRows), HaveKeyWithValue("location", map[string]any{"latitude": 41.39, "longitude": 2.17}),
			HaveKeyWithValue("enrichment", map[string]any{"status": "pending"}), HaveKey("uploadedAt")), u.name)
	}

	r := f.do(http.MethodGet, "/api/files?limit=2", userA, nil)
	g.Expect(r.Code).To(Equal(http.StatusOK), r.Raw)
	g.Expect(r.Body).To(And(HaveKeyWithValue("total", 3.0), HaveKeyWithValue("limit", 2.0)))
	g.Expect(r.Body["files"]).To(HaveLen(2))
	g.Expect(r.Body["files"].([]any)[0]).To(HaveKeyWithValue("name", "january"), "newest first")
	g.Expect(f.do(http.MethodGet, "/api/files", userB, nil).Body).To(HaveKeyWithValue("total", 0.0))
}

func TestUploadRefusesBadRowsNamingThem(t *testing.T) {
	f := newFixture(t, withoutController())
	userA := f.ns + "-a"
	good := januaryCSV(31)
	tests := []struct {
		name, query, contentType, body string
		// unlocated leaves out the location the upload otherwise has.
		unlocated    bool
		wantCode     int
		wantError    string
		wantRows     float64
		wantRejected []any
	}{
		{name: "bad date", body: good + "2026-02-30,10,50\n", wantCode: http.StatusCreated, wantRows: 31,
			wantRejected: []any{rejected(33, "date", `date "2026-02-30" is not YYYY-MM-DD`)}},
		{name: "negative price", body: good + "2026-02-01,-10,50\n", wantCode: http.StatusCreated, wantRows: 31,
			wantRejected: []any{rejected(33, "price", "price -10 is negative")}},
		{name: "duplicate date", body: good + "2026-01-05,10,50\n", wantCode: http.StatusCreated, wantRows: 31,
			wantRejected: []any{rejected(33, "date", "date 2026-01-05 is also on line 6")}},
		{name: "BOM", body: "\ufeff" + good, wantCode: http.StatusCreated, wantRows: 31, wantRejected: []any{}},
		{name: "decimal comma", body: strings.ReplaceAll(strings.ReplaceAll(good, ",", ";"), ".", ","),
			wantCode: http.StatusCreated, wantRows: 31, wantRejected: []any{}},
		{name: "day-first dates declared", query: "&dateFormat=DD/MM/YYYY", body: "date,price\n31/01/2026,10\n",
			wantCode: http.StatusCreated, wantRows: 1, wantRejected: []any{}},
		{name: "wrong delimiter", body: strings.ReplaceAll(good, ",", "|"), wantCode: http.StatusBadRequest,
			wantError: `invalid_file: line 1: the header "date|price|occupancy" has no date and price columns`},
		{name: "too many bad rows", body: "date,price\n2026-01-01,1\nx,1\n", wantCode: http.StatusUnprocessableEntity,
			wantError:    "too_many_bad_rows: 1 of 2 rows are bad (at most 10% may be); nothing was stored",
			wantRejected: []any{rejected(3, "date", `date "x" is not YYYY-MM-DD`)}},
		{name: "too big", body: wideCSV(9000, 1200), wantCode: http.StatusRequestEntityTooLarge,
			wantError: "file_too_large: the upload is over 10485760 bytes"},
		{name: "too many rows", body: januaryCSVDays(10_001), wantCode: http.StatusRequestEntityTooLarge,
			wantError: "too_many_rows: the file has more than 10000 rows"},
		{name: "no location", unlocated: true, body: good, wantCode: http.StatusBadRequest,
			wantError: "invalid_request: location: required"},
		{name: "half a location", unlocated: true, query: "&latitude=41", body: good, wantCode: http.StatusBadRequest,
			wantError: "invalid_request: location: needs both latitude and longitude"},
		{name: "unknown date format", query: "&dateFormat=D/M/Y", body: good, wantCode: http.StatusBadRequest,
			wantError: "invalid_request: dateFormat: must be one of"},
		{name: "not a file type", contentType: "image/png", body: good, wantCode: http.StatusUnsupportedMediaType,
			wantError: "unsupported_media_type"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			contentType := tt.contentType
			if contentType == "" {
				contentType = "text/csv"
			}
			query := barcelona + tt.query
			if tt.unlocated {
				query = tt.query
			}
			r := f.send(http.MethodPost, "/api/files?"+query, userA, contentType, strings.NewReader(tt.body))
			g.Expect(r.Code).To(Equal(tt.wantCode), r.Raw)
			if tt.wantError != "" {
				e, _ := r.Body["error"].(map[string]any)
				g.Expect(fmt.Sprint(e["code"], ": ", e["message"])).To(HavePrefix(tt.wantError))
			} else {
				g.Expect(r.Body).To(HaveKeyWithValue("rows", tt.wantRows))
			}
			if tt.wantRejected != nil {
				g.Expect(r.Body).To(HaveKeyWithValue("rejected", tt.wantRejected))
				g.Expect(r.Body).To(HaveKeyWithValue("rejectedCount", float64(len(tt.wantRejected))))
			}
		})
	}
}

func rejected(line int, field, reason string) map[string]any {
	return map[string]any{"line": float64(line), "field": field, "reason": reason}
}

// wideCSV is n days with a note of width bytes each.
func wideCSV(n, width int) string {
	var b strings.Builder
	b.WriteString("date,price,note\n")
	note := strings.Repeat("x", width)
	start := time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range n {
		fmt.Fprintf(&b, "%s,1,%s\n", start.AddDate(0, 0, i).Format(time.DateOnly), note)
	}
	return b.String()
}

func januaryCSVDays(n int) string {
	var b strings.Builder
	b.WriteString("date,price\n")
	start := time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range n {
		fmt.Fprintf(&b, "%s,1\n", start.AddDate(0, 0, i).Format(time.DateOnly))
	}
	return b.String()
}

func TestFilesAreTheirOwnersOnly(t *testing.T) {
	g := NewWithT(t)
	f := newFixture(t, withoutController())
	userA, userB := f.ns+"-a", f.ns+"-b"
	id := f.uploadCSV(userA, barcelona, januaryCSV(3))

	routes := []struct{ method, path, contentType, body string }{
		{http.MethodGet, "/api/files/%s", "", ""},
		{http.MethodGet, "/api/files/%s/rows", "", ""},
		{http.MethodPut, "/api/files/%s", "text/csv", januaryCSV(1)},
		{http.MethodDelete, "/api/files/%s", "", ""},
		{http.MethodPost, "/api/files/%s/enrich", "application/json", "{}"},
		{http.MethodPost, "/api/files/%s/competitors", "application/json", "{}"},
		{http.MethodPost, "/api/files/%s/analytics", "application/json", "{}"},
	}
	for _, rt := range routes {
		theirs := f.send(rt.method, fmt.Sprintf(rt.path, id), userB, rt.contentType, strings.NewReader(rt.body))
		missing := f.send(rt.method, fmt.Sprintf(rt.path, "file-0000000000000000"), userB, rt.contentType, strings.NewReader(rt.body))
		g.Expect(theirs.Code).To(Equal(http.StatusNotFound), rt.method+" "+rt.path+": "+theirs.Raw)
		g.Expect(strings.ReplaceAll(theirs.Raw, id, "ID")).To(Equal(strings.ReplaceAll(missing.Raw, "file-0000000000000000", "ID")),
			"another user's file must look exactly like a missing one")
		g.Expect(theirs.Body["error"]).To(HaveKeyWithValue("code", "file_not_found"))
	}
	// Still there, untouched.
	r := f.do(http.MethodGet, "/api/files/"+id, userA, nil)
	g.Expect(r.Code).To(Equal(http.StatusOK))
	g.Expect(r.Body["file"]).To(HaveKeyWithValue("rows", 3.0))
}

func TestReplaceAFileMarksItsEnrichmentStale(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	f := newFixture(t, withoutController())
	userA := f.ns + "-a"
	id := f.uploadCSV(userA, barcelona+"&currency=EUR", januaryCSV(31))
	g.Expect(db.SetEnrichmentStatus(ctx, id, store.EnrichmentCompleted)).To(Succeed())

	r := f.send(http.MethodPut, "/api/files/"+id, userA, "text/csv", strings.NewReader("date,price\n2026-03-01,80\n2026-03-02,81\n"))
	g.Expect(r.Code).To(Equal(http.StatusOK), r.Raw)
	g.Expect(r.Body).To(And(HaveKeyWithValue("fileId", id), HaveKeyWithValue("rows", 2.0),
		HaveKeyWithValue("dateRange", map[string]any{"from": "2026-03-01", "to": "2026-03-02"})))

	file := f.do(http.MethodGet, "/api/files/"+id, userA, nil).Body["file"]
	g.Expect(file).To(And(HaveKeyWithValue("currency", "EUR"), HaveKeyWithValue("countryCode", "ES"),
		HaveKey("location")), "what the re-upload left out is kept")
	g.Expect(file.(map[string]any)["enrichment"]).To(And(HaveKeyWithValue("status", "stale"), HaveKey("enrichedAt")))

	rows := f.do(http.MethodGet, "/api/files/"+id+"/rows?limit=1&offset=1", userA, nil)
	g.Expect(rows.Code).To(Equal(http.StatusOK), rows.Raw)
	g.Expect(rows.Body).To(And(HaveKeyWithValue("total", 2.0), HaveKeyWithValue("rows", []any{
		map[string]any{"date": "2026-03-02", "price": 81.0, "occupancy": nil, "features": nil}})))

	// A bad re-upload changes nothing.
	r = f.send(http.MethodPut, "/api/files/"+id, userA, "text/csv", strings.NewReader("date,price\nx,1\n"))
	g.Expect(r.Code).To(Equal(http.StatusUnprocessableEntity), r.Raw)
	g.Expect(f.do(http.MethodGet, "/api/files/"+id, userA, nil).Body["file"]).To(HaveKeyWithValue("rows", 2.0))
}

func TestDeleteAFileCancelsItsJobs(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	f := newFixture(t)
	userA := f.ns + "-a"
	id := f.uploadCSV(userA, barcelona, januaryCSV(5))
	other := f.uploadCSV(userA, barcelona, januaryCSV(5))
	r := f.do(http.MethodPost, "/api/files/"+id+"/enrich", userA, map[string]any{})
	g.Expect(r.Code).To(Equal(http.StatusAccepted), r.Raw)
	jobID := r.Body["jobId"].(string)
	r = f.do(http.MethodPost, "/api/files/"+other+"/enrich", userA, map[string]any{})
	g.Expect(r.Code).To(Equal(http.StatusAccepted), r.Raw)
	otherJob := r.Body["jobId"].(string)
	// The file's view names its last enrichment job once the cache has it.
	g.Eventually(func() any {
		return f.do(http.MethodGet, "/api/files/"+id, userA, nil).Body["file"]
	}).WithTimeout(timeout).Should(HaveKeyWithValue("lastJobs", HaveKeyWithValue("enrichment", HaveKeyWithValue("id", jobID))))

	r = f.do(http.MethodDelete, "/api/files/"+id, userA, nil)
	g.Expect(r.Code).To(Equal(http.StatusOK), r.Raw)
	g.Expect(r.Body).To(And(HaveKeyWithValue("status", "deleted"), HaveKeyWithValue("cancelledJobs", []any{jobID})))

	g.Expect(f.do(http.MethodGet, "/api/files/"+id, userA, nil).Code).To(Equal(http.StatusNotFound))
	rows, err := db.ListPricingRows(ctx, id)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(rows).To(BeEmpty())
	g.Eventually(func() bool {
		err := env.Client.Get(ctx, client.ObjectKey{Namespace: f.ns, Name: jobID}, &jobsv1alpha1.EnrichmentJob{})
		return apierrors.IsNotFound(err)
	}).WithTimeout(timeout).Should(BeTrue(), "the file's job is cancelled")
	g.Expect(env.Client.Get(ctx, client.ObjectKey{Namespace: f.ns, Name: otherJob}, &jobsv1alpha1.EnrichmentJob{})).
		To(Succeed(), "another file's job stays")
}

// A file whose enrichment has not finished is not replaced: the job would write the old days'
// features over the new rows and mark the file enriched.
func TestReplacingAFileBeingEnrichedIsAConflict(t *testing.T) {
	g := NewWithT(t)
	f := newFixture(t)
	userA := f.ns + "-a"
	id := f.uploadCSV(userA, barcelona, januaryCSV(5))
	r := f.do(http.MethodPost, "/api/files/"+id+"/enrich", userA, map[string]any{})
	g.Expect(r.Code).To(Equal(http.StatusAccepted), r.Raw)
	jobID := r.Body["jobId"].(string)

	// The facade knows its jobs from its cache: once the file's view names the job.
	g.Eventually(func() any {
		return f.do(http.MethodGet, "/api/files/"+id, userA, nil).Body["file"]
	}).WithTimeout(timeout).Should(HaveKeyWithValue("lastJobs", HaveKeyWithValue("enrichment", HaveKeyWithValue("id", jobID))))
	r = f.send(http.MethodPut, "/api/files/"+id, userA, "text/csv", strings.NewReader(januaryCSV(2)))
	g.Expect(r.Code).To(Equal(http.StatusConflict), r.Raw)
	g.Expect(r.Body).To(HaveKeyWithValue("error", And(HaveKeyWithValue("code", "file_busy"),
		HaveKeyWithValue("message", ContainSubstring(jobID)))))
	g.Expect(f.do(http.MethodGet, "/api/files/"+id, userA, nil).Body["file"]).To(HaveKeyWithValue("rows", 5.0), "nothing replaced")
}
