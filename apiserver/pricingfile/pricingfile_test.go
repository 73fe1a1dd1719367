package pricingfile_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/jengu/queue-operator/apiserver/pricingfile"
)

// day is one accepted row, compactly: line, date, price, occupancy (-1 for none).
type day struct {
	Line      int
	Date      string
	Price     float64
	Occupancy float64
}

func days(res *pricingfile.Result) []day {
	out := make([]day, 0, len(res.Rows))
	for _, r := range res.Rows {
		occ := -1.0
		if r.Occupancy != nil {
			occ = *r.Occupancy
		}
		out = append(out, day{r.Line, r.Date.Format(time.DateOnly), r.Price, occ})
	}
	return out
}

func TestReadCSV(t *testing.T) {
	tests := []struct {
		name         string
		csv          string
		format       pricingfile.Format
		want         []day
		wantRejected []pricingfile.Rejection
		wantCurrency string
	}{
		{
			name: "clean file with occupancy and currency",
			csv:  "date,price,occupancy,currency\n2026-01-01,120.50,80,eur\n2026-01-02,99,75%,EUR\n",
			want: []day{{2, "2026-01-01", 120.5, 80}, {3, "2026-01-02", 99, 75}}, wantCurrency: "EUR",
		},
		{
			name: "usual names in another case and order, no trailing newline",
			csv:  "Occupancy Rate;Stay Date;ADR\r\n0,8;2026-03-01;1.100,25",
			want: []day{{2, "2026-03-01", 1100.25, 0.8}},
		},
		{
			name: "byte order mark",
			csv:  "\ufeffdate,price\n2026-01-01,10\n",
			want: []day{{2, "2026-01-01", 10, -1}},
		},
		{
			name:   "declared DD/MM/YYYY and decimal comma in a comma file",
			csv:    "fecha,precio\n31/01/2026,\"1.234,5\"\n",
			format: pricingfile.Format{DateFormat: "DD/MM/YYYY", Decimal: ','},
			want:   []day{{2, "2026-01-31", 1234.5, -1}},
		},
		{
			name: "thousands separator with a decimal point",
			csv:  "date,price\n2026-01-01,\"1,234.50\"\n2026-01-02,5\n2026-01-03,6\n2026-01-04,7\n2026-01-05,8\n2026-01-06,9\n2026-01-07,10\n2026-01-08,11\n2026-01-09,12\n2026-01-10,13\n2026-01-11,\"12,5\"\n",
			want: []day{{2, "2026-01-01", 1234.5, -1}, {3, "2026-01-02", 5, -1}, {4, "2026-01-03", 6, -1},
				{5, "2026-01-04", 7, -1}, {6, "2026-01-05", 8, -1}, {7, "2026-01-06", 9, -1}, {8, "2026-01-07", 10, -1},
				{9, "2026-01-08", 11, -1}, {10, "2026-01-09", 12, -1}, {11, "2026-01-10", 13, -1}},
			wantRejected: []pricingfile.Rejection{{Line: 12, Field: "price", Reason: `price "12,5" is not a number; a decimal comma needs decimal=","`}},
		},
		{
			name: "bad rows named by line, under the threshold",
			csv: "date,price,occupancy\n" + cleanRows(60) +
				"2026-13-01,10,\n" + // line 62
				"01/02/2026,10,\n" + // 63
				"2026-05-02,-5,\n" + // 64
				"2026-01-01,10,\n" + // 65: the date of line 2
				"2026-05-03,,\n" + // 66
				"2026-05-04,1,101\n", // 67
			want: cleanDays(2, 60),
			wantRejected: []pricingfile.Rejection{
				{Line: 62, Field: "date", Reason: `date "2026-13-01" is not YYYY-MM-DD`},
				{Line: 63, Field: "date", Reason: `date "01/02/2026" is not YYYY-MM-DD; declare dateFormat (DD/MM/YYYY, MM/DD/YYYY, ...)`},
				{Line: 64, Field: "price", Reason: "price -5 is negative"},
				{Line: 65, Field: "date", Reason: "date 2026-01-01 is also on line 2"},
				{Line: 66, Field: "price", Reason: "price missing"},
				{Line: 67, Field: "occupancy", Reason: "occupancy 101 is not a percentage from 0 to 100"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := pricingfile.ReadCSV(strings.NewReader(tt.csv), tt.format, pricingfile.DefaultLimits)
			if err != nil {
				t.Fatalf("ReadCSV: %v", err)
			}
			if diff := cmp.Diff(tt.want, days(res)); diff != "" {
				t.Errorf("rows (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantRejected, res.Rejected); diff != "" {
				t.Errorf("rejected (-want +got):\n%s", diff)
			}
			if res.RejectedCount != len(tt.wantRejected) || res.Currency != tt.wantCurrency {
				t.Errorf("rejected %d, currency %q; want %d, %q", res.RejectedCount, res.Currency, len(tt.wantRejected), tt.wantCurrency)
			}
		})
	}
}

// cleanRows writes n good CSV rows (date,price,occupancy) from 2026-01-01; cleanDays is what they
// read as when the first is on line first.
func cleanRows(n int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "%s,%d,50\n", time.Date(2026, 1, 1+i, 0, 0, 0, 0, time.UTC).Format(time.DateOnly), 100+i)
	}
	return b.String()
}

func cleanDays(first, n int) []day {
	out := make([]day, n)
	for i := range n {
		out[i] = day{first + i, time.Date(2026, 1, 1+i, 0, 0, 0, 0, time.UTC).Format(time.DateOnly), float64(100 + i), 50}
	}
	return out
}

func TestReadCSVRefusesTheWholeFile(t *testing.T) {
	limits := pricingfile.Limits{MaxRows: 40, MaxBadFraction: 0.1, MaxReported: 3}
	tests := []struct {
		name        string
		csv         string
		format      pricingfile.Format
		wantCode    string
		wantMessage string
		// wantLines are the lines the error's rejections name.
		wantLines []int
	}{
		{name: "wrong delimiter", csv: "date|price\n2026-01-01|10\n", wantCode: pricingfile.CodeInvalidFile,
			wantMessage: `line 1: the header "date|price" has no date and price columns`},
		{name: "declared delimiter the file does not use", csv: "date;price\n2026-01-01;10\n",
			format: pricingfile.Format{Delimiter: ','}, wantCode: pricingfile.CodeInvalidFile,
			wantMessage: `fields separated by ','`},
		{name: "no header", csv: "2026-01-01,10\n", wantCode: pricingfile.CodeInvalidFile, wantMessage: "line 1: the header"},
		{name: "header only", csv: "date,price\n", wantCode: pricingfile.CodeNoRows, wantMessage: "the file has no rows"},
		{name: "too many rows", csv: "date,price\n" + cleanRows(41), wantCode: pricingfile.CodeTooManyRows,
			wantMessage: "more than 40 rows"},
		{name: "too many bad rows", csv: "date,price,occupancy\n" + cleanRows(20) + "x,1,\ny,1,\nz,1,\nw,1,\n",
			wantCode: pricingfile.CodeTooManyBadRows, wantMessage: "4 of 24 rows are bad (at most 10% may be); nothing was stored",
			wantLines: []int{22, 23, 24}},
		{name: "every row bad", csv: "date,price\nx,1\n", wantCode: pricingfile.CodeTooManyBadRows,
			wantMessage: "1 of 1 rows are bad", wantLines: []int{2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := pricingfile.ReadCSV(strings.NewReader(tt.csv), tt.format, limits)
			var fe *pricingfile.Error
			if !errors.As(err, &fe) {
				t.Fatalf("ReadCSV error = %v, want a *pricingfile.Error", err)
			}
			if fe.Code != tt.wantCode || !strings.Contains(fe.Message, tt.wantMessage) {
				t.Errorf("error = %s %q, want %s containing %q", fe.Code, fe.Message, tt.wantCode, tt.wantMessage)
			}
			var lines []int
			if fe.Result != nil {
				for _, r := range fe.Result.Rejected {
					lines = append(lines, r.Line)
				}
			}
			if diff := cmp.Diff(tt.wantLines, lines); diff != "" {
				t.Errorf("rejected lines (-want +got):\n%s", diff)
			}
		})
	}
}

func TestReadJSON(t *testing.T) {
	body := `{"name": "Casa", "location": {"latitude": 41.39, "longitude": 2.17}, "countryCode": "ES",
		"decimal": ",", "dateFormat": "DD/MM/YYYY",
		"rows": [{"date": "01/01/2026", "price": 120.5, "occupancy": "80,5"},
		         {"date": "02/01/2026", "price": "99,9"},
		         {"date": "03/01/2026", "price": 1, "color": "red"},
		         [1, 2]]}`
	limits := pricingfile.Limits{MaxRows: 10, MaxBadFraction: 0.5, MaxReported: 10}
	doc, res, err := pricingfile.ReadJSON(strings.NewReader(body), pricingfile.Format{}, limits)
	if err != nil {
		t.Fatalf("ReadJSON: %v", err)
	}
	if doc.Name != "Casa" || doc.CountryCode != "ES" || *doc.Location.Latitude != 41.39 {
		t.Errorf("document = %+v", doc)
	}
	if diff := cmp.Diff([]day{{1, "2026-01-01", 120.5, 80.5}, {2, "2026-01-02", 99.9, -1}}, days(res)); diff != "" {
		t.Errorf("rows (-want +got):\n%s", diff)
	}
	wantRejected := []pricingfile.Rejection{
		{Line: 3, Field: "color", Reason: "unknown field color"},
		{Line: 4, Reason: "the row is not a JSON object"},
	}
	if diff := cmp.Diff(wantRejected, res.Rejected); diff != "" {
		t.Errorf("rejected (-want +got):\n%s", diff)
	}
}

func TestReadJSONRefuses(t *testing.T) {
	tests := []struct {
		name, body, want string
	}{
		{name: "unknown field", body: `{"rows": [], "colour": 1}`, want: "colour: unknown field"},
		{name: "not JSON", body: `{"rows": [`, want: "the body is not valid JSON"},
		{name: "rows not an array", body: `{"rows": {}}`, want: "rows must be an array"},
		{name: "unknown date format", body: `{"dateFormat": "D/M/Y", "rows": [{"date": "1/1/2026", "price": 1}]}`, want: "dateFormat: must be one of"},
		{name: "field of the wrong type", body: `{"name": 5, "rows": []}`, want: "name: must not be a number"},
		{name: "too many rows", body: `{"rows": [{}, {}, {}]}`, want: "more than 2 rows"},
		{name: "no rows", body: `{"rows": []}`, want: "the file has no rows"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			limits := pricingfile.Limits{MaxRows: 2, MaxBadFraction: 0.1, MaxReported: 5}
			_, _, err := pricingfile.ReadJSON(strings.NewReader(tt.body), pricingfile.Format{}, limits)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("ReadJSON error = %v, want one containing %q", err, tt.want)
			}
		})
	}
}
