package apiserver_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr/funcr"
	. "github.com/onsi/gomega"
	"k8s.io/client-go/rest"

	"github.com/jengu/queue-operator/apiserver"
)

// extraFacade serves another facade over f's namespace, with its config edited, logging into log;
// wrap, when set, wraps its HTTP handler.
func (f *fixture) extraFacade(edit func(*apiserver.Config), kube *rest.Config, log *syncBuffer, wrap func(http.Handler) http.Handler) string {
	f.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	f.t.Cleanup(cancel)
	cfg := apiserver.Config{Namespace: f.ns, Redis: f.rdb, Store: db, JWTSecret: jwtSecret}
	if edit != nil {
		edit(&cfg)
	}
	if kube == nil {
		kube = env.Config
	}
	opts := []apiserver.Option{apiserver.WithSSEKeepAlive(time.Second)}
	if log != nil {
		opts = append(opts, apiserver.WithLogger(funcr.New(func(prefix, args string) { log.WriteString(prefix + " " + args + "\n") },
			funcr.Options{Verbosity: 10})))
	}
	server, err := apiserver.Connect(ctx, kube, cfg, opts...)
	if err != nil {
		f.t.Fatalf("connect the facade: %v", err)
	}
	go func() { _ = server.Run(ctx) }()
	var h http.Handler = server.Handler()
	if wrap != nil {
		h = wrap(h)
	}
	ts := httptest.NewServer(h)
	f.t.Cleanup(ts.Close)
	return ts.URL
}

func jsonDecode(s string, v any) error { return json.Unmarshal([]byte(s), v) }

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) WriteString(s string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf.WriteString(s)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// request sends method url with the headers (pairs) and returns the answer, body read.
func request(g Gomega, method, url string, headers ...string) (*http.Response, string) {
	req, err := http.NewRequest(method, url, nil)
	g.Expect(err).NotTo(HaveOccurred())
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	g.Expect(err).NotTo(HaveOccurred())
	defer resp.Body.Close()
	var body strings.Builder
	_, _ = bufio.NewReader(resp.Body).WriteTo(&body)
	return resp, body.String()
}

// firstEvent opens url as an event stream and returns its status and first event's name.
func firstEvent(g Gomega, url string, headers ...string) (int, string) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	g.Expect(err).NotTo(HaveOccurred())
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	g.Expect(err).NotTo(HaveOccurred())
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return resp.StatusCode, ""
	}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if name, ok := strings.CutPrefix(sc.Text(), "event: "); ok {
			return resp.StatusCode, name
		}
	}
	return resp.StatusCode, ""
}

func TestStreamTicketOpensOnlyItsJobsStream(t *testing.T) {
	g := NewWithT(t)
	f := newFixture(t)
	logs := &syncBuffer{}
	var mu sync.Mutex
	var seen []string // the URLs as an access log written after each request would show them
	url := f.extraFacade(nil, nil, logs, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			h.ServeHTTP(w, r)
			mu.Lock()
			seen = append(seen, r.URL.String(), r.RequestURI)
			mu.Unlock()
		})
	})
	id, other, theirs := f.enqueue("user-a"), f.enqueue("user-a"), f.enqueue("user-b")
	auth := func(user string) []string { return []string{"Authorization", "Bearer " + token(user)} }

	resp, body := request(g, http.MethodPost, url+"/api/jobs/"+id+"/events/ticket", auth("user-a")...)
	g.Expect(resp.StatusCode).To(Equal(http.StatusOK), body)
	g.Expect(resp.Header.Get("Cache-Control")).To(Equal("no-store"))
	var answer struct {
		Success   bool   `json:"success"`
		Ticket    string `json:"ticket"`
		ExpiresAt int64  `json:"expiresAt"`
	}
	g.Expect(jsonDecode(body, &answer)).To(Succeed())
	g.Expect(answer.Success).To(BeTrue())
	g.Expect(time.UnixMilli(answer.ExpiresAt)).To(BeTemporally("~", time.Now().Add(time.Minute), 5*time.Second))
	ticket := answer.Ticket

	// Another user's job, an unknown one, and no token get no ticket.
	resp, body = request(g, http.MethodPost, url+"/api/jobs/"+theirs+"/events/ticket", auth("user-a")...)
	g.Expect(resp.StatusCode).To(Equal(http.StatusNotFound), body)
	resp, body = request(g, http.MethodPost, url+"/api/jobs/enrich-00000000-1000000000000/events/ticket", auth("user-a")...)
	g.Expect(resp.StatusCode).To(Equal(http.StatusNotFound), body)
	resp, body = request(g, http.MethodPost, url+"/api/jobs/"+id+"/events/ticket")
	g.Expect(resp.StatusCode).To(Equal(http.StatusUnauthorized), body)

	// The ticket opens its job's stream, with no Authorization header, from the facade that
	// issued it and from another replica (same secret).
	status, event := firstEvent(g, url+"/api/jobs/"+id+"/events?ticket="+ticket)
	g.Expect(status).To(Equal(http.StatusOK))
	g.Expect(event).To(BeElementOf("waiting", "active"))
	status, event = firstEvent(g, f.url+"/api/jobs/"+id+"/events?ticket="+ticket)
	g.Expect(status).To(Equal(http.StatusOK))
	g.Expect(event).To(BeElementOf("waiting", "active"))

	// And nothing else: not another job's stream, not another route, not as a bearer token.
	for _, path := range []string{
		"/api/jobs/" + other + "/events?ticket=" + ticket,
		"/api/jobs/" + theirs + "/events?ticket=" + ticket,
		"/api/jobs/" + id + "?ticket=" + ticket,
		"/api/jobs/" + id + "/result?ticket=" + ticket,
		"/api/jobs?ticket=" + ticket,
		"/api/files?ticket=" + ticket,
		"/api/jobs/" + id + "/events?ticket=",
		"/api/jobs/" + id + "/events?ticket=" + ticket[:len(ticket)-4],
	} {
		resp, body := request(g, http.MethodGet, url+path)
		g.Expect(resp.StatusCode).To(Equal(http.StatusUnauthorized), path+": "+body)
		g.Expect(body).NotTo(ContainSubstring(ticket[:20]), path)
	}
	for _, path := range []string{"/api/jobs/" + id + "/events", "/api/jobs"} {
		resp, body := request(g, http.MethodGet, url+path, "Authorization", "Bearer "+ticket)
		g.Expect(resp.StatusCode).To(Equal(http.StatusUnauthorized), path+": "+body)
	}
	// A facade of another Supabase project (another secret) refuses it.
	otherURL := f.extraFacade(func(c *apiserver.Config) { c.JWTSecret = []byte("another-project-secret-another-project-secret") }, nil, nil, nil)
	status, _ = firstEvent(g, otherURL+"/api/jobs/"+id+"/events?ticket="+ticket)
	g.Expect(status).To(Equal(http.StatusUnauthorized))

	// Nothing written down about the requests holds the ticket.
	mu.Lock()
	defer mu.Unlock()
	g.Expect(seen).NotTo(BeEmpty())
	for _, u := range seen {
		g.Expect(u).NotTo(ContainSubstring(ticket[:20]))
	}
	g.Expect(logs.String()).NotTo(ContainSubstring(ticket[:20]))
}

func TestCORSAllowsOnlyTheListedOrigins(t *testing.T) {
	g := NewWithT(t)
	f := newFixture(t, withoutController())
	const app = "https://app.example.com"
	url := f.extraFacade(func(c *apiserver.Config) { c.AllowedOrigins = []string{app, "http://localhost:5173"} }, nil, nil, nil)

	preflight := func(origin, method, headers string) *http.Response {
		resp, _ := request(g, http.MethodOptions, url+"/api/jobs/enrich-0a1b2c3d-1767225600000/events/ticket",
			"Origin", origin, "Access-Control-Request-Method", method, "Access-Control-Request-Headers", headers)
		return resp
	}
	resp := preflight(app, "POST", "authorization")
	g.Expect(resp.StatusCode).To(Equal(http.StatusNoContent))
	g.Expect(resp.Header.Get("Access-Control-Allow-Origin")).To(Equal(app))
	g.Expect(resp.Header.Get("Access-Control-Allow-Methods")).To(ContainSubstring("POST"))
	g.Expect(resp.Header.Get("Access-Control-Allow-Headers")).To(And(ContainSubstring("Authorization"), ContainSubstring("Idempotency-Key")))
	g.Expect(resp.Header.Get("Access-Control-Allow-Credentials")).To(BeEmpty())
	g.Expect(resp.Header.Values("Vary")).To(ContainElement("Origin"))

	// Every method a route takes: PATCH suspends a schedule.
	resp = preflight(app, "PATCH", "authorization, content-type")
	g.Expect(resp.StatusCode).To(Equal(http.StatusNoContent))
	g.Expect(strings.Split(resp.Header.Get("Access-Control-Allow-Methods"), ", ")).To(ContainElements("GET", "POST", "PUT", "PATCH", "DELETE"))

	resp = preflight("https://evil.example.com", "POST", "authorization")
	g.Expect(resp.StatusCode).To(Equal(http.StatusForbidden))
	g.Expect(resp.Header.Get("Access-Control-Allow-Origin")).To(BeEmpty())

	resp, body := request(g, http.MethodGet, url+"/api/jobs", "Origin", "http://localhost:5173", "Authorization", "Bearer "+token("user-a"))
	g.Expect(resp.StatusCode).To(Equal(http.StatusOK), body)
	g.Expect(resp.Header.Get("Access-Control-Allow-Origin")).To(Equal("http://localhost:5173"))
	g.Expect(resp.Header.Get("Access-Control-Expose-Headers")).To(ContainSubstring("Retry-After"))
	resp, _ = request(g, http.MethodGet, url+"/api/jobs", "Origin", "https://evil.example.com", "Authorization", "Bearer "+token("user-a"))
	g.Expect(resp.Header.Get("Access-Control-Allow-Origin")).To(BeEmpty())

	// Without a list, no origin is allowed; a wildcard is refused at start.
	resp, _ = request(g, http.MethodGet, f.url+"/api/jobs", "Origin", app, "Authorization", "Bearer "+token("user-a"))
	g.Expect(resp.Header.Get("Access-Control-Allow-Origin")).To(BeEmpty())
	_, err := apiserver.New(apiserver.Config{Namespace: f.ns, Kube: f.facade, Reader: f.facade, Redis: f.rdb, Store: db,
		JWTSecret: jwtSecret, AllowedOrigins: []string{"*"}})
	g.Expect(err).To(MatchError(ContainSubstring("wildcards are not allowed")))
}
