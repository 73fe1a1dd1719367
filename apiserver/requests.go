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

// Body limits: a job's own fields are small; an analytics request carries its data rows, at
// most as many as an uploaded file, and a few params. Rows and keys are counted as the body
// streams in, so a body of millions of tiny rows or keys stops at the limit instead of being
// decoded whole.
const (
	maxJobBody         = 16 << 10
	maxAnalyticsBody   = 4 << 20
	maxAnalyticsRows   = 10_000
	maxAnalyticsParams = 32
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

// decodeBody reads the JSON body (limited by the caller) into v, refusing unknown fields and
// naming the field at fault. An empty body is an empty object.
func decodeBody(body io.Reader, v any) error {
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil {
		return endOfBody(dec)
	}
	if errors.Is(err, io.EOF) {
		return nil
	}
	return bodyError(err)
}

// decodeRequest reads the request's JSON body, at most limit bytes, into v as decodeBody does.
func decodeRequest(c *gin.Context, v any, limit int64) error {
	return decodeBody(http.MaxBytesReader(c.Writer, c.Request.Body, limit), v)
}

// endOfBody checks that nothing follows the body's one JSON value.
func endOfBody(dec *json.Decoder) error {
	if _, extra := dec.Token(); extra != io.EOF {
		return badRequest("the body must be one JSON object", nil)
	}
	return nil
}

// bodyError names a body the decoder refused: too large, not JSON, a field of the wrong type.
func bodyError(err error) error {
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	var tooLarge *http.MaxBytesError
	var api *apiError
	switch {
	case errors.As(err, &api):
		return api
	case errors.As(err, &tooLarge):
		return &apiError{Status: http.StatusRequestEntityTooLarge, Code: "body_too_large",
			Message: fmt.Sprintf("the body is over %d bytes", tooLarge.Limit)}
	case errors.As(err, &syntax), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
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

// decode reads the body with readAnalyticsRequest.
func (req *analyticsRequest) decode(body io.Reader) error {
	read, err := readAnalyticsRequest(body)
	if err == nil {
		*req = *read
	}
	return err
}

// readAnalyticsRequest reads the seed's AnalyticsJobData a token at a time: data rows are
// counted and copied one by one, params keys counted, and reading stops at the first one over
// its limit. The result is what decodeBody would give for a body within the limits.
func readAnalyticsRequest(body io.Reader) (*analyticsRequest, error) {
	req := &analyticsRequest{}
	dec := json.NewDecoder(body)
	tok, err := dec.Token()
	switch {
	case errors.Is(err, io.EOF):
		return req, nil // an empty body is an empty object
	case err != nil:
		return nil, bodyError(err)
	case tok == nil:
		return req, endOfBody(dec) // null, as decodeBody takes it
	case tok != json.Delim('{'):
		return nil, badRequest("the body must be a JSON object", nil)
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, bodyError(err)
		}
		key, _ := tok.(string)
		switch key {
		case "propertyId":
			err = decodeField(dec, key, &req.PropertyID)
		case "userId":
			err = decodeField(dec, key, &req.UserID)
		case "analysisType":
			err = decodeField(dec, key, &req.AnalysisType)
		case "data":
			req.Data, err = readAnalyticsRows(dec)
		case "params":
			req.Params, err = readAnalyticsParams(dec)
		case "then":
			req.Then, err = readThen(dec)
		default:
			err = fieldError(key, "unknown field")
		}
		if err != nil {
			return nil, err
		}
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return nil, bodyError(err)
	}
	return req, endOfBody(dec)
}

// decodeField decodes the next value into v, naming key when its type is wrong.
func decodeField(dec *json.Decoder, key string, v any) error {
	err := dec.Decode(v)
	var typ *json.UnmarshalTypeError
	if errors.As(err, &typ) {
		return fieldError(key, "must be "+jsonType(typ.Type.Kind().String()))
	}
	if err != nil {
		return bodyError(err)
	}
	return nil
}

// readThen reads an analytics request's then as an enqueue body is read: at most maxJobBody
// bytes, unknown fields refused, so it is no way around the counting of data and params.
func readThen(dec *json.Decoder) ([]thenRequest, error) {
	var raw json.RawMessage
	if err := dec.Decode(&raw); err != nil {
		return nil, bodyError(err)
	}
	if len(raw) > maxJobBody {
		message := fmt.Sprintf("at most %d bytes", maxJobBody)
		return nil, &apiError{Status: http.StatusRequestEntityTooLarge, Code: "body_too_large",
			Message: "then: " + message, Fields: map[string]string{"then": message}}
	}
	var then []thenRequest
	if err := decodeBody(bytes.NewReader(raw), &then); err != nil {
		return nil, prefixed(err, "then.")
	}
	return then, nil
}

// readAnalyticsRows reads data: null or absent (the property's stored rows are analysed), or
// a JSON array of 1 to maxAnalyticsRows rows, returned as one array.
func readAnalyticsRows(dec *json.Decoder) (json.RawMessage, error) {
	tok, err := dec.Token()
	switch {
	case err != nil:
		return nil, bodyError(err)
	case tok == nil:
		return nil, nil
	case tok != json.Delim('['):
		return nil, fieldError("data", "must be a JSON array of rows")
	}
	var out bytes.Buffer
	var row json.RawMessage // reused: only the copy in out stays
	out.WriteByte('[')
	n := 0
	for dec.More() {
		if n == maxAnalyticsRows {
			message := fmt.Sprintf("at most %d rows", maxAnalyticsRows)
			return nil, &apiError{Status: http.StatusRequestEntityTooLarge, Code: "too_many_rows",
				Message: "data: " + message, Fields: map[string]string{"data": message}}
		}
		if err := dec.Decode(&row); err != nil {
			return nil, bodyError(err)
		}
		if n > 0 {
			out.WriteByte(',')
		}
		out.Write(row)
		n++
	}
	if _, err := dec.Token(); err != nil { // the closing bracket
		return nil, bodyError(err)
	}
	if n == 0 {
		return nil, fieldError("data", "must have at least one row")
	}
	out.WriteByte(']')
	return out.Bytes(), nil
}

// readAnalyticsParams reads params: null, or an object of at most maxAnalyticsParams keys.
func readAnalyticsParams(dec *json.Decoder) (map[string]json.RawMessage, error) {
	tok, err := dec.Token()
	switch {
	case err != nil:
		return nil, bodyError(err)
	case tok == nil:
		return nil, nil
	case tok != json.Delim('{'):
		return nil, fieldError("params", "must be an object")
	}
	params := map[string]json.RawMessage{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, bodyError(err)
		}
		key, _ := tok.(string)
		if _, seen := params[key]; !seen && len(params) == maxAnalyticsParams {
			return nil, fieldError("params", fmt.Sprintf("at most %d keys", maxAnalyticsParams))
		}
		var value json.RawMessage
		if err := dec.Decode(&value); err != nil {
			return nil, bodyError(err)
		}
		params[key] = value
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return nil, bodyError(err)
	}
	return params, nil
}
