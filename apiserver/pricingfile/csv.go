package pricingfile

import (
	"bufio"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strings"
)

// columnNames are the header names each column goes by, normalised (lower case, '_' for spaces
// and dashes).
var columnNames = map[string][]string{
	"date":      {"date", "day", "stay_date", "night", "fecha", "datum", "data"},
	"price":     {"price", "rate", "adr", "amount", "room_rate", "daily_rate", "precio", "prix", "preis", "prezzo"},
	"occupancy": {"occupancy", "occ", "occupancy_rate", "occupancy_pct", "ocupacion", "ocupación", "belegung"},
	"currency":  {"currency", "currency_code", "curr", "moneda", "devise", "wahrung", "währung", "valuta"},
}

var delimiters = []rune{',', ';', '\t'}

const bom = "\ufeff"

// columns is where each known column sits in a record; -1 when absent.
type columns struct{ date, price, occupancy, currency int }

// ReadCSV reads a CSV pricing file: a header naming at least the date and price columns, then
// one row per day. A leading byte order mark is skipped. Errors of in are returned as they are
// (a body over its size limit, say); a file refused as a whole is an *Error.
func ReadCSV(in io.Reader, format Format, limits Limits) (*Result, error) {
	buf := bufio.NewReader(in)
	header, err := buf.ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	header = strings.TrimPrefix(header, bom)
	delim, cols, err := findColumns(header, format.Delimiter)
	if err != nil {
		return nil, err
	}
	if format.Decimal == 0 {
		format.Decimal = '.'
		if delim == ';' {
			format.Decimal = ','
		}
	}
	rd := csv.NewReader(io.MultiReader(strings.NewReader(header), buf))
	rd.Comma, rd.FieldsPerRecord, rd.ReuseRecord = delim, -1, true
	if _, err := rd.Read(); err != nil { // the header, read again so that line numbers count it
		return nil, fileError(CodeInvalidFile, "line 1: %v", err)
	}
	rows := newRowReader(format, limits)
	for {
		record, err := rd.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		var parse *csv.ParseError
		switch {
		case errors.As(err, &parse):
			if err := rows.addUnreadable(parse.Line, parse.Err.Error()); err != nil {
				return nil, err
			}
			continue
		case err != nil:
			return nil, err
		}
		line, _ := rd.FieldPos(0)
		if err := rows.add(cols.raw(line, record)); err != nil {
			return nil, err
		}
	}
	return rows.finish()
}

// findColumns finds the delimiter (the given one, else the first that splits the header into a
// date and a price column) and where the known columns are.
func findColumns(header string, delim rune) (rune, columns, error) {
	candidates := delimiters
	if delim != 0 {
		candidates = []rune{delim}
	}
	for _, d := range candidates {
		if cols, ok := columnsOf(header, d); ok {
			return d, cols, nil
		}
	}
	return 0, columns{}, fileError(CodeInvalidFile,
		"line 1: the header %q has no date and price columns (names such as date, price, occupancy, "+
			"currency; fields separated by %s)", strings.TrimSpace(header), delimiterNames(candidates))
}

func delimiterNames(ds []rune) string {
	names := make([]string, len(ds))
	for i, d := range ds {
		names[i] = fmt.Sprintf("%q", d)
	}
	return strings.Join(names, " or ")
}

func columnsOf(header string, delim rune) (columns, bool) {
	rd := csv.NewReader(strings.NewReader(header))
	rd.Comma = delim
	fields, err := rd.Read()
	if err != nil {
		return columns{}, false
	}
	cols := columns{date: -1, price: -1, occupancy: -1, currency: -1}
	for i, f := range fields {
		name := strings.NewReplacer(" ", "_", "-", "_").Replace(strings.ToLower(strings.TrimSpace(f)))
		for column, aliases := range columnNames {
			for _, alias := range aliases {
				if name == alias {
					cols.set(column, i)
				}
			}
		}
	}
	return cols, cols.date >= 0 && cols.price >= 0
}

func (c *columns) set(column string, i int) {
	slot := map[string]*int{"date": &c.date, "price": &c.price, "occupancy": &c.occupancy, "currency": &c.currency}[column]
	if *slot < 0 {
		*slot = i
	}
}

// raw picks the known columns out of a record; a record too short for one leaves it empty.
func (c columns) raw(line int, record []string) rawRow {
	get := func(i int) (string, bool) {
		if i < 0 || i >= len(record) {
			return "", false
		}
		return record[i], true
	}
	r := rawRow{line: line}
	r.date, _ = get(c.date)
	r.price.text, _ = get(c.price)
	r.occupancy.text, r.hasOccupancy = get(c.occupancy)
	r.currency, _ = get(c.currency)
	return r
}
