package analytics

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/jengu/queue-operator/store"
)

// Row is one day of input. A number that the day does not have is NaN.
type Row struct {
	Date      time.Time // midnight UTC
	Price     float64
	Occupancy float64 // ratio, 0 to 1
	// The enrichment features (pricing_rows' columns).
	TempMaxC          float64
	TempMinC          float64
	PrecipitationMM   float64
	IsHoliday         float64 // 1 or 0
	DaysToNextHoliday float64
}

// inputRow is the documented row shape of an analytics request (README, docs/openapi.yaml): the
// pricing_rows column names. Other keys are ignored; the calendar features are derived from the
// date.
type inputRow struct {
	Date              *string  `json:"date"`
	Price             *float64 `json:"price"`
	Occupancy         *float64 `json:"occupancy"`
	TempMaxC          *float64 `json:"temp_max_c"`
	TempMinC          *float64 `json:"temp_min_c"`
	PrecipitationMM   *float64 `json:"precipitation_mm"`
	IsHoliday         *bool    `json:"is_holiday"`
	DaysToNextHoliday *float64 `json:"days_to_next_holiday"`
}

// Rejected is an input row that could not be used, and why.
type Rejected struct {
	// Row is the row's index in the input, from 0.
	Row    int    `json:"row"`
	Reason string `json:"reason"`
}

// maxRejectedExamples bounds the rejected rows a result lists; it counts them all.
const maxRejectedExamples = 10

// Input is the rows of a job, in date order, with what was refused of them.
type Input struct {
	Rows []Row
	// Source is "input" (the job's inputRef) or "pricing_rows".
	Source string
	// RejectedRows counts the input rows that could not be used; Rejected lists the first ones.
	RejectedRows int
	Rejected     []Rejected
}

func (in *Input) reject(row int, format string, args ...any) {
	in.RejectedRows++
	if len(in.Rejected) < maxRejectedExamples {
		in.Rejected = append(in.Rejected, Rejected{Row: row, Reason: fmt.Sprintf(format, args...)})
	}
}

// ParseRows reads a stored input (a JSON array of rows). A row that does not parse is counted
// and listed, not silently dropped; so is a second row of a date already seen.
func ParseRows(doc json.RawMessage) (Input, error) {
	var raws []json.RawMessage
	if err := json.Unmarshal(doc, &raws); err != nil {
		return Input{}, inputErrorf("the stored input is not a JSON array of rows: %v", err)
	}
	in := Input{Source: "input", Rows: make([]Row, 0, len(raws))}
	seen := make(map[time.Time]int, len(raws))
	for i, raw := range raws {
		row, reason := parseRow(raw)
		if reason != "" {
			in.reject(i, "%s", reason)
			continue
		}
		if first, ok := seen[row.Date]; ok {
			in.reject(i, "date %s repeats row %d", row.Date.Format(time.DateOnly), first)
			continue
		}
		seen[row.Date] = i
		in.Rows = append(in.Rows, row)
	}
	slices.SortFunc(in.Rows, func(a, b Row) int { return a.Date.Compare(b.Date) })
	return in, nil
}

// parseRow returns the row, or why it cannot be used.
func parseRow(raw json.RawMessage) (Row, string) {
	var r inputRow
	if err := json.Unmarshal(raw, &r); err != nil {
		return Row{}, rowDecodeReason(err)
	}
	if r.Date == nil {
		return Row{}, "date: required (YYYY-MM-DD)"
	}
	date, err := time.Parse(time.DateOnly, *r.Date)
	if err != nil {
		return Row{}, fmt.Sprintf("date: %q is not a date (YYYY-MM-DD)", *r.Date)
	}
	row := Row{Date: date, Price: orNaN(r.Price), Occupancy: orNaN(r.Occupancy), TempMaxC: orNaN(r.TempMaxC),
		TempMinC: orNaN(r.TempMinC), PrecipitationMM: orNaN(r.PrecipitationMM), IsHoliday: boolOrNaN(r.IsHoliday),
		DaysToNextHoliday: orNaN(r.DaysToNextHoliday)}
	switch {
	case row.Price < 0:
		return Row{}, fmt.Sprintf("price: %g is negative", row.Price)
	case row.Occupancy < 0 || row.Occupancy > 1:
		return Row{}, fmt.Sprintf("occupancy: %g is not a ratio from 0 to 1 (send 0.85 for 85%%)", row.Occupancy)
	case row.PrecipitationMM < 0:
		return Row{}, fmt.Sprintf("precipitation_mm: %g is negative", row.PrecipitationMM)
	}
	return row, ""
}

func rowDecodeReason(err error) string {
	var typ *json.UnmarshalTypeError
	if ok := errors.As(err, &typ); ok && typ.Field != "" {
		want := "a number"
		switch typ.Field {
		case "date":
			want = "a string (YYYY-MM-DD)"
		case "is_holiday":
			want = "true or false"
		}
		return fmt.Sprintf("%s: must be %s, not a JSON %s", typ.Field, want, typ.Value)
	}
	if ok := errors.As(err, &typ); ok {
		return fmt.Sprintf("must be a JSON object, not a JSON %s", typ.Value)
	}
	return "not a JSON object: " + err.Error()
}

// FromPricingRows turns the property's stored days into rows. Stored occupancy is in percent.
func FromPricingRows(stored []store.PricingRow) Input {
	in := Input{Source: "pricing_rows", Rows: make([]Row, len(stored))}
	for i, s := range stored {
		row := Row{Date: s.Date.UTC(), Price: orNaN(s.Price), Occupancy: orNaN(s.Occupancy) / 100,
			TempMaxC: math.NaN(), TempMinC: math.NaN(), PrecipitationMM: math.NaN(), IsHoliday: math.NaN(),
			DaysToNextHoliday: math.NaN()}
		if f := s.Features; f != nil {
			row.TempMaxC, row.TempMinC, row.PrecipitationMM = orNaN(f.TempMaxC), orNaN(f.TempMinC), orNaN(f.PrecipitationMM)
			row.IsHoliday = boolOrNaN(&f.IsHoliday)
			if f.DaysToNextHoliday != nil {
				row.DaysToNextHoliday = float64(*f.DaysToNextHoliday)
			}
		}
		in.Rows[i] = row
	}
	return in
}

func orNaN(v *float64) float64 {
	if v == nil {
		return math.NaN()
	}
	return *v
}

func boolOrNaN(v *bool) float64 {
	switch {
	case v == nil:
		return math.NaN()
	case *v:
		return 1
	}
	return 0
}

// column picks one number of a row.
type column struct {
	name string
	get  func(Row) float64
}

var (
	priceColumn     = column{"price", func(r Row) float64 { return r.Price }}
	occupancyColumn = column{"occupancy", func(r Row) float64 { return r.Occupancy }}
	revparColumn    = column{"revpar", func(r Row) float64 { return r.Price * r.Occupancy }}
	weatherColumns  = []column{
		{"temp_max_c", func(r Row) float64 { return r.TempMaxC }},
		{"temp_min_c", func(r Row) float64 { return r.TempMinC }},
		{"precipitation_mm", func(r Row) float64 { return r.PrecipitationMM }},
	}
	holidayColumns = []column{
		{"is_holiday", func(r Row) float64 { return r.IsHoliday }},
		{"days_to_next_holiday", func(r Row) float64 { return r.DaysToNextHoliday }},
	}
)

// targetColumn is the column a target param names.
func targetColumn(target string) column {
	if target == occupancyColumn.name {
		return occupancyColumn
	}
	return priceColumn
}

// count is how many rows have the column.
func (c column) count(rows []Row) int {
	n := 0
	for _, r := range rows {
		if !math.IsNaN(c.get(r)) {
			n++
		}
	}
	return n
}
