package apiserver_test

import (
	"bytes"
	"fmt"
	"net/http"
	"runtime"
	"runtime/metrics"
	"sync"
	"testing"
	"time"
)

// BenchmarkAnalyticsAttackPeakHeap sends, per iteration, attackers concurrent 16 MiB
// analytics bodies of tiny params keys (about 1.4 million) to the user's own file, and reports
// the process's peak heap meanwhile (sampled every millisecond; the test process holds the
// facade, its client and the one shared body). Run with:
//
//	go test -run '^$' -bench AnalyticsAttackPeakHeap -benchtime 3x ./apiserver/
//
// under hack/with-services.sh with KUBEBUILDER_ASSETS set.
func BenchmarkAnalyticsAttackPeakHeap(b *testing.B) {
	const attackers = 2
	f := newFixture(b, withoutController())
	path := f.url + "/api/files/" + f.property("user-a", false) + "/analytics"
	var body bytes.Buffer
	body.WriteString(`{"analysisType":"summary","params":{`)
	for i := 0; body.Len() < 16<<20-32; i++ {
		if i > 0 {
			body.WriteByte(',')
		}
		fmt.Fprintf(&body, `"k%d":0`, i)
	}
	body.WriteString(`}}`)
	attack := body.Bytes()
	bearer := "Bearer " + token("user-a")

	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	heap := func() uint64 { metrics.Read(sample); return sample[0].Value.Uint64() }
	runtime.GC()
	baseline := heap()
	var peak uint64
	codes := map[int]int{}
	var mu sync.Mutex
	for b.Loop() {
		done := make(chan struct{})
		sampled := make(chan struct{})
		go func() {
			defer close(sampled)
			t := time.NewTicker(time.Millisecond)
			defer t.Stop()
			for {
				peak = max(peak, heap())
				select {
				case <-done:
					return
				case <-t.C:
				}
			}
		}()
		var wg sync.WaitGroup
		for range attackers {
			wg.Go(func() {
				req, _ := http.NewRequest(http.MethodPost, path, bytes.NewReader(attack))
				req.Header.Set("Authorization", bearer)
				req.Header.Set("Content-Type", "application/json")
				resp, err := http.DefaultClient.Do(req)
				code := 0
				if err == nil {
					code = resp.StatusCode
					resp.Body.Close()
				}
				mu.Lock()
				codes[code]++
				mu.Unlock()
			})
		}
		wg.Wait()
		close(done)
		<-sampled
	}
	b.ReportMetric(float64(baseline)/(1<<20), "baseline-heap-MiB")
	b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
	b.Logf("answers: %v", codes)
}
