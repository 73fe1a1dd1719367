// Package pricingfile reads an uploaded pricing file, a CSV or a JSON document of daily rows
// (date, price, optional occupancy and currency), as it streams in: it finds the columns by their
// usual names, reads the declared date format and decimal separator, and reports every row it
// refuses with its line and reason, refusing the whole file when too many are bad.
package pricingfile

import (
	"errors"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Row is one accepted day of a file.
type Row struct {
	// Line is the CSV line (1 is the header) or, in a JSON document, the 1-based position in rows.
	Line      int
	Date      time.Time // midnight UTC
	Price     float64
	Occupancy *float64
}

// Rejection is a refused row: where, which field, and why.
type Rejection struct {
	Line   int    `json:"line"`
	Field  string `json:"field,omitempty"`
	Reason string `json:"reason"`
}

// Result is a file read to its end.
type Result struct {
	Rows []Row
	// Rejected holds the first Limits.MaxReported refused rows; RejectedCount counts them all.
	Rejected      []Rejection
	RejectedCount int
	// Currency is the declared one, else the one the rows name; empty when neither says.
	Currency string
}

// Format says how a file writes its numbers and dates.
type Format struct {
	// DateFormat is one of DateFormats; empty accepts ISO dates (YYYY-MM-DD) only.
	DateFormat string
	// Decimal is the decimal separator, '.' or ','. With ',', "1.234,50" reads as 1234.5; with
	// '.', "1,234.50" does. 0 means ',' in a CSV delimited by ';' (as spreadsheets in most of
	// Europe write it), '.' otherwise.
	Decimal rune
	// Delimiter separates CSV fields; 0 detects ',', ';' or a tab from the header.
	Delimiter rune
	// Currency is the file's ISO 4217 code, when declared; rows naming another are refused.
	Currency string
}

// Limits bound what one upload may hold.
type Limits struct {
	MaxRows int
	// MaxBadFraction refuses the whole file when more than this share of its rows are bad.
	MaxBadFraction float64
	// MaxReported is how many refused rows the answer lists.
	MaxReported int
}

// DefaultLimits: ten thousand days (27 years), a tenth of bad rows, twenty reported.
var DefaultLimits = Limits{MaxRows: 10_000, MaxBadFraction: 0.1, MaxReported: 20}

// DateFormats maps the formats a file may declare to Go layouts.
var DateFormats = map[string]string{
	"YYYY-MM-DD": "2006-01-02",
	"DD/MM/YYYY": "02/01/2006",
	"MM/DD/YYYY": "01/02/2006",
	"DD.MM.YYYY": "02.01.2006",
	"DD-MM-YYYY": "02-01-2006",
	"YYYY/MM/DD": "2006/01/02",
}

// Error is a file refused as a whole. Rejected is set when too many rows were bad.
type Error struct {
	Code    string
	Message string
	Result  *Result
}

func (e *Error) Error() string { return e.Message }

// Codes of Error.
const (
	CodeInvalidFile    = "invalid_file"
	CodeTooManyRows    = "too_many_rows"
	CodeTooManyBadRows = "too_many_bad_rows"
	CodeNoRows         = "no_rows"
)

func fileError(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Check refuses an unknown date format, separator or currency before any row is read.
func (f Format) Check() error {
	if _, ok := DateFormats[f.DateFormat]; f.DateFormat != "" && !ok {
		return &FieldError{Field: "dateFormat", Message: "must be one of " + strings.Join(dateFormatNames(), ", ")}
	}
	if f.Decimal != 0 && f.Decimal != '.' && f.Decimal != ',' {
		return &FieldError{Field: "decimal", Message: `must be "." or ","`}
	}
	if f.Delimiter != 0 && f.Delimiter != ',' && f.Delimiter != ';' && f.Delimiter != '\t' {
		return &FieldError{Field: "delimiter", Message: `must be ",", ";" or a tab`}
	}
	if f.Currency != "" && !currencyCode.MatchString(f.Currency) {
		return &FieldError{Field: "currency", Message: "must be an ISO 4217 code such as EUR"}
	}
	return nil
}

// FieldError is an upload field (not a row) at fault.
type FieldError struct{ Field, Message string }

func (e *FieldError) Error() string { return e.Field + ": " + e.Message }

func dateFormatNames() []string {
	return []string{"YYYY-MM-DD", "DD/MM/YYYY", "MM/DD/YYYY", "DD.MM.YYYY", "DD-MM-YYYY", "YYYY/MM/DD"}
}

var currencyCode = regexp.MustCompile(`^[A-Z]{3}$`)

// rowReader turns raw fields into rows, collecting rejections; CSV and JSON share it.
type rowReader struct {
	format Format
	limits Limits
	layout string
	seen   map[time.Time]int
	result Result
	total  int
}

func newRowReader(format Format, limits Limits) *rowReader {
	layout := DateFormats[format.DateFormat]
	if layout == "" {
		layout = time.DateOnly
	}
	return &rowReader{format: format, limits: limits, layout: layout, seen: map[time.Time]int{},
		result: Result{Currency: format.Currency}}
}

// rawRow is a row's fields as written.
type rawRow struct {
	line             int
	date, currency   string
	price, occupancy value
	hasOccupancy     bool
	// unreadable is set when the row could not be split into these fields.
	unreadable *Rejection
}

// value is a number as written: text in the file's notation, or a JSON number.
type value struct {
	text   string
	number bool
}

// add reads one row, or records why not. It fails once the file has too many rows.
func (r *rowReader) add(raw rawRow) error {
	r.total++
	if r.total > r.limits.MaxRows {
		return fileError(CodeTooManyRows, "the file has more than %d rows", r.limits.MaxRows)
	}
	row, rej := r.read(raw)
	if raw.unreadable != nil {
		rej = raw.unreadable
	}
	if rej != nil {
		r.reject(*rej)
		return nil
	}
	if first, dup := r.seen[row.Date]; dup {
		r.reject(Rejection{Line: raw.line, Field: "date",
			Reason: fmt.Sprintf("date %s is also on line %d", row.Date.Format(time.DateOnly), first)})
		return nil
	}
	r.seen[row.Date] = raw.line
	r.result.Rows = append(r.result.Rows, row)
	return nil
}

// addUnreadable counts a row that could not even be split into fields.
func (r *rowReader) addUnreadable(line int, reason string) error {
	r.total++
	if r.total > r.limits.MaxRows {
		return fileError(CodeTooManyRows, "the file has more than %d rows", r.limits.MaxRows)
	}
	r.reject(Rejection{Line: line, Reason: reason})
	return nil
}

func (r *rowReader) reject(rej Rejection) {
	r.result.RejectedCount++
	if len(r.result.Rejected) < r.limits.MaxReported {
		r.result.Rejected = append(r.result.Rejected, rej)
	}
}

func (r *rowReader) read(raw rawRow) (Row, *Rejection) {
	at := func(field, format string, args ...any) *Rejection {
		return &Rejection{Line: raw.line, Field: field, Reason: fmt.Sprintf(format, args...)}
	}
	row := Row{Line: raw.line}
	var err error
	if row.Date, err = r.date(raw.date); err != nil {
		return Row{}, at("date", "%v", err)
	}
	price, err := r.number(raw.price)
	switch {
	case err != nil:
		return Row{}, at("price", "price %v", err)
	case price < 0:
		return Row{}, at("price", "price %s is negative", strings.TrimSpace(raw.price.text))
	case price >= 1e10:
		return Row{}, at("price", "price %s is too large", strings.TrimSpace(raw.price.text))
	}
	row.Price = price
	raw.occupancy.text = strings.TrimSuffix(strings.TrimSpace(raw.occupancy.text), "%")
	if raw.hasOccupancy && raw.occupancy.text != "" {
		v, err := r.number(raw.occupancy)
		if err != nil {
			return Row{}, at("occupancy", "occupancy %v", err)
		}
		if v < 0 || v > 100 {
			return Row{}, at("occupancy", "occupancy %s is not a percentage from 0 to 100", raw.occupancy.text)
		}
		row.Occupancy = &v
	}
	if rej := r.currency(raw, at); rej != nil {
		return Row{}, rej
	}
	return row, nil
}

func (r *rowReader) currency(raw rawRow, at func(string, string, ...any) *Rejection) *Rejection {
	code := strings.ToUpper(strings.TrimSpace(raw.currency))
	if code == "" {
		return nil
	}
	switch {
	case !currencyCode.MatchString(code):
		return at("currency", "currency %q is not an ISO 4217 code", raw.currency)
	case r.result.Currency == "":
		r.result.Currency = code
	case code != r.result.Currency:
		return at("currency", "currency %s differs from the file's %s", code, r.result.Currency)
	}
	return nil
}

func (r *rowReader) date(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, errors.New("date missing")
	}
	d, err := time.Parse(r.layout, s)
	if err != nil {
		if r.format.DateFormat == "" && strings.ContainsAny(s, "/.") {
			return time.Time{}, fmt.Errorf("date %q is not YYYY-MM-DD; declare dateFormat (DD/MM/YYYY, MM/DD/YYYY, ...)", s)
		}
		return time.Time{}, fmt.Errorf("date %q is not %s", s, r.formatName())
	}
	if d.Year() < 1900 || d.Year() > 2199 {
		return time.Time{}, fmt.Errorf("date %q is out of range (1900 to 2199)", s)
	}
	return d, nil
}

func (r *rowReader) formatName() string {
	if r.format.DateFormat == "" {
		return "YYYY-MM-DD"
	}
	return r.format.DateFormat
}

// Thousands separators: the other one than the decimal separator, in groups of three.
var (
	thousandsComma = regexp.MustCompile(`^-?\d{1,3}(,\d{3})+(\.\d+)?$`)
	thousandsPoint = regexp.MustCompile(`^-?\d{1,3}(\.\d{3})+(,\d+)?$`)
)

// number reads a decimal as the format writes it.
func (r *rowReader) number(in value) (float64, error) {
	s := strings.TrimSpace(in.text)
	if s == "" {
		return 0, errors.New("missing")
	}
	n := strings.ReplaceAll(s, " ", "")
	switch {
	case in.number:
	case r.format.Decimal == ',' && thousandsPoint.MatchString(n):
		n = strings.ReplaceAll(strings.ReplaceAll(n, ".", ""), ",", ".")
	case r.format.Decimal == ',' && strings.Contains(n, "."):
		return 0, fmt.Errorf("%q is not a number; the decimal separator is \",\" (decimal=\".\" for a point)", s)
	case r.format.Decimal == ',':
		n = strings.ReplaceAll(n, ",", ".")
	case thousandsComma.MatchString(n):
		n = strings.ReplaceAll(n, ",", "")
	case strings.Contains(n, ","):
		return 0, fmt.Errorf("%q is not a number; a decimal comma needs decimal=\",\"", s)
	}
	v, err := strconv.ParseFloat(n, 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, fmt.Errorf("%q is not a number", s)
	}
	return v, nil
}

// finish applies the file-wide rules: some good rows, and not too many bad ones.
func (r *rowReader) finish() (*Result, error) {
	res := &r.result
	switch {
	case r.total == 0:
		return nil, fileError(CodeNoRows, "the file has no rows")
	case float64(res.RejectedCount) > r.limits.MaxBadFraction*float64(r.total) || len(res.Rows) == 0:
		return nil, &Error{Code: CodeTooManyBadRows, Result: res, Message: fmt.Sprintf(
			"%d of %d rows are bad (at most %g%% may be); nothing was stored", res.RejectedCount, r.total, r.limits.MaxBadFraction*100)}
	}
	return res, nil
}
