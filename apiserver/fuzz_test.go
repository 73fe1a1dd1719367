package apiserver

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"testing"

	jobsv1alpha1 "github.com/jengu/queue-operator/api/v1alpha1"
	"github.com/jengu/queue-operator/store"
)

// Every JSON body the facade accepts is fuzzed here: whatever the body, the answer is a job of
// the caller's file or a 4xx, never a panic or a 5xx. The seeds (f.Add and testdata/fuzz) run
// in plain `go test`; to fuzz one, run it alone, e.g.
//
//	go test -run '^FuzzAnalyticsRequest$' -fuzz '^FuzzAnalyticsRequest$' -fuzztime 60s ./apiserver/
//
// (without a control plane: TestMain starts none when fuzzing).

var fuzzProperty = store.Property{ID: "file-1", UserID: "user-a", CountryCode: "ES",
	Location: &store.Location{Latitude: 41.39, Longitude: 2.17}}

// requireClientError fails unless err is the API's answer with a 4xx status.
func requireClientError(t *testing.T, body []byte, err error) {
	t.Helper()
	var api *apiError
	var rejected *rejectedFile
	switch {
	case errors.As(err, &api) && api.Status >= 400 && api.Status < 500:
	case errors.As(err, &rejected) && rejected.status() >= 400 && rejected.status() < 500:
	default:
		t.Fatalf("body %q: error %v (%T) is not a 4xx", body, err, err)
	}
}

// fuzzJobParser fuzzes a kind's enqueue body; newRequest gives the kind's empty request and
// its builder.
func fuzzJobParser(f *testing.F, limit int64, newRequest func() (any, jobBuilder)) {
	f.Add([]byte(``))
	f.Add([]byte(`{}`))
	f.Add([]byte(`null`))
	f.Add([]byte(`{"propertyId":"file-1","userId":"user-a"}`))
	f.Add([]byte(`{"userId":"user-b"}`))
	f.Add([]byte(`{"location":{"latitude":1}} {}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		req, build := newRequest()
		job, err := parseJob(http.MaxBytesReader(nil, io.NopCloser(bytes.NewReader(body)), limit), req, build, "user-a", fuzzProperty)
		if err != nil {
			requireClientError(t, body, err)
			return
		}
		if c := job.Common(); c.UserID != "user-a" || c.PropertyID != "file-1" {
			t.Fatalf("body %q: a job of user %q and file %q", body, c.UserID, c.PropertyID)
		}
	})
}

func FuzzEnrichmentRequest(f *testing.F) {
	f.Add([]byte(`{"location":{"latitude":41.39,"longitude":2.17},"countryCode":"ES"}`))
	f.Add([]byte(`{"calendarificApiKey":"k"}`))
	fuzzJobParser(f, maxJobBody, func() (any, jobBuilder) {
		req := &enrichRequest{}
		return req, req.build
	})
}

func FuzzCompetitorRequest(f *testing.F) {
	f.Add([]byte(`{"location":"Paris","checkIn":"2026-07-01","checkOut":"2026-07-02","adults":2,"currency":"EUR"}`))
	f.Add([]byte(`{"adults":1e99}`))
	fuzzJobParser(f, maxJobBody, func() (any, jobBuilder) {
		req := &competitorRequest{}
		return req, req.build
	})
}

func FuzzAnalyticsRequest(f *testing.F) {
	f.Add([]byte(`{"analysisType":"demand-forecast","params":{"horizonDays":14,"metric":"price"}}`))
	f.Add([]byte(`{"analysisType":"summary","data":[{"date":"2026-01-01","price":1},{"date":"2026-01-02","price":2}]}`))
	f.Add([]byte(`{"analysisType":"summary","data":[],"params":null}`))
	f.Add([]byte(`{"data":[1,2,3`))
	fuzzJobParser(f, maxAnalyticsBody, func() (any, jobBuilder) {
		req := &analyticsRequest{}
		return req, func(common jobsv1alpha1.JobCommonSpec, property store.Property) (jobsv1alpha1.JobObject, error) {
			if req.Data != nil && !json.Valid(req.Data) {
				return nil, errors.New("rows are not one JSON value: " + string(req.Data))
			}
			return req.build(common, property)
		}
	})
}

// FuzzUploadJSON fuzzes a JSON pricing file (POST /api/files, PUT /api/files/:id).
func FuzzUploadJSON(f *testing.F) {
	f.Add([]byte(`{"name":"Barcelona","location":{"latitude":41.39,"longitude":2.17},"rows":[{"date":"2026-01-01","price":"100.50","occupancy":80}]}`))
	f.Add([]byte(`{"countryCode":"ES","dateFormat":"DD/MM/YYYY","decimal":",","rows":[{"date":"01/01/2026","price":"1,5"}]}`))
	f.Add([]byte(`{"rows":[{"date":"2026-02-30","price":-1}]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		up, err := readJSON(bytes.NewReader(body), uploadFields{})
		if err != nil {
			requireClientError(t, body, uploadError(err))
			return
		}
		if _, err := up.property("file-1", "user-a", true); err != nil {
			requireClientError(t, body, err)
		}
	})
}
