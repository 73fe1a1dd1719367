package pricingfile

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
)

// Document is a JSON upload's fields beside its rows.
type Document struct {
	Name        string    `json:"name"`
	Location    *Location `json:"location"`
	CountryCode string    `json:"countryCode"`
	Currency    string    `json:"currency"`
	DateFormat  string    `json:"dateFormat"`
	Decimal     string    `json:"decimal"`
}

// Location is the property's point; both halves are required when given.
type Location struct {
	Latitude  *float64 `json:"latitude"`
	Longitude *float64 `json:"longitude"`
}

// ReadJSON reads a JSON upload, {"rows": [{"date", "price", "occupancy"?, "currency"?}, ...]}
// beside the fields of Document, walking the rows one at a time. format is completed by the
// document's own dateFormat, decimal and currency; numbers may be JSON numbers or strings
// written in the declared format. A row's Line is its 1-based position in rows.
func ReadJSON(in io.Reader, format Format, limits Limits) (*Document, *Result, error) {
	dec := json.NewDecoder(in)
	dec.UseNumber()
	var doc Document
	var raws []rawRow
	if err := expectDelim(dec, '{', "the body must be a JSON object"); err != nil {
		return nil, nil, err
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, nil, jsonError(err)
		}
		key, _ := tok.(string)
		if key == "rows" {
			if raws, err = readJSONRows(dec, limits.MaxRows); err != nil {
				return nil, nil, err
			}
			continue
		}
		if err := decodeField(dec, &doc, key); err != nil {
			return nil, nil, err
		}
	}
	if err := expectDelim(dec, '}', "the body must be one JSON object"); err != nil {
		return nil, nil, err
	}
	format, err := doc.apply(format)
	if err != nil {
		return nil, nil, err
	}
	rows := newRowReader(format, limits)
	for _, raw := range raws {
		if err := rows.add(raw); err != nil {
			return nil, nil, err
		}
	}
	res, err := rows.finish()
	return &doc, res, err
}

// apply completes format with the document's declarations.
func (doc *Document) apply(format Format) (Format, error) {
	if doc.DateFormat != "" {
		format.DateFormat = doc.DateFormat
	}
	if doc.Currency != "" {
		format.Currency = strings.ToUpper(doc.Currency)
	}
	switch doc.Decimal {
	case "":
	case ".", ",":
		format.Decimal = rune(doc.Decimal[0])
	default:
		return format, &FieldError{Field: "decimal", Message: `must be "." or ","`}
	}
	if format.Decimal == 0 {
		format.Decimal = '.'
	}
	return format, format.Check()
}

var documentFields = map[string]func(*Document) any{
	"name":        func(d *Document) any { return &d.Name },
	"location":    func(d *Document) any { return &d.Location },
	"countryCode": func(d *Document) any { return &d.CountryCode },
	"currency":    func(d *Document) any { return &d.Currency },
	"dateFormat":  func(d *Document) any { return &d.DateFormat },
	"decimal":     func(d *Document) any { return &d.Decimal },
}

func decodeField(dec *json.Decoder, doc *Document, key string) error {
	field, ok := documentFields[key]
	if !ok {
		return &FieldError{Field: key, Message: "unknown field"}
	}
	if err := dec.Decode(field(doc)); err != nil {
		var typ *json.UnmarshalTypeError
		if errors.As(err, &typ) {
			name := key
			if typ.Field != "" && typ.Field != key {
				name = key + "." + typ.Field
			}
			return &FieldError{Field: name, Message: "must not be a " + typ.Value}
		}
		return jsonError(err)
	}
	return nil
}

func readJSONRows(dec *json.Decoder, maxRows int) ([]rawRow, error) {
	if err := expectDelim(dec, '[', "rows must be an array"); err != nil {
		return nil, err
	}
	var raws []rawRow
	for i := 1; dec.More(); i++ {
		if i > maxRows {
			return nil, fileError(CodeTooManyRows, "the file has more than %d rows", maxRows)
		}
		var fields map[string]any
		err := dec.Decode(&fields)
		var typ *json.UnmarshalTypeError
		if err != nil && !errors.As(err, &typ) {
			return nil, jsonError(err)
		}
		raws = append(raws, jsonRawRow(i, fields, err == nil && fields != nil))
	}
	if err := expectDelim(dec, ']', "rows must be an array"); err != nil {
		return nil, err
	}
	return raws, nil
}

var rowKeys = map[string]bool{"date": true, "price": true, "occupancy": true, "currency": true}

// jsonRawRow takes a row's values; a row with an unknown key, or that is not an object, is
// unreadable, with the key named.
func jsonRawRow(line int, fields map[string]any, isObject bool) rawRow {
	r := rawRow{line: line}
	if !isObject {
		r.unreadable = &Rejection{Line: line, Reason: "the row is not a JSON object"}
		return r
	}
	var unknown []string
	for k := range fields {
		if !rowKeys[k] {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		r.unreadable = &Rejection{Line: line, Field: unknown[0], Reason: "unknown field " + strings.Join(unknown, ", ")}
		return r
	}
	r.date = jsonValue(fields["date"]).text
	r.price = jsonValue(fields["price"])
	r.occupancy, r.hasOccupancy = jsonValue(fields["occupancy"]), fields["occupancy"] != nil
	r.currency = jsonValue(fields["currency"]).text
	return r
}

func jsonValue(v any) value {
	switch v := v.(type) {
	case json.Number:
		return value{text: v.String(), number: true}
	case string:
		return value{text: v}
	case nil:
		return value{}
	}
	return value{text: fmt.Sprintf("%v", v)}
}

func expectDelim(dec *json.Decoder, want json.Delim, message string) error {
	tok, err := dec.Token()
	if err != nil {
		return jsonError(err)
	}
	if d, ok := tok.(json.Delim); !ok || d != want {
		return fileError(CodeInvalidFile, "%s", message)
	}
	return nil
}

// jsonError keeps errors of the body's reader (its size limit) as they are and names the rest
// as invalid JSON.
func jsonError(err error) error {
	var syntax *json.SyntaxError
	if errors.As(err, &syntax) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return fileError(CodeInvalidFile, "the body is not valid JSON: %v", err)
	}
	return err
}
