// Package docs holds the REST facade's OpenAPI document (openapi.yaml), embedded so that the facade
// serves the very file the repository documents (GET /api/openapi.json).
package docs

import _ "embed"

// OpenAPI is openapi.yaml as it is in the repository.
//
//go:embed openapi.yaml
var OpenAPI []byte
