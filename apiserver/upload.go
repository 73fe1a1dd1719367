package apiserver

import (
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"path"
	"regexp"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/jengu/queue-operator/apiserver/pricingfile"
	"github.com/jengu/queue-operator/store"
)

// maxUploadBody bounds an upload's body: ten thousand days of CSV take about 300 KiB, so this
// leaves room for wide files while a runaway one is cut off early.
const maxUploadBody = 10 << 20

// maxUploadField bounds a form field's value.
const maxUploadField = 1 << 10

// upload is an upload read to its end: the file's fields and its rows.
type upload struct {
	fields uploadFields
	result *pricingfile.Result
}

// uploadFields are what an upload says beside its rows, from the query, the form or the JSON
// document.
type uploadFields struct {
	name, countryCode, currency string
	latitude, longitude         *float64
	format                      pricingfile.Format
}

var countryCodeFormat = regexp.MustCompile(`^[A-Z]{2}$`)

// readUpload reads the request's file: a multipart form (its "file" part, fields in parts before
// it), a text/csv body, or a JSON document; fields may also come as query parameters.
func readUpload(c *gin.Context) (*upload, error) {
	body := http.MaxBytesReader(c.Writer, c.Request.Body, maxUploadBody)
	fields := uploadFields{}
	if err := fields.setAll(func(k string) (string, bool) { return c.GetQuery(k) }); err != nil {
		return nil, uploadError(err)
	}
	mediaType, params, _ := mime.ParseMediaType(c.GetHeader("Content-Type"))
	var up *upload
	var err error
	switch mediaType {
	case "multipart/form-data":
		up, err = readMultipart(multipart.NewReader(body, params["boundary"]), fields)
	case "text/csv", "application/csv", "text/plain":
		up, err = readCSV(body, fields)
	case "application/json":
		up, err = readJSON(body, fields)
	default:
		return nil, &apiError{Status: http.StatusUnsupportedMediaType, Code: "unsupported_media_type",
			Message: "send the file as multipart/form-data (part \"file\"), text/csv or application/json"}
	}
	if err != nil {
		return nil, uploadError(err)
	}
	return up, nil
}

func readCSV(in io.Reader, fields uploadFields) (*upload, error) {
	res, err := pricingfile.ReadCSV(in, fields.format, pricingfile.DefaultLimits)
	if err != nil {
		return nil, err
	}
	return &upload{fields: fields, result: res}, nil
}

func readJSON(in io.Reader, fields uploadFields) (*upload, error) {
	doc, res, err := pricingfile.ReadJSON(in, fields.format, pricingfile.DefaultLimits)
	if err != nil {
		return nil, err
	}
	if err := fields.setDocument(doc); err != nil {
		return nil, err
	}
	return &upload{fields: fields, result: res}, nil
}

// readMultipart reads the form's parts in order: fields, then the "file" part, parsed as it
// streams with the fields seen so far; fields after it may set the location, country, name and
// currency, not how the file is read.
func readMultipart(form *multipart.Reader, fields uploadFields) (*upload, error) {
	var up *upload
	for {
		part, err := form.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		if part.FormName() == "file" {
			if up != nil {
				return nil, fieldError("file", "given twice")
			}
			if up, err = readFilePart(part, fields); err != nil {
				return nil, err
			}
			fields = up.fields
			continue
		}
		value, err := io.ReadAll(io.LimitReader(part, maxUploadField+1))
		if err != nil {
			return nil, err
		}
		if len(value) > maxUploadField {
			return nil, fieldError(part.FormName(), fmt.Sprintf("longer than %d bytes", maxUploadField))
		}
		if err := setFormField(part.FormName(), string(value), &fields, up); err != nil {
			return nil, err
		}
	}
	if up == nil {
		return nil, fieldError("file", "required: a part named \"file\" holding the CSV or JSON")
	}
	up.fields = fields
	return up, nil
}

func setFormField(name, value string, fields *uploadFields, parsed *upload) error {
	switch {
	case parsed != nil && (name == "dateFormat" || name == "decimal" || name == "delimiter"):
		return fieldError(name, "must come before the file part: it says how the file is read")
	case !uploadFieldNames[name]:
		return fieldError(name, "unknown field")
	}
	return fields.set(name, value)
}

func readFilePart(part *multipart.Part, fields uploadFields) (*upload, error) {
	if fields.name == "" && part.FileName() != "" {
		fields.name = path.Base(part.FileName())
	}
	if part.Header.Get("Content-Type") == "application/json" || strings.HasSuffix(part.FileName(), ".json") {
		return readJSON(part, fields)
	}
	return readCSV(part, fields)
}

var uploadFieldNames = map[string]bool{"name": true, "latitude": true, "longitude": true, "countryCode": true,
	"currency": true, "dateFormat": true, "decimal": true, "delimiter": true}

// setAll sets every field get has.
func (f *uploadFields) setAll(get func(string) (string, bool)) error {
	for name := range uploadFieldNames {
		if v, ok := get(name); ok {
			if err := f.set(name, v); err != nil {
				return err
			}
		}
	}
	return nil
}

func (f *uploadFields) set(name, v string) error {
	switch name {
	case "name":
		f.name = v
	case "countryCode":
		f.countryCode = v
	case "currency":
		f.currency, f.format.Currency = strings.ToUpper(v), strings.ToUpper(v)
	case "dateFormat":
		f.format.DateFormat = v
	case "latitude", "longitude":
		n, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err != nil {
			return fieldError(name, "must be a number")
		}
		if name == "latitude" {
			f.latitude = &n
		} else {
			f.longitude = &n
		}
	case "decimal", "delimiter":
		r, err := separator(v)
		if err != nil {
			return fieldError(name, err.Error())
		}
		if name == "decimal" {
			f.format.Decimal = r
		} else {
			f.format.Delimiter = r
		}
	}
	return f.format.Check()
}

func separator(v string) (rune, error) {
	switch v {
	case ".", ",", ";":
		return rune(v[0]), nil
	case "\t", "tab", `\t`:
		return '\t', nil
	}
	return 0, fmt.Errorf("%q is not a separator", v)
}

func (f *uploadFields) setDocument(doc *pricingfile.Document) error {
	if doc.Name != "" {
		f.name = doc.Name
	}
	if doc.CountryCode != "" {
		f.countryCode = doc.CountryCode
	}
	if doc.Currency != "" {
		f.currency = strings.ToUpper(doc.Currency)
	}
	if doc.Location != nil {
		if doc.Location.Latitude == nil || doc.Location.Longitude == nil {
			return fieldError("location", "needs both latitude and longitude")
		}
		f.latitude, f.longitude = doc.Location.Latitude, doc.Location.Longitude
	}
	return nil
}

// property checks the fields and makes the property they describe; a new file must say where
// it is (a location, or at least a country), for enrichment needs it.
func (f uploadFields) property(id, user string, isNew bool) (store.Property, error) {
	p := store.Property{ID: id, UserID: user, Name: f.name, CountryCode: f.countryCode, Currency: f.currency}
	switch {
	case (f.latitude == nil) != (f.longitude == nil):
		return p, fieldError("location", "needs both latitude and longitude")
	case f.latitude != nil && (*f.latitude < -90 || *f.latitude > 90):
		return p, fieldError("latitude", "must be from -90 to 90")
	case f.longitude != nil && (*f.longitude < -180 || *f.longitude > 180):
		return p, fieldError("longitude", "must be from -180 to 180")
	case f.countryCode != "" && !countryCodeFormat.MatchString(f.countryCode):
		return p, fieldError("countryCode", "must be an ISO 3166-1 alpha-2 code such as ES")
	case len(f.name) > 255:
		return p, fieldError("name", "longer than 255 characters")
	case isNew && f.latitude == nil && f.countryCode == "":
		return p, fieldError("location", "required: latitude and longitude, or countryCode (what enrichment needs)")
	}
	if f.latitude != nil {
		p.Location = &store.Location{Latitude: *f.latitude, Longitude: *f.longitude}
	}
	return p, nil
}

// property is the file the upload describes; its currency, when no field gives it, is the one
// its rows name.
func (up *upload) property(id, user string, isNew bool) (store.Property, error) {
	p, err := up.fields.property(id, user, isNew)
	if p.Currency == "" {
		p.Currency = up.result.Currency
	}
	return p, err
}

// pricingBase is the accepted rows as the store takes them.
func (up *upload) pricingBase() []store.PricingBase {
	rows := make([]store.PricingBase, len(up.result.Rows))
	for i, r := range up.result.Rows {
		rows[i] = store.PricingBase{Date: r.Date, Price: &r.Price, Occupancy: r.Occupancy}
	}
	return rows
}

// uploadError names a refused upload in the API's terms.
func uploadError(err error) error {
	var file *pricingfile.Error
	var field *pricingfile.FieldError
	var tooLarge *http.MaxBytesError
	var api *apiError
	switch {
	case errors.As(err, &api):
		return api
	case errors.As(err, &tooLarge):
		return &apiError{Status: http.StatusRequestEntityTooLarge, Code: "file_too_large",
			Message: fmt.Sprintf("the upload is over %d bytes", tooLarge.Limit)}
	case errors.As(err, &field):
		return fieldError(field.Field, field.Message)
	case errors.As(err, &file):
		return &rejectedFile{file: file}
	}
	return badRequest("the upload cannot be read: "+err.Error(), nil)
}

// rejectedFile is a file refused as a whole, answered with the rows it refused.
type rejectedFile struct{ file *pricingfile.Error }

func (r *rejectedFile) Error() string { return r.file.Error() }

func (r *rejectedFile) status() int {
	switch r.file.Code {
	case pricingfile.CodeTooManyRows:
		return http.StatusRequestEntityTooLarge
	case pricingfile.CodeTooManyBadRows:
		return http.StatusUnprocessableEntity
	}
	return http.StatusBadRequest
}
