package pricingfile_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jengu/queue-operator/apiserver/pricingfile"
)

// BenchmarkReadCSV reads the largest file an upload may hold: 10,000 days.
func BenchmarkReadCSV(b *testing.B) {
	var sb strings.Builder
	sb.WriteString("date,price,occupancy,currency\n")
	start := time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range pricingfile.DefaultLimits.MaxRows {
		fmt.Fprintf(&sb, "%s,%d.50,%d,EUR\n", start.AddDate(0, 0, i).Format(time.DateOnly), 100+i%50, i%100)
	}
	file := sb.String()
	b.SetBytes(int64(len(file)))
	b.ReportAllocs()
	for b.Loop() {
		res, err := pricingfile.ReadCSV(strings.NewReader(file), pricingfile.Format{}, pricingfile.DefaultLimits)
		if err != nil || len(res.Rows) != pricingfile.DefaultLimits.MaxRows {
			b.Fatalf("ReadCSV: %d rows, %v", len(res.Rows), err)
		}
	}
}
