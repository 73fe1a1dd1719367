package apiserver

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/jengu/queue-operator/api/analyticsparams"
	jobsv1alpha1 "github.com/jengu/queue-operator/api/v1alpha1"
)

// Body limits: a job's own fields are small; an analytics request carries its data rows.
const (
	maxJobBody       = 64 << 10
	maxAnalyticsBody = 16 << 20
)

// commonRequest is what every enqueue request may carry besides its kind's data: the seed's
// propertyId and userId, which when given must match the path and the token. Priority, timeout
// and TTL are not the caller's to set: on a shared queue one user's priority is everyone's
// wait. An operator sets them with kubectl (priority may change after create).
type commonRequest struct {
	PropertyID *string `json:"propertyId"`
	UserID     *string `json:"userId"`
	// Then lists the jobs to create when this one completes (spec.then).
	Then []thenRequest `json:"then"`
}

func (r *commonRequest) common() *commonRequest { return r }

func (r commonRequest) spec(propertyID, user string) (jobsv1alpha1.JobCommonSpec, error) {
	if r.PropertyID != nil && *r.PropertyID != propertyID {
		return jobsv1alpha1.JobCommonSpec{}, fieldError("propertyId", "must be the file id of the path ("+propertyID+") or left out")
	}
	if r.UserID != nil && *r.UserID != user {
		return jobsv1alpha1.JobCommonSpec{}, fieldError("userId", "must be the caller (the token's sub) or left out")
	}
	return jobsv1alpha1.JobCommonSpec{PropertyID: propertyID, UserID: user}, nil
}

type locationRequest struct {
	Latitude  *float64 `json:"latitude"`
	Longitude *float64 `json:"longitude"`
}

type enrichRequest struct {
	commonRequest
	Location             *locationRequest `json:"location"`
	CountryCode          string           `json:"countryCode"`
	CredentialSecretName string           `json:"credentialSecretName"`
	// CalendarificAPIKey is refused: API keys never go into a job (see the README).
	CalendarificAPIKey *string `json:"calendarificApiKey"`
}

type competitorRequest struct {
	commonRequest
	Location string `json:"location"`
	CheckIn  string `json:"checkIn"`
	CheckOut string `json:"checkOut"`
	Adults   int32  `json:"adults"`
	Currency string `json:"currency"`
	// CredentialSecretName names the job's SerpApi key Secret; the key itself is never sent.
	CredentialSecretName string `json:"credentialSecretName"`
}

type analyticsRequest struct {
	commonRequest
	AnalysisType jobsv1alpha1.AnalysisType  `json:"analysisType"`
	Data         json.RawMessage            `json:"data"`
	Params       map[string]json.RawMessage `json:"params"`
}

// decodeBody reads the JSON body into v, refusing unknown fields and naming the field at fault.
// An empty body is an empty object.
func decodeBody(c *gin.Context, v any, limit int64) error {
	body := http.MaxBytesReader(c.Writer, c.Request.Body, limit)
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil {
		if _, extra := dec.Token(); extra != io.EOF {
			return badRequest("the body must be one JSON object", nil)
		}
		return nil
	}
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	var tooLarge *http.MaxBytesError
	switch {
	case errors.Is(err, io.EOF):
		return nil
	case errors.As(err, &tooLarge):
		return &apiError{Status: http.StatusRequestEntityTooLarge, Code: "body_too_large",
			Message: fmt.Sprintf("the body is over %d bytes", tooLarge.Limit)}
	case errors.As(err, &syntax), errors.Is(err, io.ErrUnexpectedEOF):
		return badRequest("the body is not valid JSON: "+err.Error(), nil)
	case errors.As(err, &typ):
		field := typ.Field
		if field == "" {
			return badRequest("the body must be a JSON object", nil)
		}
		return fieldError(field, "must be "+jsonType(typ.Type.Kind().String()))
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		field := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return fieldError(field, "unknown field")
	}
	return badRequest("the body cannot be read: "+err.Error(), nil)
}

func jsonType(goKind string) string {
	switch {
	case strings.HasPrefix(goKind, "int"), strings.HasPrefix(goKind, "uint"):
		return "a whole number"
	case strings.HasPrefix(goKind, "float"):
		return "a number"
	case goKind == "string":
		return "a string"
	case goKind == "bool":
		return "true or false"
	case goKind == "map", goKind == "struct", goKind == "ptr":
		return "an object"
	case goKind == "slice":
		return "an array"
	}
	return "of another type"
}

// analyticsParams turns the seed's params (any JSON values) into the CR's strings, a string as
// it is, anything else in its compact JSON form, and checks them against the analysis type's keys
// and bounds (analyticsparams, which the processor reads them with too). An unknown type is left
// to the CRD's enum to name.
func analyticsParams(analysisType jobsv1alpha1.AnalysisType, in map[string]json.RawMessage) (map[string]string, error) {
	out, err := paramStrings(in)
	if err != nil || !slices.Contains(analyticsparams.AnalysisTypes, analysisType) {
		return out, err
	}
	var bad *analyticsparams.Error
	if _, err := analyticsparams.Parse(analysisType, out); errors.As(err, &bad) {
		return nil, fieldError("params."+bad.Key, bad.Reason)
	}
	return out, nil
}

func paramStrings(in map[string]json.RawMessage) (map[string]string, error) {
	if len(in) == 0 {
		return nil, nil
	}
	out := make(map[string]string, len(in))
	for k, raw := range in {
		var s string
		if err := json.Unmarshal(raw, &s); err == nil && string(raw) != "null" {
			out[k] = s
			continue
		}
		var compact bytes.Buffer
		if err := json.Compact(&compact, raw); err != nil {
			return nil, fieldError("params."+k, "is not valid JSON")
		}
		out[k] = compact.String()
	}
	return out, nil
}

// analyticsRows checks the seed's data: absent (the property's stored rows are analysed), or a
// JSON array of rows.
func analyticsRows(data json.RawMessage) error {
	if len(data) == 0 {
		return nil
	}
	var rows []json.RawMessage
	if err := json.Unmarshal(data, &rows); err != nil {
		return fieldError("data", "must be a JSON array of rows")
	}
	if len(rows) == 0 {
		return fieldError("data", "must have at least one row")
	}
	return nil
}
