package apiserver

import (
	"fmt"
	"net/http"

	"github.com/gin-gonic/gin"
	"sigs.k8s.io/yaml"

	"github.com/jengu/queue-operator/docs"
)

const openAPIRoute = "/api/openapi.json"

// openAPIDocument is docs/openapi.yaml as JSON, converted once.
func openAPIDocument() ([]byte, error) {
	doc, err := yaml.YAMLToJSON(docs.OpenAPI)
	if err != nil {
		return nil, fmt.Errorf("apiserver: docs/openapi.yaml is not valid YAML: %w", err)
	}
	return doc, nil
}

// openAPI answers GET /api/openapi.json, without authentication: a frontend discovers the API
// before it has a token.
func (s *Server) openAPI(c *gin.Context) {
	c.Data(http.StatusOK, "application/json", s.openAPIJSON)
}
