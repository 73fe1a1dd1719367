package apiserver_test

import (
	"encoding/json"
	"net/http"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"
	"github.com/google/go-cmp/cmp"
	. "github.com/onsi/gomega"
	"sigs.k8s.io/yaml"

	"github.com/jengu/queue-operator/docs"
)

// documentedRoutes is every "METHOD /path" of docs/openapi.yaml, paths in gin's spelling.
func documentedRoutes(t *testing.T) []string {
	t.Helper()
	var doc struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := yaml.Unmarshal(docs.OpenAPI, &doc); err != nil {
		t.Fatalf("docs/openapi.yaml: %v", err)
	}
	param := regexp.MustCompile(`\{([^}]+)\}`)
	var routes []string
	for path, item := range doc.Paths {
		for method := range item {
			switch method {
			case "get", "put", "post", "delete", "patch", "head", "options":
				routes = append(routes, strings.ToUpper(method)+" "+param.ReplaceAllString(path, ":$1"))
			}
		}
	}
	sort.Strings(routes)
	return routes
}

// TestOpenAPIDescribesEveryRoute fails when a route is served that the document does not
// describe, or the document describes one that is not served.
func TestOpenAPIDescribesEveryRoute(t *testing.T) {
	f := newFixture(t, withoutController())
	var served []string
	for _, handler := range []http.Handler{f.server.Handler(), f.server.OpsHandler()} {
		engine, ok := handler.(*gin.Engine)
		if !ok {
			t.Fatalf("the facade's handler is a %T, not gin's engine", handler)
		}
		for _, r := range engine.Routes() {
			served = append(served, r.Method+" "+r.Path)
		}
	}
	sort.Strings(served)
	if diff := cmp.Diff(documentedRoutes(t), served); diff != "" {
		t.Errorf("routes: documented in docs/openapi.yaml (-) and served (+) differ:\n%s", diff)
	}
}

func TestOpenAPIDocumentIsServed(t *testing.T) {
	g := NewWithT(t)
	f := newFixture(t, withoutController())
	r := f.do(http.MethodGet, "/api/openapi.json", "", nil)
	g.Expect(r.Code).To(Equal(http.StatusOK), r.Raw)
	g.Expect(r.Header.Get("Content-Type")).To(HavePrefix("application/json"))
	want, err := yaml.YAMLToJSON(docs.OpenAPI)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(r.Raw).To(MatchJSON(want))
	g.Expect(r.Body).To(HaveKeyWithValue("openapi", HavePrefix("3.")))
}
