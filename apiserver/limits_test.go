package apiserver_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"

	"github.com/jengu/queue-operator/apiserver"
)

// The attacks of issue 17 a user with a valid account can mount on the facade, each answered
// with a 4xx that names what was over its limit.

func TestAnalyticsRowsAndParamsAreCounted(t *testing.T) {
	f := newFixture(t)
	property := f.property("user-a", false)
	path := "/api/files/" + property + "/analytics"
	tooManyRows := `{"analysisType":"summary","data":[0` + strings.Repeat(",0", 10_000) + `]}`
	tooManyParams := make([]string, 33)
	for i := range tooManyParams {
		tooManyParams[i] = fmt.Sprintf(`"k%d":1`, i)
	}
	for _, tt := range []struct {
		name, body string
		code       int
		field      string
	}{
		{"rows", tooManyRows, http.StatusRequestEntityTooLarge, "data"},
		{"params", `{"analysisType":"summary","params":{` + strings.Join(tooManyParams, ",") + `}}`, http.StatusBadRequest, "params"},
		{"one huge row", `{"analysisType":"summary","data":["` + strings.Repeat("x", 5<<20) + `"]}`, http.StatusRequestEntityTooLarge, ""},
		// then holds no rows: it is held to an enqueue body's size and fields.
		{"then of many params", `{"analysisType":"summary","then":[{"analytics":{"analysisType":"summary","params":{` +
			strings.Repeat(`"k":1,`, 4_000) + `"k":1}}}]}`, http.StatusRequestEntityTooLarge, "then"},
		{"then with an unknown field", `{"analysisType":"summary","then":[{"analytics":{"analysisType":"summary","colour":1}}]}`,
			http.StatusBadRequest, "then.colour"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			r := f.do(http.MethodPost, path, "user-a", tt.body)
			g.Expect(r.Code).To(Equal(tt.code), r.Raw)
			if tt.field != "" {
				g.Expect(r.Body["error"]).To(HaveKeyWithValue("fields", HaveKey(tt.field)), r.Raw)
			}
			// Nothing was created.
			g.Expect(f.do(http.MethodGet, "/api/jobs", "user-a", nil).Body["total"]).To(Equal(0.0))
		})
	}
	// At the limits, accepted.
	atLimit := `{"analysisType":"summary","data":[{"date":"2026-01-01","price":1}` + strings.Repeat(`,{"date":"2026-01-01","price":1}`, 9_999) + `]}`
	r := f.do(http.MethodPost, path, "user-a", atLimit)
	NewWithT(t).Expect(r.Code).To(Equal(http.StatusAccepted), r.Raw)
}

// The file's owner is checked before the body is read: another user's file costs no decoding.
func TestEnqueueChecksTheFileBeforeTheBody(t *testing.T) {
	g := NewWithT(t)
	f := newFixture(t)
	theirs := f.property("user-b", true)
	for _, route := range []string{"enrich", "competitors", "analytics"} {
		r := f.do(http.MethodPost, "/api/files/"+theirs+"/"+route, "user-a", `{"analysisType": [`)
		g.Expect(r.Code).To(Equal(http.StatusNotFound), route+": "+r.Raw)
		g.Expect(r.Body["error"]).To(HaveKeyWithValue("code", "file_not_found"))
	}
}

// slowBody is a request body that sends its first bytes and then waits until closed.
func slowBody(first string) (io.ReadCloser, func()) {
	pr, pw := io.Pipe()
	go func() { _, _ = pw.Write([]byte(first)) }()
	return pr, func() { _ = pw.CloseWithError(io.ErrUnexpectedEOF) }
}

func TestLargeBodiesWaitTheirTurn(t *testing.T) {
	g := NewWithT(t)
	f := newFixture(t, withLimits(func(l *apiserver.Limits) {
		l.MaxLargeBodies, l.LargeBodyWait = 1, 200*time.Millisecond
	}))
	property := f.property("user-a", false)
	path := "/api/files/" + property + "/analytics"
	body, release := slowBody(`{"analysisType":"summary","data":[`)
	defer release()
	req, _ := http.NewRequest(http.MethodPost, f.url+path, body)
	req.Header.Set("Authorization", "Bearer "+token("user-a"))
	req.Header.Set("Content-Type", "application/json")
	go func() {
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	}()
	// While the slow body holds the one slot, another large body is turned away...
	g.Eventually(func() int {
		return f.do(http.MethodPost, path, "user-a", `{"analysisType":"summary","data":[1]}`).Code
	}).WithTimeout(timeout).Should(Equal(http.StatusServiceUnavailable))
	r := f.do(http.MethodPost, "/api/files", "user-a", "date,price\n2026-01-01,1\n", "Content-Type", "text/csv")
	g.Expect(r.Code).To(Equal(http.StatusServiceUnavailable), r.Raw)
	g.Expect(r.Body["error"]).To(HaveKeyWithValue("code", "busy"))
	g.Expect(r.Header.Get("Retry-After")).NotTo(BeEmpty())
	// ... small ones are not.
	g.Expect(f.do(http.MethodGet, "/api/jobs", "user-a", nil).Code).To(Equal(http.StatusOK))
	// Once it ends, the slot is free again.
	release()
	g.Eventually(func() int {
		return f.do(http.MethodPost, path, "user-a", `{"analysisType":"summary","data":[{"date":"2026-01-01","price":1}]}`).Code
	}).WithTimeout(timeout).Should(Equal(http.StatusAccepted))
}

func TestLiveJobsPerUserAreCapped(t *testing.T) {
	g := NewWithT(t)
	f := newFixture(t, withoutController(), withLimits(func(l *apiserver.Limits) { l.MaxLiveJobsPerUser = 2 }))
	property := f.property("user-a", true)
	enqueue := func() response { return f.do(http.MethodPost, "/api/files/"+property+"/enrich", "user-a", nil) }
	for want := range 2 {
		g.Expect(enqueue().Code).To(Equal(http.StatusAccepted))
		g.Eventually(func() any { return f.do(http.MethodGet, "/api/jobs", "user-a", nil).Body["total"] }).Should(Equal(float64(want + 1)))
	}
	r := enqueue()
	g.Expect(r.Code).To(Equal(http.StatusTooManyRequests), r.Raw)
	g.Expect(r.Body["error"]).To(And(HaveKeyWithValue("code", "too_many_jobs"), HaveKeyWithValue("message", ContainSubstring("2 unfinished"))))
	g.Expect(r.Header.Get("Retry-After")).NotTo(BeEmpty())
	// Another queue, and another user, are not held back.
	r = f.do(http.MethodPost, "/api/files/"+property+"/competitors", "user-a",
		map[string]any{"location": "Paris", "checkIn": "2026-07-01", "checkOut": "2026-07-02", "adults": 1})
	g.Expect(r.Code).To(Equal(http.StatusAccepted), r.Raw)
	g.Expect(f.do(http.MethodPost, "/api/files/"+f.property("user-b", true)+"/enrich", "user-b", nil).Code).To(Equal(http.StatusAccepted))
}

func TestUserRateLimit(t *testing.T) {
	g := NewWithT(t)
	f := newFixture(t, withLimits(func(l *apiserver.Limits) { l.UserRate, l.UserBurst = 0.5, 3 }))
	for range 3 {
		g.Expect(f.do(http.MethodGet, "/api/jobs", "user-a", nil).Code).To(Equal(http.StatusOK))
	}
	r := f.do(http.MethodGet, "/api/jobs", "user-a", nil)
	g.Expect(r.Code).To(Equal(http.StatusTooManyRequests), r.Raw)
	g.Expect(r.Body["error"]).To(HaveKeyWithValue("code", "rate_limited"))
	g.Expect(r.Header.Get("Retry-After")).To(BeElementOf("1", "2")) // the rest of 2 s, rounded up
	g.Expect(f.do(http.MethodGet, "/api/jobs", "user-b", nil).Code).To(Equal(http.StatusOK))
}

// openStream opens the job's event stream as user: an open stream stays open until the test
// ends; any other answer is read whole.
func (f *fixture) openStream(user, id string) response {
	f.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, f.url+"/api/jobs/"+id+"/events", nil)
	req.Header.Set("Authorization", "Bearer "+token(user))
	ctx, cancel := context.WithCancel(context.Background())
	f.t.Cleanup(cancel)
	resp, err := http.DefaultClient.Do(req.WithContext(ctx))
	if err != nil {
		f.t.Fatalf("open events: %v", err)
	}
	out := response{Code: resp.StatusCode, Header: resp.Header}
	if resp.StatusCode == http.StatusOK {
		f.t.Cleanup(func() { resp.Body.Close() })
		return out
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	out.Raw = string(raw)
	_ = json.Unmarshal(raw, &out.Body)
	return out
}

func TestEventStreamsAreCapped(t *testing.T) {
	g := NewWithT(t)
	f := newFixture(t, withLimits(func(l *apiserver.Limits) { l.MaxStreamsPerUser, l.MaxStreams = 2, 3 }))
	a, b, c := f.enqueue("user-a"), f.enqueue("user-b"), f.enqueue("user-c")
	g.Expect(f.openStream("user-a", a).Code).To(Equal(http.StatusOK))
	g.Expect(f.openStream("user-a", a).Code).To(Equal(http.StatusOK))
	r := f.openStream("user-a", a)
	g.Expect(r.Code).To(Equal(http.StatusTooManyRequests), r.Raw)
	g.Expect(r.Body["error"]).To(HaveKeyWithValue("code", "too_many_streams"))
	g.Expect(r.Header.Get("Retry-After")).NotTo(BeEmpty())
	g.Expect(f.openStream("user-b", b).Code).To(Equal(http.StatusOK))
	// Three open in all: the next user is turned away too.
	g.Expect(f.openStream("user-c", c).Code).To(Equal(http.StatusTooManyRequests))
	// A stream that ends frees its slot.
	f.do(http.MethodDelete, "/api/jobs/"+b, "user-b", nil)
	g.Eventually(func() int { return f.openStream("user-c", c).Code }).WithTimeout(timeout).Should(Equal(http.StatusOK))
}

func TestEventStreamsEndAfterTheirLifetime(t *testing.T) {
	g := NewWithT(t)
	f := newFixture(t, withLimits(func(l *apiserver.Limits) { l.MaxStreamLifetime = 2 * time.Second }))
	id := f.enqueue("user-a")
	events := f.events("user-a", id)
	g.Expect(next(g, events).Name).To(Equal("waiting"))
	// The job is still waiting, yet the stream ends; a reconnect starts with the state again.
	g.Eventually(events).WithTimeout(timeout).Should(BeClosed())
	g.Expect(next(g, f.events("user-a", id)).Name).To(Equal("waiting"))
}

// serve runs the facade over a real socket (the http.Server's deadlines apply) and returns
// its address.
func (f *fixture) serve(g Gomega, opts ...apiserver.Option) string {
	ctx, cancel := context.WithCancel(context.Background())
	f.t.Cleanup(cancel)
	server, err := apiserver.Connect(ctx, env.Config, apiserver.Config{Namespace: f.ns, Redis: f.rdb, Store: db, JWTSecret: jwtSecret}, opts...)
	g.Expect(err).NotTo(HaveOccurred())
	l, err := net.Listen("tcp", "127.0.0.1:0")
	g.Expect(err).NotTo(HaveOccurred())
	go func() { _ = server.Serve(ctx, l, nil) }()
	return l.Addr().String()
}

// closedByServer says whether the server closed conn within d: a read gets EOF (after any
// answer the server sent).
func closedByServer(conn net.Conn, d time.Duration) bool {
	_ = conn.SetReadDeadline(time.Now().Add(d))
	_, err := io.Copy(io.Discard, conn)
	return err == nil // EOF; a timeout is an error
}

func TestSlowAndIdleConnectionsAreClosed(t *testing.T) {
	g := NewWithT(t)
	f := newFixture(t)
	limits := apiserver.DefaultLimits()
	limits.IdleTimeout, limits.BodyTimeout, limits.WriteTimeout = time.Second, time.Second, time.Second
	addr := f.serve(g, apiserver.WithLimits(limits), apiserver.WithSSEKeepAlive(500*time.Millisecond))

	// A body sent slower than the small-body deadline.
	conn, err := net.Dial("tcp", addr)
	g.Expect(err).NotTo(HaveOccurred())
	defer conn.Close()
	_, err = fmt.Fprintf(conn, "POST /api/files/%s/enrich HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"countryCode\"",
		f.property("user-a", true), token("user-a"))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(closedByServer(conn, 15*time.Second)).To(BeTrue(), "a stalled body holds its connection")

	// A keep-alive connection left idle.
	idle, err := net.Dial("tcp", addr)
	g.Expect(err).NotTo(HaveOccurred())
	defer idle.Close()
	_, err = fmt.Fprintf(idle, "GET /api/jobs HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n\r\n", token("user-a"))
	g.Expect(err).NotTo(HaveOccurred())
	resp, err := http.ReadResponse(bufio.NewReader(idle), nil)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(resp.StatusCode).To(Equal(http.StatusOK))
	g.Expect(closedByServer(idle, 15*time.Second)).To(BeTrue(), "an idle connection stays open")

	// An event stream outlives the write deadline of ordinary answers.
	id := f.enqueue("user-a")
	req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/api/jobs/"+id+"/events", nil)
	req.Header.Set("Authorization", "Bearer "+token("user-a"))
	stream, err := http.DefaultClient.Do(req)
	g.Expect(err).NotTo(HaveOccurred())
	defer stream.Body.Close()
	lines := bufio.NewScanner(stream.Body)
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		g.Expect(lines.Scan()).To(BeTrue(), "the stream was cut: %v", lines.Err())
	}
}

// Probes and metrics are served on the ops port only, and a flood of /readyz costs the
// kube-apiserver nothing.
func TestProbesAndMetricsAreOnTheOpsPortOnly(t *testing.T) {
	g := NewWithT(t)
	f := newFixture(t)
	for _, path := range []string{"/healthz", "/readyz", "/metrics", "/metrics/json"} {
		g.Expect(f.do(http.MethodGet, path, "", nil).Code).To(Equal(http.StatusNotFound), path)
		g.Expect(f.do(http.MethodGet, f.ops+path, "", nil).Code).To(Equal(http.StatusOK), path)
	}
	before := f.kubeLists.Load()
	for range 50 {
		g.Expect(f.do(http.MethodGet, f.ops+"/readyz", "", nil).Code).To(Equal(http.StatusOK))
	}
	g.Expect(f.kubeLists.Load()-before).To(BeNumerically("<=", 2), "List requests for 50 probes")
}
