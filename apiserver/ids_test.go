package apiserver_test

import (
	"fmt"
	"net/http"
	"regexp"
	"sync/atomic"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"k8s.io/client-go/rest"
)

// readCounter counts the facade's kube-apiserver reads of one named job or schedule (GETs of
// .../<kind>/<name>) in ns, leaving the cache's lists and watches out.
type readCounter struct {
	ns    string
	reads atomic.Int32
}

// countingTransport is one client's transport, counting into its readCounter.
type countingTransport struct {
	next    http.RoundTripper
	counter *readCounter
}

var namedJobPath = regexp.MustCompile(`^/apis/jobs\.jengu\.io/v1alpha1/namespaces/([^/]+)/(enrichmentjobs|competitorjobs|analyticsjobs|jobschedules)/[^/]+$`)

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if m := namedJobPath.FindStringSubmatch(r.URL.Path); r.Method == http.MethodGet && m != nil && m[1] == c.counter.ns {
		c.counter.reads.Add(1)
	}
	return c.next.RoundTrip(r)
}

// TestGuessedJobIDsCostNoAPIServerReads: an id missing from the cache is read from the
// kube-apiserver only when it may be a job just created (the facade's random shape with a fresh
// timestamp). A flood of guessed ids, each polled as the seed's hook polls, costs none.
func TestGuessedJobIDsCostNoAPIServerReads(t *testing.T) {
	g := NewWithT(t)
	f := newFixture(t, withoutController())
	counter := &readCounter{ns: f.ns}
	cfg := rest.CopyConfig(env.Config)
	cfg.WrapTransport = func(rt http.RoundTripper) http.RoundTripper { return &countingTransport{next: rt, counter: counter} }
	url := f.extraFacade(nil, cfg, nil, nil)
	get := func(path string) int {
		req, _ := http.NewRequest(http.MethodGet, url+path, nil)
		req.Header.Set("Authorization", "Bearer "+token("user-a"))
		resp, err := http.DefaultClient.Do(req)
		g.Expect(err).NotTo(HaveOccurred())
		resp.Body.Close()
		return resp.StatusCode
	}

	// A job this facade's cache may not hold yet (another replica created it a moment ago) is
	// found at once.
	id := f.enqueue("user-a")
	g.Expect(get("/api/jobs/" + id)).To(Equal(http.StatusOK))

	now := time.Now()
	var guessed []string
	for i := range 50 {
		guessed = append(guessed,
			fmt.Sprintf("enrich-%d", i),
			fmt.Sprintf("competitor-guess-%d", i),
			fmt.Sprintf("analytics-%08x", i),
			fmt.Sprintf("enrich-%08x-%d", i, now.Add(-time.Hour).UnixMilli()),                // an old stamp
			fmt.Sprintf("enrich-%08x-%d", i, now.Add(time.Hour).UnixMilli()),                 // a stamp to come
			fmt.Sprintf("enrich-%08x-%d", i, now.UnixMilli()*10),                             // 14 digits
			fmt.Sprintf("enrich-%08X-%d", 0xabcdef00+i, now.UnixMilli()),                     // not the hex the facade writes
			fmt.Sprintf("analytics-%08x-%016x", i, i),                                        // an Idempotency-Key's shape
			fmt.Sprintf("competitor-%08x-%d-%d", i, now.UnixMilli(), i),                      // more parts
			fmt.Sprintf("enrich-%08x-x%d", i, now.UnixMilli()),                               // not a number
			fmt.Sprintf("enrich-%08x-%d", i, now.Add(-10*time.Minute).UnixMilli()/1000*1000), // old, whole seconds
		)
	}
	before := counter.reads.Load()
	for _, id := range guessed {
		g.Expect(get("/api/jobs/"+id)).To(Equal(http.StatusNotFound), id)
	}
	for _, id := range guessed[:20] {
		g.Expect(get("/api/jobs/"+id+"/result")).To(Equal(http.StatusNotFound), id)
	}
	g.Expect(counter.reads.Load()-before).To(BeZero(), "kube-apiserver reads for %d guessed ids", len(guessed)+20)

	// Schedule ids: the same rule.
	before = counter.reads.Load()
	for i := range 50 {
		for _, id := range []string{fmt.Sprintf("schedule-%d", i), fmt.Sprintf("schedule-%08x-%d", i, now.Add(-time.Hour).UnixMilli())} {
			g.Expect(get("/api/schedules/"+id)).To(Equal(http.StatusNotFound), id)
		}
	}
	g.Expect(counter.reads.Load()-before).To(BeZero(), "kube-apiserver reads for 100 guessed schedule ids")
}
